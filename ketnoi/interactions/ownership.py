"""Who owns a record, for the facility write rule (issue 10; ADR 0014).

Every version records the organization it was written for (``StoredVersion.org``, stamped by the
Repository from the caller's context). A resource's owner is the organization of its latest
version that records one: a version written for none (a national administrator's correction, an
operator's load without ``--organization``, the server's own write) leaves the owner as it was, so
it does not open a facility's record to every other facility. The store keeps the same owner on
the current pointer (``resource.org``) for queries.

The rule itself is ``policy.Access.may_change``; :func:`check_owner` applies it to a write, from
the Repository, after the scope and visibility checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.policy import REGISTRY_TYPES, not_owner
from ketnoi.store.base import StoredVersion

if TYPE_CHECKING:
    from ketnoi.interactions.repository import Repository

LOOKBACK: Final = 100  # versions searched back for the owner when the current one records none
#: Types whose unowned resources are the patient's own decision: a Consent the patient wrote (in the
#: portal, as a patient, who acts for no organization) records no owner, and "no owner" must not mean
#: that any facility that treats the patient may rewrite or delete the patient's refusal. The patient
#: and callers without an organization still change it; a facility records a Consent of its own.
PATIENTS_OWN: Final = frozenset({"Consent"})


def owner(repo: Repository, current: StoredVersion) -> str | None:
    """The organization that owns the resource whose current version is ``current``. Usually
    ``current``'s own; only when that records none is the history read (the rare path), with the
    server's rights: ownership does not depend on what the caller may read."""
    if current.org is not None:
        return current.org
    versions = repo.privileged("ownership").history(
        current.resource_type, current.id, since=None, at=None, before_seq=None, limit=LOOKBACK
    )
    return next((v.org for v in versions if v.org is not None), None)


def check_owner(repo: Repository, current: StoredVersion) -> None:
    """403 when the caller acts for an organization and another one owns the resource; nothing
    at all (no lookup) for callers without an organization."""
    if repo.context.organization is None:
        return
    found = owner(repo, current)
    if found is None and current.resource_type in PATIENTS_OWN:
        raise patients_own(current.resource_type, current.id)
    if found is None or repo.access.may_change(found) or _province_registry(repo, current.resource_type, found):
        return
    raise not_owner(current.resource_type, current.id, found)


def _province_registry(repo: Repository, rtype: str, owner: str) -> bool:
    """A provincial manager keeps the registries of the organizations within the province."""
    from ketnoi.interactions.organizations import hierarchy  # organizations → repository → here

    org = repo.context.organization
    if repo.access.level != "region" or rtype not in REGISTRY_TYPES or org is None:
        return False
    return hierarchy(repo.services).is_within(owner, org, repo)


def patients_own(rtype: str, id: str) -> FhirError:
    return FhirError.of(
        403,
        "forbidden",
        f"{rtype}/{id} is the patient's own decision (no facility wrote it): only the patient or an administrator "
        "may change it; record a new Consent of your facility instead",
        f"{rtype}/{id} là quyết định của chính người bệnh (không cơ sở nào ghi): chỉ người bệnh hoặc quản trị viên "
        "được thay đổi; hãy ghi một Consent mới của cơ sở mình",
    )
