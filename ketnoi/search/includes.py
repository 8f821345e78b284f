"""``_include`` and ``_revinclude`` (http://hl7.org/fhir/R4/search.html#include).

One query per include level, never one per resource: the level's frontier (the matches, then the
resources the previous level added) is batched into ``IN`` lists per resource type, and every
include/revinclude of the level is a branch of one ``UNION`` set. Results are deduplicated and a
resource that is already in the Bundle (a match or an earlier include) is never added twice.
``:iterate`` values apply again to each level's new resources, up to :data:`MAX_LEVELS` levels; the
number of included resources is capped at :data:`MAX_INCLUDED` (the Bundle says so when it is hit).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ketnoi.search.frag import Frag, cat, join, val
from ketnoi.search.query import Include
from ketnoi.sql import SqlQuery

MAX_LEVELS = 4
MAX_INCLUDED = 1000

Key = tuple[str, str]
Row = tuple[str, str, Any]


def _by_type(keys: Iterable[Key]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rtype, rid in keys:
        out.setdefault(rtype, []).append(rid)
    return out


def _branch(inc: Include, frontier: dict[str, list[str]]) -> Frag | None:
    if not inc.reverse:
        ids = frontier.get(inc.source_type)
        if not ids:
            return None
        target = cat(" AND target_type = ", val(inc.target_type)) if inc.target_type else Frag("")
        return cat(
            "SELECT target_type AS t, target_id AS i FROM idx_reference WHERE resource_type = ",
            val(inc.source_type),
            " AND resource_id IN (",
            val(*ids),
            ") AND param IN (",
            val(*inc.params),
            ")",
            target,
        )
    targets = [(t, ids) for t, ids in frontier.items() if inc.target_type in (None, t)]
    if not targets:
        return None
    refs = join(" OR ", (cat("(target_type = ", val(t), " AND target_id IN (", val(*ids), "))") for t, ids in targets))
    return cat(
        "SELECT resource_type AS t, resource_id AS i FROM idx_reference WHERE resource_type = ",
        val(inc.source_type),
        " AND param IN (",
        val(*inc.params),
        ") AND (",
        refs,
        ")",
    )


def level_query(includes: Sequence[Include], frontier: Iterable[Key], limit: int) -> SqlQuery | None:
    """The one query of an include level, or None when no include applies to the frontier."""
    grouped = _by_type(frontier)
    branches = [b for inc in includes if (b := _branch(inc, grouped)) is not None]
    if not branches:
        return None
    # The level's keys drive the lookup of their resources (CROSS JOIN: SQLite keeps that order).
    # ``(r.resource_type, r.id) IN (...)`` read every resource row on SQLite at a million.
    sql = cat(
        "SELECT r.resource_type, r.id, h.content FROM (",
        join(" UNION ", branches),
        ") k CROSS JOIN resource r JOIN resource_history h ON h.seq = r.seq WHERE r.resource_type = k.t "
        "AND r.id = k.i AND r.deleted = ",
        val(False),
        " ORDER BY r.resource_type, r.id LIMIT ",
        val(limit),
    )
    return SqlQuery(sql.text, sql.params)


def resolve(
    run: Any, includes: Sequence[Include], matches: Sequence[Key], cap: int = MAX_INCLUDED
) -> tuple[list[Row], bool]:
    """(included rows in order, whether the cap cut them short); ``run`` executes a SqlQuery."""
    seen: set[Key] = set(matches)
    out: list[Row] = []
    frontier: list[Key] = list(matches)
    for level in range(MAX_LEVELS):
        active = includes if level == 0 else [i for i in includes if i.iterate]
        if not active or not frontier:
            break
        query = level_query(active, frontier, cap - len(out) + len(seen) + 1)
        if query is None:
            break
        frontier = []
        for row in run(query):
            key = (row[0], row[1])
            if key in seen:
                continue
            if len(out) >= cap:
                return out, True
            seen.add(key)
            out.append((row[0], row[1], row[2]))
            frontier.append(key)
    return out, False
