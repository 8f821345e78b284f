"""SQL fragments: text with the bound values of its ``?`` placeholders, composed without ever
misordering parameters (``ketnoi.search.compile`` and ``includes`` build their queries from them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Frag:
    """A piece of SQL text with the values of its ``?`` placeholders, in order."""

    text: str
    params: tuple[Any, ...] = ()


def val(*values: Any) -> Frag:
    """Placeholders for bound values: ``?`` or ``?, ?, ?``."""
    return Frag(", ".join("?" * len(values)), values)


def cat(*parts: str | Frag) -> Frag:
    text: list[str] = []
    params: list[Any] = []
    for part in parts:
        if isinstance(part, Frag):
            text.append(part.text)
            params.extend(part.params)
        else:
            text.append(part)
    return Frag("".join(text), tuple(params))


def join(sep: str, frags: Iterable[Frag]) -> Frag:
    items = list(frags)
    out: list[str | Frag] = []
    for i, frag in enumerate(items):
        if i:
            out.append(sep)
        out.append(frag)
    return cat(*out)
