"""Who may see what, by organization (issue 10; ADR 0017): the read side of the one policy point.

``policy.Access`` says which *level* a caller acts at (:func:`policy.Access.level`); this module
turns that into search criteria the Repository adds to every query it runs for the caller (search
pages and totals, chain targets and ``_has`` sources, reads, includes, conditional operations,
``$everything``), so the database filters and nothing is fetched to be discarded:

- ``open`` (no organization, a national administrator, an operator, the server): no criterion.
- ``facility`` (a clinician, a facility administrator, a backend system registered for one
  organization): directory and definitional types (``policy.SHARED_TYPES``) are open to all; any
  other resource is in reach when the facility owns it or it belongs to the record of a patient
  open to the facility (care relation, permitting Consent, no denying one, or break-the-glass:
  :class:`~ketnoi.search.query.Reach`, compiled by ``ketnoi.search.reach``).
- ``region`` (a provincial manager; a national manager when the organization is the Ministry):
  the registries (``policy.REGISTRY_TYPES``) of the province (nationwide for the Ministry), and
  other data only as counts (``_summary=count``) of what the province's organizations own.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from ketnoi.fhir import resource as res
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.organizations import NATIONAL, hierarchy
from ketnoi.interactions.ownership import owner
from ketnoi.interactions.policy import REGISTRY_TYPES, SHARED_TYPES, compartment_params
from ketnoi.search.extract_consent import (
    ANYONE,
    AUTHOR_PREFIX,
    DENY,
    DEPENDENT_PREFIX,
    PERMIT,
    REF_PREFIX,
    TYPE_PREFIX,
    WHOLE,
    holds,
)
from ketnoi.search.query import Compartment, Criterion, Filter, OwnedBy, Reach, Withheld
from ketnoi.search.reach import DENIABLE_PARAMS, ORG_PREFIX, read_with_facts
from ketnoi.sql import SqlQuery
from ketnoi.store.base import StoredVersion

if TYPE_CHECKING:
    from ketnoi.interactions.repository import Repository

DAY_S: Final = 86_400.0


def criteria(
    repo: Repository, rtype: str, *, count_only: bool = False, filters: Sequence[Criterion] = ()
) -> list[Criterion]:
    """What ``repo``'s caller may see of ``rtype``, as criteria ANDed to a query on that type
    whose own criteria are ``filters``."""
    level = repo.access.level
    if level == "open" or rtype in SHARED_TYPES:
        return []
    org = repo.context.organization
    assert org is not None  # levels other than open have one
    if level == "region":
        return _region(repo, org, rtype, count_only)
    if rtype == "Patient":
        ids = [f.values for f in filters if isinstance(f, Filter) and f.param == "_id" and f.modifier is None]
        if ids and len(ids[0]) == 1 and res.is_valid_id(ids[0][0]) and openness(repo, ids[0][0]).open:
            return []  # Patient?_id=p (a conditional write's or an app's lookup) of an open patient
        return [Reach(org, (), True, cutoff(repo), time.time(), glass_patients(repo))]
    params = compartment_params(rtype) or ()
    pinned = pinned_patient(rtype, filters)
    found = openness(repo, pinned) if pinned is not None else None
    if found is None or not found.open:
        # Across patients, or a named patient who is not open (a match may still be the
        # facility's own, or another patient's too): the whole rule, per row.
        return [Reach(org, params, False, cutoff(repo), time.time(), glass_patients(repo) if params else ())]
    # Every match is in that patient's record: at most what a Consent withholds is left out.
    return [Withheld(org, tuple(sorted(found.withheld)))] if found.withheld else []


def in_reach(repo: Repository, current: StoredVersion) -> bool:
    """Whether the resource whose current version is ``current`` is in the caller's reach: the
    rule of :func:`criteria` for one resource, evaluated here (its owner is on the row, its
    patients in its content, each patient's openness from :func:`openness`)."""
    level, rtype = repo.access.level, current.resource_type
    if level == "open" or rtype in SHARED_TYPES:
        return True
    org = repo.context.organization
    if level == "region":
        if rtype not in REGISTRY_TYPES or org is None:
            return False
        if _national(repo, org):
            return True
        holder = current.org if current.org is not None else owner(repo, current)
        return holder is not None and hierarchy(repo.services).is_within(holder, org, repo)
    if current.org is not None and current.org == org:
        return True
    if not current.deleted and current.content is not None and _patients_open(repo, current):
        return True
    # Last, the rare path: the current version records no organization (an operator's or a national
    # administrator's correction) but an earlier one does, which still owns it.
    return current.org is None and owner(repo, current) == org


PATIENTS_OF_CONTENT = "patients-of-content"  # Repository.extras: (content bytes, their Patient ids)


def patients_found(repo: Repository, content: bytes) -> list[str] | None:
    """The Patient ids :func:`in_reach` found in ``content`` (the very bytes object) during this
    request, if it looked; the audit recorder reuses them instead of extracting again."""
    found = repo.extras.get(PATIENTS_OF_CONTENT)
    if isinstance(found, tuple) and found[0] is content:
        return list(found[1])
    return None


def _patients_open(repo: Repository, current: StoredVersion) -> bool:
    """Whether one of the resource's patients is open, with nothing of this resource withheld."""
    rtype = current.resource_type
    if rtype == "Patient":
        return openness(repo, current.id).open
    params = compartment_params(rtype)
    if not params:
        return False
    resource = res.loads(current.content or b"{}")
    rows = repo.services.extractor.extract_some(resource, _compartment(rtype))
    patients = sorted({r.target_id or "" for r in rows.reference if r.param in params and r.target_type == "Patient"})
    if current.content is not None:  # the audit record of this read names them: found once
        repo.extras[PATIENTS_OF_CONTENT] = (current.content, patients)
    keys: set[str] | None = None  # only a Consent that withholds parts makes the codes matter
    for patient in filter(None, patients):
        found = openness(repo, patient)
        if found.open and found.withheld and keys is None:
            keys = _deniable_keys(repo, resource, current)
        if found.open and not found.withheld & (keys or set()):
            return True
    return False


@cache
def _compartment(rtype: str) -> frozenset[str]:
    return frozenset(compartment_params(rtype) or ())


def _deniable_keys(repo: Repository, resource: dict[str, Any], current: StoredVersion) -> set[str]:
    """What a Consent's rule may withhold a resource by (``search.reach._row_keys``): its codes and
    security labels, its type, itself, the resources it refers to, its owner."""
    rtype = current.resource_type
    rows = repo.services.extractor.extract(resource)
    keys = {f"{t.system}|{t.code}" for t in rows.token if t.param in DENIABLE_PARAMS and t.system}
    keys |= {f"{DEPENDENT_PREFIX}{r.target_type}/{r.target_id}" for r in rows.reference if r.target_type}
    keys |= {TYPE_PREFIX + rtype, f"{REF_PREFIX}{rtype}/{current.id}"}
    return keys | ({AUTHOR_PREFIX + current.org} if current.org else set())


def pinned_patient(rtype: str, filters: Sequence[Criterion]) -> str | None:
    """The one Patient every match of ``filters`` belongs to, when a criterion says so: a
    compartment (``Patient/p/Observation``, ``$everything``) or a compartment parameter with one
    value ``Patient/p`` (or a bare id for ``patient``, which refers to Patients only)."""
    params = compartment_params(rtype) or ()
    for f in filters:
        if isinstance(f, Compartment) and f.target_type == "Patient" and set(f.params) <= set(params):
            # a golden record's compartment spans several patients: each row's own patient decides
            return None if f.also or f.any_target else f.target_id
        # ``patient`` is in the compartment wherever the type has one, even when the compartment
        # names the broader parameter (Observation: ``subject``, of which ``patient`` is the Patients)
        named = f.param in params or (f.param == "patient" and bool(params)) if isinstance(f, Filter) else False
        if not isinstance(f, Filter) or not named or f.type != "reference" or len(f.values) != 1:
            continue
        value = f.values[0]
        if f.modifier is None and value.startswith("Patient/"):
            value = value.removeprefix("Patient/")
        elif not ((f.modifier is None and f.param == "patient") or f.modifier == "Patient"):
            continue
        if res.is_valid_id(value):
            return value
    return None


@dataclass(frozen=True, slots=True)
class Openness:
    """What one patient's record is to the caller's facility: open or not, and, when open, the
    parts a Consent still withholds (rule keys: ``system|code`` of a code or security label,
    ``type:X``)."""

    open: bool
    withheld: frozenset[str] = frozenset()


def openness(repo: Repository, patient: str) -> Openness:
    """The same rule as ``search.reach`` compiles to SQL, for one patient, decided here from one
    round trip of flat queries (``Repository.patient_facts``: the patient's Encounters and
    EpisodeOfCares, their Consent rules, the caller's break-the-glass opening): the rule as one
    correlated SQL condition costs PostgreSQL ~20 ms to plan, for a read that runs in 1 ms.
    Asked once per patient per request."""
    key = _openness_key(repo, patient)
    found = repo.extras.get(key)
    if isinstance(found, Openness):
        return found
    org = repo.context.organization or ""
    found = _from_facts(org, repo.patient_facts(org, patient, cutoff(repo)))
    repo.extras[key] = found
    return found


def _openness_key(repo: Repository, patient: str) -> str:
    # Per request, until it writes: a Bundle entry that admits the patient (an Encounter) or
    # records a Consent changes the answer for the entries after it.
    return f"open:{patient}:{len(repo.written)}"


def read_with_facts_query(repo: Repository, rtype: str, id: str) -> SqlQuery | None:
    """On PostgreSQL, the read of ``rtype/id`` that brings the openness of its patients in the same
    statement (``search.reach.read_with_facts``; its extra value given to :func:`remember_facts`):
    a second statement cost a round trip and psycopg's per-statement work,
    as much as the read itself at a million resources. None where the read needs no patient (open
    and regional callers, shared types, types outside the Patient compartment). A read the caller's
    scopes refuse is refused all the same (``Repository._visible``): the facts are only not used."""
    if repo.access.level != "facility" or rtype in SHARED_TYPES:
        return None
    params = None if rtype == "Patient" else compartment_params(rtype)
    if (params is None and rtype != "Patient") or params == ():
        return None
    org = (repo.context.organization or "").removeprefix(ORG_PREFIX)
    frag = read_with_facts(rtype, id, params, org, cutoff(repo), repo.glass_kind(), res.now())
    return SqlQuery(frag.text, frag.params)


def remember_facts(repo: Repository, value: object) -> None:
    """Keep the openness of each patient in ``value`` (a :func:`read_with_facts_query` value's
    rows ``[patient, kind, a, b, c]``) for :func:`openness` in this request, as if it had asked.
    The facts were read in this transaction, in the statement that read the row: as fresh as a
    separate query. A patient of the row's content that the index did not name is still asked."""
    if not isinstance(value, list):
        return  # NULL: the facility owns the row, or it names no patient
    org = repo.context.organization or ""
    by_patient: dict[str, list[tuple[str, str, str, str]]] = {}
    for patient, kind, a, b, c in value:
        facts = by_patient.setdefault(str(patient), [])
        if kind is not None:  # NULL: the patient has no fact (not open, unless the row is owned)
            facts.append(fact_row(kind, a, b, c))
    for patient, facts in by_patient.items():
        repo.extras[_openness_key(repo, patient)] = _from_facts(org, facts)


def fact_row(kind: object, a: object, b: object, c: object) -> tuple[str, str, str, str]:
    """One row of ``search.reach.patient_facts`` as texts (NULL: '')."""
    return (str(kind), "" if a is None else str(a), str(b or ""), str(c or ""))


def _from_facts(org: str, facts: Sequence[tuple[str, str, str, str]]) -> Openness:
    """Openness from ``Repository.patient_facts``'s rows (``search.reach.patient_facts``)."""
    if any(kind == "glass" for kind, *_ in facts):
        return Openness(True)
    care = any(kind == "care" for kind, *_ in facts)  # at most one row: the relation exists
    now = time.time()
    rules = [(kind, actor, key) for kind, actor, key, period in facts if kind in (PERMIT, DENY) and holds(period, now)]
    return decide(org, care, rules)


def decide(org: str, care: bool, rules: Collection[tuple[str, str, str]]) -> Openness:
    """Openness from a care relation and Consent rules ``(param, actor, key)``: a rule naming
    ``org`` beats one naming anyone; deny beats permit at the same level (ADR 0017)."""
    facts = set(rules)

    def named(effect: str, key: str) -> bool:
        return (effect, org, key) in facts

    def anyone(effect: str, key: str) -> bool:
        return (effect, ANYONE, key) in facts

    permitted = care or named(PERMIT, WHOLE) or anyone(PERMIT, WHOLE)
    denied = named(DENY, WHOLE) or (anyone(DENY, WHOLE) and not named(PERMIT, WHOLE))
    withheld = {
        key
        for effect, actor, key in facts
        if effect == DENY and key != WHOLE and (actor == org or (actor == ANYONE and not named(PERMIT, key)))
    }
    return Openness(permitted and not denied, frozenset(withheld))


def _region(repo: Repository, org: str, rtype: str, count_only: bool) -> list[Criterion]:
    if rtype not in REGISTRY_TYPES and not count_only:
        raise aggregates_only(rtype)
    return [] if _national(repo, org) else [OwnedBy(tuple(sorted(hierarchy(repo.services).within(org, repo))))]


def _national(repo: Repository, org: str) -> bool:
    """Whether ``org`` is the Ministry (its managers see the whole country as a province's see theirs)."""
    return NATIONAL in hierarchy(repo.services).node(org, repo).levels


def cutoff(repo: Repository) -> float:
    """Care relations count when their period reaches this time (now less the care window)."""
    return time.time() - repo.services.settings.care_window_days * DAY_S


def glass_patients(repo: Repository) -> tuple[str, ...]:
    """Patients the caller opened by break-the-glass, whose time has not run out (read once per
    Repository: a request sees the grants that stood when it began)."""
    found = repo.extras.get("glass")
    if found is None:
        user = repo.context.user
        found = repo.glass_patients(user) if user else ()
        repo.extras["glass"] = found
    assert isinstance(found, tuple)
    return found


def aggregates_only(rtype: str) -> FhirError:
    """403 for a provincial manager's search of clinical data that is not a count."""
    return FhirError.of(
        403,
        "forbidden",
        f"A provincial manager sees {rtype} only as counts: add _summary=count",
        f"Cán bộ quản lý tuyến tỉnh chỉ xem {rtype} dưới dạng số lượng: thêm _summary=count",
    )
