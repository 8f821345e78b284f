"""SMART App Launch 2.x scopes: grammar, permission checks and narrowing (pure logic, stdlib only).

Spec: http://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html

Clinical scopes (v2)::

    ( "patient" | "user" | "system" ) "/" ( ResourceType | "*" ) "." <cruds> [ "?" param=value ("&" param=value)* ]

``<cruds>`` is a non-empty subset of ``c r u d s`` written in that order. The v1 names ``read``, ``write`` and
``*`` are accepted as ``rs``, ``cud`` and ``cruds``. Everything here fails closed: a scope that does not
parse exactly (``.dus``, ``.rx``, a lower-case type, a filter with a modifier...) grants nothing and is
reported in :attr:`ScopeSet.invalid`; :func:`parse_scopes` never raises on bad input.

A granular filter (``?category=...``) restricts a scope to the resources a FHIR search with those parameters
would return; the pairs of one scope are AND-ed like a search query string. This module only parses
filters: whoever enforces a scope returned by :meth:`ScopeSet.grants` must apply its filters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final
from urllib.parse import parse_qsl, urlencode

Filters = tuple[tuple[str, str], ...]

PERMISSION_ORDER: Final = "cruds"
NON_CLINICAL: Final = frozenset(
    {"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter", "offline_access", "online_access"}
)
# The scope string comes from an unauthenticated client, ends up in every access token and is scanned on
# every request; real apps ask for a few dozen scopes. Capping it bounds parse time, token size (tokens
# travel in HTTP headers, commonly limited to 8 KiB) and the per-request cost of `grants`.
MAX_SCOPES: Final = 100
MAX_CHARS: Final = 4000

# Read-only: this table decides access, so nothing at runtime may widen it.
INTERACTION_PERMISSION: Final[Mapping[str, str]] = MappingProxyType(
    {
        "create": "c",
        "read": "r",
        "vread": "r",
        "history-instance": "r",
        "update": "u",
        "patch": "u",
        "delete": "d",
        "search-type": "s",
        "search-system": "s",
        "history-type": "s",
        "history-system": "s",
    }
)

_V1_PERMISSIONS: Final = {"read": "rs", "write": "cud", "*": "cruds"}
_CLINICAL: Final = re.compile(r"(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.(\*|[a-z]+)(?:\?(.*))?")
_TOKEN: Final = re.compile(r"\S+")
# A plain search parameter code. Excluding ':' and '.' refuses modifiers and chains, which the spec marks
# experimental: a server that misread them would grant more than intended.
_FILTER_NAME: Final = re.compile(r"_?[A-Za-z][A-Za-z0-9_-]*")
# Result parameters select or shape output, they do not restrict which resources match: as a "filter" they
# would read as a restriction while restricting nothing.
_SHAPING: Final = ("_count", "_sort", "_total", "_summary", "_elements", "_format", "_pretty")
_RESULT_PARAMETERS: Final = frozenset((*_SHAPING, "_include", "_revinclude", "_contained", "_containedType"))


@dataclass(frozen=True, slots=True)
class ClinicalScope:
    context: str  # "patient" | "user" | "system"
    resource_type: str  # "Observation" or "*"
    permissions: frozenset[str]  # subset of {"c", "r", "u", "d", "s"}
    filters: Filters = ()  # granular ?param=value pairs, in the order given
    text: str = ""  # the scope as given

    def covers(self, resource_type: str) -> bool:
        """Whether this scope is about ``resource_type`` (a ``*`` scope covers every type)."""
        return self.resource_type in ("*", resource_type)

    def canonical(self) -> str:
        """The v2 spelling: letters in ``cruds`` order, filters re-encoded so the text parses back the same."""
        letters = "".join(p for p in PERMISSION_ORDER if p in self.permissions)
        query = "?" + urlencode(self.filters, safe=":/|") if self.filters else ""
        return f"{self.context}/{self.resource_type}.{letters}{query}"


@dataclass(frozen=True, slots=True)
class ScopeSet:
    clinical: tuple[ClinicalScope, ...] = ()
    other: frozenset[str] = frozenset()  # openid, launch/patient, offline_access, ...
    invalid: tuple[str, ...] = ()  # what did not parse (granted nothing)

    def text(self) -> str:
        """The valid scopes, canonical and sorted, so equal sets always give equal strings."""
        return " ".join([*sorted(self.other), *sorted({s.canonical() for s in self.clinical})])

    def grants(self, context: str | None, resource_type: str, permission: str) -> list[ClinicalScope]:
        """The scopes allowing ``permission`` (one letter) on ``resource_type``; ``context`` None means any.

        A filtered scope is returned too: the caller must apply its filters. Anything unknown (a context,
        a permission that is not exactly one of ``cruds``) matches nothing.
        """
        return [
            s
            for s in self.clinical
            if (context is None or s.context == context) and s.covers(resource_type) and permission in s.permissions
        ]

    def allows(self, context: str | None, resource_type: str, permission: str) -> bool:
        return bool(self.grants(context, resource_type, permission))

    def unfiltered(self, context: str | None, resource_type: str, permission: str) -> bool:
        """Whether some scope allows it with no granular filter (no per-resource check needed)."""
        return any(not s.filters for s in self.grants(context, resource_type, permission))

    def contexts(self) -> frozenset[str]:
        return frozenset(s.context for s in self.clinical)

    def narrow(self, allowed: ScopeSet) -> ScopeSet:
        """These (requested) scopes limited to what ``allowed`` permits; never wider than ``allowed``.

        Each requested scope is intersected with each allowed scope of the same context: common letters,
        the more specific type, and both scopes' filters (AND). Results differing only in letters merge.
        """
        merged: dict[tuple[str, str, Filters], frozenset[str]] = {}
        for requested in self.clinical:
            for limit in allowed.clinical:
                if (scope := _intersect(requested, limit)) is not None:
                    key = (scope.context, scope.resource_type, scope.filters)
                    merged[key] = merged.get(key, frozenset()) | scope.permissions
        clinical = tuple(_scope(c, t, p, f) for (c, t, f), p in merged.items())
        return ScopeSet(clinical, self.other & allowed.other, self.invalid)


def parse_scopes(text: str, known_types: frozenset[str] | None = None) -> ScopeSet:
    """Parse a space-separated scope string; duplicates (also v1/v2 spellings of one scope) collapse.

    With ``known_types``, a scope naming another resource type is invalid.
    """
    tokens, rest = _split_capped(text)
    clinical: dict[str, ClinicalScope] = {}
    other: set[str] = set()
    invalid: dict[str, None] = {}  # a dict keeps first-seen order while collapsing duplicates
    for token in tokens:
        if token in NON_CLINICAL:
            other.add(token)
        elif (scope := parse_clinical_scope(token, known_types)) is not None:
            clinical.setdefault(scope.canonical(), scope)
        else:
            invalid[token] = None
    if rest:
        invalid[rest] = None
    return ScopeSet(tuple(clinical.values()), frozenset(other), tuple(invalid))


def parse_clinical_scope(token: str, known_types: frozenset[str] | None = None) -> ClinicalScope | None:
    """One clinical scope, or None when it is not exactly in the v1 or v2 grammar."""
    match = _CLINICAL.fullmatch(token)
    if match is None:
        return None
    context, resource_type, letters, query = match.groups()
    if known_types is not None and resource_type != "*" and resource_type not in known_types:
        return None
    permissions = _permissions(letters, has_query=query is not None)
    filters = () if query is None else _filters(query)
    if permissions is None or filters is None:
        return None
    return ClinicalScope(context, resource_type, permissions, filters, token)


def _split_capped(text: str) -> tuple[list[str], str]:
    """The first tokens (at most MAX_SCOPES, wholly within MAX_CHARS) and the unprocessed rest, stripped.

    Raw tokens count, duplicates included, so the work is bounded before anything is parsed. The rest is
    returned as one string: it is reported, never split or parsed, and a token cut at MAX_CHARS is never
    read as a shorter (different) scope.
    """
    tokens: list[str] = []
    for match in _TOKEN.finditer(text, 0, MAX_CHARS):
        cut_short = match.end() == MAX_CHARS and _TOKEN.match(text, MAX_CHARS) is not None
        if len(tokens) == MAX_SCOPES or cut_short:
            return tokens, text[match.start() :].strip()
        tokens.append(match.group())
    return tokens, text[MAX_CHARS:].strip()


def _permissions(letters: str, has_query: bool) -> frozenset[str] | None:
    if letters in _V1_PERMISSIONS:
        # Granular filters exist only in the v2 grammar; a v1 scope with one is in neither.
        return None if has_query else frozenset(_V1_PERMISSIONS[letters])
    # Out-of-order, repeated or unknown letters are refused, not read as the nearest valid set.
    in_order = "".join(p for p in PERMISSION_ORDER if p in letters)
    return frozenset(letters) if in_order == letters else None


def _filters(query: str) -> Filters | None:
    try:
        # strict parsing and keep_blank_values=True so that nothing is dropped silently: a dropped
        # pair (``category=``) would leave the scope wider than written.
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True, errors="strict")
    except ValueError:  # also UnicodeDecodeError from a bad %-escape
        return None
    if not pairs or not all(_valid_filter(name, value) for name, value in pairs):
        return None
    return tuple(pairs)


def _valid_filter(name: str, value: str) -> bool:
    return bool(value) and _FILTER_NAME.fullmatch(name) is not None and name not in _RESULT_PARAMETERS


def _intersect(requested: ClinicalScope, limit: ClinicalScope) -> ClinicalScope | None:
    permissions = requested.permissions & limit.permissions
    resource_type = _narrower_type(requested.resource_type, limit.resource_type)
    if requested.context != limit.context or not permissions or resource_type is None:
        return None
    # AND of both filter lists: the limit's filters always survive, so the result is never wider.
    filters = requested.filters + tuple(f for f in limit.filters if f not in requested.filters)
    return ClinicalScope(requested.context, resource_type, permissions, filters)


def _narrower_type(a: str, b: str) -> str | None:
    if a == b or b == "*":
        return a
    return b if a == "*" else None


def _scope(context: str, resource_type: str, permissions: frozenset[str], filters: Filters) -> ClinicalScope:
    scope = ClinicalScope(context, resource_type, permissions, filters)
    return replace(scope, text=scope.canonical())
