"""The backend-neutral search query: what ``parse`` produces and ``compile`` consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


@dataclass(frozen=True, slots=True)
class Filter:
    """One search parameter occurrence: its values are ORed; several Filters are ANDed."""

    param: str
    type: str  # string | token | date | number | quantity | reference | uri | special
    modifier: str | None
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Chain:
    """``param.<inner>``: resources whose reference ``param`` points at a target matching ``inner``.

    ``branches`` pairs target types with the criterion evaluated on them (a chained parameter may be
    typed differently on different targets, so each group of targets has its own criterion)."""

    param: str
    branches: tuple[tuple[tuple[str, ...], Criterion], ...]


@dataclass(frozen=True, slots=True)
class Has:
    """``_has:Type:param:<inner>``: resources referenced (via ``Type.param``) by a ``Type`` matching ``inner``."""

    source_type: str
    param: str
    inner: Criterion


@dataclass(frozen=True, slots=True)
class Composite:
    """A composite parameter: every value is a tuple of component values matched within one element."""

    param: str
    components: tuple[tuple[str, str], ...]  # (component row param, component type)
    values: tuple[tuple[str, ...], ...]  # ORed; each value has one entry per component


@dataclass(frozen=True, slots=True)
class Compartment:
    """Membership of a compartment: any of ``params`` references ``target_type/target_id``, or
    ``target_type/x`` for an ``x`` in ``also`` (a golden record's sources, ADR 0023)."""

    params: tuple[str, ...]
    target_type: str
    target_id: str
    also: tuple[str, ...] = ()
    any_target: bool = False  # in the compartment of any ``target_type`` (a Patient-level export)


@dataclass(frozen=True, slots=True)
class TextSearch:
    """``_content`` / ``_text``: every word (folded) appears in the resource JSON / its narrative."""

    param: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every one of ``criteria`` holds. ``parse`` never makes one: the access policy wraps the inner
    criterion of a chain or ``_has`` with the caller's own limits on that type
    (``ketnoi.interactions.repository``), so those subqueries consider only what the caller may see."""

    criteria: tuple[Criterion, ...]


@dataclass(frozen=True, slots=True)
class Reach:
    """What a caller acting for a facility may see of one resource type (access policy, never
    parsed; ``ketnoi.interactions.policy``, compiled by ``ketnoi.search.reach``, ADR 0017).

    A resource is in reach when ``org`` owns it, or when it is in the record of a patient the
    facility may see: one with a care relation (an Encounter or EpisodeOfCare of that patient at
    ``org`` whose period reaches ``cutoff`` or later) or a Consent that permits ``org``, and no
    Consent that denies ``org`` the whole record or this resource's code, security label or type;
    or a patient opened by break-the-glass (``glass``), whatever the Consents say."""

    org: str  # "Organization/ID": the caller's facility
    subject: tuple[str, ...]  # reference parameters naming the resource's patient (empty: own data only)
    patient_self: bool  # the type is Patient: each resource is its own patient
    cutoff: float  # epoch seconds: a care relation's period must end on or after this
    now: float  # epoch seconds: the Consent rules whose period holds now are in force
    glass: tuple[str, ...] = ()  # Patient ids under break-the-glass for this caller


@dataclass(frozen=True, slots=True)
class OwnedBy:
    """Resources owned by one of ``orgs`` (access policy: a province's data for its managers)."""

    orgs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Withheld:
    """Not the parts of a patient's record their Consent withholds from ``org`` (rule keys of
    ``search.extract_consent``: ``system|code`` of a code or security label, ``type:X``), unless
    ``org`` owns them: the access policy's criterion for a search pinned to one open patient."""

    org: str
    keys: tuple[str, ...]


Criterion = Filter | Chain | Has | Composite | Compartment | TextSearch | AllOf | Reach | OwnedBy | Withheld


@dataclass(frozen=True, slots=True)
class Include:
    """``_include`` / ``_revinclude`` value ``source_type:param[:target_type]`` (``param`` may be ``*``)."""

    source_type: str
    params: tuple[str, ...]  # the reference parameters of source_type ("*" expanded)
    target_type: str | None
    iterate: bool
    reverse: bool


@dataclass(frozen=True, slots=True)
class SortKey:
    param: str
    type: str  # the parameter's search type ("id" / "lastUpdated" for the resource columns)
    descending: bool


@dataclass(slots=True)
class SearchQuery:
    resource_types: tuple[str, ...]  # empty = every type (system search)
    filters: list[Criterion] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    count: int = 20
    offset: int = 0
    cursor: str | None = None  # opaque keyset position (see ketnoi.search.paging)
    total: str | None = None  # none | estimate | accurate
    summary: str | None = None  # true | text | data | count | false
    elements: tuple[str, ...] = ()
    ignored: list[str] = field(default_factory=list)  # parameters not understood (lenient mode)
    count_capped: bool = False


def split_prefix(value: str, type_: str) -> tuple[str, str]:
    """``ge2020`` → (``ge``, ``2020``) for ordered types; other types have no prefix."""
    if type_ in ("date", "number", "quantity") and len(value) > 2 and value[:2] in PREFIXES:
        return value[:2], value[2:]
    return "eq", value


def split_or(value: str) -> tuple[str, ...]:
    """Comma-separated OR values, honouring the ``\\,`` escape."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in ",$|\\":
            current.append("\\" + value[i + 1] if value[i + 1] == "|" else value[i + 1])
            i += 2
            continue
        if ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return tuple(parts)


def split_pipe(value: str) -> tuple[str, str] | None:
    """``system|code`` → (system, code) honouring ``\\|``; None when there is no bare pipe."""
    i = 0
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == "|":
            return _unescape(value[:i]), _unescape(value[i + 1 :])
        i += 1
    return None


def _unescape(value: str) -> str:
    return value.replace("\\|", "|")


def unescape(value: str) -> str:
    return _unescape(value)
