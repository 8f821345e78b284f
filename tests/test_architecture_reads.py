"""Reads pass through the Repository: raw SQL and session queries stay in the store and search layers.

Access policy (who may see which patient's data) will apply where data is read. That only holds if
every read of stored data goes through ``ketnoi.interactions.repository.Repository``: a module that
ran its own SQL, or called the store session's query methods, would read around the policy. This
test walks the source and fails on either, outside the layers whose job it is.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ketnoi"
# SQL statements as this code base writes them (keywords in capitals); "DELETE" alone is an HTTP method.
SQL = re.compile(
    r"^\s*(SELECT\b.*\bFROM\b|INSERT INTO\b|UPDATE \w+ SET\b|DELETE FROM\b|WITH \w+ AS\b|"
    r"(CREATE|ALTER|DROP) (TABLE|INDEX|STATISTICS)\b|ANALYZE\b|PRAGMA\b)",
    re.DOTALL,
)
# Session methods that read or write stored data directly.
SESSION_DATA = {"query", "execute", "executemany", "history", "current", "version", "current_page"}
# Where SQL and session access belong: the storage layer, the search compiler, the Repository; and
# the few places that are the server's own plumbing rather than a caller's read, each with why.
ALLOWED = {
    "store": "the storage layer",
    "search": "the search compiler builds SQL (run by the Repository)",
    "interactions/repository.py": "the one path for reads and writes",
    "interactions/visibility.py": "the Repository's policy half (a base class of Repository, same object)",
    "interactions/search_parameters.py": "loads active SearchParameters for the whole server, not for a caller",
    "jobs/runner.py": "the job queue's own table",
}


def _allowed(path: Path) -> bool:
    rel = path.relative_to(PACKAGE).as_posix()
    return any(rel == key or rel.startswith(key + "/") for key in ALLOWED)


def _receiver(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value):
            found.append(f"{path.name}:{node.lineno}: SQL text {node.value[:40]!r}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SESSION_DATA
            and "session" in _receiver(node.func.value).lower()
        ):
            found.append(f"{path.name}:{node.lineno}: session.{node.func.attr}(...)")
    return found


def test_reads_and_sql_stay_behind_the_repository() -> None:
    offenders = [f for path in sorted(PACKAGE.rglob("*.py")) if not _allowed(path) for f in _findings(path)]
    assert offenders == []


def test_the_check_sees_what_it_forbids(tmp_path: Path) -> None:
    """The walker itself works: both kinds of offence in a module are found."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        'def f(repo):\n    repo.session.query("x")\n    return "SELECT 1 FROM resource"\n', encoding="utf-8"
    )
    assert [line.split(": ", 1)[1] for line in _findings(probe)] == [
        "session.query(...)",
        "SQL text 'SELECT 1 FROM resource'",
    ]
