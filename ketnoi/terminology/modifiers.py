"""Rewrite the token modifiers ``:in``, ``:not-in``, ``:above``, ``:below`` into plain token criteria.

Done after parsing and before compiling (``ketnoi.interactions.search``), so ``ketnoi.search`` stays
pure: ``code:in=<ValueSet>`` becomes ``code=<system|code>,<system|code>,...`` over the expansion,
``:not-in`` the ``:not`` form of that list, ``:below`` / ``:above`` the list of the code and its
descendants / ancestors. Parameters over primitive elements (``gender``, ``status``: rows without a
system) are matched on the code alone (``|code``). Filters inside chains and ``_has`` are rewritten too.

The compiler groups plain token values into ``system = ? AND code IN (...)`` lists, so an
expansion of up to :data:`~ketnoi.terminology.expand.MAX_CODES` codes is one bounded query on both
databases (a longer one is a 400 too-costly, raised while expanding).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ketnoi.fhir.outcome import bad_request
from ketnoi.search.extract_model import r4_model
from ketnoi.search.extract_paths import Cast, Field, parse_simple, split_union
from ketnoi.search.query import Chain, Criterion, Filter, Has, split_pipe, unescape
from ketnoi.terminology.expand import MAX_CODES, Code, Source, expand, subsumption, too_costly

ParamsFor = Callable[[str], Mapping[str, Mapping[str, Any]]]
MODIFIERS = frozenset({"in", "not-in", "above", "below"})
# A value no index row has: an empty expansion matches nothing (``:in``) or everything (``:not-in``).
_NOTHING = "urn:ketnoi:terminology:empty|-"


def resolve_modifiers(
    filters: list[Criterion], types: tuple[str, ...], source: Source, params_for: ParamsFor
) -> list[Criterion]:
    """``filters`` with every terminology modifier replaced by plain token criteria."""
    if not any(_uses_terminology(c) for c in filters):
        return filters
    out: list[Criterion] = []
    for crit in filters:
        out.extend(_Rewriter(source, params_for).criteria(crit, types, depth=0))
    return out


def _uses_terminology(crit: Criterion) -> bool:
    if isinstance(crit, Filter):
        return crit.type == "token" and crit.modifier in MODIFIERS
    if isinstance(crit, Chain):
        return any(_uses_terminology(inner) for _, inner in crit.branches)
    if isinstance(crit, Has):
        return _uses_terminology(crit.inner)
    return False


class _Rewriter:
    def __init__(self, source: Source, params_for: ParamsFor) -> None:
        self.source = source
        self.params_for = params_for

    def criteria(self, crit: Criterion, types: tuple[str, ...], *, depth: int) -> list[Criterion]:
        if isinstance(crit, Chain):
            branches = tuple((targets, self.single(inner, targets, depth + 1)) for targets, inner in crit.branches)
            return [Chain(crit.param, branches)]
        if isinstance(crit, Has):
            return [Has(crit.source_type, crit.param, self.single(crit.inner, (crit.source_type,), depth + 1))]
        if not (isinstance(crit, Filter) and crit.type == "token" and crit.modifier in MODIFIERS):
            return [crit]
        values = _token_values(self.codes(crit), _row_kinds(types, crit.param, self.params_for))
        modifier = "not" if crit.modifier == "not-in" else None
        return [Filter(crit.param, "token", modifier, values or (_NOTHING,))]

    def single(self, crit: Criterion, types: tuple[str, ...], depth: int) -> Criterion:
        (only,) = self.criteria(crit, types, depth=depth)
        return only

    def codes(self, f: Filter) -> set[Code]:
        codes: set[Code] = set()
        for value in f.values:
            if f.modifier in ("in", "not-in"):
                codes |= expand(self.source, unescape(value))
            else:
                pair = split_pipe(value)
                if pair is None or not pair[0] or not pair[1]:
                    raise bad_request(
                        f"'{f.param}:{f.modifier}' takes system|code, not '{value[:80]}'",
                        f"'{f.param}:{f.modifier}' nhận hệ|mã, không phải '{value[:80]}'",
                    )
                codes |= subsumption(self.source, pair[0], pair[1], str(f.modifier))
            if len(codes) > MAX_CODES:
                raise too_costly(f"'{f.param}:{f.modifier}'", len(codes))
        return codes


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _token_values(codes: set[Code], kinds: tuple[bool, bool]) -> tuple[str, ...]:
    """``system|code`` values for coded rows, ``|code`` (no system) for rows of primitive elements."""
    coded, primitive = kinds
    values: set[str] = set()
    if coded:
        values.update(f"{_escape(system)}|{_escape(code)}" for system, code in codes)
    if primitive:
        values.update(f"|{_escape(code)}" for _, code in codes)
    return tuple(sorted(values))


def _row_kinds(types: tuple[str, ...], param: str, params_for: ParamsFor) -> tuple[bool, bool]:
    """(has rows with a system (Coding, Identifier…), has rows without (code, string… elements)).

    Read from the parameter's expression where it is a plain path; anything else counts as both."""
    coded = primitive = False
    model = r4_model()
    for rtype in types or ("Resource",):
        sp = params_for(rtype).get(param)
        for part in split_union(str(sp.get("expression") or "")) if sp is not None else ():
            parsed = parse_simple(part)
            if parsed is None:
                coded = primitive = True
                continue
            if parsed[0] not in (rtype, "Resource", "DomainResource"):
                continue  # the part of another type ("AllergyIntolerance.code | Condition.code")
            current = {rtype}
            for step in parsed[1]:
                if isinstance(step, Field):
                    current = {c.type for t in current for c in model.children(t, step.name) or ()}
                elif isinstance(step, Cast):
                    current = {step.type}
            for found in current:
                if found[:1].islower() and "." not in found:
                    primitive = True
                else:
                    coded = True
    return (coded, primitive) if coded or primitive else (True, True)
