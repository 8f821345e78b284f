"""Reading envelopes, bare tables and the check-in message (ketnoi.xml130.reader; schema §1)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from ketnoi.xml130.problems import Xml130Error
from ketnoi.xml130.reader import Visit, read_checkin, read_envelope, read_table
from ketnoi.xml130.rules import count_problem
from tests.xml130.builders import DECLARATION, drug, envelope, file_entry, hoso, table_xml, xml1

LAB = {"MA_LK": "LK2", "STT": "1", "MA_DICH_VU": "22.0001.1", "TEN_CHI_SO": "Glucose", "GIA_TRI": "5.6"}


def _visits(data: bytes) -> list[Visit]:
    return list(read_envelope(io.BytesIO(data)))


def test_two_visits_with_their_tables_and_rows(tmp_path: Path) -> None:
    data = envelope(
        [
            hoso({"XML1": [xml1("LK1")], "XML2": [drug("LK1", 1), drug("LK1", 2, TEN_THUOC="Amoxicillin")]}),
            hoso({"XML1": [xml1("LK2", HO_TEN="Trần Thị Bình")], "XML4": [LAB]}),
        ]
    )
    path = tmp_path / "hoso.xml"
    path.write_bytes(data)
    first, second = read_envelope(path)  # a path works as well as a stream
    assert (first.index, first.ma_lk, first.facility, first.problems) == (1, "LK1", "79001", [])
    assert sorted(first.tables) == ["XML1", "XML2"]
    assert first.tables["XML1"] == [xml1("LK1")]
    assert [row["TEN_THUOC"] for row in first.tables["XML2"]] == ["Paracetamol", "Amoxicillin"]
    assert first.tables["XML2"][0]["THANH_TIEN_BV"] == "123456.78"
    assert (second.index, second.ma_lk, second.problems) == (2, "LK2", [])
    assert second.tables["XML1"][0]["HO_TEN"] == "Trần Thị Bình"
    assert second.tables["XML4"] == [LAB]


def test_namespaces_whitespace_and_line_wrapped_base64_are_accepted() -> None:
    inner = table_xml("XML1", [xml1("LK1")]).replace(b"<TONG_HOP>", b'<TONG_HOP xmlns="urn:x">\n  ')
    wrapped = "\n".join(base64.b64encode(inner).decode()[i : i + 76] for i in range(0, 400 * 76, 76))
    data = envelope([f"<HOSO>{file_entry(' XML1 ', wrapped)}</HOSO>"])
    (visit,) = _visits(data)
    assert visit.problems == []
    assert visit.tables["XML1"][0]["MA_LK"] == "LK1"


def test_broken_base64_spoils_only_its_own_visit() -> None:
    broken = "<HOSO>" + file_entry("XML1", "bm90IGJhc2U2NCDinJM!!!") + "</HOSO>"
    first, second, third = _visits(envelope([hoso({"XML1": [xml1("LK1")]}), broken, hoso({"XML1": [xml1("LK3")]})]))
    assert first.problems == [] and third.problems == []
    assert (first.ma_lk, third.ma_lk) == ("LK1", "LK3")
    assert second.index == 2 and second.tables == {}
    assert [(p.table, p.rule) for p in second.problems] == [("XML1", "payload-not-base64"), ("XML1", "xml1-count")]
    assert all(p.message_vi and p.message_en for p in second.problems)


def test_table_that_is_not_xml_and_unknown_table_are_visit_problems() -> None:
    bad = file_entry("XML2", b"<CHITIEU_CHITIET_THUOC><oops></CHITIEU_CHITIET_THUOC>")
    wrong_root = file_entry("XML3", table_xml("XML4", [LAB]))
    unknown = file_entry("XML12", b"<x/>") + file_entry("XML99", b"<x/>")
    (visit,) = _visits(envelope([hoso({"XML1": [xml1("LK1")]})[:-7] + bad + wrong_root + unknown + "</HOSO>"]))
    assert visit.ma_lk == "LK1"
    assert sorted(visit.tables) == ["XML1"]
    assert [(p.table, p.ma_lk, p.rule) for p in visit.problems] == [
        ("XML2", "LK1", "table-not-xml"),
        ("XML3", "LK1", "table-root-mismatch"),
        ("XML12", "LK1", "unknown-table"),
        ("XML99", "LK1", "unknown-table"),
    ]


def test_rows_of_another_visit_are_reported() -> None:
    (visit,) = _visits(envelope([hoso({"XML1": [xml1("LK1")], "XML2": [drug("LK1", 1), drug("LK9", 2)]})]))
    assert [(p.table, p.rule, p.value) for p in visit.problems] == [("XML2", "ma-lk-mismatch", "LK9")]


def test_empty_envelope_yields_nothing() -> None:
    assert _visits(envelope([])) == []


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"this is not xml", "not-xml"),
        (b"", "not-xml"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not-xml"),
        (envelope([hoso({"XML1": [xml1("LK1")]})])[:-30], "not-xml"),  # cut short
        (b"<GIAMDINHHS><DANHSACHHOSO></GIAMDINHHS>", "not-xml"),
        (table_xml("XML1", [xml1("LK1")]), "wrong-root"),
        (b"<HOSO/>", "wrong-root"),
    ],
)
def test_file_level_problems_raise_one_error_type(data: bytes, rule: str) -> None:
    with pytest.raises(Xml130Error) as caught:
        _visits(data)
    assert caught.value.rule == rule
    message = str(caught.value)
    assert "\n" not in message and " / " in message  # one line, Vietnamese / English


def test_bare_table_file(tmp_path: Path) -> None:
    path = tmp_path / "xml2.xml"
    path.write_bytes(table_xml("XML2", [drug("LK1", 1), drug("LK1", 2)]))
    found = read_table(path)
    assert found.table == "XML2"
    assert [row["STT"] for row in found.rows] == ["1", "2"]
    assert read_table(io.BytesIO(table_xml("XML1", [xml1("LK1")]))).rows == [xml1("LK1")]


@pytest.mark.parametrize(
    ("data", "rule"),
    [(b"<NOT_A_TABLE/>", "wrong-root"), (b"<TONG_HOP>", "not-xml"), (envelope([]), "wrong-root")],
)
def test_bare_table_file_level_problems(data: bytes, rule: str) -> None:
    with pytest.raises(Xml130Error) as caught:
        read_table(io.BytesIO(data))
    assert caught.value.rule == rule


def test_checkin_message() -> None:
    status = {"MA_LK": "LK1", "STT": "1", "MA_BN": "BN1", "HO_TEN": "Lê Văn C", "NGAY_VAO": "202401150930"}
    data = table_xml("XML0", [status, {**status, "MA_LK": "LK2", "STT": "2"}])
    data = data.replace(
        b"</CHI_TIEU_TRANG_THAI_KCB>", b"<CHUKYDONVI><Signature>x</Signature></CHUKYDONVI></CHI_TIEU_TRANG_THAI_KCB>"
    )
    found = read_checkin(io.BytesIO(data))
    assert [row["MA_LK"] for row in found.statuses] == ["LK1", "LK2"]
    assert found.statuses[0] == status
    with pytest.raises(Xml130Error, match="XML0"):
        read_checkin(io.BytesIO(table_xml("XML1", [xml1("LK1")])))


def test_checkin_inside_an_envelope_is_an_unknown_table() -> None:
    data = envelope([hoso({"XML1": [xml1("LK1")], "XML0": [{"MA_LK": "LK1"}]})])
    (visit,) = _visits(data)
    assert [(p.table, p.rule) for p in visit.problems] == [("XML0", "unknown-table")]


def test_declaration_is_optional() -> None:
    (visit,) = _visits(envelope([hoso({"XML1": [xml1("LK1")]})], prolog=""))
    assert visit.ma_lk == "LK1"
    assert DECLARATION.startswith("<?xml")


def test_header_is_filled_as_soon_as_it_is_read() -> None:
    header: dict[str, str] = {}
    visits = read_envelope(
        io.BytesIO(envelope([hoso({"XML1": [xml1("LK1")]}), hoso({"XML1": [xml1("LK2")]})])), header=header
    )
    assert header == {}  # a generator: nothing is read before the first visit is asked for
    first = next(visits)
    # The header comes before DANHSACHHOSO, so it is complete when the first visit arrives.
    assert sorted(header) == ["MACSKCB", "NGAYLAP", "SOLUONGHOSO"]
    assert (header["MACSKCB"], header["SOLUONGHOSO"]) == (first.facility, "2")
    assert header["NGAYLAP"]
    rest = list(visits)
    assert count_problem(header, 1 + len(rest)) is None


def test_soluonghoso_that_does_not_match_the_visits_is_a_count_problem() -> None:
    data = envelope([hoso({"XML1": [xml1("LK1")]})]).replace(b"<SOLUONGHOSO>1<", b"<SOLUONGHOSO>3<")
    header: dict[str, str] = {}
    visits = list(read_envelope(io.BytesIO(data), header=header))
    problem = count_problem(header, len(visits))
    assert problem is not None
    assert (problem.rule, problem.field, problem.value) == ("count-mismatch", "SOLUONGHOSO", "3")


def test_header_elements_elsewhere_are_not_the_header() -> None:
    # Only MACSKCB of THONGTINDONVI and NGAYLAP/SOLUONGHOSO of THONGTINHOSO count (schema §1).
    data = envelope([hoso({"XML1": [xml1("LK1")]})]).replace(
        b"<CHUKYDONVI/>", b"<CHUKYDONVI><SOLUONGHOSO>9</SOLUONGHOSO><MACSKCB>00000</MACSKCB></CHUKYDONVI>"
    )
    header: dict[str, str] = {}
    (visit,) = read_envelope(io.BytesIO(data), header=header)
    assert (header["SOLUONGHOSO"], header["MACSKCB"], visit.facility) == ("1", "79001", "79001")
