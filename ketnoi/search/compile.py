"""SearchQuery → SQL over ``resource`` and the ``idx_*`` tables (one text for both dialects).

Every user-supplied value is a bound parameter; only names from our own tables are written into
the SQL text (parameter codes, types and modifiers are bound or were checked against the registry
by ``parse``). Each criterion becomes ``(r.resource_type, r.id) IN (<set>)`` where ``<set>`` is a
``SELECT resource_type, resource_id`` over one index table, so the planner can start from the
selective index lookup. Chains and ``_has`` nest such sets through ``idx_reference``:

- ``subject:Patient.name=x`` → ``IN (SELECT resource_type, resource_id FROM idx_reference WHERE
  param = 'subject' AND (target_type, target_id) IN (<Patient set for name=x>))``
- ``_has:Observation:patient:code=y`` → ``EXISTS (SELECT 1 FROM idx_reference hx0 WHERE
  hx0.resource_type = 'Observation' AND hx0.param = 'patient' AND hx0.target_id = r.id AND
  hx0.target_type = r.resource_type AND (hx0.resource_type, hx0.resource_id) IN (<Observation set for
  code=y>))``, correlated on the outer row (see :func:`has_exists`)

Fragments (:class:`Frag`) carry their own bound values, so composition never misorders parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ketnoi.fhir.outcome import bad_request
from ketnoi.search.conditions import canonical_query, date_cond, value_cond
from ketnoi.search.frag import Frag, cat, join, val
from ketnoi.search.normalize import fold
from ketnoi.search.query import (
    AllOf,
    Chain,
    Compartment,
    Composite,
    Criterion,
    Filter,
    Has,
    OwnedBy,
    Reach,
    SearchQuery,
    SortKey,
    TextSearch,
    Withheld,
    split_pipe,
    unescape,
)
from ketnoi.search.reach import owned_by, reach_condition, withheld
from ketnoi.sql import SqlQuery


@dataclass(frozen=True, slots=True)
class Position:
    """A keyset position: the sort key values and (type, id) of a row; ``before`` pages backwards."""

    keys: tuple[Any, ...]
    resource_type: str
    id: str
    before: bool = False


def compile_search(
    query: SearchQuery, base_url: str, position: Position | None = None, *, dialect: str | None = None
) -> tuple[SqlQuery, SqlQuery]:
    """(page query, count query) for a search.

    The page query returns ``(resource_type, id, content, k0, k1, ...)`` — the sort key values let the
    caller build a cursor. With a ``before`` position rows come in reverse order (the caller flips them).
    ``dialect`` ``"sqlite"`` adds index hints to the correlated probes (:func:`owner_rows`); None or
    ``"postgresql"`` gives portable SQL.
    """
    owner = dialect == "sqlite"
    where = where_clause(query, base_url, owner_index=owner)
    keys = [sort_expr(k, owner_index=owner) for k in query.sort]
    cols = [cat(k, f" AS k{i}") for i, k in enumerate(keys)]
    inner = cat(
        "SELECT r.resource_type, r.id, r.seq",
        *[cat(", ", c) for c in cols],
        " FROM resource r WHERE ",
        where,
    )
    order_keys = [(f"m.k{i}", k.descending, True) for i, k in enumerate(query.sort)]
    order_keys += [("m.resource_type", False, False), ("m.id", False, False)]
    backwards = position is not None and position.before
    single = query.resource_types[0] if len(query.resource_types) == 1 else None
    outer_where: list[str | Frag] = (
        [" WHERE ", _position_cond(order_keys, position, single)] if position is not None else []
    )
    # Order and cut the page on the small ``resource`` rows first, then fetch only that page's
    # content: joining the history (the JSON) before the LIMIT made large matches slow (bench).
    page_rows = cat(
        "SELECT m.* FROM (",
        inner,
        ") m",
        *outer_where,
        " ORDER BY ",
        _order(order_keys, backwards),
        " LIMIT ",
        val(query.count + 1),
        " OFFSET ",
        val(query.offset),
    )
    outer_keys = [(column.replace("m.", "p.", 1), desc, nullable) for column, desc, nullable in order_keys]
    page = cat(
        "SELECT p.resource_type, p.id, h.content",
        *[f", p.k{i}" for i in range(len(keys))],
        " FROM (",
        page_rows,
        ") p JOIN resource_history h ON h.seq = p.seq ORDER BY ",
        _order(outer_keys, backwards),
    )
    count = count_query(query, base_url) or cat("SELECT COUNT(*) FROM resource r WHERE ", where)
    return SqlQuery(page.text, page.params), SqlQuery(count.text, count.params)


def count_query(query: SearchQuery, base_url: str) -> Frag | None:
    """``COUNT`` from one index table alone, when that gives the same number; else None.

    Index rows exist only for current, non-deleted versions (``ketnoi.store.schema``), so with a
    single criterion whose set is rows *of the searched resources themselves* (a value filter, a
    chain, a composite, a compartment) the distinct owners of those rows are exactly the matches:
    no ``resource`` probe per match is needed (bench: 104k matches at 1M). Not for ``_has`` (its set
    is the *referenced* resources, which may be deleted or absent), ``_id``/``_lastUpdated``,
    ``:missing``/``:not`` (conditions on ``resource``), several criteria (intersections), or several
    types (``COUNT(DISTINCT)`` of one column: SQLite planned a two-column ``DISTINCT`` through
    ``idx_*_owner`` over every row of the type, 3x slower than the ``resource`` count)."""
    if len(query.resource_types) != 1 or len(query.filters) != 1 or not _owner_rows(query.filters[0]):
        return None
    rows = positive_set(query.filters[0], query.resource_types, base_url)
    return cat("SELECT COUNT(DISTINCT s.resource_id) FROM (", rows, ") s")


def _owner_rows(crit: Criterion) -> bool:
    """Whether ``positive_set(crit)`` selects index rows owned by the matching resources."""
    if isinstance(crit, Filter):
        return crit.param not in ("_id", "_lastUpdated") and crit.modifier not in ("missing", "not")
    return isinstance(crit, (Chain, Composite, Compartment, TextSearch))


def where_clause(query: SearchQuery, base_url: str, *, owner_index: bool = False) -> Frag:
    """The condition on ``resource r`` that selects the matches of ``query``.

    With several plain filters (or a compartment and filters), the likeliest-selective one stays an
    ``IN`` set (it drives the lookup) and the others become ``EXISTS`` probes correlated on the row.
    SQLite cannot estimate ``IN (subquery)`` sizes and would otherwise pick any of them to drive, and
    build every other set in full (a patient's heart rates since 2024 took 2 s at a million
    resources: it started from every Observation date); PostgreSQL plans both forms as semi-joins.
    ``owner_index`` (SQLite) pins each probe to the table's owner index (:func:`owner_rows`)."""
    clauses = [cat("r.deleted = ", val(False))]
    if query.resource_types:
        clauses.append(cat("r.resource_type IN (", val(*query.resource_types), ")"))
    plain = [c for c in query.filters if _drivable(c)]
    driver = min(plain, key=_selectivity_rank) if len(plain) > 1 else None
    for crit in query.filters:
        if crit in plain and driver is not None and crit is not driver:
            clauses.append(_probe(crit, query.resource_types, "r", base_url, owner_index))
        else:
            clauses.append(condition(crit, query.resource_types, "r", base_url, owner_index=owner_index))
    return join(" AND ", clauses)


def _drivable(crit: Criterion) -> bool:
    """A criterion that may drive the lookup or be probed per row: its set is index rows owned by
    the matching resources themselves."""
    return isinstance(crit, Compartment) or (isinstance(crit, Filter) and _owner_rows(crit))


# Lower = usually matches fewer resources. A guess from the parameter type alone: exact references
# and system|code tokens name few resources; dates and numbers are ranges over many.
_TYPE_RANK = {"reference": 0, "token": 1, "uri": 1, "string": 2, "quantity": 3, "number": 3, "date": 4}


def _selectivity_rank(f: Criterion) -> int:
    if isinstance(f, Compartment):
        return -1  # one patient's (or practitioner's) resources: the narrowest set there is
    assert isinstance(f, Filter)
    rank = _TYPE_RANK.get(f.type, 5)
    if f.type == "token" and not all("|" in v and not v.endswith("|") for v in f.values):
        rank += 1  # a bare code or a whole system is broader than system|code
    return rank


def _probe(f: Criterion, types: tuple[str, ...], alias: str, base_url: str, owner_index: bool) -> Frag:
    """A plain filter (or compartment) as ``EXISTS`` over its index rows, correlated on the resource
    row: the probe looks up the ``(resource_type, resource_id)`` owner index of the table."""
    rows = _filter_set(f, types, base_url, owner_index) if isinstance(f, Filter) else positive_set(f, types, base_url)
    return cat("EXISTS (", rows, f" AND resource_id = {alias}.id AND resource_type = {alias}.resource_type)")


def owner_rows(table: str, owner_index: bool, alias: str = "") -> str:
    """``idx_token [alias]``, or ``idx_token [alias] INDEXED BY idx_token_owner`` for a correlated
    probe on SQLite.

    A probe reads the index rows of *one* resource (a few dozen at most), so the owner index is
    always the bounded choice. Without statistics, SQLite prefers the index with more equality
    columns, the value lookup ``(resource_type, param, code)``, and then reads every row with that
    code for each candidate: a patient's vital signs read every vital-sign row of every patient
    per observation and took 16-22 s on a REST-filled database (issue 8). The hint makes the plan
    independent of statistics; PostgreSQL has no hints and keeps its statistics fresh instead
    (ketnoi.store.maintenance)."""
    source = f"idx_{table} {alias}".rstrip()
    return f"{source} INDEXED BY idx_{table}_owner" if owner_index else source


# ------------------------------------------------------------------------------------------- ordering


def sort_expr(key: SortKey, *, owner_index: bool = False) -> Frag:
    """A correlated expression giving the sort value of row ``r`` (NULL when it has none)."""
    if key.type == "id":
        return Frag("r.id")
    if key.type == "lastUpdated":
        return Frag("r.last_updated")
    agg = "MAX" if key.descending else "MIN"
    column = {
        "string": "norm",
        "token": "code",
        "date": "high" if key.descending else "low",
        "number": "value",
        "quantity": "value",
        "reference": "COALESCE(target_type || '/' || target_id, url)",
        "uri": "uri",
    }[key.type]
    return cat(
        f"(SELECT {agg}({column}) FROM {owner_rows(key.type, owner_index, 's')} "
        "WHERE s.resource_type = r.resource_type "
        "AND s.resource_id = r.id AND s.param = ",
        val(key.param),
        ")",
    )


def _order(keys: Sequence[tuple[str, bool, bool]], backwards: bool) -> Frag:
    parts: list[str] = []
    for column, desc, nullable in keys:
        if nullable:  # values first, then rows without one (reversed when paging backwards)
            parts.append(f"({column} IS NULL) {'DESC' if backwards else 'ASC'}")
        parts.append(f"{column} {'DESC' if desc != backwards else 'ASC'}")
    return Frag(", ".join(parts))


def _position_cond(keys: Sequence[tuple[str, bool, bool]], position: Position, single_type: str | None = None) -> Frag:
    """Rows strictly after (or before) ``position`` in the order of ``keys`` (NULLs last).

    In a search of one type (``single_type``) at a position of that type, every match has that
    ``resource_type``: "type > T OR (type = T AND id > I)" is then "id > I", which the index on
    ``(resource_type, id)`` seeks to; the OR form made each page scan the type from its start (a
    million-resource ``$export`` read its pages in quadratic time: bench/export.py). Columns that
    cannot be NULL (type, id) get no ``IS NULL OR`` either."""
    values = (*position.keys, position.resource_type, position.id)
    if len(values) != len(keys):
        raise bad_request("The paging cursor does not fit this search", "Con trỏ phân trang không khớp tìm kiếm này")
    if single_type is not None and position.resource_type == single_type:
        keys, values = [*keys[:-2], keys[-1]], (*values[:-2], values[-1])
    alternatives: list[Frag] = []
    equal: list[Frag] = []
    for (column, desc, nullable), value in zip(keys, values, strict=True):
        strict = _beyond(column, desc, value, position.before, nullable)
        if strict is not None:
            alternatives.append(join(" AND ", [*equal, strict]))
        equal.append(cat(f"{column} IS NULL") if value is None else cat(f"{column} = ", val(value)))
    if not alternatives:
        return Frag("1 = 0")
    return cat("(", join(" OR ", (cat("(", a, ")") for a in alternatives)), ")")


def _beyond(column: str, desc: bool, value: Any, before: bool, nullable: bool = True) -> Frag | None:
    if value is None:
        return None if not before else Frag(f"{column} IS NOT NULL")
    if not before and not nullable:
        return cat(f"{column} {'<' if desc else '>'} ", val(value))
    if not before:
        return cat(f"({column} IS NULL OR {column} {'<' if desc else '>'} ", val(value), ")")
    return cat(f"{column} {'>' if desc else '<'} ", val(value))


# ------------------------------------------------------------------------------------------ criteria


def condition(crit: Criterion, types: tuple[str, ...], alias: str, base_url: str, *, owner_index: bool = False) -> Frag:
    """A boolean condition on the resource row ``alias`` (``alias.resource_type``, ``alias.id``).
    ``owner_index``: SQLite hints for the policy's probes (:func:`owner_rows`)."""
    owner = f"({alias}.resource_type, {alias}.id)"
    if isinstance(crit, Reach):
        return reach_condition(crit, alias, owner_index)
    if isinstance(crit, OwnedBy):
        return owned_by(crit, alias)
    if isinstance(crit, Withheld):
        return withheld(crit, alias, owner_index)
    if isinstance(crit, Filter):
        if crit.param == "_id":
            op = "NOT IN" if crit.modifier == "not" else "IN"
            return cat(f"{alias}.id {op} (", val(*crit.values), ")")
        if crit.param == "_lastUpdated":
            column = f"{alias}.last_updated"
            return cat("(", join(" OR ", (date_cond(v, column, f"{column} + 0.001") for v in crit.values)), ")")
        if crit.modifier == "missing":
            op = "NOT IN" if crit.values[0] == "true" else "IN"
            return cat(f"{owner} {op} (", _param_rows(crit, types), ")")
        if crit.modifier == "not":
            positive = Filter(crit.param, crit.type, None, crit.values)
            return cat(f"{owner} NOT IN (", positive_set(positive, types, base_url), ")")
    if isinstance(crit, Has):
        return has_exists(crit, f"{alias}.resource_type", f"{alias}.id", base_url)
    if isinstance(crit, AllOf):
        parts = (condition(c, types, alias, base_url, owner_index=owner_index) for c in crit.criteria)
        return cat("(", join(" AND ", parts), ")")
    return cat(f"{owner} IN (", positive_set(crit, types, base_url), ")")


def has_exists(crit: Has, type_col: str, id_col: str, base_url: str, depth: int = 0) -> Frag:
    """``_has`` as ``EXISTS`` correlated on the referenced row (``type_col``, ``id_col``).

    The probe ``idx_reference (resource_type, param, target_id, target_type)`` is a full-prefix
    match of ``idx_reference_lookup``, so the planner may walk the outer resources in page order
    and stop after one page, or (selective inner criterion) start from the inner set as a
    semi-join; with correct row estimates (migration 3) it picks the cheaper one. A nested
    ``_has`` correlates on this level's source row."""
    hx = f"hx{depth}"
    if isinstance(crit.inner, Has):
        inner = has_exists(crit.inner, f"{hx}.resource_type", f"{hx}.resource_id", base_url, depth + 1)
    else:
        inner = cat(
            f"({hx}.resource_type, {hx}.resource_id) IN (", match_set(crit.inner, (crit.source_type,), base_url), ")"
        )
    return cat(
        f"EXISTS (SELECT 1 FROM idx_reference {hx} WHERE {hx}.resource_type = ",
        val(crit.source_type),
        f" AND {hx}.param = ",
        val(crit.param),
        f" AND {hx}.target_id = {id_col} AND {hx}.target_type = {type_col} AND ",
        inner,
        ")",
    )


# Criteria that are conditions on the resource row itself, not sets of index rows.
_ON_RESOURCE = (AllOf, Reach, OwnedBy, Withheld)


def match_set(crit: Criterion, types: tuple[str, ...], base_url: str) -> Frag:
    """``SELECT resource_type, id`` of the current resources of ``types`` that satisfy ``crit``."""
    on_resource = isinstance(crit, _ON_RESOURCE) or (
        isinstance(crit, Filter) and (crit.param in ("_id", "_lastUpdated") or crit.modifier in ("missing", "not"))
    )
    if on_resource:
        return cat(
            "SELECT x.resource_type, x.id FROM resource x WHERE x.deleted = ",
            val(False),
            " AND x.resource_type IN (",
            val(*types),
            ") AND ",
            condition(crit, types, "x", base_url),
        )
    return positive_set(crit, types, base_url)


def _scope(types: tuple[str, ...], param: str) -> Frag:
    if types:
        return cat("resource_type IN (", val(*types), ") AND param = ", val(param))
    return cat("param = ", val(param))


def _param_rows(f: Filter, types: tuple[str, ...]) -> Frag:
    """Every (resource_type, resource_id) that has any value for the parameter."""
    table = f.type if f.type in _TABLES else "string"
    return cat(f"SELECT resource_type, resource_id FROM idx_{table} WHERE ", _scope(types, f.param))


_TABLES = ("string", "token", "date", "number", "quantity", "reference", "uri")


def positive_set(crit: Criterion, types: tuple[str, ...], base_url: str) -> Frag:
    if isinstance(crit, Chain):
        branches = [match_set(inner, targets, base_url) for targets, inner in crit.branches]
        targets = join(" UNION ALL ", branches)
        return cat(
            "SELECT resource_type, resource_id FROM idx_reference WHERE ",
            _scope(types, crit.param),
            " AND (target_type, target_id) IN (",
            targets,
            ")",
        )
    if isinstance(crit, Has):
        target_scope = cat(" AND target_type IN (", val(*types), ")") if types else Frag("")
        return cat(
            "SELECT target_type, target_id FROM idx_reference WHERE ",
            _scope((crit.source_type,), crit.param),
            target_scope,
            " AND (resource_type, resource_id) IN (",
            match_set(crit.inner, (crit.source_type,), base_url),
            ")",
        )
    if isinstance(crit, Compartment):
        return cat(
            "SELECT resource_type, resource_id FROM idx_reference WHERE ",
            cat("resource_type IN (", val(*types), ") AND ") if types else Frag(""),
            "param IN (",
            val(*crit.params),
            ") AND ",
            _targets(crit),
            " AND target_type = ",
            val(crit.target_type),
        )
    if isinstance(crit, _ON_RESOURCE):
        return match_set(crit, types, base_url)
    if isinstance(crit, Composite):
        return _composite_set(crit, types)
    if isinstance(crit, TextSearch):
        return _text_set(crit, types)
    return _filter_set(crit, types, base_url)


def _targets(crit: Compartment) -> Frag:
    """``target_id = ?``, or ``IN`` for a compartment of several records (one plan for the usual case)."""
    if crit.any_target:
        return Frag("target_id IS NOT NULL")
    if not crit.also:
        return cat("target_id = ", val(crit.target_id))
    return cat("target_id IN (", val(crit.target_id, *crit.also), ")")


def _text_set(crit: TextSearch, types: tuple[str, ...]) -> Frag:
    """``_text`` / ``_content``: the rows of ``idx_text`` whose folded body contains every word of
    one of the values (``body LIKE '%word%'`` per word, LIKE metacharacters escaped, bound)."""
    alternatives: list[Frag] = []
    for value in crit.values:
        words = dict.fromkeys(fold(value).split())
        if not words:
            alternatives.append(Frag("1 = 0"))
            continue
        conds = [cat("body LIKE ", val("%" + _like_escape(word) + "%"), " ESCAPE '\\'") for word in words]
        alternatives.append(cat("(", join(" AND ", conds), ")"))
    return cat(
        "SELECT resource_type, resource_id FROM idx_text WHERE ",
        _scope(types, crit.param),
        " AND (",
        join(" OR ", alternatives),
        ")",
    )


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filter_set(f: Filter, types: tuple[str, ...], base_url: str, owner_index: bool = False) -> Frag:
    if f.type == "reference" and f.modifier == "identifier":
        table, param = "token", f"{f.param}:identifier"
    elif f.type == "token" and f.modifier == "of-type":
        table, param = "token", f"{f.param}:of-type"
    elif f.type == "quantity" and f.modifier is None:
        canonical = [canonical_query(v) for v in f.values]
        if all(canonical):
            # Every value has a convertible unit: compare in the canonical unit, so 5 mg finds 0.005 g.
            f = Filter(f.param, f.type, None, tuple(c for c in canonical if c))
            table, param = "quantity", f"{f.param}:canonical"
        else:
            table, param = f.type, f.param
    else:
        table, param = f.type, f.param
    if table not in _TABLES:
        raise bad_request(
            f"Search parameter type '{f.type}' is not supported", f"Không hỗ trợ loại tham số tìm kiếm '{f.type}'"
        )
    if table == "token" and f.modifier in (None, "not"):
        conds = _token_values_cond(f.values)
    else:
        conds = join(" OR ", (value_cond(f, value, base_url) for value in f.values))
    source = owner_rows(table, owner_index)
    return cat(f"SELECT resource_type, resource_id FROM {source} WHERE ", _scope(types, param), " AND (", conds, ")")


def _token_values_cond(values: Sequence[str]) -> Frag:
    """Plain token values grouped into a few ``IN`` lists (by system), not one OR per value: a
    value set expansion can bring thousands, and SQLite refuses expressions nested 1,000 deep."""
    bare: list[str] = []
    systemless: list[str] = []
    any_code: list[str] = []
    by_system: dict[str, list[str]] = {}
    for value in values:
        pair = split_pipe(value)
        if pair is None:
            bare.append(unescape(value))
        elif pair[0] == "":
            systemless.append(pair[1])
        elif pair[1] == "":
            any_code.append(pair[0])
        else:
            by_system.setdefault(pair[0], []).append(pair[1])
    groups: list[Frag] = []
    if bare:
        groups.append(cat("code IN (", val(*dict.fromkeys(bare)), ")"))
    if systemless:
        groups.append(cat("(system IS NULL AND code IN (", val(*dict.fromkeys(systemless)), "))"))
    if any_code:
        groups.append(cat("system IN (", val(*dict.fromkeys(any_code)), ")"))
    for system, codes in by_system.items():
        groups.append(cat("(system = ", val(system), " AND code IN (", val(*dict.fromkeys(codes)), "))"))
    return join(" OR ", groups)


def _composite_set(c: Composite, types: tuple[str, ...]) -> Frag:
    """Composite rows live in the last component's table under ``<code>$<first component key>``
    (see ``ketnoi.search.composite``)."""
    last_type = c.components[-1][1]
    alternatives = [
        cat(
            "(param IN (",
            val(*(f"{c.param}${k}" for k in composite_keys(first))),
            ") AND ",
            value_cond(Filter(c.param, last_type, None, (second,)), second, ""),
            ")",
        )
        for first, second in c.values
    ]
    scope = cat("resource_type IN (", val(*types), ") AND ") if types else Frag("")
    return cat(
        f"SELECT resource_type, resource_id FROM idx_{last_type} WHERE ", scope, "(", join(" OR ", alternatives), ")"
    )


def composite_keys(token: str) -> tuple[str, ...]:
    """The row-param suffixes a token query component matches (``system|code``, ``code``...)."""
    pair = split_pipe(token)
    if pair is None:
        return (unescape(token),)
    system, code = pair
    return (f"{system}|{code}",) if system else (f"|{code}",)
