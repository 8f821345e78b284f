"""Is a code in a value set? Answered from the value set's expansion, cached: the ``CodeCheck`` that
validation (``ketnoi.validation.conformance``) decides bindings with.

:class:`Membership` takes a function that expands a value set (a canonical URL) into its (system,
code) pairs; a value set that cannot be expanded (unknown, a filter the service does not evaluate,
too large: a ``FhirError`` from ``ketnoi.terminology.expand``) answers None, "cannot tell", and the
validator says so instead of guessing. :func:`packaged` expands over the packaged terminology only
(R4's, the Vietnamese code systems, the shipped packages'): what a ``ketnoi load`` worker process,
which has no database session of its own, checks with; the server adds the database's
(``ketnoi.interactions.conformance``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from ketnoi.fhir.outcome import FhirError
from ketnoi.runtime import TimedCache
from ketnoi.terminology.expand import Code, expand
from ketnoi.terminology.lookup import Terminology

Expander = Callable[[str], frozenset[Code]]
Codes = tuple[frozenset[Code], frozenset[str]]  # the (system, code) pairs, and the codes alone


class Membership:
    """Membership of codes in value sets, from cached expansions (``ttl`` seconds, or for ever)."""

    def __init__(self, expander: Expander, ttl: float | None = None) -> None:
        self.expander = expander
        self._expansions: TimedCache[Codes | None] = TimedCache(ttl)

    def __call__(self, value_set: str, system: str | None, code: str) -> bool | None:
        codes = self.expansion(value_set)
        if codes is None:
            return None
        pairs, plain = codes
        return (system, code) in pairs if system is not None else code in plain

    def expansion(self, value_set: str) -> Codes | None:
        known, cached = self._expansions.get(value_set)
        if known:
            return cached
        try:
            pairs = self.expander(value_set)
            codes: Codes | None = (pairs, frozenset(c for _, c in pairs))
        except FhirError:  # unknown, not expandable here, or too large: the code is not judged
            codes = None
        self._expansions.put(value_set, codes)
        return codes

    def clear(self) -> None:
        self._expansions.clear()


@cache
def packaged() -> Membership:
    """The process-wide :class:`Membership` over the packaged terminology (no database)."""
    return Membership(lambda value_set: expand(Terminology(None), value_set))
