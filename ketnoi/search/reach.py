"""The access policy's criteria (:class:`~ketnoi.search.query.Reach`, :class:`OwnedBy`) as SQL
conditions on a ``resource`` row (ADR 0017).

They are ordinary parts of the search's WHERE clause, so paging, ``Bundle.total``, chains and
``_has`` only ever consider what the caller may see, and nothing is fetched to be discarded. Every
test is a probe correlated on the row (its owner column, or its own index rows through the owner
index) or a lookup of one patient's Encounters and Consents by the reference index's
``(resource_type, param, target_id, target_type)`` prefix: bounded work per candidate row,
whatever the size of the database.

A row of resource type T is in reach of facility F when::

    r.org = F                                   -- F wrote it (its owner)
    OR some patient P of the row (P = r.id for a Patient; else a reference of one of T's
       compartment parameters to Patient/P) is open to F:
         P under break-the-glass by this caller
         OR ((care(P, F) OR consent(P, permit, F, whole))
             AND NOT denied(P, F, whole) AND NOT denied(P, F, a code/label/type of the row))

``care(P, F)``: a current Encounter or EpisodeOfCare of P, owned by F (or owned by nobody, i.e.
loaded by an operator, with F as its serviceProvider / managingOrganization), not cancelled nor
entered-in-error, whose period reaches the cutoff. ``denied``: a deny rule naming F, or a deny rule
naming anyone that no permit rule naming F with the same key overrides (the nested exception
"deny everyone but F"). Only rules whose period holds now count. Rules come from
``ketnoi.search.extract_consent``; a row's keys are its type, codes and security labels, itself
(``ref:``), what it refers to (``dep:``) and its owner (``org:``).
"""

from __future__ import annotations

from functools import cache
from typing import Final

from ketnoi.search.extract_consent import (
    ANYONE,
    AUTHOR_PREFIX,
    DENY,
    DEPENDENT_PREFIX,
    PERIOD_DIGITS,
    PERMIT,
    REF_PREFIX,
    TYPE_PREFIX,
    WHOLE,
    now_text,
)
from ketnoi.search.frag import Frag, cat, join, val
from ketnoi.search.query import OwnedBy, Reach, Withheld

CARE_TYPES: Final = ("Encounter", "EpisodeOfCare")
CARE_PROVIDER_PARAMS: Final = ("service-provider", "organization")  # Encounter, EpisodeOfCare
NOT_CARE: Final = ("cancelled", "entered-in-error")
DENIABLE_PARAMS: Final = ("code", "_security")  # what a Consent's code and securityLabel rules match
ORG_PREFIX = "Organization/"


def owned_by(crit: OwnedBy, alias: str) -> Frag:
    if not crit.orgs:
        return Frag("1 = 0")
    return cat(f"{alias}.org IN (", val(*crit.orgs), ")")


def reach_condition(crit: Reach, alias: str, owner_index: bool = False) -> Frag:
    """``crit`` as a condition on the resource row ``alias``."""
    own = cat(f"{alias}.org = ", val(crit.org))
    if crit.patient_self:
        return cat("(", own, " OR ", _open(crit, f"{alias}.id", alias, False), ")")
    if not crit.subject:
        return own
    refs = "idx_reference pm INDEXED BY idx_reference_owner" if owner_index else "idx_reference pm"
    return cat(
        "(",
        own,
        f" OR EXISTS (SELECT 1 FROM {refs} WHERE pm.resource_type = {alias}.resource_type AND pm.resource_id = "
        f"{alias}.id AND pm.param IN (",
        val(*crit.subject),
        ") AND pm.target_type = 'Patient' AND ",
        _open(crit, "pm.target_id", alias, True, owner_index),
        "))",
    )


def withheld(crit: Withheld, alias: str, owner_index: bool = False) -> Frag:
    """``crit`` as a condition on the resource row ``alias``: owned by ``crit.org``, or with none
    of the withheld keys (its type, a code or security label, itself, a resource it refers to,
    its owner)."""
    by_prefix: dict[str, list[str]] = {}
    for key in crit.keys:
        prefix = next((p for p in _PREFIXES if key.startswith(p)), "")
        by_prefix.setdefault(prefix, []).append(key.removeprefix(prefix))
    parts: list[Frag] = []
    if types := by_prefix.get(TYPE_PREFIX):
        parts.append(cat(f"{alias}.resource_type NOT IN (", val(*types), ")"))
    if codes := by_prefix.get(""):
        tokens = "idx_token t INDEXED BY idx_token_owner" if owner_index else "idx_token t"
        parts.append(
            cat(
                f"NOT EXISTS (SELECT 1 FROM {tokens} WHERE t.resource_type = {alias}.resource_type AND "
                f"t.resource_id = {alias}.id AND t.param IN (",
                val(*DENIABLE_PARAMS),
                ") AND t.system || '|' || t.code IN (",
                val(*codes),
                "))",
            )
        )
    if refs := by_prefix.get(REF_PREFIX):
        parts.append(cat(f"{alias}.resource_type || '/' || {alias}.id NOT IN (", val(*refs), ")"))
    if targets := by_prefix.get(DEPENDENT_PREFIX):
        refs_table = "idx_reference crx INDEXED BY idx_reference_owner" if owner_index else "idx_reference crx"
        parts.append(
            cat(
                f"NOT EXISTS (SELECT 1 FROM {refs_table} WHERE crx.resource_type = {alias}.resource_type AND "
                f"crx.resource_id = {alias}.id AND crx.target_type || '/' || crx.target_id IN (",
                val(*targets),
                "))",
            )
        )
    if authors := by_prefix.get(AUTHOR_PREFIX):
        parts.append(cat(f"({alias}.org IS NULL OR {alias}.org NOT IN (", val(*authors), "))"))
    return cat("(", f"{alias}.org = ", val(crit.org), " OR (", join(" AND ", parts), "))")


_PREFIXES: Final = (TYPE_PREFIX, REF_PREFIX, DEPENDENT_PREFIX, AUTHOR_PREFIX)


def patient_facts_call(patient: str, org_id: str, cutoff: float, glass_kind: str | None, now: float) -> Frag:
    """:func:`patient_facts` on PostgreSQL: the same query in ``ketnoi_patient_facts`` (migration
    12), whose plan is made once per connection instead of at every run."""
    return cat("SELECT f_kind, f_a, f_b, f_c FROM ", _facts_function(val(patient), org_id, cutoff, glass_kind, now))


def read_with_facts(
    rtype: str, id: str, params: tuple[str, ...] | None, org_id: str, cutoff: float, glass_kind: str | None, now: float
) -> Frag:
    """PostgreSQL: the current version of ``rtype/id`` (the history's columns) and, beside it,
    :func:`patient_facts_call` for every patient of the row (its own id when ``params`` is None, a
    Patient; else its references to Patients by ``params``): ``ketnoi_read_facts`` (migration 18,
    over ``ketnoi_row_facts`` of 17), so that a read and its policy facts are one statement with a
    plan made once per connection. The extra value is an array of ``[patient, kind, a, b, c]``
    (kind NULL for a patient with no fact), or NULL when the row's owner is ``Organization/org_id``
    (the policy needs no patient then) or it has no patient. The patients come from the reference
    index; ``interactions.reach`` still takes a row's patients from its content and asks
    separately for any the index did not name here."""
    # The parameters as one text, split by the database: psycopg's adaptation of a list to an
    # array cost ~0.1 ms a read, as much again as the function's own work. Codes have no comma.
    assert params is None or not any("," in p for p in params)
    return cat(
        "SELECT * FROM ketnoi_read_facts(CAST(",
        val(rtype),
        " AS TEXT), CAST(",
        val(id),
        " AS TEXT), CAST(",
        val(None if params is None else ",".join(params)),
        " AS TEXT), ",
        _policy_args(org_id, cutoff, glass_kind, now),
        ")",
    )


def _policy_args(org_id: str, cutoff: float, glass_kind: str | None, now: float) -> Frag:
    """The last four arguments of the policy's functions, typed (a NULL's type is not guessed)."""
    return cat(
        "CAST(",
        val(org_id),
        " AS TEXT), CAST(",
        val(cutoff),
        " AS DOUBLE PRECISION), CAST(",
        val(glass_kind),
        " AS TEXT), CAST(",
        val(now),
        " AS DOUBLE PRECISION)",
    )


def _facts_function(patient: str | Frag, org_id: str, cutoff: float, glass_kind: str | None, now: float) -> Frag:
    """The call of ``ketnoi_patient_facts`` (migrations 12-14) for the SQL ``patient``."""
    return cat("ketnoi_patient_facts(CAST(", patient, " AS TEXT), ", _policy_args(org_id, cutoff, glass_kind, now), ")")


def patient_facts(patient: str, org_id: str, cutoff: float, glass_kind: str | None, now: float) -> Frag:
    """See :func:`_patient_facts`; the text is composed once per shape (it is asked on every read
    of a facility's user), and only the values change."""
    text, slots = _facts_template(glass_kind is not None)
    values = {_PATIENT: patient, _ORG: org_id, _CUTOFF: cutoff, _GLASS: glass_kind, _NOW: now}
    return Frag(text, tuple(values.get(v, v) if isinstance(v, str) else v for v in slots))


_PATIENT, _ORG, _CUTOFF, _GLASS, _NOW = ("\x00patient", "\x00org", "\x00cutoff", "\x00glass", "\x00now")


@cache
def _facts_template(glass: bool) -> tuple[str, tuple[object, ...]]:
    """The query of :func:`_patient_facts` with placeholders standing for the values, in order."""
    frag = _patient_facts(_PATIENT, _ORG, _CUTOFF, _GLASS if glass else None, _NOW)  # type: ignore[arg-type]
    return frag.text, frag.params


def _patient_facts(patient: str, org_id: str, cutoff: float, glass_kind: str | None, now: float) -> Frag:
    """What decides whether ``patient``'s record is open to ``Organization/org_id``, in one round
    trip of flat queries (cheap to plan), as rows of four texts for ``interactions.reach.decide``:

    - ``('care', 'Organization/org_id', 'live', 'names')`` once when the patient has a care
      relation with the organization (the test stops at the first Encounter or EpisodeOfCare
      that makes one);
    - ``(PERMIT or DENY, actor, key, period)`` per rule row of the patient's active privacy
      Consents (the period as ``extract_consent.period_text``, or NULL: ``interactions.reach``
      keeps those that hold now);
    - ``('glass', patient, '', '')`` when ``glass_kind`` (the caller's break-the-glass record kind)
      holds an opening of this patient that has not run out."""
    care = cat(
        "SELECT 'care', 'Organization/' || ",
        val(org_id),
        ", 'live', 'names' WHERE ",
        _care_relation(cat("'Organization/' || ", val(org_id)), org_id, cutoff, val(patient)),
    )
    rules = cat(
        " UNION ALL SELECT ct.param, ct.system, ct.code, ct.text FROM idx_reference cp JOIN idx_token ct ON "
        "ct.resource_type = cp.resource_type AND ct.resource_id = cp.resource_id WHERE cp.resource_type = "
        "'Consent' AND cp.param = 'patient' AND cp.target_id = ",
        val(patient),
        " AND cp.target_type = 'Patient' AND ct.param IN (",
        val(PERMIT, DENY),
        ")",
    )
    if glass_kind is None:
        return cat(care, rules)
    glass = cat(
        " UNION ALL SELECT 'glass', key, '', '' FROM security_record WHERE kind = ",
        val(glass_kind),
        " AND key = ",
        val(patient),
        " AND (expires IS NULL OR expires > ",
        val(now),
        ")",
    )
    return cat(care, rules, glass)


def _open(crit: Reach, patient: str, alias: str, by_code: bool, owner_index: bool = False) -> Frag:
    """Whether the patient whose id is the SQL expression ``patient`` is open to ``crit.org``."""
    glass = cat(f"{patient} IN (", val(*crit.glass), ") OR ") if crit.glass else Frag("")
    whole = Frag(f"ct.code = '{WHOLE}'")
    permitted = _rule(patient, PERMIT, (crit.org, ANYONE), whole, crit.now)
    allowed = cat("(", _care(crit, patient), " OR ", permitted, ")")
    parts = [allowed, cat(" AND NOT ", _denied(crit, patient, whole))]
    if by_code:
        parts.append(cat(" AND NOT ", _denied(crit, patient, _row_keys(alias, owner_index))))
    return cat("(", glass, "(", *parts, "))")


def _care(crit: Reach, patient: str) -> Frag:
    return _care_relation(val(crit.org), crit.org.removeprefix(ORG_PREFIX), crit.cutoff, Frag(patient))


def _care_relation(org: Frag, org_id: str, cutoff: float, patient: Frag) -> Frag:
    """``patient`` (SQL) has a current Encounter or EpisodeOfCare owned by ``org`` (SQL, the
    ``Organization/ID`` reference), or owned by nobody and naming ``Organization/org_id``."""
    return cat(
        "EXISTS (SELECT 1 ",
        _CARE_FROM,
        val(*CARE_TYPES),
        ") AND ce.param = 'patient' AND ce.target_id = ",
        patient,
        " AND ce.target_type = 'Patient' AND (er.org = ",
        org,
        " OR (er.org IS NULL AND ",
        _names(org_id),
        ")) AND ",
        _live(cutoff),
        ")",
    )


# An Encounter or EpisodeOfCare (ce: its reference rows, er: its resource row), before the types.
_CARE_FROM = (
    "FROM idx_reference ce JOIN resource er ON er.resource_type = ce.resource_type AND er.id = ce.resource_id "
    "WHERE ce.resource_type IN ("
)


def _live(cutoff: float) -> Frag:
    """The care row ``ce``'s period reaches ``cutoff``, and it is neither cancelled nor entered in error."""
    return cat(
        "EXISTS (SELECT 1 FROM idx_date cd WHERE cd.resource_type = ce.resource_type AND cd.resource_id = "
        "ce.resource_id AND cd.param = 'date' AND cd.high >= ",
        val(cutoff),
        ") AND NOT EXISTS (SELECT 1 FROM idx_token cs WHERE cs.resource_type = ce.resource_type AND "
        "cs.resource_id = ce.resource_id AND cs.param = 'status' AND cs.code IN (",
        val(*NOT_CARE),
        "))",
    )


def _names(org_id: str) -> Frag:
    """The care row ``ce`` names ``Organization/org_id`` as its provider."""
    return cat(
        "EXISTS (SELECT 1 FROM idx_reference sp WHERE sp.resource_type = ce.resource_type AND sp.resource_id = "
        "ce.resource_id AND sp.param IN (",
        val(*CARE_PROVIDER_PARAMS),
        ") AND sp.target_id = ",
        val(org_id),
        " AND sp.target_type = 'Organization')",
    )


def _rule(patient: str, effect: str, actors: tuple[str, ...], key: Frag, now: float, alias: str = "ct") -> Frag:
    """Some active Consent of the patient states an ``effect`` rule about one of ``actors`` whose
    key (``{alias}.code``) satisfies ``key``, and whose period (``{alias}.text``) holds at ``now``."""
    cp = f"{alias}p"
    at = now_text(now)
    return cat(
        f"EXISTS (SELECT 1 FROM idx_reference {cp} JOIN idx_token {alias} ON {alias}.resource_type = "
        f"{cp}.resource_type AND {alias}.resource_id = {cp}.resource_id WHERE {cp}.resource_type = 'Consent' AND "
        f"{cp}.param = 'patient' AND {cp}.target_id = {patient} AND {cp}.target_type = 'Patient' AND "
        f"{alias}.param = ",
        val(effect),
        f" AND {alias}.system IN (",
        val(*actors),
        f") AND ({alias}.text IS NULL OR (substr({alias}.text, 1, {PERIOD_DIGITS}) <= ",
        val(at),
        f" AND substr({alias}.text, {PERIOD_DIGITS + 2}) >= ",
        val(at),
        ")) AND ",
        key,
        ")",
    )


def _denied(crit: Reach, patient: str, key: Frag) -> Frag:
    """A deny rule about ``crit.org`` with a key satisfying ``key``, or one about anyone that no
    permit rule about ``crit.org`` with the same key overrides."""
    named = _rule(patient, DENY, (crit.org,), key, crit.now)
    override = _rule(patient, PERMIT, (crit.org,), Frag("cq.code = ct.code"), crit.now, alias="cq")
    anyone = _rule(patient, DENY, (ANYONE,), cat(key, " AND NOT ", override), crit.now)
    return cat("(", named, " OR ", anyone, ")")


def _row_keys(alias: str, owner_index: bool) -> Frag:
    """A rule key (``ct.code``) that names the row's type, one of its codes or security labels,
    the row itself, a resource it refers to, or its owner."""
    tokens = "idx_token t INDEXED BY idx_token_owner" if owner_index else "idx_token t"
    refs = "idx_reference crx INDEXED BY idx_reference_owner" if owner_index else "idx_reference crx"
    return cat(
        f"(ct.code = '{TYPE_PREFIX}' || {alias}.resource_type OR ct.code IN (SELECT t.system || '|' || t.code "
        f"FROM {tokens} WHERE t.resource_type = {alias}.resource_type AND t.resource_id = {alias}.id AND t.param IN (",
        val(*DENIABLE_PARAMS),
        f") AND t.system IS NOT NULL) OR ct.code = '{REF_PREFIX}' || {alias}.resource_type || '/' || {alias}.id "
        f"OR ct.code = '{AUTHOR_PREFIX}' || {alias}.org OR ct.code IN (SELECT '{DEPENDENT_PREFIX}' || crx.target_type "
        f"|| '/' || crx.target_id FROM {refs} WHERE crx.resource_type = {alias}.resource_type AND crx.resource_id = "
        f"{alias}.id AND crx.target_type IS NOT NULL))",
    )
