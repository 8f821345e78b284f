"""PostgreSQL functions of the access policy (ADR 0017) kept out of ``schema`` for its size."""

from __future__ import annotations


def row_facts_function(dialect: str) -> tuple[str, ...]:
    """PostgreSQL: ``ketnoi_row_facts``, the policy facts of every patient of one resource row
    (``ketnoi_patient_facts`` of migrations 12-14, per patient), selected beside the row by a read
    (``ketnoi_read_facts`` since migration 18): one statement instead of the read and then the
    facts. A function, with a plan made once per connection, because the same subquery written
    into the read was planned at each run (``plan_cache_mode=force_custom_plan``) and cost more
    than the round trip it saved. Its value: an array of ``[patient, kind, a, b, c]`` (kind NULL
    for a patient with no fact), NULL when ``p_owner`` is the organization (the policy needs no
    patient then) or the row has no patient. The patients: the row itself when ``p_params`` is
    NULL (a Patient), else its references to Patients by those parameters."""
    if dialect != "postgresql":
        return ()
    return (
        """CREATE FUNCTION ketnoi_row_facts(
            p_type TEXT, p_id TEXT, p_owner TEXT, p_params TEXT[],
            p_org TEXT, p_cutoff DOUBLE PRECISION, p_glass TEXT, p_now DOUBLE PRECISION)
        RETURNS TEXT[] LANGUAGE plpgsql STABLE
        SET plan_cache_mode = force_generic_plan AS $$
        BEGIN
            IF p_owner IS NOT NULL AND p_owner = 'Organization/' || p_org THEN
                RETURN NULL;
            END IF;
            RETURN (
                SELECT array_agg(ARRAY[p.pid, f.f_kind, f.f_a, f.f_b, f.f_c])
                FROM (
                    SELECT p_id AS pid WHERE p_params IS NULL
                    UNION
                    SELECT pm.target_id FROM idx_reference pm
                    WHERE p_params IS NOT NULL AND pm.resource_type = p_type AND pm.resource_id = p_id
                        AND pm.param = ANY (p_params) AND pm.target_type = 'Patient' AND pm.target_id IS NOT NULL
                ) p
                LEFT JOIN LATERAL ketnoi_patient_facts(p.pid, p_org, p_cutoff, p_glass, p_now) f ON TRUE);
        END
        $$""",
    )


def read_facts_function(dialect: str) -> tuple[str, ...]:
    """PostgreSQL: ``ketnoi_read_facts``, the current version of one resource and
    ``ketnoi_row_facts`` beside it, as a function (``ketnoi.search.reach.read_with_facts``). The same
    statement written as a query is planned at every run (``plan_cache_mode=force_custom_plan``, the
    connection's setting for skewed searches); here the plan is made once per connection: the
    policy's cost of a read +0.30 -> +0.18 ms at 1.2M resources (ADR 0017, decision 3). The
    ``p_params`` are comma-joined (psycopg adapts a text faster than a list). Output names differ
    from the columns: in PL/pgSQL they are variables."""
    if dialect != "postgresql":
        return ()
    return (
        """CREATE FUNCTION ketnoi_read_facts(
            p_type TEXT, p_id TEXT, p_params TEXT,
            p_org TEXT, p_cutoff DOUBLE PRECISION, p_glass TEXT, p_now DOUBLE PRECISION)
        RETURNS TABLE(o_seq BIGINT, o_type TEXT, o_id TEXT, o_version INTEGER, o_updated DOUBLE PRECISION,
            o_deleted BOOLEAN, o_content BYTEA, o_method TEXT, o_org TEXT, o_facts TEXT[])
        LANGUAGE plpgsql STABLE
        SET plan_cache_mode = force_generic_plan AS $$
        BEGIN
            RETURN QUERY
            SELECT h.seq, h.resource_type, h.id, h.version, h.last_updated, h.deleted, h.content, h.method, h.org,
                ketnoi_row_facts(r.resource_type, r.id, r.org, string_to_array(p_params, ','),
                    p_org, p_cutoff, p_glass, p_now)
            FROM resource r JOIN resource_history h ON h.seq = r.seq
            WHERE r.resource_type = p_type AND r.id = p_id;
        END
        $$""",
    )
