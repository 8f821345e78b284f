"""Settings, read once from arguments and the environment (``KETNOI_*``). Imports nothing of ketnoi."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_DATABASE = "sqlite:///var/ketnoi.db"


class ConfigError(ValueError):
    """A setting that cannot work (e.g. an unsupported database URL); shown to the user as is."""


@dataclass(frozen=True, slots=True)
class Settings:
    database: str = DEFAULT_DATABASE
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str | None = None  # public FHIR base; derived from the request when None
    auth: str = "on"  # "off": an open server, for experiments on loopback only (ketnoi serve refuses otherwise)
    max_body_bytes: int = 10 * 1024 * 1024
    max_json_depth: int = 100
    strict: bool = True  # reject unknown elements (400) instead of warning
    # What a write must pass beyond the structural gate (ketnoi.app.WriteValidator, ADR 0020):
    # "strict" (invariant errors refuse it), "lenient" (they come back as warnings), "off"
    validation: str = "lenient"
    default_count: int = 20
    max_count: int = 1000
    max_bundle_entries: int = 10_000
    import_dir: str = "var/import"  # $import reads file: URLs only below this folder
    export_dir: str = "var/export"  # $export writes its NDJSON files below this folder, one folder per job
    export_keep_hours: float = 24.0  # a finished export's files are deleted (and its status 404) after this
    # A type's export output is split into files of at most this many resources (ADR 0024, decision 13)
    export_part_resources: int = 100_000
    # Sign-in form posts per client address: a burst, then this many a second (then 429).
    sign_in_burst: int = 10
    sign_in_per_s: float = 1.0
    # OAuth endpoint requests (token, revoke, introspect) per client address: a burst, then this many a second
    token_burst: int = 20
    token_per_s: float = 5.0
    # External OpenID Connect providers whose access tokens are trusted beside ours (ketnoi.security.oidc)
    oidc_issuers: tuple[str, ...] = ()
    # A signed checkpoint of the audit log at most this often while it grows (ketnoi.security.audit); 0: none
    audit_checkpoint_s: float = 300.0
    # Record an AuditEvent for every FHIR interaction (ketnoi.interactions.audit, ADR 0015): "on" | "off"
    audit: str = "on"
    # How long a read waits for its AuditEvent to be durable before it answers 503 instead
    audit_wait_s: float = 5.0
    # Read events: flush each group commit to disk (True) or let the database sync it (False:
    # kept through a server crash at once, through power loss within the next sync; ADR 0016).
    audit_reads_fsync: bool = False
    # Where read events wait on local disk for the log (ketnoi.store.audit_spool, ADR 0018): ""
    # beside the SQLite file or under var/audit-spool; "off": each read commits its own (ADR 0016)
    audit_spool: str = ""
    # A clinician reads another facility's data of a patient whose Encounter or EpisodeOfCare at
    # the clinician's facility ended at most this many days ago (ADR 0017)
    care_window_days: float = 30.0
    # How long a break-the-glass opening of a patient's record lasts
    break_glass_minutes: float = 60.0
    # Match every Patient created or changed against the registry in the background and link or send
    # to review (the patient index, docs/mpi.md); KETNOI_MPI_LINK=off leaves it to `ketnoi mpi dedupe`
    mpi_link: bool = True
    # The patient index's weights and thresholds written by `ketnoi mpi train`; "" = the shipped model
    mpi_model: str = ""
    # Patient/$merge moves every reference to the source onto the target (True), or leaves them on the
    # source, which then points to the target with a replaced-by link (False)
    merge_moves_references: bool = True
    # Subscriptions (ketnoi.subscriptions, ADR 0025). Where rest-hooks may go: networks and host names,
    # comma-separated; "" = public addresses only (never loopback, private, link-local or metadata)
    subscription_endpoints: str = ""
    subscription_retry_s: float = 2.0  # the first retry's wait; doubled after each failure
    subscription_retry_max_s: float = 600.0  # the longest wait between two attempts
    subscription_error_after: int = 3  # consecutive failures that turn a Subscription's status to error
    subscription_attempts: int = 10  # attempts of one notification before its events go to the dead letters
    subscription_max_payload: int = 1024 * 1024  # bytes: a larger full-resource notification goes id-only
    subscription_rate: float = 20.0  # notifications a second to one subscriber, at most
    subscription_keep_days: float = 7.0  # delivered and dead events are kept this long ($events)
    # Who sends rest-hooks: "process" (`ketnoi serve` starts `ketnoi relay` beside it: another
    # interpreter, so delivery does not take the API's interpreter lock; ingest with 100 subscriptions
    # measured -2 to +11 % slower, 19-31 % with "thread": docs/performance.md), "thread" (the server's
    # own relay thread), "off" (a `ketnoi relay` run elsewhere). Websockets are always sent by the
    # server that holds them.
    subscription_relay: str = "process"
    extra: dict[str, Any] = field(default_factory=dict)

    def public_base(self) -> str:
        """The FHIR base URL that tokens are for: ``base_url`` if set, else from the host and port
        the server listens on (never from a request's Host header)."""
        return (self.base_url or f"http://{self.host}:{self.port}/fhir").rstrip("/")

    def issuer(self) -> str:
        """Who issues this server's tokens (:func:`issuer_of` its public base)."""
        return issuer_of(self.public_base())

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def issuer_of(base: str) -> str:
    """The token issuer of a FHIR base: ``.../fhir`` → ``.../auth`` (else ``/auth`` appended)."""
    return base.rstrip("/").removesuffix("/fhir") + "/auth"


def _split(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated list (None when unset, so that ``with_`` keeps the default)."""
    items = tuple(item.strip() for item in (text or "").split(",") if item.strip())
    return items or None


def from_env(environ: dict[str, str] | None = None) -> Settings:
    """Settings from ``KETNOI_DATABASE``, ``KETNOI_HOST``, ``KETNOI_PORT``, ``KETNOI_MAX_BODY_BYTES``..."""
    env = os.environ if environ is None else environ
    s = Settings()
    return s.with_(
        database=env.get("KETNOI_DATABASE"),
        host=env.get("KETNOI_HOST"),
        port=int(env["KETNOI_PORT"]) if env.get("KETNOI_PORT") else None,
        base_url=env.get("KETNOI_BASE_URL"),
        import_dir=env.get("KETNOI_IMPORT_DIR"),
        export_dir=env.get("KETNOI_EXPORT_DIR"),
        export_keep_hours=_number(env.get("KETNOI_EXPORT_KEEP_HOURS"), "KETNOI_EXPORT_KEEP_HOURS"),
        export_part_resources=_count(env.get("KETNOI_EXPORT_PART_RESOURCES"), "KETNOI_EXPORT_PART_RESOURCES"),
        auth=env.get("KETNOI_AUTH"),
        max_body_bytes=int(env["KETNOI_MAX_BODY_BYTES"]) if env.get("KETNOI_MAX_BODY_BYTES") else None,
        strict=env["KETNOI_STRICT"].lower() not in ("0", "false", "no") if env.get("KETNOI_STRICT") else None,
        oidc_issuers=_split(env.get("KETNOI_OIDC_ISSUER")),
        audit=env.get("KETNOI_AUDIT"),
        validation=env.get("KETNOI_VALIDATION"),
        audit_reads_fsync=_flag(env.get("KETNOI_AUDIT_READS_FSYNC")),
        audit_spool=env.get("KETNOI_AUDIT_SPOOL"),
        care_window_days=_number(env.get("KETNOI_CARE_WINDOW_DAYS"), "KETNOI_CARE_WINDOW_DAYS"),
        break_glass_minutes=_number(env.get("KETNOI_BREAK_GLASS_MINUTES"), "KETNOI_BREAK_GLASS_MINUTES"),
        mpi_link=_flag(env.get("KETNOI_MPI_LINK")),
        mpi_model=env.get("KETNOI_MPI_MODEL"),
        merge_moves_references=_flag(env.get("KETNOI_MERGE_MOVES_REFERENCES")),
        subscription_endpoints=env.get("KETNOI_SUBSCRIPTION_ENDPOINTS"),
        subscription_retry_s=_number(env.get("KETNOI_SUBSCRIPTION_RETRY_S"), "KETNOI_SUBSCRIPTION_RETRY_S"),
        subscription_rate=_number(env.get("KETNOI_SUBSCRIPTION_RATE"), "KETNOI_SUBSCRIPTION_RATE"),
        subscription_relay=_choice(env.get("KETNOI_SUBSCRIPTION_RELAY"), "KETNOI_SUBSCRIPTION_RELAY", RELAYS),
    )


RELAYS = ("thread", "process", "off")


def _choice(text: str | None, name: str, allowed: tuple[str, ...]) -> str | None:
    if text is None or text == "":
        return None
    if text not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {text!r}")
    return text


def _number(text: str | None, name: str) -> float | None:
    """A positive number from the environment (None when unset)."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{name} must be a positive number, not {text!r}")
    return value


def _count(text: str | None, name: str) -> int | None:
    """A positive whole number from the environment (None when unset)."""
    value = _number(text, name)
    if value is not None and value != int(value):
        raise ConfigError(f"{name} must be a whole number, not {text!r}")
    return None if value is None else int(value)


def _flag(text: str | None) -> bool | None:
    """A yes/no environment variable (None when unset, so that ``with_`` keeps the default)."""
    return None if not text else text.lower() not in ("0", "false", "no", "off")
