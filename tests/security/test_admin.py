"""Administration from the browser (ketnoi.security.admin, ADR 0027): only a national administrator may,
every change is in the audit log with the change (and never its secret), every refused attempt too."""

from __future__ import annotations

import json
from typing import Any

import pytest
from argon2 import PasswordHasher

from ketnoi.auth.scopes import parse_scopes
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.services import Services
from ketnoi.jobs.runner import JobRunner
from ketnoi.security.accounts import Accounts
from ketnoi.security.admin import ACTION, Admin, FieldRefused, NotAllowed
from ketnoi.security.clients import Clients

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ADMIN = RequestContext(
    authenticated=True, user="quantri", roles=frozenset({"admin"}), scopes=parse_scopes("user/*.cruds")
)
OTHERS = {
    "clinician": RequestContext(
        authenticated=True, user="bs.lan", roles=frozenset({"clinician"}), organization="Organization/bv1"
    ),
    "facility-admin": RequestContext(
        authenticated=True, user="qt.bv1", roles=frozenset({"facility-admin"}), organization="Organization/bv1"
    ),
    "patient": RequestContext(authenticated=True, user="bn.an", roles=frozenset({"patient"}), patient="an"),
    # The role without a verified token behind it (a server with sign-in on never makes one, but the
    # check does not rely on that).
    "unverified admin": RequestContext(user="quantri", roles=frozenset({"admin"})),
}


@pytest.fixture
def admin(fresh_services: Services) -> Admin:
    return Admin(fresh_services.store, open_access=False, base="http://x/fhir", hasher=CHEAP)


def _events(services: Services) -> list[dict[str, Any]]:
    """The administrative AuditEvents in the log, oldest first."""
    with services.store.session(write=False) as session:
        rows = session.audit_rows(0, 10_000)
    events = [json.loads(row.event) for row in rows]
    return [e for e in events if any(s.get("system") == ACTION for s in e.get("subtype", ()))]


def _action(event: dict[str, Any]) -> str:
    return next(str(s["code"]) for s in event["subtype"] if s["system"] == ACTION)


def _target(event: dict[str, Any]) -> str:
    return str(event["entity"][0]["what"]["identifier"]["value"])


@pytest.mark.parametrize("who", sorted(OTHERS))
def test_only_a_national_administrator_may(admin: Admin, fresh_services: Services, who: str) -> None:
    context = OTHERS[who]
    for look in (admin.users, admin.clients, admin.jobs):
        with pytest.raises(NotAllowed) as refused:
            look(context)
        assert refused.value.status == 403 and refused.value.vi
    with pytest.raises(NotAllowed):
        admin.add_user(context, "moi", "clinician", password="mật-khẩu-đủ-dài-2026", organization="Organization/bv1")
    with pytest.raises(NotAllowed):
        admin.disable_user(context, "quantri")
    with pytest.raises(NotAllowed):
        admin.add_client(context, "app", "user/*.rs", kind="public", redirect_uris=["https://app.example/cb"])
    assert Accounts(fresh_services.store).list() == [] and Clients(fresh_services.store).list() == []
    events = _events(fresh_services)  # each refused look and change is recorded, as a failure, with who tried
    assert [(_action(e), e["outcome"]) for e in events] == [
        ("users-list", "4"), ("clients-list", "4"), ("jobs-list", "4"),
        ("users-add", "4"), ("users-disable", "4"), ("clients-add", "4"),
    ]  # fmt: skip
    assert all(e["agent"][0]["who"]["identifier"]["value"] == context.user for e in events)


def test_each_look_is_recorded(admin: Admin, fresh_services: Services) -> None:
    admin.users(ADMIN)
    admin.clients(ADMIN)
    admin.jobs(ADMIN)
    admin.facts(ADMIN, "sqlite:///nowhere.db", "on")
    events = _events(fresh_services)
    assert [(_action(e), e["action"], e["outcome"]) for e in events] == [
        ("users-list", "R", "0"), ("clients-list", "R", "0"), ("jobs-list", "R", "0"), ("server-status", "R", "0")
    ]  # fmt: skip
    assert all(e["type"]["code"] == "rest" and e["agent"][0]["who"]["identifier"]["value"] == "quantri" for e in events)


def test_with_sign_in_off_the_server_is_open(fresh_services: Services) -> None:
    open_admin = Admin(fresh_services.store, open_access=True, base="http://x/fhir", hasher=CHEAP)
    assert open_admin.users(RequestContext()) == []


def test_each_change_is_audited_with_it_and_without_its_secret(admin: Admin, fresh_services: Services) -> None:
    new = admin.add_user(ADMIN, "Lan.Nguyen", "admin", password=None)
    assert new.user.username == "lan.nguyen" and new.password and new.totp  # an admin gets a second factor
    password = admin.reset_password(ADMIN, "lan.nguyen")
    totp = admin.reset_totp(ADMIN, "lan.nguyen")
    admin.disable_user(ADMIN, "lan.nguyen")
    admin.enable_user(ADMIN, "lan.nguyen")
    client, secret = admin.add_client(
        ADMIN, "Ứng dụng", "user/*.rs", kind="confidential", redirect_uris=["https://app.example/cb"]
    )
    admin.revoke_client(ADMIN, client.client_id)
    assert secret and Clients(fresh_services.store).get(client.client_id).revoked  # type: ignore[union-attr]

    events = [e for e in _events(fresh_services) if e["action"] != "R"]
    assert [(_action(e), _target(e), e["outcome"]) for e in events] == [
        ("users-add", "lan.nguyen", "0"), ("users-reset-password", "lan.nguyen", "0"),
        ("users-reset-totp", "lan.nguyen", "0"), ("users-disable", "lan.nguyen", "0"),
        ("users-enable", "lan.nguyen", "0"), ("clients-add", client.client_id, "0"),
        ("clients-revoke", client.client_id, "0"),
    ]  # fmt: skip
    added = events[0]
    assert added["type"]["code"] == "110113" and added["subtype"][0]["code"] == "110136" and added["action"] == "C"
    assert {"type": "role", "valueString": "admin"} in added["entity"][0]["detail"]
    assert events[3]["subtype"][0]["code"] == "110137"
    assert events[0]["agent"][0]["who"]["identifier"]["value"] == "quantri"
    text = json.dumps(events)
    for kept_secret in (new.password, new.totp, password, totp, secret):
        assert kept_secret is not None and kept_secret not in text


def test_a_refused_value_names_its_field_and_is_recorded(admin: Admin, fresh_services: Services) -> None:
    strong = "mật-khẩu-đủ-dài-2026"
    admin.add_user(ADMIN, "lan", "clinician", password=strong, organization="Organization/bv1")
    mistakes: list[tuple[dict[str, Any], str]] = [
        ({"username": "LAN", "role": "clinician", "organization": "Organization/bv1"}, "username"),  # taken
        ({"username": "có dấu", "role": "clinician", "organization": "Organization/bv1"}, "username"),
        ({"username": "mai", "role": "doctor", "organization": "Organization/bv1"}, "role"),
        ({"username": "mai", "role": "clinician"}, "organization"),  # staff belong to a facility
    ]
    for fields, field in mistakes:
        with pytest.raises(FieldRefused) as refused:
            admin.add_user(ADMIN, password=strong, **fields)
        assert refused.value.field == field and refused.value.vi, fields
    with pytest.raises(FieldRefused) as weak:
        admin.add_user(ADMIN, "mai", "clinician", password="short", organization="Organization/bv1")
    assert weak.value.field == "password"
    with pytest.raises(FieldRefused) as missing:
        admin.disable_user(ADMIN, "nobody")
    assert missing.value.field == "username"

    for kind, values, field in (
        ("public", {"scope": "user/*.rs", "redirect_uris": ["http://app.example/cb"]}, "redirect_uris"),
        ("public", {"scope": "nonsense/*", "redirect_uris": ["https://app.example/cb"]}, "scope"),
        ("backend", {"scope": "system/*.rs", "redirect_uris": [], "jwks": {"keys": []}}, "jwks"),
        ("backend", {"scope": "system/*.rs", "redirect_uris": [], "jwks": {"keys": [{"kty": "oct", "kid": "k"}]}},
         "jwks"),
        ("public", {"scope": "user/*.rs", "redirect_uris": ["https://a.example/cb"], "organization": "bv1"},
         "organization"),
    ):  # fmt: skip
        with pytest.raises(FieldRefused) as bad:
            admin.add_client(ADMIN, "app", kind=kind, **values)
        assert bad.value.field == field, (kind, values, bad.value.en)
    with pytest.raises(FieldRefused) as unnamed:
        admin.add_client(ADMIN, " ", "user/*.rs", kind="public", redirect_uris=["https://app.example/cb"])
    assert unnamed.value.field == "name"

    refusals = [e for e in _events(fresh_services) if e["outcome"] == "4"]
    assert len(refusals) == 12 and all(e.get("outcomeDesc") for e in refusals)
    assert [len(Accounts(fresh_services.store).list()), len(Clients(fresh_services.store).list())] == [1, 0]


def test_jobs_newest_first_in_pages_and_the_server_facts(admin: Admin, fresh_services: Services) -> None:
    runner = JobRunner(fresh_services.store)
    ids = [runner.submit("reindex", {"types": ["Patient"]}).id for _ in range(3)]
    runner.cancel(ids[0])
    first = admin.jobs(ADMIN, limit=2)
    assert [j.id for j in first] == [ids[2], ids[1]]
    assert [j.id for j in admin.jobs(ADMIN, before=first[-1].id, limit=2)] == [ids[0]]
    admin.add_user(ADMIN, "lan", "admin", password=None)
    facts = admin.facts(ADMIN, fresh_services.settings.database, "on")
    assert facts.jobs == {"queued": 2, "cancelled": 1}
    assert facts.audit_records >= 1 and facts.schema >= 1 and facts.version
    assert facts.backend == ("sqlite" if fresh_services.settings.database.startswith("sqlite") else "postgresql")
    assert (facts.database_bytes or 0) > 0 if facts.backend == "sqlite" else facts.database_bytes is None
