"""One row of a claims table, its values parsed by the field's specification (``ketnoi.xml130.fields``).

The mapping runs only on visits whose checks passed, so a value that does not parse here is treated as
absent rather than reported again: the checks (``ketnoi.xml130.rules``) already said what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import cache

from ketnoi.xml130.fields import FIELDS, TEXT, FieldSpec
from ketnoi.xml130.values import parse_value, split_multi


@cache
def _specs(table: str) -> dict[str, FieldSpec]:
    return {spec.name: spec for spec in FIELDS.get(table, ())}


class Row:
    """Typed access to one row's fields: text, dates (FHIR strings), decimals, integers, ``;`` lists."""

    __slots__ = ("raw", "table")

    def __init__(self, table: str, raw: Mapping[str, str]) -> None:
        self.table = table
        self.raw = raw

    def text(self, name: str) -> str | None:
        value = self.raw.get(name, "").strip()
        return value or None

    def _parsed(self, name: str) -> object:
        text = self.text(name)
        if text is None:
            return None
        spec = _specs(self.table).get(name) or FieldSpec(name, TEXT, None, False)
        value, problems = parse_value(spec, text)
        return None if problems else value

    def when(self, name: str) -> str | None:
        """A date or date-time field as a FHIR date / dateTime of the precision written."""
        value = self._parsed(name)
        return value if isinstance(value, str) else None

    def decimal(self, name: str) -> Decimal | None:
        value = self._parsed(name)
        return value if isinstance(value, Decimal) else None

    def integer(self, name: str) -> int | None:
        value = self._parsed(name)
        return value if isinstance(value, int) else None

    def items(self, name: str) -> list[str]:
        """A ``;``-separated field's items, as written."""
        return split_multi(self.raw.get(name, ""))

    def code(self, name: str) -> str | None:
        """A coded field as text; an integer-typed code keeps what was written ("1", not 1)."""
        return self.text(name)
