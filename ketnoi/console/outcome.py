"""A write's OperationOutcome on a console form (ADR 0026 decision 6): each issue in the user's language,
next to the field whose element it names. Shared by every form that writes through the interactions
(the registries, the clinician's observation and note forms)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Message:
    severity: str  # error | warning
    text: str


def in_language(text: str, lang: str) -> str:
    """The half of a bilingual diagnostics ("English / Vietnamese") in ``lang``. Either half may hold
    a " / " of its own: the split is where the Vietnamese (accented) text begins, and of cuts alike
    the one nearest the middle (the halves say the same thing)."""
    cuts = [m.start() for m in re.finditer(" / ", text)]
    if not cuts:
        return text

    def fit(i: int) -> tuple[int, int]:
        return _accented(text[i + 3 :]) - _accented(text[:i]), -abs(len(text) - 3 - 2 * i)

    cut = max(cuts, key=fit)
    english, vietnamese = text[:cut], text[cut + 3 :]
    return vietnamese if lang == "vi" else english


def _accented(text: str) -> int:
    return sum(1 for ch in text if ord(ch) > 127)


def outcome_text(outcome: dict[str, Any], lang: str) -> str:
    return "; ".join(
        in_language(str(i["diagnostics"]), lang) for i in outcome.get("issue") or () if i.get("diagnostics")
    )


def place(
    issues: list[dict[str, Any]], where: dict[str, str], lang: str
) -> tuple[dict[str, list[Message]], list[Message]]:
    """Each error or warning by the field whose element it names (``expression``, else the older
    ``location``); the rest for the top of the form."""
    by_field: dict[str, list[Message]] = {}
    rest: list[Message] = []
    for issue in issues:
        severity = str(issue.get("severity", "error"))
        if severity not in ("fatal", "error", "warning"):
            continue  # "version 2 stored": the page says so in its own words
        message = Message("warning" if severity == "warning" else "error", _issue_text(issue, lang))
        paths = [str(p) for p in [*(issue.get("expression") or ()), *(issue.get("location") or ())]]
        key = next((k for p in paths if (k := _field_of(p, where)) is not None), None)
        (by_field.setdefault(key, []) if key is not None else rest).append(message)
    return by_field, rest


def _issue_text(issue: dict[str, Any], lang: str) -> str:
    text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code") or ""
    return in_language(str(text), lang)


def _field_of(path: str, where: dict[str, str]) -> str | None:
    """The field at ``path`` or inside it (the most specific), or the first one ``path`` contains
    (an issue about ``Organization.address[0]`` goes to its first field); never the whole resource."""

    def under(inner: str, outer: str) -> bool:
        return inner == outer or inner.startswith((outer + ".", outer + "["))

    inside = [(len(loc), key) for key, loc in where.items() if under(path, loc)]
    if inside:
        return max(inside)[1]
    if "." not in path:
        return None
    return next((key for key, loc in where.items() if under(loc, path)), None)
