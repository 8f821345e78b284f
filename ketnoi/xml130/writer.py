"""Writer of claims XML as a hospital information system makes it (the inverse of ``ketnoi.xml130.reader``).

Two outputs (schema §1):

* ``table_xml``: one table document (XML1 ... XML15), UTF-8 with an XML declaration. One-row tables (XML1,
  XML7, ...) hold their fields under the root element; the others are root / list / row, the list element
  being ``LISTS[table]`` (schema "Elements:" lines).
* ``write_envelope``: a GIAMDINHHS envelope, ``THONGTINDONVI/MACSKCB``, ``THONGTINHOSO`` with ``NGAYLAP``,
  ``SOLUONGHOSO`` and ``DANHSACHHOSO``, one ``HOSO`` per visit with one ``FILEHOSO`` (``LOAIHOSO``, base64
  ``NOIDUNGFILE``) per table, then an empty ``CHUKYDONVI`` (no signature is made). It is written visit by
  visit: each HOSO goes to the stream as soon as it is made, so memory holds one visit, never the file.

Text is escaped (``&``, ``<``, ``>``, and a carriage return as ``&#13;`` so that it survives the parser's
line-end normalisation); an empty value is an empty element. Fields are written in the order of the row's
mapping: the caller decides it (the schema's order is ``fields.FIELDS[table]``). What XML cannot carry at all
(a control character, a field name that is no element name) raises ``ValueError`` rather than making a file
that the reader, or the Ministry's portal, would refuse. The reader strips the whitespace around a value, so
a value with leading or trailing blanks does not come back identical.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import BinaryIO

from ketnoi.xml130.fields import LAYOUTS

Row = Mapping[str, str]
Tables = Mapping[str, Sequence[Row]]

DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
ENVELOPE_ROOT = "GIAMDINHHS"
# The list element between the root and the rows of every many-row table (schema "Elements:" lines; the
# reader does not need it, but the Ministry's files have it).
LISTS: dict[str, str] = {
    "XML0": "DSACH_TRANG_THAI_KCB",
    "XML2": "DSACH_CHI_TIET_THUOC",
    "XML3": "DSACH_CHI_TIET_DVKT",
    "XML4": "DSACH_CHI_TIET_CLS",
    "XML5": "DSACH_CHI_TIET_DIEN_BIEN_BENH",
    "XML6": "DSACH_HO_SO_BENH_AN_CHAM_SOC_VA_DIEU_TRI_HIV_AIDS",
    "XML9": "DSACH_GIAYCHUNGSINH",
    "XML15": "DSACH_CHITIET_DIEUTRI_BENHLAO",
}
assert set(LISTS) == {table for table, layout in LAYOUTS.items() if layout.row is not None}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Characters XML 1.0 cannot hold, escaped or not (§2.2 of the XML recommendation).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CREATED = re.compile(r"[0-9]{12}")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


def _text(value: str, where: str) -> str:
    found = _FORBIDDEN.search(value)
    if found:
        raise ValueError(f"{where}: character U+{ord(found.group()):04X} cannot be written in XML")
    return value.translate(_ESCAPES)


def _fields(table: str, row: Row) -> str:
    parts = []
    for name, value in row.items():
        if not _NAME.fullmatch(name):
            raise ValueError(f"{table}: {name!r} is no XML element name")
        text = _text(value, f"{table}.{name}")
        parts.append(f"<{name}>{text}</{name}>" if text else f"<{name}/>")
    return "".join(parts)


def table_xml(table: str, rows: Sequence[Row]) -> bytes:
    """One table document, as an HIS writes it: XML1 one row under the root, list tables root/list/row."""
    layout = LAYOUTS.get(table)
    if layout is None:
        raise ValueError(f"unknown table {table!r}; expected one of {', '.join(LAYOUTS)}")
    if layout.row is None:
        if len(rows) != 1:
            raise ValueError(f"{table} is a one-row table, got {len(rows)} rows")
        body = _fields(table, rows[0])
    else:
        items = "".join(f"<{layout.row}>{_fields(table, row)}</{layout.row}>" for row in rows)
        body = f"<{LISTS[table]}>{items}</{LISTS[table]}>"
    return f"{DECLARATION}<{layout.root}>{body}</{layout.root}>".encode()


def _table_order(table: str) -> tuple[int, str]:
    # XML1, XML2, ..., XML10, ... XML15: the number, not the text ("XML10" < "XML2").
    digits = table[3:]
    return (int(digits), table) if table.startswith("XML") and digits.isdigit() else (10**6, table)


def hoso_xml(tables: Tables) -> bytes:
    """One visit's HOSO element: a FILEHOSO per table that has rows, XML1 first, then in natural order."""
    parts = [b"<HOSO>"]
    for table in sorted(tables, key=_table_order):
        rows = tables[table]
        if not rows:
            continue
        payload = base64.b64encode(table_xml(table, rows))
        parts += [b"<FILEHOSO><LOAIHOSO>", table.encode(), b"</LOAIHOSO><NOIDUNGFILE>", payload]
        parts.append(b"</NOIDUNGFILE></FILEHOSO>")
    parts.append(b"</HOSO>\n")
    return b"".join(parts)


def write_envelope(
    out: BinaryIO,
    facility: str,
    visits: Iterable[Tables],
    *,
    created: str,
    count: int | None = None,
) -> int:
    """Write a GIAMDINHHS envelope of ``visits`` (each: table name -> rows) to ``out``; the bytes written.

    ``created`` is NGAYLAP, ``yyyyMMddHHmm``. SOLUONGHOSO comes before the visits, so the count must be known
    first: ``count``, or ``len(visits)`` for a sequence. A plain iterator without ``count`` is read into a
    list first; with ``count`` it is streamed, each HOSO written as soon as it is made, and a count that
    turns out wrong raises ``ValueError`` (the file is then wrong: throw it away).
    """
    if not _CREATED.fullmatch(created):
        raise ValueError(f"created (NGAYLAP) must be yyyyMMddHHmm, not {created!r}")
    if count is None:
        if not isinstance(visits, Sequence):
            visits = list(visits)
        count = len(visits)
    head = (
        f'{DECLARATION}<{ENVELOPE_ROOT} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema">\n'
        f"<THONGTINDONVI><MACSKCB>{_text(facility, 'MACSKCB')}</MACSKCB></THONGTINDONVI>\n"
        f"<THONGTINHOSO><NGAYLAP>{created}</NGAYLAP><SOLUONGHOSO>{count}</SOLUONGHOSO>\n<DANHSACHHOSO>\n"
    ).encode()
    written = out.write(head)
    made = 0
    for tables in visits:
        written += out.write(hoso_xml(tables))
        made += 1
    written += out.write(f"</DANHSACHHOSO>\n</THONGTINHOSO>\n<CHUKYDONVI/>\n</{ENVELOPE_ROOT}>\n".encode())
    if made != count:
        raise ValueError(f"SOLUONGHOSO says {count} visits, {made} were written")
    return written


def envelope_bytes(facility: str, visits: Iterable[Tables], *, created: str) -> bytes:
    """The whole envelope in memory (small files, tests); ``write_envelope`` for anything large."""
    buffer = io.BytesIO()
    write_envelope(buffer, facility, visits, created=created)
    return buffer.getvalue()
