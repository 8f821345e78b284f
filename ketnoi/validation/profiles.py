"""Profiles (constraining StructureDefinitions) compiled into checking trees, once per profile.

A profile says how a resource or data type must look beyond the base definition: tighter
cardinality, fixed and pattern values, fewer types, type and target profiles, bindings, extra
invariants, and slicing. ``compile_profile(url, source)`` turns it into a tree of :class:`Rule`
nodes, one per constrained element, keyed the way the data is walked: ``children`` by element
name (``identifier``, ``value[x]``, or a choice renamed to one type, ``valueQuantity``), ``slices``
by slice name. The checker (``ketnoi.validation.conformance``) then walks data and tree together.

Why the differentials and not snapshots: the packages ketnoi meets in practice (the draft VN Core
among them) ship differentials only, and a differential holds exactly what the profile adds to its
base. The chain of ``baseDefinition`` is followed up to the base type: each ancestor's differential
is applied in order (base first), elements merged by id, so a profile that constrains a slice its
parent defined (``Patient.identifier:cccd.value`` under a parent's ``cccd`` slice) finds it. The
base definition itself is not compiled here: the structural gate and the base invariants check it.
An ancestor that cannot be found (an IG that is not installed) is reported once per validation
(:attr:`CompiledProfile.missing`), and what it would have added is not checked.

Where a StructureDefinition comes from is a :class:`Source`: the R4 specification and the shipped
packages by default (:class:`PackagedSource`), the database's installed ones added by the app layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from ketnoi.fhir import packages
from ketnoi.fhir.definitions import canonical_structure_definitions, element_type_code
from ketnoi.runtime import TimedCache

CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
_UNSET: Any = object()


class Source(Protocol):
    """Where StructureDefinitions are found by canonical URL (``url`` or ``url|version``)."""

    def structure_definition(self, url: str) -> dict[str, Any] | None: ...


class PackagedSource:
    """The R4 specification's StructureDefinitions and those of the packages ketnoi ships."""

    def structure_definition(self, url: str) -> dict[str, Any] | None:
        plain = url.partition("|")[0]
        return canonical_structure_definitions().get(plain) or packages.find("StructureDefinition", url)


class LayeredSource:
    """Extra StructureDefinitions (a test suite's, a request's) in front of another source."""

    def __init__(self, extra: list[dict[str, Any]], fallback: Source) -> None:
        self.extra = {str(sd["url"]): sd for sd in extra if isinstance(sd.get("url"), str)}
        self.fallback = fallback

    def structure_definition(self, url: str) -> dict[str, Any] | None:
        return self.extra.get(url.partition("|")[0]) or self.fallback.structure_definition(url)


@dataclass(frozen=True, slots=True)
class Constraint:
    key: str
    severity: str
    human: str
    expression: str


@dataclass(frozen=True, slots=True)
class Discriminator:
    kind: str  # value | pattern | type | profile | exists
    path: str


@dataclass(frozen=True, slots=True)
class Slicing:
    discriminators: tuple[Discriminator, ...]
    rules: str  # open | closed | openAtEnd
    ordered: bool


@dataclass(slots=True, eq=False)
class Rule:
    """What a profile says of one element (or one slice of it)."""

    id: str  # the element id, for messages: Patient.identifier:cccd
    min: int | None = None
    max: int | None = None  # None: not restricted here; "*" is never stored
    fixed: Any = _UNSET
    pattern: Any = _UNSET
    types: tuple[str, ...] = ()  # allowed type codes, when the profile narrows them
    # (type, profiles): a value of that type must conform to one of the profiles
    type_profiles: tuple[tuple[str, tuple[str, ...]], ...] = ()
    target_profiles: tuple[str, ...] = ()  # a Reference must point to one of these
    binding: tuple[str, str] | None = None  # (strength, value set canonical)
    max_length: int | None = None  # of a string value
    min_value: Any = None  # numbers (a Quantity's value), dates and times as their text
    max_value: Any = None
    constraints: tuple[Constraint, ...] = ()
    slicing: Slicing | None = None
    slices: dict[str, Rule] = field(default_factory=dict)
    children: dict[str, Rule] = field(default_factory=dict)

    def profiles_for(self, type_code: str | None = None) -> tuple[str, ...]:
        """The type profiles of values of ``type_code`` (of any type when None)."""
        return tuple(p for code, urls in self.type_profiles if type_code in (None, code) or not code for p in urls)

    @property
    def has_fixed(self) -> bool:
        return self.fixed is not _UNSET

    @property
    def has_pattern(self) -> bool:
        return self.pattern is not _UNSET


@dataclass(frozen=True, slots=True)
class CompiledProfile:
    url: str
    name: str  # for messages: the profile's title, name or url
    type: str  # the resource or data type it constrains
    root: Rule
    missing: tuple[str, ...]  # ancestors that could not be found (their constraints are not checked)
    is_extension: bool


class ProfileError(ValueError):
    """The StructureDefinition cannot be used as a profile (what and why, one line)."""


def _value_with_prefix(element: dict[str, Any], prefix: str) -> tuple[str | None, Any]:
    for key, value in element.items():
        if key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper():
            return key[len(prefix) :], value
    return None, _UNSET


def _segments(element_id: str) -> list[tuple[str, str | None]]:
    """``Patient.identifier:cccd.system`` → [(Patient, None), (identifier, cccd), (system, None)]."""
    out: list[tuple[str, str | None]] = []
    for part in element_id.split("."):  # a slice name has no dot
        name, _, slice_name = part.partition(":")
        out.append((name, slice_name or None))
    return out


def _with_ids(elements: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(id, element) pairs. An element without an id (older definitions) gets the one the
    specification derives: the elements after a slice, below its path, belong to that slice."""
    out: list[tuple[str, dict[str, Any]]] = []
    open_slices: dict[str, str] = {}  # path → name of the slice its following children belong to
    for element in elements:
        path = str(element.get("path", ""))
        for sliced in [p for p in open_slices if not path.startswith(p + ".")]:
            del open_slices[sliced]
        found = element.get("id")
        if isinstance(found, str) and found:
            out.append((found, element))
            continue
        parts, prefix = [], ""
        for segment in path.split("."):
            prefix = f"{prefix}.{segment}" if prefix else segment
            parts.append(f"{segment}:{open_slices[prefix]}" if prefix in open_slices and prefix != path else segment)
        if element.get("sliceName"):
            parts[-1] += ":" + str(element["sliceName"])
            open_slices[path] = str(element["sliceName"])
        out.append((".".join(parts), element))
    return out


def _locate(root: Rule, element_id: str) -> Rule:
    """The rule for ``element_id`` under ``root``, created on the way (the root is segment 0)."""
    node = root
    built = _segments(element_id)[0][0]
    for name, slice_name in _segments(element_id)[1:]:
        built += "." + name
        node = node.children.setdefault(name, Rule(built))
        if slice_name is not None:
            for part in slice_name.split("/"):  # a reslice a/b is a slice of slice a
                built += ":" + part
                node = node.slices.setdefault(part, Rule(built))
    return node


def _apply(rule: Rule, element: dict[str, Any]) -> None:
    """Merge what one differential element says into ``rule`` (a later profile refines an earlier)."""
    if "min" in element:
        rule.min = int(element["min"])
    if "max" in element:
        rule.max = None if element["max"] == "*" else int(element["max"])
    suffix, value = _value_with_prefix(element, "fixed")
    if suffix is not None:
        rule.fixed = value
    suffix, value = _value_with_prefix(element, "pattern")
    if suffix is not None:
        rule.pattern = value
    types = element.get("type")
    if isinstance(types, list) and types:
        rule.types = tuple(element_type_code(t) for t in types if isinstance(t, dict) and "code" in t) or rule.types
        rule.type_profiles = tuple(
            (element_type_code(t) if "code" in t else "", tuple(t["profile"]))
            for t in types
            if isinstance(t, dict) and t.get("profile")
        )
        rule.target_profiles = tuple(p for t in types for p in t.get("targetProfile") or ())
    if isinstance(element.get("maxLength"), int):
        rule.max_length = element["maxLength"]
    for prefix in ("minValue", "maxValue"):
        suffix, value = _value_with_prefix(element, prefix)
        if suffix is not None:
            limit = value.get("value") if isinstance(value, dict) else value  # a Quantity: its number
            setattr(rule, "min_value" if prefix == "minValue" else "max_value", limit)
    binding = element.get("binding")
    if isinstance(binding, dict) and isinstance(binding.get("valueSet"), str):
        rule.binding = (str(binding.get("strength", "example")), binding["valueSet"])
    found = [
        Constraint(str(c["key"]), str(c.get("severity", "error")), str(c.get("human", "")), str(c["expression"]))
        for c in element.get("constraint") or ()
        if isinstance(c, dict) and c.get("expression") and c.get("key")
    ]
    known = {c.key for c in rule.constraints}
    rule.constraints += tuple(c for c in found if c.key not in known)
    slicing = element.get("slicing")
    if isinstance(slicing, dict):
        rule.slicing = Slicing(
            tuple(
                Discriminator(str(d.get("type")), str(d.get("path", "$this")))
                for d in slicing.get("discriminator") or ()
                if isinstance(d, dict)
            ),
            str(slicing.get("rules", "open")),
            bool(slicing.get("ordered", False)),
        )


def _is_base(sd: dict[str, Any]) -> bool:
    return sd.get("derivation") != "constraint"


def _chain(sd: dict[str, Any], source: Source) -> tuple[list[dict[str, Any]], list[str]]:
    """The constraining ancestors of ``sd`` and ``sd`` itself, base first, and the missing ones."""
    chain = [sd]
    missing: list[str] = []
    seen = {sd.get("url")}
    base = sd.get("baseDefinition")
    while isinstance(base, str) and base not in seen:
        seen.add(base)
        parent = source.structure_definition(base)
        if parent is None:
            missing.append(base)
            break
        if _is_base(parent):
            break
        chain.append(parent)
        base = parent.get("baseDefinition")
    chain.reverse()
    return chain, missing


def _check_usable(sd: dict[str, Any]) -> str:
    rtype = sd.get("type")
    if sd.get("resourceType") != "StructureDefinition" or not isinstance(rtype, str):
        raise ProfileError(f"{sd.get('url')} is not a StructureDefinition with a type")
    if sd.get("kind") == "logical":
        raise ProfileError(f"{sd.get('url')} is a logical model, not a profile of a FHIR type")
    if not isinstance(sd.get("differential"), dict) and not isinstance(sd.get("snapshot"), dict):
        raise ProfileError(f"{sd.get('url')} has neither a differential nor a snapshot")
    return rtype


def _elements(sd: dict[str, Any]) -> list[dict[str, Any]]:
    """The differential; a definition with only a snapshot is used through its snapshot."""
    part = sd.get("differential") or sd.get("snapshot") or {}
    return [e for e in part.get("element") or () if isinstance(e, dict)]


def _says_something(rule: Rule, name: str) -> bool:
    """Whether the rule checks anything itself (a differential often lists elements it leaves as
    they are, or only to document them)."""
    restricts_type = bool(rule.types) and (name.endswith("[x]") or name == "resource")
    return bool(
        rule.min
        or rule.max is not None
        or rule.has_fixed
        or rule.has_pattern
        or restricts_type
        or rule.type_profiles
        or rule.target_profiles
        or (rule.binding is not None and rule.binding[0] in ("required", "extensible", "preferred"))
        or rule.constraints
        or rule.max_length is not None
        or rule.min_value is not None
        or rule.max_value is not None
        or rule.slicing is not None
        or rule.slices
    )


def _prune(rule: Rule) -> bool:
    """Drop the children that check nothing, so the walk never visits them; True if ``rule`` is empty."""
    for name in list(rule.children):
        if _prune(rule.children[name]) and not _says_something(rule.children[name], name):
            del rule.children[name]
    for slice_rule in rule.slices.values():
        _prune(slice_rule)
    return not rule.children


def compile_definition(sd: dict[str, Any], source: Source) -> CompiledProfile:
    """Compile a StructureDefinition (and its constraining ancestors) into a checking tree."""
    rtype = _check_usable(sd)
    url = str(sd.get("url", ""))
    root = Rule(rtype)
    missing: list[str] = []
    if not _is_base(sd):  # a base definition claimed as a profile: the structural gate checks it
        chain, missing = _chain(sd, source)
        for definition in chain:
            for element_id, element in _with_ids(_elements(definition)):
                if element_id.partition(".")[0] == rtype:
                    _apply(_locate(root, element_id), element)
    _prune(root)
    root.min = root.max = None  # cardinality of the root is its container's business
    name = str(sd.get("title") or sd.get("name") or url)
    return CompiledProfile(url, name, rtype, root, tuple(missing), rtype == "Extension")


class ProfileCache:
    """Compiled profiles by canonical URL, over a :class:`Source`; :meth:`clear` when they change.
    With ``ttl`` (seconds) an entry is compiled again once older: a definition another process
    changed is seen within that time."""

    def __init__(self, source: Source, ttl: float | None = None) -> None:
        self.source = source
        self._compiled: TimedCache[CompiledProfile | None] = TimedCache(ttl)

    def get(self, url: str) -> CompiledProfile | None:
        """The compiled profile at ``url`` (``url|version`` accepted); None when unknown."""
        known, compiled = self._compiled.get(url)
        if known:
            return compiled
        sd = self.source.structure_definition(url)
        compiled = compile_definition(sd, self.source) if sd is not None else None
        self._compiled.put(url, compiled)
        return compiled

    def definition(self, url: str) -> dict[str, Any] | None:
        return self.source.structure_definition(url)

    def clear(self) -> None:
        self._compiled.clear()


_DEFAULT: ProfileCache | None = None


def default_cache() -> ProfileCache:
    """The process-wide cache over the R4 specification and the shipped packages."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ProfileCache(PackagedSource())
    return _DEFAULT


@cache
def core_type_of(url: str) -> str | None:
    """``Patient`` for ``http://hl7.org/fhir/StructureDefinition/Patient``; None for other URLs."""
    if url.startswith(CORE_PREFIX) and "/" not in url[len(CORE_PREFIX) :]:
        name = url[len(CORE_PREFIX) :].partition("|")[0]
        sd = canonical_structure_definitions().get(CORE_PREFIX + name)
        if sd is not None and _is_base(sd):
            return name
    return None
