"""The refusal every security service raises: one message in English and Vietnamese."""

from __future__ import annotations


class Refused(ValueError):
    """A refused operation, explained in English (``en``) and Vietnamese (``vi``)."""

    def __init__(self, en: str, vi: str) -> None:
        super().__init__(f"{en} / {vi}")
        self.en, self.vi = en, vi
