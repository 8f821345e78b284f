"""FHIRPath Patch: the error types and the parsed operation and value types shared by the package."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

Step = str | int


class _Malformed(Exception):
    """The Parameters body is not a well-formed FHIRPath Patch (HTTP 400)."""

    def __init__(self, en: str, vi: str) -> None:
        super().__init__(en)
        self.en = en
        self.vi = vi


class _Failed(_Malformed):
    """A well-formed operation that cannot be applied (HTTP 422)."""


def _malformed(en: str, vi: str) -> NoReturn:
    raise _Malformed(en, vi)


def _failed(en: str, vi: str) -> NoReturn:
    raise _Failed(en, vi)


@dataclass(frozen=True, slots=True)
class _Value:
    """A value taken from a ``value`` part: the JSON, its ``_x`` extension JSON, its datatype."""

    json: Any
    ext: Any = None
    type: str | None = None  # "Date", "HumanName", ... (None for anonymous or resource values)


@dataclass(frozen=True, slots=True)
class _Operation:
    type: str
    path: str
    name: str | None
    value: list[dict[str, Any]] | None  # the raw value part (kept raw: it is typed later)
    index: int | None
    source: int | None
    destination: int | None
