"""The Vietnamese ICD-10 (the Ministry of Health's list) as one CodeSystem, from an operator's CSV.

ketnoi does not ship ICD-10 (its licence and its Vietnamese edition are the operator's to obtain);
``ketnoi terminology load icd10 FILE`` reads it from a CSV (docs/terminology.md): UTF-8, a header
``code,title_vi,title_en,parent``, one row per chapter, block, category or sub-category, ``parent``
empty for chapters. The file is checked whole before anything is written; the first problem is an
:class:`Icd10Error` naming its CSV line.

The CodeSystem nests each code in its parent (``hierarchyMeaning`` is-a), so the ``:below`` search
modifier and ``$subsumes`` read its hierarchy like any other. The VN Core IG names ICD-10 with
``http://terminology.hl7.org/CodeSystem/icd10`` and ``content`` not-present (WHO's edition, no codes
listed); the Ministry's edition with Vietnamese titles is a different list, so it gets its own URL.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

ICD10_VN_URL: Final = "https://fhir.ketnoi.vn/CodeSystem/icd10-vn"
HEADER: Final = ("code", "title_vi", "title_en", "parent")


class Icd10Error(ValueError):
    """A problem in the CSV: ``str()`` is one line naming the CSV line."""


@dataclass(frozen=True, slots=True)
class Row:
    line: int  # in the file, the header being line 1
    code: str
    title_vi: str
    title_en: str
    parent: str


def read_csv(path: str | Path) -> list[Row]:
    """Every row of the file, checked: a known parent, no duplicate code, a Vietnamese title, no cycle."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            reader = csv.reader(file)
            header = [cell.strip() for cell in next(reader, [])]
            if tuple(header) != HEADER:
                raise Icd10Error(f"{path}: line 1: the header must be {','.join(HEADER)}, not {','.join(header)[:100]}")
            rows = [_row(path, reader.line_num, cells) for cells in reader if any(c.strip() for c in cells)]
    except UnicodeDecodeError as exc:
        raise Icd10Error(f"{path}: the file is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise Icd10Error(f"{path}: not a readable CSV: {exc}") from exc
    seen: dict[str, Row] = {}
    for row in rows:
        if row.code in seen:
            raise Icd10Error(
                f"{path}: line {row.line}: duplicate code {row.code} (first on line {seen[row.code].line})"
            )
        seen[row.code] = row
    for row in rows:
        if row.parent and row.parent not in seen:
            raise Icd10Error(f"{path}: line {row.line}: code {row.code} has an unknown parent {row.parent}")
        _check_cycle(path, row, seen)
    if not rows:
        raise Icd10Error(f"{path}: no codes after the header")
    return rows


def _row(path: str | Path, line: int, cells: list[str]) -> Row:
    if len(cells) != len(HEADER):
        raise Icd10Error(f"{path}: line {line}: expected {len(HEADER)} columns, found {len(cells)}")
    code, title_vi, title_en, parent = (cell.strip() for cell in cells)
    if not code or any(c.isspace() for c in code):
        raise Icd10Error(f"{path}: line {line}: the code is empty or contains spaces")
    if not title_vi:
        raise Icd10Error(f"{path}: line {line}: code {code} has an empty title_vi")
    if parent == code:
        raise Icd10Error(f"{path}: line {line}: code {code} is its own parent")
    return Row(line, code, title_vi, title_en, parent)


def _check_cycle(path: str | Path, row: Row, seen: dict[str, Row]) -> None:
    current, steps = row, 0
    while current.parent:
        current, steps = seen[current.parent], steps + 1
        if steps > len(seen):
            raise Icd10Error(f"{path}: line {row.line}: the parents of code {row.code} form a cycle")


def code_system(rows: list[Row], version: str, url: str = ICD10_VN_URL) -> dict[str, Any]:
    """The CodeSystem of ``rows`` (checked by :func:`read_csv`), children nested in file order."""
    concepts: dict[str, dict[str, Any]] = {}
    for row in rows:
        concept: dict[str, Any] = {"code": row.code, "display": row.title_vi}
        if row.title_en:
            concept["designation"] = [{"language": "en", "value": row.title_en}]
        concepts[row.code] = concept
    top: list[dict[str, Any]] = []
    for row in rows:
        siblings = concepts[row.parent].setdefault("concept", []) if row.parent else top
        siblings.append(concepts[row.code])
    return {
        "resourceType": "CodeSystem",
        "url": url,
        "version": version,
        "name": "ICD10VN",
        "title": "Bảng phân loại quốc tế bệnh tật ICD-10 (Bộ Y tế)",
        "status": "active",
        "experimental": False,
        "publisher": "Bộ Y tế (loaded by the operator with ketnoi terminology load icd10)",
        "description": "ICD-10 với tên tiếng Việt của Bộ Y tế và tên tiếng Anh (designation en), nạp từ tệp CSV.",
        "language": "vi",
        "caseSensitive": True,
        "hierarchyMeaning": "is-a",
        "content": "complete",
        "count": len(rows),
        "concept": top,
    }
