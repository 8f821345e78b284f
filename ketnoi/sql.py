"""SQL vocabulary shared by the search compiler and the stores; knows nothing of FHIR."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SqlQuery:
    """A compiled query: SQL text with ``?`` placeholders and its bound parameters."""

    sql: str
    params: tuple[Any, ...]
