"""Tables and explicit, numbered migrations for both SQL dialects.

Design (see docs/adr/0003-storage-schema.md):
- ``resource_history`` is append-only: every version ever written, with a global ``seq``.
- ``resource`` points at the current version of each (type, id) and says whether it is deleted.
- ``idx_*`` hold the search index rows of current, non-deleted versions, one table per search
  parameter type, shared by all resource types.
Text columns that are range-scanned are ``COLLATE "C"`` on PostgreSQL so that prefix ranges
follow code-point order, as they do in SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketnoi.store.policy_sql import read_facts_function, row_facts_function

# Column lists of the index tables, in IndexRows order (after resource_type, resource_id).
INDEX_COLUMNS: dict[str, tuple[str, ...]] = {
    "string": ("param", "norm", "exact"),
    "token": ("param", "system", "code", "text"),
    "date": ("param", "low", "high"),
    "number": ("param", "value", "low", "high"),
    "quantity": ("param", "system", "code", "value", "low", "high"),
    "reference": ("param", "target_type", "target_id", "url", "version"),
    "uri": ("param", "uri"),
    "text": ("param", "body"),  # migration 4
}
# The index tables of migration 1 (later kinds are created by their own migration).
_INITIAL_KINDS = ("string", "token", "date", "number", "quantity", "reference", "uri")

_REAL_COLUMNS = {"low", "high", "value"}
_LOOKUP_INDEXES: dict[str, tuple[str, ...]] = {
    "string": ("resource_type", "param", "norm"),
    "token": ("resource_type", "param", "code", "system"),
    "date": ("resource_type", "param", "low", "high"),
    "number": ("resource_type", "param", "value"),
    "quantity": ("resource_type", "param", "code", "value"),
    "reference": ("resource_type", "param", "target_id", "target_type"),
    "uri": ("resource_type", "param", "uri"),
}


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def _index_table(kind: str, dialect: str) -> list[str]:
    text = 'TEXT COLLATE "C"' if dialect == "postgresql" else "TEXT"
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    cols = ", ".join(f"{c} {real if c in _REAL_COLUMNS else text}" for c in INDEX_COLUMNS[kind])
    table = f"idx_{kind}"
    lookup = ", ".join(_LOOKUP_INDEXES[kind])
    return [
        f"CREATE TABLE {table} (resource_type {text} NOT NULL, resource_id {text} NOT NULL, {cols})",
        f"CREATE INDEX {table}_lookup ON {table} ({lookup})",
        f"CREATE INDEX {table}_owner ON {table} (resource_type, resource_id)",
    ]


def _initial(dialect: str) -> tuple[str, ...]:
    pg = dialect == "postgresql"
    text = 'TEXT COLLATE "C"' if pg else "TEXT"
    seq = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if pg else "INTEGER PRIMARY KEY AUTOINCREMENT"
    real = "DOUBLE PRECISION" if pg else "REAL"
    boolean = "BOOLEAN" if pg else "INTEGER"
    content = "BYTEA" if pg else "BLOB"
    statements = [
        f"""CREATE TABLE resource_history (
            seq {seq},
            resource_type {text} NOT NULL,
            id {text} NOT NULL,
            version INTEGER NOT NULL,
            last_updated {real} NOT NULL,
            method TEXT NOT NULL,
            deleted {boolean} NOT NULL,
            content {content},
            UNIQUE (resource_type, id, version))""",
        "CREATE INDEX resource_history_updated ON resource_history (last_updated)",
        f"""CREATE TABLE resource (
            resource_type {text} NOT NULL,
            id {text} NOT NULL,
            version INTEGER NOT NULL,
            seq BIGINT NOT NULL,
            last_updated {real} NOT NULL,
            deleted {boolean} NOT NULL,
            PRIMARY KEY (resource_type, id))""",
        "CREATE INDEX resource_type_updated ON resource (resource_type, last_updated)",
    ]
    for kind in _INITIAL_KINDS:
        statements.extend(_index_table(kind, dialect))
    return tuple(statements)


def _jobs(dialect: str) -> tuple[str, ...]:
    """The durable job queue (``ketnoi.jobs``): one row per background job ($reindex, later $import).

    ``params`` and ``progress`` are JSON text; ``worker`` holds the job while ``lease_until`` (epoch
    seconds) is in the future, so a job whose runner died is resumed by another once it expires."""
    pg = dialect == "postgresql"
    ident = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if pg else "INTEGER PRIMARY KEY AUTOINCREMENT"
    real = "DOUBLE PRECISION" if pg else "REAL"
    return (
        f"""CREATE TABLE job (
            id {ident},
            kind TEXT NOT NULL,
            params TEXT NOT NULL,
            state TEXT NOT NULL,
            progress TEXT NOT NULL,
            error TEXT,
            worker TEXT,
            lease_until {real},
            created {real} NOT NULL,
            updated {real} NOT NULL)""",
        "CREATE INDEX job_state ON job (state, kind, id)",
    )


# Columns whose values are strongly correlated: PostgreSQL multiplies the selectivities of
# ``resource_type = ? AND param = ? AND code = ? AND system = ?`` as if independent and estimated
# 1,251 rows for a code that has 20,058 (200k resources), so ``_has`` on a frequent code hashed every
# match instead of walking the page in order (190 ms → 0.5 ms with these; docs/search.md).
_EXTENDED_STATISTICS: dict[str, tuple[str, ...]] = {
    "string": ("resource_type", "param"),
    "token": ("resource_type", "param", "code", "system"),
    "date": ("resource_type", "param"),
    "number": ("resource_type", "param"),
    "quantity": ("resource_type", "param", "code"),
    "reference": ("resource_type", "param", "target_type"),
    "uri": ("resource_type", "param"),
}


def _statistics(dialect: str) -> tuple[str, ...]:
    """Multi-column statistics on the index tables (PostgreSQL; SQLite has no equivalent and
    needs none: its ANALYZE samples whole index prefixes). ANALYZE fills them at once."""
    if dialect != "postgresql":
        return ()
    statements: list[str] = []
    for kind, columns in _EXTENDED_STATISTICS.items():
        statements.append(
            f"CREATE STATISTICS IF NOT EXISTS idx_{kind}_stats (mcv, dependencies) ON {', '.join(columns)} "
            f"FROM idx_{kind}"
        )
    statements.append(f"ANALYZE {', '.join(f'idx_{kind}' for kind in _EXTENDED_STATISTICS)}")
    return tuple(statements)


def _full_text(dialect: str) -> tuple[str, ...]:
    """``idx_text``: one row per (resource, ``_text`` | ``_content``) holding the folded text
    (``ketnoi.search.extract_text``, at most 64k characters). Searched with ``body LIKE '%word%'``
    per word: on SQLite (and on PostgreSQL without pg_trgm) that reads every row of the searched
    types and parameter (``idx_text_lookup`` narrows to them, not to the words). On PostgreSQL a
    trigram GIN index makes the words of 3+ characters an index lookup, when the ``pg_trgm``
    extension can be created (it is "trusted" from PostgreSQL 13: a database owner may). If it
    cannot (not installed, no privilege) the migration still succeeds, without the index; create
    the extension and ``CREATE INDEX idx_text_trgm ON idx_text USING gin (body gin_trgm_ops)``
    later to get it. No B-tree index covers ``body`` (64k values exceed a B-tree entry)."""
    pg = dialect == "postgresql"
    text = 'TEXT COLLATE "C"' if pg else "TEXT"
    statements = [
        f"CREATE TABLE idx_text (resource_type {text} NOT NULL, resource_id {text} NOT NULL, param {text}, "
        f"body {text})",
        "CREATE INDEX idx_text_lookup ON idx_text (resource_type, param)",
        "CREATE INDEX idx_text_owner ON idx_text (resource_type, resource_id)",
    ]
    if pg:
        # No "%" or "?" here: the statement goes through the driver's placeholder handling.
        statements.append(
            """DO $$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
                    BEGIN
                        CREATE EXTENSION IF NOT EXISTS pg_trgm;
                        CREATE INDEX idx_text_trgm ON idx_text USING gin (body gin_trgm_ops);
                    EXCEPTION WHEN OTHERS THEN
                        NULL;  -- no privilege or a broken install: LIKE scans the type's rows instead
                    END;
                END IF;
            END $$"""
        )
    return tuple(statements)


def _store_state(dialect: str) -> tuple[str, ...]:
    """``store_state``: small facts the store keeps about itself, by name (e.g. the last history
    ``seq`` at which SQLite's statistics were taken: ketnoi.store.statistics)."""
    text = 'TEXT COLLATE "C"' if dialect == "postgresql" else "TEXT"
    return (f"CREATE TABLE store_state (name {text} PRIMARY KEY, value {text} NOT NULL)",)


def _security(dialect: str) -> tuple[str, ...]:
    """``security_record``: accounts, OAuth clients, signing keys, authorization codes, refresh
    tokens and used assertion ids, one JSON value per (kind, key) (ketnoi.security). Secrets are
    stored only as hashes (passwords: Argon2id; codes and tokens: SHA-256 as the key). ``expires``
    (epoch seconds, NULL = never) lets short-lived records be purged and ignored once past."""
    pg = dialect == "postgresql"
    text = 'TEXT COLLATE "C"' if pg else "TEXT"
    real = "DOUBLE PRECISION" if pg else "REAL"
    return (
        f"""CREATE TABLE security_record (
            kind {text} NOT NULL,
            key {text} NOT NULL,
            value TEXT NOT NULL,
            expires {real},
            updated {real} NOT NULL,
            PRIMARY KEY (kind, key))""",
        "CREATE INDEX security_record_expires ON security_record (expires)",
    )


def _code_statistics(dialect: str) -> tuple[str, ...]:
    """PostgreSQL: 500 most-common values (not 100) for token codes. With 100, a code that is common
    but not among the 100 commonest (cholesterol, 2093-3, at 189k Synthea resources: 2,475 rows)
    was estimated at 99 rows, so a patient's cholesterol results were searched from every
    cholesterol result instead of from the patient (25 ms; 9 ms from the patient)."""
    if dialect != "postgresql":
        return ()
    return (
        "ALTER TABLE idx_token ALTER COLUMN code SET STATISTICS 500",
        "ALTER STATISTICS idx_token_stats SET STATISTICS 500",
    )


_AUDIT_TABLES = ("audit_log", "audit_checkpoint")


def _audit(dialect: str) -> tuple[str, ...]:
    """``audit_log``: the hash-chained audit trail (ADR 0013, ``ketnoi.store.auditlog``). ``seq`` is
    given by the appender (1, 2, 3... without gaps, not an identity: a gap must mean a deletion);
    ``event`` holds the AuditEvent JSON as hashed; ``patient`` (a bare Patient id) serves the
    patient's own view. ``audit_checkpoint``: signed statements of the head (compact JWS).

    Both are append-only at the database: triggers refuse UPDATE and DELETE (and TRUNCATE on
    PostgreSQL), and on PostgreSQL those privileges are revoked from everyone, the migrating role
    included. The owner can undo both (``GRANT``, ``DISABLE TRIGGER``): they stop accidents and
    casual tampering through the application's credentials; the hash chain and checkpoints kept
    off the machine are what detect deliberate tampering. No "%" or "?" in the PostgreSQL
    statements: they pass through the driver's placeholder handling."""
    pg = dialect == "postgresql"
    text = 'TEXT COLLATE "C"' if pg else "TEXT"
    big = "BIGINT" if pg else "INTEGER"
    real = "DOUBLE PRECISION" if pg else "REAL"
    blob = "BYTEA" if pg else "BLOB"
    statements = [
        f"""CREATE TABLE audit_log (
            seq {big} PRIMARY KEY,
            recorded {real} NOT NULL,
            request_id TEXT,
            patient {text},
            event {blob} NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL)""",
        "CREATE INDEX audit_log_patient ON audit_log (patient, seq)",
        f"""CREATE TABLE audit_checkpoint (
            seq {big} PRIMARY KEY,
            hash TEXT NOT NULL,
            recorded {real} NOT NULL,
            signature TEXT NOT NULL)""",
        # The row PostgreSQL appenders lock to take turns (ketnoi.store.audit_sql); unused by SQLite.
        "INSERT INTO store_state (name, value) VALUES ('audit_head', '')",
    ]
    if not pg:
        for table in _AUDIT_TABLES:
            for action in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
        return tuple(statements)
    statements.append(
        """CREATE FUNCTION ketnoi_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only';
        END $$"""
    )
    for table in _AUDIT_TABLES:
        statements += [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ketnoi_audit_append_only()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ketnoi_audit_append_only()",
        ]
    tables = ", ".join(_AUDIT_TABLES)
    statements += [
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {tables} FROM PUBLIC",
        # The application's own role owns the tables: its privileges go too, until someone re-grants them.
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {tables} FROM CURRENT_USER",
    ]
    return tuple(statements)


def _owner_org(dialect: str) -> tuple[str, ...]:
    """``org``: the organization ("Organization/ID") on whose behalf each version was written, set
    by the server from the caller's context, never from the resource (NULL: no organization, i.e.
    national administrators, operators, the server itself, or a version older than this migration).
    On the history row: whom each version was written for. On the current pointer: the owner of
    the resource, the organization of its latest version that records one (a version written for
    none leaves it), one column of ``resource`` for the policy's queries (ADR 0014). Adding a
    nullable column without a default rewrites nothing on either dialect."""
    text = 'TEXT COLLATE "C"' if dialect == "postgresql" else "TEXT"
    return (
        f"ALTER TABLE resource_history ADD COLUMN org {text}",
        f"ALTER TABLE resource ADD COLUMN org {text}",
    )


def _owner_index(dialect: str) -> tuple[str, ...]:
    """``resource (resource_type, org)``: what an organization owns of a type, for the access
    policy (ADR 0017): a provincial manager's counts (``org IN`` the province's organizations) are
    read from this index alone, and a facility's own resources are found without reading others'."""
    del dialect
    return ("CREATE INDEX resource_owner ON resource (resource_type, org)",)


def _patient_facts_function(dialect: str) -> tuple[str, ...]:
    """PostgreSQL: ``ketnoi_patient_facts``, the access policy's question about one patient
    (``ketnoi.search.reach.patient_facts``, the same query for SQLite; a test compares them) with
    a plan made once per connection. Every statement is planned at each run otherwise
    (``plan_cache_mode=force_custom_plan``, for the skewed searches), and planning this one took
    ~1 ms for 0.2 ms of execution, on every read of a facility's user; its lookups are all
    equalities on indexed keys, for which a generic plan is as good."""
    if dialect != "postgresql":
        return ()
    return (
        """CREATE FUNCTION ketnoi_patient_facts(
            p_patient TEXT, p_org TEXT, p_cutoff DOUBLE PRECISION, p_glass TEXT, p_now DOUBLE PRECISION)
        RETURNS TABLE (f_kind TEXT, f_a TEXT, f_b TEXT, f_c TEXT) LANGUAGE plpgsql STABLE
        SET plan_cache_mode = force_generic_plan AS $$
        BEGIN
            RETURN QUERY
            SELECT 'care'::TEXT, er.org::TEXT,
                CASE WHEN EXISTS (SELECT 1 FROM idx_date cd WHERE cd.resource_type = ce.resource_type
                        AND cd.resource_id = ce.resource_id AND cd.param = 'date' AND cd.high >= p_cutoff)
                    AND NOT EXISTS (SELECT 1 FROM idx_token cs WHERE cs.resource_type = ce.resource_type
                        AND cs.resource_id = ce.resource_id AND cs.param = 'status'
                        AND cs.code IN ('cancelled', 'entered-in-error'))
                THEN 'live' ELSE '' END::TEXT,
                CASE WHEN EXISTS (SELECT 1 FROM idx_reference sp WHERE sp.resource_type = ce.resource_type
                        AND sp.resource_id = ce.resource_id AND sp.param IN ('service-provider', 'organization')
                        AND sp.target_id = p_org AND sp.target_type = 'Organization')
                THEN 'names' ELSE '' END::TEXT
            FROM idx_reference ce JOIN resource er ON er.resource_type = ce.resource_type AND er.id = ce.resource_id
            WHERE ce.resource_type IN ('Encounter', 'EpisodeOfCare') AND ce.param = 'patient'
                AND ce.target_id = p_patient AND ce.target_type = 'Patient'
            UNION ALL
            SELECT ct.param::TEXT, ct.system::TEXT, ct.code::TEXT, ''::TEXT
            FROM idx_reference cp JOIN idx_token ct ON ct.resource_type = cp.resource_type
                AND ct.resource_id = cp.resource_id
            WHERE cp.resource_type = 'Consent' AND cp.param = 'patient' AND cp.target_id = p_patient
                AND cp.target_type = 'Patient' AND ct.param IN ('~consent-permit', '~consent-deny')
            UNION ALL
            SELECT 'glass'::TEXT, s.key::TEXT, ''::TEXT, ''::TEXT FROM security_record s
            WHERE p_glass IS NOT NULL AND s.kind = p_glass AND s.key = p_patient
                AND (s.expires IS NULL OR s.expires > p_now);
        END
        $$""",
    )


def _patient_facts_exists(dialect: str) -> tuple[str, ...]:
    """PostgreSQL: ``ketnoi_patient_facts`` answers the care relation with one row when some
    Encounter or EpisodeOfCare makes one (stopping at the first), instead of a row with three
    probes for every Encounter of the patient (``ketnoi.search.reach._patient_facts``, as SQLite)."""
    if dialect != "postgresql":
        return ()
    return (
        """CREATE OR REPLACE FUNCTION ketnoi_patient_facts(
            p_patient TEXT, p_org TEXT, p_cutoff DOUBLE PRECISION, p_glass TEXT, p_now DOUBLE PRECISION)
        RETURNS TABLE (f_kind TEXT, f_a TEXT, f_b TEXT, f_c TEXT) LANGUAGE plpgsql STABLE
        SET plan_cache_mode = force_generic_plan AS $$
        BEGIN
            RETURN QUERY
            SELECT 'care'::TEXT, ('Organization/' || p_org)::TEXT, 'live'::TEXT, 'names'::TEXT
            WHERE EXISTS (
                SELECT 1 FROM idx_reference ce
                JOIN resource er ON er.resource_type = ce.resource_type AND er.id = ce.resource_id
                WHERE ce.resource_type IN ('Encounter', 'EpisodeOfCare') AND ce.param = 'patient'
                    AND ce.target_id = p_patient AND ce.target_type = 'Patient'
                    AND (er.org = 'Organization/' || p_org OR (er.org IS NULL AND EXISTS (
                        SELECT 1 FROM idx_reference sp WHERE sp.resource_type = ce.resource_type
                            AND sp.resource_id = ce.resource_id AND sp.param IN ('service-provider', 'organization')
                            AND sp.target_id = p_org AND sp.target_type = 'Organization')))
                    AND EXISTS (SELECT 1 FROM idx_date cd WHERE cd.resource_type = ce.resource_type
                        AND cd.resource_id = ce.resource_id AND cd.param = 'date' AND cd.high >= p_cutoff)
                    AND NOT EXISTS (SELECT 1 FROM idx_token cs WHERE cs.resource_type = ce.resource_type
                        AND cs.resource_id = ce.resource_id AND cs.param = 'status'
                        AND cs.code IN ('cancelled', 'entered-in-error')))
            UNION ALL
            SELECT ct.param::TEXT, ct.system::TEXT, ct.code::TEXT, ''::TEXT
            FROM idx_reference cp JOIN idx_token ct ON ct.resource_type = cp.resource_type
                AND ct.resource_id = cp.resource_id
            WHERE cp.resource_type = 'Consent' AND cp.param = 'patient' AND cp.target_id = p_patient
                AND cp.target_type = 'Patient' AND ct.param IN ('~consent-permit', '~consent-deny')
            UNION ALL
            SELECT 'glass'::TEXT, s.key::TEXT, ''::TEXT, ''::TEXT FROM security_record s
            WHERE p_glass IS NOT NULL AND s.kind = p_glass AND s.key = p_patient
                AND (s.expires IS NULL OR s.expires > p_now);
        END
        $$""",
    )


def _patient_facts_periods(dialect: str) -> tuple[str, ...]:
    """PostgreSQL: ``ketnoi_patient_facts`` gives each Consent rule's period (``idx_token.text``,
    ``extract_consent.period_text``) so that the policy keeps the rules in force now. The function
    of migration 13 with that one column changed (migrations never change once applied, so its
    text is a fixed base)."""
    if dialect != "postgresql":
        return ()
    (base,) = _patient_facts_exists(dialect)
    changed = base.replace(
        "SELECT ct.param::TEXT, ct.system::TEXT, ct.code::TEXT, ''::TEXT",
        ("SELECT ct.param::TEXT, ct.system::TEXT, ct.code::TEXT, ct.text::TEXT"),
    )
    assert changed != base
    return (changed,)


def _audit_append_function(dialect: str) -> tuple[str, ...]:
    """PostgreSQL: ``ketnoi_audit_append`` locks the log's head, chains and inserts the records and
    moves the head, in one statement (ketnoi.store.audit_sql). Each statement is a round trip of
    about 0.25 ms on a small VM, and a read's audit event paid four of them before its answer.
    The hash is the one ``ketnoi.store.auditlog.chain_hash`` computes (the time is given as the
    text Python hashes, ``repr`` of the float, which PostgreSQL stores as exactly that float)."""
    if dialect != "postgresql":
        return ()
    return (
        """CREATE FUNCTION ketnoi_audit_append(recorded TEXT[], request_ids TEXT[], patients TEXT[], events BYTEA[])
        RETURNS BIGINT LANGUAGE plpgsql AS $$
        DECLARE
            head TEXT;
            s BIGINT;
            h TEXT;
            next_hash TEXT;
        BEGIN
            SELECT value INTO head FROM store_state WHERE name = 'audit_head' FOR UPDATE;
            IF head IS NULL THEN
                RAISE EXCEPTION 'store_state row audit_head is missing';
            END IF;
            IF head = '' THEN
                SELECT a.seq, a.hash INTO s, h FROM audit_log a ORDER BY a.seq DESC LIMIT 1;
                IF s IS NULL THEN
                    s := 0;
                    h := repeat('0', 64);
                END IF;
            ELSE
                s := split_part(head, ' ', 1)::BIGINT;
                h := split_part(head, ' ', 2);
            END IF;
            FOR i IN 1 .. coalesce(array_length(events, 1), 0) LOOP
                s := s + 1;
                next_hash := encode(sha256(convert_to(
                    h || E'\n' || s::TEXT || E'\n' || recorded[i] || E'\n' || coalesce(request_ids[i], '')
                    || E'\n' || coalesce(patients[i], '') || E'\n', 'UTF8') || events[i]), 'hex');
                INSERT INTO audit_log (seq, recorded, request_id, patient, event, prev_hash, hash)
                VALUES (s, recorded[i]::DOUBLE PRECISION, request_ids[i], patients[i], events[i], h, next_hash);
                h := next_hash;
            END LOOP;
            UPDATE store_state SET value = s::TEXT || ' ' || h WHERE name = 'audit_head';
            RETURN s;
        END
        $$""",
    )


def _audit_append_linear(dialect: str) -> tuple[str, ...]:
    """PostgreSQL: ``ketnoi_audit_append`` walks its arrays with one ``unnest`` instead of
    subscripting them. ``events[i]`` on an array of variable-length elements (bytea, text) scans the
    array from its start, so a batch of n records cost O(n²): 41,813 download events of one export
    file ran over ten minutes at full CPU (bench/export.py) where this takes about a second. Same
    arguments, same hashes (``ketnoi.store.auditlog.chain_hash``), same result."""
    if dialect != "postgresql":
        return ()
    return (
        """CREATE OR REPLACE FUNCTION ketnoi_audit_append(
            recorded TEXT[], request_ids TEXT[], patients TEXT[], events BYTEA[])
        RETURNS BIGINT LANGUAGE plpgsql AS $$
        DECLARE
            head TEXT;
            s BIGINT;
            h TEXT;
            next_hash TEXT;
            r RECORD;
        BEGIN
            SELECT value INTO head FROM store_state WHERE name = 'audit_head' FOR UPDATE;
            IF head IS NULL THEN
                RAISE EXCEPTION 'store_state row audit_head is missing';
            END IF;
            IF head = '' THEN
                SELECT a.seq, a.hash INTO s, h FROM audit_log a ORDER BY a.seq DESC LIMIT 1;
                IF s IS NULL THEN
                    s := 0;
                    h := repeat('0', 64);
                END IF;
            ELSE
                s := split_part(head, ' ', 1)::BIGINT;
                h := split_part(head, ' ', 2);
            END IF;
            FOR r IN SELECT * FROM unnest(recorded, request_ids, patients, events) AS u(rec, rid, pat, ev) LOOP
                s := s + 1;
                next_hash := encode(sha256(convert_to(
                    h || E'\\n' || s::TEXT || E'\\n' || r.rec || E'\\n' || coalesce(r.rid, '')
                    || E'\\n' || coalesce(r.pat, '') || E'\\n', 'UTF8') || r.ev), 'hex');
                INSERT INTO audit_log (seq, recorded, request_id, patient, event, prev_hash, hash)
                VALUES (s, r.rec::DOUBLE PRECISION, r.rid, r.pat, r.ev, h, next_hash);
                h := next_hash;
            END LOOP;
            UPDATE store_state SET value = s::TEXT || ' ' || h WHERE name = 'audit_head';
            RETURN s;
        END
        $$""",
    )


def _subscriptions(dialect: str) -> tuple[str, ...]:
    """Subscriptions' delivery state (``ketnoi.subscriptions``, ADR 0025).

    ``subscription_state``: one row per Subscription, written in the same transaction as the
    resource: what the matcher needs (``spec`` JSON: type, criteria, channel, status) and whose
    rights it runs with (``owner``), and the relay's bookkeeping (last event number, consecutive
    failures, the next attempt after a back-off, the lease of the relay that holds it).
    ``subscription_event``: the outbox, one row per matched change, inserted in the writing
    transaction; the relay numbers the events (``number``) when it first takes them, so writers
    never contend on a counter, and marks them ``sent`` or ``dead`` (dead-letter)."""
    pg = dialect == "postgresql"
    text = 'TEXT COLLATE "C"' if pg else "TEXT"
    real = "DOUBLE PRECISION" if pg else "REAL"
    ident = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if pg else "INTEGER PRIMARY KEY AUTOINCREMENT"
    return (
        f"""CREATE TABLE subscription_state (
            subscription {text} PRIMARY KEY,
            spec TEXT NOT NULL,
            owner TEXT NOT NULL,
            events BIGINT NOT NULL,
            failures INTEGER NOT NULL,
            next_at {real} NOT NULL,
            worker TEXT,
            lease_until {real},
            last_sent {real},
            error TEXT,
            updated {real} NOT NULL)""",
        f"""CREATE TABLE subscription_event (
            seq {ident},
            subscription {text} NOT NULL,
            number BIGINT,
            recorded {real} NOT NULL,
            focus_type {text} NOT NULL,
            focus_id {text} NOT NULL,
            focus_version INTEGER NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            sent {real},
            error TEXT)""",
        "CREATE INDEX subscription_event_pending ON subscription_event (subscription, state, seq)",
        "CREATE UNIQUE INDEX subscription_event_number ON subscription_event (subscription, number)",
    )


def migrations(dialect: str) -> list[Migration]:
    """All migrations for a dialect, in order. Append new ones; never edit an applied one."""
    return [
        Migration(1, "initial schema: history, current pointer, index tables", _initial(dialect)),
        Migration(2, "job table for background jobs", _jobs(dialect)),
        Migration(3, "multi-column statistics on the index tables", _statistics(dialect)),
        Migration(4, "full-text index table idx_text (_text, _content)", _full_text(dialect)),
        Migration(5, "store_state: facts the store keeps about itself (planner statistics)", _store_state(dialect)),
        Migration(6, "security_record: accounts, clients, keys, codes and tokens", _security(dialect)),
        Migration(7, "PostgreSQL: 500 most-common values for token codes", _code_statistics(dialect)),
        Migration(8, "audit_log: the hash-chained audit trail", _audit(dialect)),
        Migration(9, "owner organization of each version: resource_history.org, resource.org", _owner_org(dialect)),
        Migration(10, "PostgreSQL: the audit append as one statement", _audit_append_function(dialect)),
        Migration(11, "index of what each organization owns: resource (resource_type, org)", _owner_index(dialect)),
        Migration(
            12, "PostgreSQL: the access policy's patient facts with a cached plan", _patient_facts_function(dialect)
        ),
        Migration(13, "PostgreSQL: the patient facts stop at the first care relation", _patient_facts_exists(dialect)),
        Migration(14, "PostgreSQL: the patient facts give each Consent rule's period", _patient_facts_periods(dialect)),
        Migration(15, "subscription_state and subscription_event: the Subscriptions' outbox", _subscriptions(dialect)),
        Migration(
            16, "PostgreSQL: the audit append walks its batch once (was quadratic)", _audit_append_linear(dialect)
        ),
        Migration(17, "PostgreSQL: a read's patients' policy facts beside its row", row_facts_function(dialect)),
        Migration(18, "PostgreSQL: a read and its policy facts with a plan made once", read_facts_function(dialect)),
    ]


SCHEMA_VERSION = max(m.version for m in migrations("sqlite"))
