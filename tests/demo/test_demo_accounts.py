"""``ketnoi demo accounts`` on a database holding a small demo population, on SQLite and PostgreSQL.

The population (a few patients, the whole shared health system) is generated and loaded once per
backend; each test starts from that database without any account or client. The command runs
in this process through the real ``ketnoi`` parser (as ``tests/security/test_commands.py`` does),
with the default Argon2 parameters, and once as a real process for its exit code and stderr.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from ketnoi.app import build_services, open_store, stop_services
from ketnoi.auth import passwords
from ketnoi.auth.scopes import parse_scopes
from ketnoi.auth.totp import current_code
from ketnoi.bulk.load import load_paths
from ketnoi.bulk.owners import read_owners
from ketnoi.cli import build_parser
from ketnoi.config import Settings
from ketnoi.demo import accounts as demo_accounts
from ketnoi.demo.generate import generate
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.security.accounts import Accounts
from ketnoi.security.clients import Clients
from tests.conftest import BACKENDS, throwaway_url

PATIENTS, SEED = 8, 5
KEYS = {
    "admin": {"username", "password", "totp_secret", "totp_uri"},
    "clinician": {"username", "password", "organization", "fhirUser"},
    "patient": {"username", "password", "patient"},
    "provincial": {"username", "password", "organization"},
    "backend": {"client_id", "client_secret", "scope"},
    "app": {"client_id", "redirect_uri", "scope"},
}
CHEAP = passwords.make_hasher(time_cost=1, memory_kib=8, parallelism=1)  # behaviour, not strength
_SETTINGS = ("KETNOI_DATABASE", "KETNOI_BASE_URL", "KETNOI_HOST", "KETNOI_PORT")


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


Cli = Callable[..., Ran]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-accounts-data")
    generate(PATIENTS, SEED, out, duplicate_rate=0.0)
    return out


@pytest.fixture(scope="module", params=BACKENDS)
def loaded_url(
    request: pytest.FixtureRequest, demo_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of each backend holding the demo population (loaded once per module)."""
    with throwaway_url(request.param, tmp_path_factory.mktemp("db"), "ketnoi_demo_accounts") as url:
        with _services(url, migrate=True) as services:
            report = load_paths(services, [demo_dir], owners=read_owners(demo_dir / "owners.csv"))
        assert report.written > 0 and not report.failures, report.failures[:3]
        yield url


@contextmanager
def _services(url: str, *, migrate: bool = False) -> Iterator[Services]:
    """Services over ``url``, closed on exit."""
    store = open_store(url)
    if migrate:
        store.migrate()
    services = build_services(Settings(database=url), store)
    try:
        yield services
    finally:
        stop_services(services)
        store.close()


@pytest.fixture
def url(loaded_url: str) -> str:
    """The demo database without any account or client."""
    store = open_store(loaded_url)
    try:
        with store.session(write=True) as session:
            for kind in ("user", "client"):
                for key, _ in session.security_list(kind, 0.0):
                    session.security_delete(kind, key)
    finally:
        store.close()
    return loaded_url


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``ketnoi ARGS`` in this process: the real parser and handler, without starting Python."""
    for name in _SETTINGS:
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str) -> Ran:
        capsys.readouterr()
        args = build_parser().parse_args(list(argv))
        code = args.func(args)
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def _made(cli: Cli, url: str, *extra: str) -> dict[str, dict[str, str]]:
    done = cli("demo", "accounts", "--database", url, *extra)
    assert done.returncode == 0, done.stderr
    shown: dict[str, dict[str, str]] = json.loads(done.stdout)
    return shown


def _one_error_line(done: Ran, code: int, *fragments: str) -> str:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _search(services: Services, rtype: str, *params: tuple[str, str]) -> list[dict[str, Any]]:
    request = FhirRequest("GET", rtype, query=[*params, ("_count", "1000")], context=RequestContext.operator("test"))
    response = handle(services, request)
    assert response.status == 200 and response.resource is not None
    return [entry["resource"] for entry in response.resource.get("entry", [])]


def _exists(services: Services, reference: str) -> bool:
    request = FhirRequest("GET", reference, context=RequestContext.operator("test"))
    return handle(services, request).status == 200


def _signs_in(accounts: Accounts, shown: dict[str, str], now: float) -> bool:
    code = current_code(shown["totp_secret"], now) if "totp_secret" in shown else None
    return accounts.sign_in(shown["username"], shown["password"], code, now).user is not None


def _state(url: str) -> tuple[list[Any], list[Any]]:
    store = open_store(url)
    try:
        return Accounts(store).list(), Clients(store).list()
    finally:
        store.close()


# ---- the accounts and what they are linked to ------------------------------------------------------------


def test_the_accounts_sign_in_and_link_to_the_demo_data(cli: Cli, url: str, tmp_path: Path) -> None:
    out = tmp_path / "var" / "demo-accounts.json"
    done = cli("demo", "accounts", "--database", url, "--out", str(out))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    shown = json.loads(done.stdout)  # stdout is the JSON and nothing else
    assert {role: set(values) for role, values in shown.items()} == KEYS
    assert [shown[role]["username"] for role in ("admin", "clinician", "patient")] == ["admin", "clinician", "patient"]
    assert json.loads(out.read_text(encoding="utf-8")) == shown  # the file holds what was printed
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert shown["admin"]["totp_uri"].startswith("otpauth://totp/ketnoi:admin?secret=" + shown["admin"]["totp_secret"])

    store = open_store(url)
    try:
        accounts, clients = Accounts(store), Clients(store)
        now = time.time()
        for role in ("admin", "clinician", "patient"):
            assert _signs_in(accounts, shown[role], now), role
            assert passwords.check_password_policy(shown[role]["password"], role) == []
        assert accounts.sign_in("admin", shown["admin"]["password"], None, now).reason == "totp-required"
        users = {user.username: user for user in accounts.list()}
        assert (users["clinician"].organization, users["clinician"].fhir_user) == (
            shown["clinician"]["organization"],
            shown["clinician"]["fhirUser"],
        )
        assert users["patient"].patient == shown["patient"]["patient"]
        assert _signs_in(accounts, shown["provincial"], now)
        assert users["provincial"].organization == shown["provincial"]["organization"]

        backend = clients.verify_secret(shown["backend"]["client_id"], shown["backend"]["client_secret"])
        assert backend is not None and (backend.name, backend.kind, backend.scope) == (
            "ketnoi demo backend",
            "confidential",
            "system/*.rs",
        )
        app = clients.get(shown["app"]["client_id"])
        assert app is not None and (app.name, app.kind, app.secret_hash) == ("ketnoi demo app", "public", None)
        assert app.redirect_uris == ("http://127.0.0.1:8080/auth/demo-callback",) == (shown["app"]["redirect_uri"],)
        assert parse_scopes(app.scope) == parse_scopes(demo_accounts.APP_SCOPE) and app.scope == shown["app"]["scope"]
    finally:
        store.close()

    organization, practitioner = shown["clinician"]["organization"], shown["clinician"]["fhirUser"]
    patient = shown["patient"]["patient"]
    assert organization.startswith("Organization/") and practitioner.startswith("Practitioner/")
    with _services(url) as services:
        for reference in (organization, practitioner, patient):
            assert _exists(services, reference), reference
        # The clinician's facility cares for demo patients, the practitioner among its attenders ...
        at_facility = _search(services, "Encounter", ("service-provider", organization))
        subjects = {e["subject"]["reference"] for e in at_facility}
        assert subjects and all(_exists(services, s) for s in subjects)
        attenders = {p["individual"]["reference"] for e in at_facility for p in e.get("participant", [])}
        assert practitioner in attenders
        # ... and the demo patient is one of them, with clinical data.
        assert patient in subjects
        assert _search(services, "Observation", ("subject", patient))
        assert _search(services, "Condition", ("subject", patient))


def test_sign_in_prints_where_to_go_and_the_accounts_and_a_bad_file_is_one_line(cli: Cli, tmp_path: Path) -> None:
    shown = {
        "admin": {"username": "admin", "password": "a-1", "totp_uri": "otpauth://totp/ketnoi:admin?secret=X"},
        "clinician": {"username": "clinician", "password": "c-2"},
        "patient": {"username": "patient", "password": "p-3"},
        "backend": {"client_id": "b", "client_secret": "never shown here"},
    }
    path = tmp_path / "demo-accounts.json"
    path.write_text(json.dumps(shown), encoding="utf-8")
    done = cli("demo", "sign-in", str(path), "--url", "http://127.0.0.1:9000")
    assert done.returncode == 0 and done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Open http://127.0.0.1:9000/ in a browser")
    assert [line.split()[:4] for line in lines[1:4]] == [
        ["clinician", "clinician", "/", "c-2"], ["patient", "patient", "/", "p-3"], ["admin", "admin", "/", "a-1"],
    ]  # fmt: skip
    assert lines[4].split() == ["TOTP:", "otpauth://totp/ketnoi:admin?secret=X"] and len(lines) == 5
    assert "never shown here" not in done.stdout  # client secrets stay in the file
    path.write_text("{not json", encoding="utf-8")
    bad = cli("demo", "sign-in", str(path))
    assert bad.returncode == 2 and bad.stdout == "" and len(bad.stderr.splitlines()) == 1
    assert bad.stderr.startswith(f"error: cannot read the demo accounts from {path}")


def test_the_choice_is_the_busiest_demo_facility(url: str, demo_dir: Path) -> None:
    encounters = [orjson.loads(line) for line in (demo_dir / "Encounter.ndjson").read_bytes().splitlines()]
    counts = Counter(e["serviceProvider"]["reference"] for e in encounters)
    busiest = min(counts, key=lambda ref: (-counts[ref], ref))
    with _services(url) as services:
        links = demo_accounts.find_demo_links(services)
        assert links == demo_accounts.find_demo_links(services)  # deterministic
    assert links.organization == busiest
    at_busiest = Counter(e["subject"]["reference"] for e in encounters if e["serviceProvider"]["reference"] == busiest)
    assert links.patient in at_busiest


# ---- a second run, --reset ------------------------------------------------------------------------------


def _provisioned(url: str, **options: Any) -> dict[str, dict[str, str]]:
    """The first run, in process with cheap Argon2 parameters (the command's own run is tested above)."""
    with _services(url) as services:
        return demo_accounts.provision(services.store, services, now=time.time(), hasher=CHEAP, **options)


def test_a_second_run_refuses_and_changes_nothing(cli: Cli, url: str, tmp_path: Path) -> None:
    _provisioned(url)
    before = _state(url)
    again = tmp_path / "again.json"
    done = cli("demo", "accounts", "--database", url, "--out", str(again))
    _one_error_line(
        done, 1, "exist already (admin, clinician, patient, provincial)", "cannot be shown again", "--reset"
    )
    assert not again.exists()
    assert _state(url) == before


def test_reset_sets_new_passwords_and_new_clients(cli: Cli, url: str) -> None:
    first = _provisioned(url)
    second = _made(cli, url, "--reset", "--base-url", "http://localhost:9000/")
    assert {role: set(values) for role, values in second.items()} == KEYS
    for role in demo_accounts.USERNAMES:
        assert second[role]["password"] != first[role]["password"]
    assert second["admin"]["totp_secret"] != first["admin"]["totp_secret"]
    for role, link in (("clinician", "organization"), ("clinician", "fhirUser"), ("patient", "patient")):
        assert second[role][link] == first[role][link]
    assert second["app"]["redirect_uri"] == "http://localhost:9000/auth/demo-callback"
    store = open_store(url)
    try:
        accounts, clients = Accounts(store), Clients(store)
        now = time.time()
        for role in ("clinician", "patient"):
            assert _signs_in(accounts, second[role], now)
            assert accounts.sign_in(role, first[role]["password"], None, now).user is None
        assert _signs_in(accounts, second["admin"], now)
        revoked = {c.client_id: c.revoked for c in clients.list()}
        assert revoked == {
            first["backend"]["client_id"]: True,
            first["app"]["client_id"]: True,
            second["backend"]["client_id"]: False,
            second["app"]["client_id"]: False,
        }
        assert clients.verify_secret(first["backend"]["client_id"], first["backend"]["client_secret"]) is None
    finally:
        store.close()


def test_reset_on_a_fresh_database_makes_the_accounts(url: str) -> None:
    shown = _provisioned(url, reset=True)
    usernames = [u.username for u in _state(url)[0]]
    assert set(shown) == set(KEYS) and usernames == ["admin", "clinician", "patient", "provincial"]


def test_a_user_name_taken_by_another_role_is_refused(cli: Cli, url: str) -> None:
    store = open_store(url)
    try:
        Accounts(store, hasher=CHEAP).add(
            "patient", "Cây đa, giếng nước, sân đình", "clinician", organization="Organization/x", now=time.time()
        )
    finally:
        store.close()
    done = cli("demo", "accounts", "--database", url, "--reset")
    _one_error_line(done, 2, "'patient' exists with the role clinician")
    assert _state(url)[1] == []  # refused before any write


# ---- refusals --------------------------------------------------------------------------------------


def test_a_bad_base_url_is_refused_before_any_write(cli: Cli, url: str, tmp_path: Path) -> None:
    out = tmp_path / "accounts.json"
    done = cli("demo", "accounts", "--database", url, "--base-url", "http://demo.example.vn", "--out", str(out))
    _one_error_line(done, 2, "Redirect URI 'http://demo.example.vn/auth/demo-callback'")
    assert _state(url) == ([], [])
    assert not out.exists()  # the reserved file is removed again


def test_an_existing_out_file_is_never_overwritten(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "accounts.json"
    out.write_text("keep me", encoding="utf-8")
    # The database is not even opened: the URL names a folder that does not exist.
    done = cli("demo", "accounts", "--database", f"sqlite:///{tmp_path}/missing/x.db", "--out", str(out))
    _one_error_line(done, 1, "accounts.json exists already", "never overwritten")
    assert out.read_text(encoding="utf-8") == "keep me"


def test_a_database_without_demo_data_is_refused(cli: Cli, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/empty.db"
    store = open_store(database)
    store.migrate()
    store.close()
    done = cli("demo", "accounts", "--database", database)
    _one_error_line(done, 2, "no demo data", "ketnoi demo generate")
    assert _state(database) == ([], [])


def test_an_unmigrated_database_is_refused(cli: Cli, tmp_path: Path) -> None:
    done = cli("demo", "accounts", "--database", f"sqlite:///{tmp_path}/new.db")
    _one_error_line(done, 2, "ketnoi migrate")


def test_passwords_pass_the_policy() -> None:
    for name in demo_accounts.USERNAMES.values():
        password = demo_accounts.new_password(name)
        assert len(password) == demo_accounts.PASSWORD_LENGTH and passwords.check_password_policy(password, name) == []


def test_a_second_run_as_a_process(tmp_path: Path) -> None:
    """Exit code 1 and one line on stderr, as a person sees them (the accounts' check comes before any read)."""
    database = f"sqlite:///{tmp_path}/ketnoi.db"
    store = open_store(database)
    try:
        store.migrate()
        Accounts(store, hasher=CHEAP).add("admin", "Cây đa, giếng nước, sân đình", "admin", now=time.time())
    finally:
        store.close()
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS}
    done = subprocess.run(
        [sys.executable, "-m", "ketnoi", "demo", "accounts", "--database", database],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    _one_error_line(Ran(done.returncode, done.stdout, done.stderr), 1, "exist already (admin)", "--reset")
    assert "Traceback" not in done.stderr


def _encounters_seen(url: str, organization: str) -> int:
    """``Encounter?_summary=count`` for a provincial manager of ``organization``."""
    context = RequestContext(
        authenticated=True, user="ql", scopes=parse_scopes("user/*.rs"), organization=organization,
        roles=frozenset({"provincial"}),
    )  # fmt: skip
    with _services(url) as services:
        response = handle(services, FhirRequest("GET", "Encounter", [("_summary", "count")], context=context))
    body = response.resource if response.resource is not None else orjson.loads(response.raw or b"{}")
    assert response.status == 200, body
    return int(body["total"])


def test_the_provincial_manager_counts_its_province_and_no_other(cli: Cli, url: str) -> None:
    """The demo loaded with its owners file: the provincial account's province owns Encounters (its
    dashboard is not all zeros), and a manager of another province counts none of them."""
    shown = _made(cli, url)
    province = shown["provincial"]["organization"]
    with _services(url) as services:
        facility = demo_accounts.find_demo_links(services).organization
    assert province != facility
    own = _encounters_seen(url, province)
    assert own > 0
    with _services(url) as services:
        departments = [
            f"Organization/{o['id']}"
            for o in demo_accounts._search(
                services, "Organization", [("type", f"{demo_accounts.ORG_LEVEL}|province"), ("_count", "100")]
            )
        ]
        all_encounters = demo_accounts._count(services, "Encounter", [])
    assert len(departments) == 34 and province in departments
    seen = {d: _encounters_seen(url, d) for d in departments}
    # No Encounter counted by two provinces (a central hospital's, under the ministry, by none), and the
    # provinces whose facilities saw none of the demo's few patients count zero.
    assert sum(seen.values()) <= all_encounters
    assert any(v == 0 for d, v in seen.items() if d != province)


def _put_as(url: str, organization: str, role: str, resource: dict[str, object]) -> int:
    context = RequestContext(
        authenticated=True, user="u", scopes=parse_scopes("user/*.cruds"), organization=organization,
        roles=frozenset({role}),
    )  # fmt: skip
    with _services(url) as services:
        request = FhirRequest("PUT", f"Organization/{resource['id']}", body=resource, context=context)
        return handle(services, request).status


def test_the_province_keeps_its_registry_and_a_facility_does_not_rewrite_it(cli: Cli, url: str) -> None:
    """The owners file gives registry entries to the Sở Y tế above them: the provincial account edits its
    province's facilities, not another province's, and a facility cannot rewrite its own entry."""
    shown = _made(cli, url)
    province = shown["provincial"]["organization"]
    with _services(url) as services:
        facility_ref = demo_accounts.find_demo_links(services).organization
        orgs = list(demo_accounts._search(services, "Organization", []))
    by_ref = {f"Organization/{o['id']}": o for o in orgs}
    facility = {**by_ref[facility_ref], "alias": ["đã sửa"]}
    elsewhere = next(o for o in orgs if "province" in str(o.get("type")) and f"Organization/{o['id']}" != province)
    assert _put_as(url, province, "provincial", facility) == 200
    assert _put_as(url, facility_ref, "facility-admin", {**facility, "alias": ["lần hai"]}) == 403
    assert _put_as(url, province, "provincial", {**elsewhere, "alias": ["không được"]}) == 403
