"""Writing claims XML (ketnoi.xml130.writer) and reading it back (ketnoi.xml130.reader): nothing is lost."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from types import MappingProxyType

import pytest

from ketnoi.xml130.fields import LAYOUTS
from ketnoi.xml130.reader import read_envelope, read_table
from ketnoi.xml130.writer import LISTS, envelope_bytes, hoso_xml, table_xml, write_envelope
from tests.xml130.builders import drug, xml1

Tables = dict[str, list[dict[str, str]]]
TRICKY = "Nguyễn Thị Ánh & <Hằng> \"Đặng\" 'Ư' ; a>b"


def _visit(ma_lk: str, drugs: int = 2, name: str = "Trần Văn Bình") -> Tables:
    return {
        "XML1": [xml1(ma_lk, HO_TEN=name, GHI_CHU="", DIA_CHI="Số 5 đường Lê Lợi, Phường Sài Gòn")],
        "XML2": [drug(ma_lk, n, TEN_THUOC=f"Amoxicilin & acid <clavulanic> {n}") for n in range(1, drugs + 1)],
        "XML4": [{"MA_LK": ma_lk, "STT": "1", "TEN_CHI_SO": "Glucose", "GIA_TRI": "5.6", "KET_LUAN": "Bình thường"}],
    }


def test_lists_name_every_many_row_table() -> None:
    assert set(LISTS) == {table for table, layout in LAYOUTS.items() if layout.row is not None}
    assert LISTS["XML2"] == "DSACH_CHI_TIET_THUOC" and LISTS["XML15"] == "DSACH_CHITIET_DIEUTRI_BENHLAO"


@pytest.mark.parametrize("table", sorted(LAYOUTS))
def test_every_table_round_trips(table: str) -> None:
    rows = [{"MA_LK": "LK1", "STT": "1", "HO_TEN": TRICKY, "DU_PHONG": ""}]
    if LAYOUTS[table].row is not None:
        rows.append({"MA_LK": "LK1", "STT": "2", "HO_TEN": "Lê Văn C", "DU_PHONG": "x"})
    data = table_xml(table, rows)
    assert data.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<' + LAYOUTS[table].root.encode() + b">")
    found = read_table(io.BytesIO(data))
    assert (found.table, found.rows, found.problems) == (table, rows, [])


def test_layout_escaping_and_empty_elements() -> None:
    data = table_xml("XML2", [drug("LK1", 1, TEN_THUOC="A & B <C>", MA_BAC_SI="")])
    text = data.decode("utf-8")
    assert "<CHITIEU_CHITIET_THUOC><DSACH_CHI_TIET_THUOC><CHI_TIET_THUOC><MA_LK>LK1</MA_LK>" in text
    assert "<TEN_THUOC>A &amp; B &lt;C&gt;</TEN_THUOC>" in text and "<MA_BAC_SI/>" in text
    one = table_xml("XML1", [{"MA_LK": "LK1", "HO_TEN": "Đỗ Thị Ư"}]).decode("utf-8")
    assert one.endswith("<TONG_HOP><MA_LK>LK1</MA_LK><HO_TEN>Đỗ Thị Ư</HO_TEN></TONG_HOP>")
    # Field order is the row's order, whatever it is.
    assert re.findall(r"<(\w+)>", table_xml("XML4", [{"STT": "1", "MA_LK": "L"}]).decode())[-2:] == ["STT", "MA_LK"]


def test_carriage_return_and_line_breaks_survive() -> None:
    row = {"MA_LK": "LK1", "STT": "1", "DIEN_BIEN_LS": "Sáng: sốt\r\nChiều: hết sốt\ttốt"}
    assert read_table(io.BytesIO(table_xml("XML5", [row]))).rows == [row]


@pytest.mark.parametrize(
    ("table", "rows", "message"),
    [
        ("XML12", [{"MA_LK": "x"}], "unknown table"),
        ("XML99", [{"MA_LK": "x"}], "unknown table"),
        ("XML1", [], "one-row table"),
        ("XML1", [{"MA_LK": "a"}, {"MA_LK": "b"}], "one-row table"),
        ("XML2", [{"MA LK": "x"}], "no XML element name"),
        ("XML2", [{"<X>": "x"}], "no XML element name"),
        ("XML2", [{"MA_LK": "a\x00b"}], "U\\+0000"),
        ("XML2", [{"MA_LK": "a\x1bb"}], "U\\+001B"),
    ],
)
def test_what_xml_cannot_hold_is_refused(table: str, rows: list[dict[str, str]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        table_xml(table, rows)


def test_envelope_round_trip_with_diacritics_and_markup_characters() -> None:
    visits = [_visit("LK1", 3, TRICKY), _visit("LK2", 1), _visit("LK3", 0)]
    data = envelope_bytes("79001", visits, created="202607010800")
    read = list(read_envelope(io.BytesIO(data)))
    assert [v.ma_lk for v in read] == ["LK1", "LK2", "LK3"]
    for visit, tables in zip(read, visits, strict=True):
        assert visit.facility == "79001" and visit.problems == []
        assert visit.tables == {name: rows for name, rows in tables.items() if rows}  # no empty tables
    assert read[0].tables["XML1"][0]["HO_TEN"] == TRICKY
    text = data.decode("utf-8")
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<GIAMDINHHS ')
    assert "<THONGTINDONVI><MACSKCB>79001</MACSKCB></THONGTINDONVI>" in text
    assert "<NGAYLAP>202607010800</NGAYLAP><SOLUONGHOSO>3</SOLUONGHOSO>" in text
    assert text.count("<HOSO>") == 3 and "<CHUKYDONVI/>" in text


def test_tables_of_a_visit_are_written_in_natural_order() -> None:
    row = {"MA_LK": "LK1", "STT": "1"}
    tables = {name: [row] for name in ("XML15", "XML3", "XML10", "XML2", "XML1", "XML9", "XML5", "XML11")}
    kinds = re.findall(rb"<LOAIHOSO>(\w+)</LOAIHOSO>", hoso_xml(tables))
    assert kinds == [b"XML1", b"XML2", b"XML3", b"XML5", b"XML9", b"XML10", b"XML11", b"XML15"]
    payloads = re.findall(rb"<NOIDUNGFILE>([^<]*)</NOIDUNGFILE>", hoso_xml(tables))
    assert base64.b64decode(payloads[0]) == table_xml("XML1", [row])


class _Recorder(io.BytesIO):
    """A stream that remembers each write, to see the envelope leave visit by visit."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: object) -> int:
        assert isinstance(data, bytes)
        self.writes.append(data)
        return super().write(data)


def test_streaming_writes_each_visit_as_it_is_made() -> None:
    made: list[str] = []
    out = _Recorder()

    def visits() -> Iterator[Tables]:
        for n in range(1, 6):
            made.append(f"LK{n}")
            # Everything before this visit is on the stream already: the head and one HOSO per earlier visit.
            assert len(out.writes) == n
            yield _visit(f"LK{n}")

    written = write_envelope(out, "01001", visits(), created="202606302300", count=5)
    assert written == len(out.getvalue()) == sum(len(chunk) for chunk in out.writes)
    assert made == ["LK1", "LK2", "LK3", "LK4", "LK5"]
    assert [v.ma_lk for v in read_envelope(io.BytesIO(out.getvalue()))] == made


def test_iterator_without_count_and_byte_count() -> None:
    visits = [_visit("LK1"), _visit("LK2")]
    out = io.BytesIO()
    written = write_envelope(out, "01001", iter(visits), created="202606302300")
    assert written == len(out.getvalue())
    assert out.getvalue() == envelope_bytes("01001", visits, created="202606302300")
    assert b"<SOLUONGHOSO>2</SOLUONGHOSO>" in out.getvalue()


def test_wrong_count_and_bad_created_are_refused() -> None:
    with pytest.raises(ValueError, match="SOLUONGHOSO says 3"):
        write_envelope(io.BytesIO(), "01001", iter([_visit("LK1")]), created="202606302300", count=3)
    for created in ("2026063023", "20260630230a", ""):
        with pytest.raises(ValueError, match="NGAYLAP"):
            envelope_bytes("01001", [], created=created)


def test_empty_envelope_reads_as_no_visits() -> None:
    data = envelope_bytes("01001", [], created="202606302300")
    assert list(read_envelope(io.BytesIO(data))) == []


def test_mappings_and_sequences_of_any_kind_are_accepted() -> None:
    tables = {"XML1": (MappingProxyType(xml1("LK1")),), "XML2": (MappingProxyType(drug("LK1", 1)),)}
    (visit,) = read_envelope(io.BytesIO(envelope_bytes("01001", (tables,), created="202606302300")))
    assert visit.tables == {"XML1": [xml1("LK1")], "XML2": [drug("LK1", 1)]}
