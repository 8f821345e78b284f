"""Streaming, hardened reader of claims XML files (QĐ 130/QĐ-BYT as amended by QĐ 4750/QĐ-BYT).

Three inputs, three entry points (schema §1):

* ``read_envelope``: a GIAMDINHHS envelope, read as a stream. Each HOSO becomes a ``Visit`` as soon as its end
  tag is read, and its elements are then dropped from the tree, so memory stays bounded by the largest visit,
  not by the file (an envelope of a month's claims is easily gigabytes).
* ``read_table``: a bare table document (one XMLn file, not in an envelope).
* ``read_checkin``: the XML0 check-in message (CHI_TIEU_TRANG_THAI_KCB), sent on its own.

Hardening: every document, the envelope and each base64 table inside it, goes through defusedxml with DTDs,
entity declarations and external references all refused. A claims file never needs any of them, so one is
an attack (XXE, billion laughs) or a broken exporter, and the whole file is refused with ``Xml130Error``.
What is wrong with one visit (bad base64, a table that is not XML, an unknown LOAIHOSO) is a ``Problem`` on
that visit, which is still yielded, and the reader goes on with the next one.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO
from xml.etree.ElementTree import Element, ParseError

# defusedxml ships without type stubs; its functions mirror xml.etree.ElementTree's.
from defusedxml import ElementTree as _defused  # type: ignore[import-untyped]
from defusedxml.common import DefusedXmlException  # type: ignore[import-untyped]

from ketnoi.xml130.fields import LAYOUTS, TABLE_BY_ROOT, Layout
from ketnoi.xml130.problems import Problem, Xml130Error

Source = BinaryIO | str | os.PathLike[str]
Row = dict[str, str]

ENVELOPE_ROOT = "GIAMDINHHS"
CHECKIN_TABLE = "XML0"
# All three refusals on, whatever defusedxml's defaults are (forbid_dtd is off by default).
_HARDENED: dict[str, bool] = {"forbid_dtd": True, "forbid_entities": True, "forbid_external": True}


@dataclass(slots=True)
class Visit:
    """One HOSO of an envelope: its tables as raw rows, and what was wrong with it.

    ``tables`` maps a table name ("XML1", "XML2", ...) to its rows, each row a field name -> text (stripped).
    ``index`` is the HOSO's position in the envelope, from 1, to name a visit whose MA_LK could not be read.
    """

    index: int
    ma_lk: str
    facility: str
    tables: dict[str, list[Row]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


@dataclass(slots=True)
class TableFile:
    """A bare table document: which table, its rows, and what was wrong with it."""

    table: str
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(slots=True)
class CheckIn:
    """An XML0 check-in message: one status row (TRANG_THAI_KCB) per visit checked in."""

    statuses: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _local(tag: str) -> str:
    # Exporters differ on namespaces; the element names alone are what the standard defines.
    return tag.rpartition("}")[2]


def _hostile(exc: Exception, where: str) -> Xml130Error:
    return Xml130Error(
        "xml-forbidden-construct",
        f"Từ chối tệp: {where} có khai báo DTD/thực thể/tham chiếu ngoài (không được phép trong hồ sơ XML)",
        f"file refused: {where} has a DTD, entity or external reference ({type(exc).__name__}); "
        "claims XML never needs one",
    )


def _not_xml(exc: Exception, where: str) -> Xml130Error:
    detail = " ".join(str(exc).split())
    return Xml130Error(
        "not-xml",
        f"Từ chối tệp: {where} không phải XML hợp lệ ({detail})",
        f"file refused: {where} is not well-formed XML ({detail})",
    )


@contextmanager
def _opened(source: Source) -> Iterator[BinaryIO]:
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as stream:
            yield stream
    else:
        yield source


def _parse_document(data: bytes, where: str) -> Element:
    """A whole (small) document -> its root; hostile constructs raise, a plain syntax error is ``ParseError``."""
    try:
        root: Element = _defused.fromstring(data, **_HARDENED)
    except DefusedXmlException as exc:
        raise _hostile(exc, where) from exc
    return root


def _fields(element: Element) -> Row:
    # Only leaf children are fields; a nested element (the CHUKYDONVI signature) is not data of the row.
    return {_local(child.tag): (child.text or "").strip() for child in element if len(child) == 0}


def _rows(root: Element, layout: Layout) -> list[Row]:
    if layout.row is None:
        return [_fields(root)]
    return [_fields(element) for element in root.iter() if _local(element.tag) == layout.row]


def _table_problem(rule: str, table: str, vi: str, en: str, value: str = "") -> Problem:
    return Problem(rule=rule, message_vi=vi, message_en=en, table=table, value=value)


def _decode(table: str, payload: str) -> tuple[bytes | None, Problem | None]:
    """NOIDUNGFILE -> the table document's bytes. Line breaks inside base64 are common, so whitespace goes."""
    compact = "".join(payload.split())
    if not compact:
        return None, _table_problem("payload-empty", table, "NOIDUNGFILE rỗng", "NOIDUNGFILE is empty")
    try:
        return base64.b64decode(compact, validate=True), None
    except (binascii.Error, ValueError):
        return None, _table_problem(
            "payload-not-base64",
            table,
            "NOIDUNGFILE không phải base64 hợp lệ",
            "NOIDUNGFILE is not valid base64",
            compact[:40],
        )


def _read_embedded(table: str, data: bytes, where: str) -> tuple[list[Row], list[Problem]]:
    """A decoded table of a visit -> its rows; a syntax error or the wrong root is a problem of the visit."""
    layout = LAYOUTS[table]
    try:
        root = _parse_document(data, where)
    except (ParseError, ValueError) as exc:  # ValueError: an encoding declaration expat cannot decode
        detail = " ".join(str(exc).split())
        return [], [
            _table_problem("table-not-xml", table, f"Bảng không phải XML ({detail})", f"table is not XML ({detail})")
        ]
    if _local(root.tag) != layout.root:
        return [], [
            _table_problem(
                "table-root-mismatch",
                table,
                f"Phần tử gốc {_local(root.tag)} không phải {layout.root} của {table}",
                f"root element {_local(root.tag)} is not {layout.root} of {table}",
                _local(root.tag),
            )
        ]
    return _rows(root, layout), []


def _link_problems(tables: dict[str, list[Row]], ma_lk: str) -> list[Problem]:
    """XML1 is the visit's one summary row, and its MA_LK ties every other table's rows to it."""
    xml1 = tables.get("XML1", [])
    if len(xml1) != 1:
        return [
            _table_problem(
                "xml1-count",
                "XML1",
                f"Hồ sơ phải có đúng một bảng XML1 (có {len(xml1)})",
                f"a visit needs exactly one XML1 row (found {len(xml1)})",
            )
        ]
    problems: list[Problem] = []
    for table, rows in tables.items():
        strays = sorted({row.get("MA_LK", "") for row in rows} - {ma_lk})
        if strays:
            problems.append(
                _table_problem(
                    "ma-lk-mismatch",
                    table,
                    f"MA_LK của {table} khác MA_LK của XML1",
                    f"MA_LK in {table} differs from XML1's",
                    ";".join(strays),
                )
            )
    return problems


def _visit(index: int, facility: str, files: list[tuple[str, str]]) -> Visit:
    tables: dict[str, list[Row]] = {}
    problems: list[Problem] = []
    for kind, payload in files:
        table = kind.strip().upper()
        # XML0 travels in its own message, never inside a HOSO; XML12 has no file structure (schema §1, XML12).
        if table not in LAYOUTS or table == CHECKIN_TABLE:
            problems.append(
                _table_problem(
                    "unknown-table", table, f"LOAIHOSO không hợp lệ: '{kind}'", f"unknown LOAIHOSO '{kind}'", kind
                )
            )
            continue
        data, problem = _decode(table, payload)
        if data is None:
            problems.extend([problem] if problem else [])
            continue
        rows, found = _read_embedded(table, data, f"bảng/table {table} of HOSO #{index}")
        if rows:  # a table that could not be read is a problem, not an empty table
            tables.setdefault(table, []).extend(rows)
        problems.extend(found)
    xml1 = tables.get("XML1", [])
    ma_lk = xml1[0].get("MA_LK", "") if xml1 else ""
    problems.extend(_link_problems(tables, ma_lk))
    return Visit(index, ma_lk, facility, tables, [replace(p, ma_lk=p.ma_lk or ma_lk) for p in problems])


def _events(stream: BinaryIO) -> Iterator[tuple[str, Element]]:
    """The envelope's start/end events, with every parser failure turned into ``Xml130Error``."""
    events: Iterator[tuple[str, Any]] = _defused.iterparse(stream, events=("start", "end"), **_HARDENED)
    try:
        yield from events
    except DefusedXmlException as exc:
        raise _hostile(exc, "hồ sơ/envelope") from exc
    except (ParseError, ValueError) as exc:
        raise _not_xml(exc, "hồ sơ/envelope") from exc


def _child_text(element: Element, name: str) -> str:
    found = next((child for child in element if _local(child.tag) == name), None)
    return "" if found is None else (found.text or "")


def read_envelope(source: Source, *, header: dict[str, str] | None = None) -> Iterator[Visit]:
    """Stream the visits of a GIAMDINHHS envelope, one ``Visit`` per HOSO, in file order.

    ``header``, when given, gets MACSKCB, NGAYLAP and SOLUONGHOSO as soon as each is read (they come before
    the visits), so that an importer can compare SOLUONGHOSO with the visits it got once the file is read
    (``rules.count_problem``). Raises ``Xml130Error`` when the file is refused; visits read before the
    refusal have been yielded already, so an importer should treat the whole file as failed (the attack or
    break may be anywhere in it).
    """
    with _opened(source) as stream:
        yield from _stream_visits(stream, header)


# Header elements of the envelope (schema §1), by parent: NGAYLAP is in the 4750 guide only.
_HEADER = {("THONGTINDONVI", "MACSKCB"), ("THONGTINHOSO", "NGAYLAP"), ("THONGTINHOSO", "SOLUONGHOSO")}


def _stream_visits(stream: BinaryIO, header: dict[str, str] | None) -> Iterator[Visit]:
    stack: list[Element] = []
    facility = ""
    files: list[tuple[str, str]] = []
    index = 0
    for event, element in _events(stream):
        if event == "start":
            if not stack and _local(element.tag) != ENVELOPE_ROOT:
                raise Xml130Error(
                    "wrong-root",
                    f"Phần tử gốc phải là {ENVELOPE_ROOT}, không phải {_local(element.tag)}",
                    f"root element must be {ENVELOPE_ROOT}, not {_local(element.tag)}",
                )
            stack.append(element)
            continue
        stack.pop()
        name = _local(element.tag)
        if stack and (_local(stack[-1].tag), name) in _HEADER:
            text = (element.text or "").strip()
            facility = text if name == "MACSKCB" else facility
            if header is not None:
                header[name] = text
        elif name == "FILEHOSO":
            files.append((_child_text(element, "LOAIHOSO"), _child_text(element, "NOIDUNGFILE")))
            _drop(element, stack)
        elif name == "HOSO":
            index += 1
            yield _visit(index, facility, files)
            files = []
            _drop(element, stack)


def _drop(element: Element, stack: list[Element]) -> None:
    # clear() alone would leave an empty element per visit in DANHSACHHOSO: a slow leak over a large file.
    element.clear()
    if stack:
        stack[-1].remove(element)


def read_table(source: Source) -> TableFile:
    """A bare table document -> its table name (from the root element) and rows.

    A bare file is one visit's table, so it is read whole; anything wrong with the file itself (not XML, an
    unknown root element, a DTD) raises ``Xml130Error``.
    """
    with _opened(source) as stream:
        data = stream.read()
    try:
        root = _parse_document(data, "bảng/table")
    except (ParseError, ValueError) as exc:
        raise _not_xml(exc, "bảng/table") from exc
    table = TABLE_BY_ROOT.get(_local(root.tag))
    if table is None:
        raise Xml130Error(
            "wrong-root",
            f"Phần tử gốc {_local(root.tag)} không phải bảng nào của QĐ 130/4750",
            f"root element {_local(root.tag)} is no table of QĐ 130/4750",
        )
    return TableFile(table, _rows(root, LAYOUTS[table]))


def read_checkin(source: Source) -> CheckIn:
    """The XML0 check-in message -> one status row per TRANG_THAI_KCB."""
    found = read_table(source)
    if found.table != CHECKIN_TABLE:
        raise Xml130Error(
            "wrong-root",
            f"Không phải thông điệp check-in XML0 (là {found.table})",
            f"not an XML0 check-in message (it is {found.table})",
        )
    return CheckIn(found.rows, found.problems)
