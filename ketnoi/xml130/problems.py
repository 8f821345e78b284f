"""Problems found while reading claims XML (QĐ 130/QĐ-BYT as amended by QĐ 4750/QĐ-BYT).

Two kinds, on purpose: a ``Problem`` belongs to one visit (or one value) and never stops the reading, so the
caller can report every broken visit of a file in one pass; an ``Xml130Error`` means the file itself cannot be
trusted (not XML, a DTD or entity anywhere, the wrong root) and nothing more is read from it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a table, a row or a value, with bilingual messages for the submitter.

    ``table``, ``ma_lk``, ``field`` and ``value`` are empty where they do not apply (a value parsed on its own
    has no table yet; the reader fills them in).
    """

    rule: str
    message_vi: str
    message_en: str
    table: str = ""
    ma_lk: str = ""
    field: str = ""
    value: str = ""


class Xml130Error(Exception):
    """The file as a whole is refused; the message is one line, Vietnamese then English."""

    def __init__(self, rule: str, message_vi: str, message_en: str) -> None:
        self.rule = rule
        self.message_vi = message_vi
        self.message_en = message_en
        super().__init__(f"{message_vi} / {message_en}")
