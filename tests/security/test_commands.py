"""``ketnoi users|clients|keys|token`` on an SQLite file, and the audience/issuer rule.

The main paths run as a real process (``python -m ketnoi``: argv, stdin, exit code, stderr as a
person sees them); the many refusals and variants run the same parser and handlers in this process
(``cli``), which is many times faster than starting Python and importing the server for each.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from joserfc.jwk import ECKey

from ketnoi.app import open_store
from ketnoi.auth.tokens import AccessClaims, VerifiedTokenCache, verify_access_token
from ketnoi.cli import build_parser
from ketnoi.config import Settings
from ketnoi.security import commands
from ketnoi.security.accounts import Accounts
from ketnoi.security.clients import Clients
from ketnoi.security.commands import fhir_base, issuer_for
from ketnoi.security.keystore import KeyStore

GOOD = "Cây đa, giếng nước, sân đình"
AUD = "http://127.0.0.1:8080/fhir"
ISS = "http://127.0.0.1:8080/auth"
_SETTINGS = ("KETNOI_DATABASE", "KETNOI_BASE_URL", "KETNOI_HOST", "KETNOI_PORT")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS}  # the defaults, whatever the shell says
    return {**env, **(extra or {})}


def _ketnoi(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ketnoi", *args], input=stdin, capture_output=True, text=True, timeout=120, env=_env(env)
    )


def _ok(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> str:
    done = _ketnoi(*args, stdin=stdin, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


class Done(Protocol):
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str

    def ok(self) -> str:
        assert self.returncode == 0, self.stderr
        return self.stdout


Cli = Callable[..., Ran]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``ketnoi ARGS`` in this process: the same parser and handlers, without starting Python."""
    for name in _SETTINGS:
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str, stdin: str = "", env: dict[str, str] | None = None) -> Ran:
        with monkeypatch.context() as m:
            for name, value in (env or {}).items():
                m.setenv(name, value)
            m.setattr(sys, "stdin", io.StringIO(stdin))
            capsys.readouterr()
            args = build_parser().parse_args(list(argv))
            code = args.func(args)
            out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def _one_error_line(done: Done, *fragments: str) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    database = f"sqlite:///{tmp_path}/ketnoi.db"
    store = open_store(database)
    store.migrate()
    store.close()
    yield database


def _verify(url: str, token: str, *, audience: str = AUD, issuer: str = ISS) -> AccessClaims:
    store = open_store(url)
    try:
        ring = KeyStore(store).ring(time.time())
    finally:
        store.close()
    return verify_access_token(
        token.strip(), ring, issuer=issuer, audience=audience, now=time.time(), cache=VerifiedTokenCache()
    )


def _add_user(cli: Cli, url: str, username: str, role: str, *links: str) -> str:
    add = ("users", "add", "--database", url, "--username", username, "--role", role, *links, "--password-stdin")
    return cli(*add, stdin=GOOD + "\n").ok()


def _client_id(output: str) -> str:
    return output.split("client_id: ")[1].split()[0]


def _rows(listing: str) -> list[list[str]]:
    return [line.split() for line in listing.splitlines()[1:]]


# ---- users (as a process) ----------------------------------------------------------------------------


def test_users_add_with_password_stdin(url: str) -> None:
    done = _ketnoi(
        *("users", "add", "--database", url, "--username", "Lan", "--role", "clinician"),
        *("--organization", "Organization/tram-1", "--password-stdin"),
        stdin=GOOD + "\nsecond line is ignored\n",
    )
    assert done.returncode == 0, done.stderr
    assert GOOD not in " ".join(done.args)  # the password never was on the command line
    assert "lan (clinician, Organization/tram-1" in done.stdout and "TOTP" not in done.stdout
    store = open_store(url)
    try:
        assert Accounts(store).sign_in("lan", GOOD, None, time.time()).user is not None
    finally:
        store.close()


def test_a_weak_password_is_refused_in_one_line(url: str) -> None:
    add = ("users", "add", "--database", url, "--username", "lan", "--role", "admin", "--password-stdin")
    done = _ketnoi(*add, stdin="lan123\n")
    _one_error_line(done, "at least 12 characters", "must not be or contain the user name", "ít nhất 12 ký tự")
    assert done.stdout == ""
    assert _rows(_ok("users", "list", "--database", url)) == []


def test_a_password_on_the_command_line_is_refused(url: str) -> None:
    done = _ketnoi("users", "add", "--database", url, "--username", "lan", "--role", "admin", "--password", GOOD)
    assert done.returncode == 2 and "unrecognized arguments" in done.stderr


def test_no_option_takes_a_password_value() -> None:
    users = build_parser()._subparsers._group_actions[0].choices["users"]  # type: ignore[union-attr]
    for name in ("add", "reset-password"):
        parser = users._subparsers._group_actions[0].choices[name]
        flags = [a for a in parser._actions if any("password" in o for o in a.option_strings)]
        assert [a.option_strings for a in flags] == [["--password-stdin"]]
        assert all(a.nargs == 0 for a in flags)  # a switch, never a value


# ---- users (in process) ------------------------------------------------------------------------------


def test_admins_see_their_totp_secret_once(cli: Cli, url: str) -> None:
    out = _add_user(cli, url, "root", "admin")
    assert "otpauth://totp/ketnoi:root?secret=" in out
    secret = out.split("secret=")[1].split("&")[0]
    listing = cli("users", "list", "--database", url).ok()
    assert secret not in listing and "argon2" not in listing
    assert _rows(listing)[0][:6] == ["root", "admin", "-", "-", "yes", "active"]


def test_the_password_prompt_asks_twice(cli: Cli, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([GOOD, GOOD, GOOD, GOOD + "!"])
    monkeypatch.setattr(commands.getpass, "getpass", lambda prompt: next(answers))
    assert cli("users", "add", "--database", url, "--username", "lan", "--role", "admin").returncode == 0
    done = cli("users", "add", "--database", url, "--username", "mai", "--role", "admin")
    assert _one_error_line(done) == "error: The two passwords differ. / Hai mật khẩu không khớp."
    assert [row[0] for row in _rows(cli("users", "list", "--database", url).ok())] == ["lan"]


def test_disable_enable_and_reset_password(cli: Cli, url: str) -> None:
    _add_user(cli, url, "lan", "clinician", "--organization", "Organization/1")
    cli("users", "disable", "--database", url, "--username", "LAN").ok()
    assert _rows(cli("users", "list", "--database", url).ok())[0][5] == "disabled"
    cli("users", "enable", "--database", url, "--username", "lan").ok()
    new = "trống đồng Đông Sơn 1924"
    cli("users", "reset-password", "--database", url, "--username", "lan", "--password-stdin", stdin=new + "\n").ok()
    store = open_store(url)
    try:
        accounts = Accounts(store)
        assert accounts.sign_in("lan", new, None, time.time()).user is not None
        assert accounts.sign_in("lan", GOOD, None, time.time()).reason == "bad-password"
    finally:
        store.close()
    _one_error_line(cli("users", "disable", "--database", url, "--username", "ghost"), "No user named 'ghost'")
    empty = cli("users", "reset-password", "--database", url, "--username", "lan", "--password-stdin", stdin="\n")
    _one_error_line(empty, "No password on the first line of stdin")


def test_reset_totp(cli: Cli, url: str) -> None:
    _add_user(cli, url, "lan", "clinician", "--organization", "Organization/1")
    out = cli("users", "reset-totp", "--database", url, "--username", "LAN").ok()
    assert "otpauth://totp/ketnoi:lan?secret=" in out
    assert _rows(cli("users", "list", "--database", url).ok())[0][4] == "yes"


# ---- clients -----------------------------------------------------------------------------------------


def test_clients_add_list_revoke(url: str, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [ECKey.generate_key("P-256", private=True).as_dict(private=False, kid="k1")]}))
    backend = _ok(
        "clients", "add", "--database", url, "--name", "Sở Y tế", "--scope", "system/*.rs", "--jwks", str(jwks)
    )
    assert "client_secret" not in backend
    app = "https://emr.example.vn/cb"
    confidential = _ok(
        *("clients", "add", "--database", url, "--name", "EMR", "--scope", "user/*.cruds openid"),
        *("--secret", "--redirect-uri", app),
    )
    backend_id, emr_id = _client_id(backend), _client_id(confidential)
    secret = confidential.split("client_secret: ")[1].split()[0]
    listing = _ok("clients", "list", "--database", url)
    assert secret not in listing
    assert listing.splitlines()[0].split() == ["CLIENT_ID", "KIND", "STATE", "CREATED", "NAME", "SCOPE"]
    rows = {row[0]: row for row in _rows(listing)}
    assert rows[backend_id][1:3] == ["backend", "active"] and rows[emr_id][1:3] == ["confidential", "active"]
    store = open_store(url)
    try:
        assert Clients(store).verify_secret(emr_id, secret) is not None
    finally:
        store.close()
    assert "revoked" in _ok("clients", "revoke", "--database", url, "--client-id", emr_id)
    rows = {row[0]: row for row in _rows(_ok("clients", "list", "--database", url))}
    assert rows[emr_id][2] == "revoked" and rows[backend_id][2] == "active"


def test_a_public_client(cli: Cli, url: str) -> None:
    add = ("clients", "add", "--database", url, "--name", "SPA", "--scope", "user/*.rs", "--public")
    out = cli(*add, "--redirect-uri", "http://localhost:3000/cb").ok()
    assert "client_secret" not in out
    assert _rows(cli("clients", "list", "--database", url).ok())[0][:3] == [_client_id(out), "public", "active"]


def test_clients_add_refusals_are_one_line(cli: Cli, url: str, tmp_path: Path) -> None:
    base = ("clients", "add", "--database", url, "--name", "x")
    _one_error_line(cli(*base, "--scope", "user/*.rs", "--public"), "needs at least one redirect URI")
    _one_error_line(cli(*base, "--scope", "user/*.rx", "--public", "--redirect-uri", "https://a/cb"), "user/*.rx")
    _one_error_line(cli(*base, "--scope", "system/*.rs", "--jwks-url", "http://keys.example/jwks"), "https")
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [ECKey.generate_key("P-256", private=True).as_dict(private=True, kid="a")]}))
    _one_error_line(cli(*base, "--scope", "system/*.rs", "--jwks", str(private)), "private key")
    _one_error_line(cli(*base, "--scope", "system/*.rs", "--jwks", str(tmp_path / "missing.json")), "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    _one_error_line(cli(*base, "--scope", "system/*.rs", "--jwks", str(tmp_path / "bad.json")), "error: Expecting")
    _one_error_line(cli("clients", "revoke", "--database", url, "--client-id", "nope"), "No client with id")
    assert _rows(cli("clients", "list", "--database", url).ok()) == []


# ---- keys --------------------------------------------------------------------------------------------


def test_keys_rotate_then_list_shows_two_keys(url: str) -> None:
    (first,) = _rows(_ok("keys", "list", "--database", url))  # made on first use
    new_kid = _ok("keys", "rotate", "--database", url).split(": ")[1].split()[0]
    header, *rows = _ok("keys", "list", "--database", url).splitlines()
    assert header.split() == ["KID", "ALG", "CREATED", "RETIRE_AFTER"]
    assert [row.split()[0] for row in rows] == [first[0], new_kid]
    assert rows[0].split()[-1] != "-" and rows[1].split()[-1] == "-"  # the old key retires, the new one signs


def test_keys_rotate_to_rs256(cli: Cli, url: str) -> None:
    cli("keys", "rotate", "--database", url, "--alg", "RS256").ok()
    assert [row[1] for row in _rows(cli("keys", "list", "--database", url).ok())] == ["RS256"]


# ---- token -------------------------------------------------------------------------------------------


def test_token_for_a_clinician(cli: Cli, url: str) -> None:
    _add_user(cli, url, "lan", "clinician", "--organization", "Organization/tram-1", "--fhir-user", "Practitioner/pr-1")
    scope = "user/Patient.rs system/*.rs patient/*.r"
    token = _ok("token", "issue", "--database", url, "--user", "lan", "--scope", scope)
    assert token.count("\n") == 1 and token.count(".") == 2  # the token alone
    claims = _verify(url, token)
    assert (claims.sub, claims.client_id, claims.scope) == ("lan", "ketnoi-cli", "user/Patient.rs")
    assert dict(claims.extra) == {
        "fhirUser": "Practitioner/pr-1",
        "organization": "Organization/tram-1",
        "role": "clinician",
    }
    assert claims.exp - claims.iat == 300


def test_a_patient_token_carries_the_patient(cli: Cli, url: str) -> None:
    _add_user(cli, url, "benh.nhan", "patient", "--patient", "Patient/p1")
    token = _ok("token", "issue", "--database", url, "--user", "benh.nhan", "--scope", "patient/*.rs user/*.rs")
    claims = _verify(url, token)
    assert claims.scope == "patient/*.rs"
    assert dict(claims.extra) == {"fhirUser": "Patient/p1", "patient": "p1", "role": "patient"}


def test_a_token_for_a_client(cli: Cli, url: str) -> None:
    add = ("clients", "add", "--database", url, "--name", "CDC", "--scope", "system/*.rs")
    client_id = _client_id(cli(*add, "--jwks-url", "https://cdc.example/jwks").ok())
    issue = ("token", "issue", "--database", url, "--client", client_id)
    token = cli(*issue, "--scope", "system/Observation.rs system/Patient.cud", "--lifetime", "60").ok()
    claims = _verify(url, token)
    assert (claims.sub, claims.client_id, claims.scope) == (client_id, client_id, "system/Observation.rs")
    assert dict(claims.extra) == {} and claims.exp - claims.iat == 60
    cli("clients", "revoke", "--database", url, "--client-id", client_id).ok()
    _one_error_line(cli(*issue, "--scope", "system/*.rs"), f"No active client '{client_id}'")


def test_a_patient_scope_needs_a_patient(cli: Cli, url: str) -> None:
    add = ("clients", "add", "--database", url, "--name", "app", "--scope", "patient/*.rs", "--public")
    client_id = _client_id(cli(*add, "--redirect-uri", "http://localhost:3000/cb").ok())
    done = cli("token", "issue", "--database", url, "--client", client_id, "--scope", "patient/Observation.rs")
    _one_error_line(done, "patient/ scopes need a patient user")


def test_audience_and_issuer_follow_the_settings(cli: Cli, url: str) -> None:
    _add_user(cli, url, "root", "admin")
    issue = ("token", "issue", "--database", url, "--user", "root", "--scope", "system/*.rs")
    public = {"KETNOI_BASE_URL": "https://fhir.soyte.example.vn/fhir/"}
    base = "https://fhir.soyte.example.vn"
    claims = _verify(url, cli(*issue, env=public).ok(), audience=f"{base}/fhir", issuer=f"{base}/auth")
    assert claims.scope == "system/*.rs"
    listening = {"KETNOI_HOST": "10.0.0.5", "KETNOI_PORT": "9090"}
    _verify(
        url, cli(*issue, env=listening).ok(), audience="http://10.0.0.5:9090/fhir", issuer="http://10.0.0.5:9090/auth"
    )
    chosen = cli(*issue, "--audience", "https://other.example/fhir", env=public).ok()
    _verify(url, chosen, audience="https://other.example/fhir", issuer="https://other.example/auth")


def test_token_refusals_are_one_line(cli: Cli, url: str) -> None:
    _add_user(cli, url, "lan", "clinician", "--organization", "Organization/1")
    issue = ("token", "issue", "--database", url)
    _one_error_line(cli(*issue, "--user", "ghost", "--scope", "user/*.rs"), "No active user 'ghost'")
    _one_error_line(cli(*issue, "--user", "lan", "--scope", "system/*.rs"), "None of the requested scopes")
    _one_error_line(cli(*issue, "--user", "lan", "--scope", "user/*.rs bogus"), "Invalid scopes: bogus")
    for lifetime in ("0", "3601"):
        _one_error_line(
            cli(*issue, "--user", "lan", "--scope", "user/*.rs", "--lifetime", lifetime), "1 to 3600 seconds"
        )
    cli("users", "disable", "--database", url, "--username", "lan").ok()
    _one_error_line(cli(*issue, "--user", "lan", "--scope", "user/*.rs"), "No active user 'lan'")


# ---- every command: the database ----------------------------------------------------------------


def test_an_outdated_schema_is_one_line(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    expected = ("schema is at version 0", "run `ketnoi migrate`", "hãy chạy `ketnoi migrate`")
    _one_error_line(_ketnoi("users", "list", "--database", url), *expected)
    for command in (("clients", "list"), ("keys", "rotate"), ("token", "issue", "--user", "x", "--scope", "user/*.rs")):
        _one_error_line(cli(*command, "--database", url), *expected)


def test_the_database_comes_from_the_environment(cli: Cli, url: str) -> None:
    _add_user(cli, url, "lan", "admin")
    assert "lan" in cli("users", "list", env={"KETNOI_DATABASE": url}).ok()
    _one_error_line(cli("users", "list", "--database", "mysql://db/k"), "Unsupported database URL")


def test_fhir_base_and_issuer_rule() -> None:
    assert fhir_base(Settings()) == "http://127.0.0.1:8080/fhir"
    assert fhir_base(Settings(host="0.0.0.0", port=80)) == "http://0.0.0.0:80/fhir"
    assert fhir_base(Settings(base_url="https://a.vn/fhir/")) == "https://a.vn/fhir"
    assert issuer_for("https://a.vn/fhir") == "https://a.vn/auth"
    assert issuer_for("https://a.vn/fhir/") == "https://a.vn/auth"
    assert issuer_for("https://a.vn/r4") == "https://a.vn/r4/auth"


# ---- organizations (issue 10) ------------------------------------------------------------------------


def test_a_client_for_an_organization_gets_it_in_its_tokens(cli: Cli, url: str) -> None:
    add = ("clients", "add", "--database", url, "--name", "LIS", "--scope", "system/*.cruds")
    out = cli(*add, "--jwks-url", "https://lis.example/jwks", "--organization", "Organization/bv-1").ok()
    token = cli("token", "issue", "--database", url, "--client", _client_id(out), "--scope", "system/*.rs").ok()
    assert dict(_verify(url, token).extra) == {"organization": "Organization/bv-1"}
    public = ("--public", "--redirect-uri", "http://localhost:3000/cb", "--organization", "Organization/bv-1")
    _one_error_line(cli(*add, *public), "Only backend and confidential")


def test_facility_and_national_administrators(cli: Cli, url: str) -> None:
    out = _add_user(cli, url, "qt.bv1", "facility-admin", "--organization", "Organization/bv-1")
    assert "TOTP secret" in out  # an administrator: a second factor
    token = cli("token", "issue", "--database", url, "--user", "qt.bv1", "--scope", "user/*.rs").ok()
    assert _verify(url, token).extra["organization"] == "Organization/bv-1"
    # An admin is national: an organization given to one is noted as unused, and not in its tokens.
    out = _add_user(cli, url, "root", "admin", "--organization", "Organization/bv-1")
    assert "national administrator" in out
    token = cli("token", "issue", "--database", url, "--user", "root", "--scope", "user/*.rs").ok()
    assert "organization" not in _verify(url, token).extra
