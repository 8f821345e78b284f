"""``ketnoi demo generate --format xml130``: claims XML of the demo population (ketnoi.demo.xml130)."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from ketnoi.demo import catalog, facilities, ids, names, people, places
from ketnoi.demo.generate import generate, iter_blocks
from ketnoi.demo.xml130 import CREATED, LEGACY_DISTRICT, Xml130Summary, generate_xml130, iter_visits
from ketnoi.terminology.vn import vn_resources
from ketnoi.xml130.reader import Visit, read_envelope
from ketnoi.xml130.values import check_row

SEED = 5
PATIENTS = 200
CENT = Decimal("0.01")
AS_OF_END = datetime.combine(people.AS_OF, datetime.max.time())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Xml130Summary, list[Visit]]:
    out = tmp_path_factory.mktemp("xml130")
    summary = generate(PATIENTS, SEED, out, fmt="xml130")
    assert isinstance(summary, Xml130Summary)
    visits = [visit for path in sorted((out / "xml130").glob("*.xml")) for visit in read_envelope(path)]
    return out, summary, visits


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.xml"))}


def _d(text: str) -> Decimal:
    return Decimal(text) if text else Decimal(0)


def _t(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d%H%M")


def _codes(system_id: str) -> set[str]:
    (cs,) = [r for r in vn_resources() if r["id"] == system_id]
    return {c["code"] for c in cs["concept"]}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_xml130(40, seed, tmp_path / name)
    a, b, c = (_files(tmp_path / name / "xml130") for name in "abc")
    assert a == b and len(a) >= 5
    assert a != c


def test_first_patients_do_not_depend_on_the_others() -> None:
    small = list(iter_visits(30, 2))
    assert list(iter_visits(60, 2))[: len(small)] == small
    with pytest.raises(ValueError, match="patients"):
        list(iter_visits(-1, 2))


def test_patient_i_is_the_same_person_as_in_the_fhir_data() -> None:
    n, seed = 60, 8
    hs = facilities.build(seed)
    fhir = [block[0] for block, _dup in iter_blocks(n, seed, system=hs)]
    coverage = [next((r for r in block if r["resourceType"] == "Coverage"), None) for block, _ in iter_blocks(n, seed)]
    persons: list[dict[str, str]] = []
    for _code, tables in iter_visits(n, seed):
        xml1 = tables["XML1"][0]
        if not persons or (persons[-1]["SO_CCCD"], persons[-1]["HO_TEN"]) != (xml1["SO_CCCD"], xml1["HO_TEN"]):
            persons.append(xml1)
        else:  # the same person on every visit
            keys = ("NGAY_SINH", "GIOI_TINH", "DIA_CHI", "MA_THE_BHYT", "MA_DANTOC", "MAXA_CU_TRU", "DIEN_THOAI")
            assert all(xml1[k] == persons[-1][k] for k in keys)
    assert len(persons) == n  # every patient has at least one visit, in patient order
    spans: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for _code, tables in iter_visits(n, seed):
        xml1 = tables["XML1"][0]
        spans[xml1["SO_CCCD"]].append((xml1["NGAY_VAO"][:8], xml1["NGAY_RA"][:8]))
    for visits in spans.values():  # one person's visits, by date, never on the same day
        assert all(end < start for (_, end), (start, _) in itertools.pairwise(visits))
    for patient, cover, xml1 in zip(fhir, coverage, persons, strict=True):
        assert xml1["HO_TEN"] == patient["name"][0]["text"]
        by_system = {i["system"]: i["value"] for i in patient.get("identifier", [])}
        assert xml1["SO_CCCD"] == by_system.get(ids.CCCD_SYSTEM, "")
        assert xml1["MA_THE_BHYT"] == by_system.get(ids.BHYT_SYSTEM, "")
        assert xml1["NGAY_SINH"] == patient["birthDate"].replace("-", "") + "0000"
        assert xml1["GIOI_TINH"] == {"male": "1", "female": "2"}[patient["gender"]]
        address = patient["address"][0]
        assert xml1["DIA_CHI"] == address["text"]
        admin = {e["url"]: e["valueCodeableConcept"]["coding"][0]["code"] for e in address["extension"][0]["extension"]}
        assert (xml1["MATINH_CU_TRU"], xml1["MAXA_CU_TRU"]) == (admin["state"], admin["ward"])
        assert xml1["MA_DANTOC"] == patient["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
        phones = [t["value"] for t in patient.get("telecom", [])] + [
            t["value"] for c in patient.get("contact", []) for t in c.get("telecom", [])
        ]
        assert xml1["DIEN_THOAI"] == (phones[0] if phones else "")
        assert xml1["MA_DKBD"] == (cover["network"] if cover else "")


def test_envelopes_read_back_without_any_problem(run: tuple[Path, Xml130Summary, list[Visit]]) -> None:
    out, summary, visits = run
    folder = out / "xml130"
    assert sorted(p.name for p in folder.iterdir()) == sorted(_files(folder))  # no spool left behind
    assert summary.visits == len(visits) and summary.files == len(_files(folder))
    hs = facilities.build(SEED)
    hs_codes = {f.code for fs in (*hs.stations.values(), *hs.regional.values()) for f in fs}
    hs_codes |= {f.code for f in hs.provincial.values()}
    counts: dict[str, int] = defaultdict(int)
    for path in sorted(folder.glob("*.xml")):
        assert re.fullmatch(r"\d{5}-\d{4}\.xml", path.name)
        text = path.read_text(encoding="utf-8")
        read = list(read_envelope(path))
        assert f"<SOLUONGHOSO>{len(read)}</SOLUONGHOSO>" in text and f"<NGAYLAP>{CREATED}</NGAYLAP>" in text
        assert all(v.facility == path.name[:5] for v in read)
    for visit in visits:
        assert visit.problems == []
        assert visit.facility in hs_codes
        xml1 = visit.tables["XML1"][0]
        assert xml1["MA_CSKCB"] == visit.facility and xml1["MA_LK"].startswith(visit.facility)
        for table, rows in visit.tables.items():
            counts[table] += len(rows)
            for row in rows:
                assert check_row(table, row) == [], (table, row)
    assert dict(counts) == {table: rows for table, rows in summary.counts.items() if rows}
    lk = [(v.facility, v.ma_lk) for v in visits]
    assert len(set(lk)) == len(lk)


def test_codes_come_from_the_code_lists(run: tuple[Path, Xml130Summary, list[Visit]]) -> None:
    _, _, visits = run
    doituong, loai = _codes("xml130-ma-doituong-kcb"), _codes("xml130-ma-loai-kcb")
    ket_qua, loai_rv = _codes("xml130-ket-qua-dtri"), _codes("xml130-ma-loai-rv")
    (admin,) = [r for r in vn_resources() if r["id"] == "vn-admin-unit-2025"]
    communes = {p["code"]: {c["code"] for c in p["concept"]} for p in admin["concept"]}
    icd = {a.code for a in catalog.ACUTE} | {c.code for c in catalog.CHRONIC}
    seen: dict[str, set[str]] = defaultdict(set)
    for visit in visits:
        x = visit.tables["XML1"][0]
        assert x["MA_DOITUONG_KCB"] in doituong and x["MA_LOAI_KCB"] in loai
        assert x["KET_QUA_DTRI"] in ket_qua and x["MA_LOAI_RV"] in loai_rv
        assert x["MA_BENH_CHINH"] in icd and set(filter(None, x["MA_BENH_KT"].split(";"))) <= icd
        assert len(x["MA_BENH_KT"].split(";")) <= 3 and x["MA_BENH_CHINH"] not in x["MA_BENH_KT"].split(";")
        assert x["MA_DANTOC"] in names.ETHNICITIES and x["MA_QUOCTICH"] == "000"
        assert x["MAXA_CU_TRU"] in communes[x["MATINH_CU_TRU"]]
        assert x["MAHUYEN_CU_TRU"] == LEGACY_DISTRICT.get(x["MAXA_CU_TRU"], "000")
        assert re.fullmatch(r"\d{10}", x["MA_TTDV"]) and re.fullmatch(r"\d{1,3}\.\d{2}", x["CAN_NANG"])
        for row in visit.tables.get("XML3", []):
            seen["MA_NHOM"].add(row["MA_NHOM"])
            if row["MA_NHOM"] == "15":
                assert re.fullmatch(r"[HT]\d{3}", row["MA_GIUONG"])
            if row["MA_NHOM"] == "10":
                assert row["MA_VAT_TU"] and row["TEN_VAT_TU"] and row["TT_THAU"]
            if row["MA_NHOM"] in ("1", "2", "3", "8"):
                assert row["NGUOI_THUC_HIEN"] and row["NGAY_TH_YL"]
            if row["MA_NHOM"] == "8":
                assert row["PP_VO_CAM"] in ("1", "2", "3", "4") and re.fullmatch(r"\d{2}\.\d{1,2}", row["MA_PTTT_QT"])
        seen["kind"].add(x["MA_LOAI_KCB"])
        seen["doituong"].add(x["MA_DOITUONG_KCB"])
    assert seen["MA_NHOM"] >= {"1", "2", "3", "8", "10", "13", "15"}
    assert seen["kind"] == {"01", "02", "03"}
    assert seen["doituong"] >= {"1.1", "1.2", "1.3", "2"}


def test_amounts_add_up_exactly(run: tuple[Path, Xml130Summary, list[Visit]]) -> None:
    _, _, visits = run
    uninsured = 0
    for visit in visits:
        x = visit.tables["XML1"][0]
        lines = visit.tables.get("XML2", []) + visit.tables.get("XML3", [])
        card = x["MA_THE_BHYT"]
        level = ids.BENEFIT_PERCENT[int(card[2])] if card else 0
        uninsured += not card
        assert (x["MA_DOITUONG_KCB"] == "3.5") == (not card)
        for row in lines:
            price = _d(row.get("DON_GIA") or row["DON_GIA_BV"])
            bv, bh = _d(row["THANH_TIEN_BV"]), _d(row["THANH_TIEN_BH"])
            assert bv == (_d(row["SO_LUONG"]) * price).quantize(CENT, ROUND_HALF_UP)
            assert (row["PHAM_VI"], row["TYLE_TT_BH"], row["MUC_HUONG"]) == ("1", "100" if card else "0", str(level))
            assert bh == bv * _d(row["TYLE_TT_BH"]) / 100
            assert _d(row["T_BHTT"]) == (bh * level / 100).quantize(CENT, ROUND_HALF_UP)
            assert _d(row["T_BNCCT"]) == bh - _d(row["T_BHTT"]) and _d(row["T_BNTT"]) == bv - bh
            assert all(_d(row[k]) == 0 for k in row if k.startswith("T_NGUONKHAC"))
            assert all(len(v.partition(".")[2]) <= 2 for k, v in row.items() if k.startswith(("THANH", "T_")))
        total = {k: sum((_d(r[k]) for r in lines), Decimal(0)) for k in ("THANH_TIEN_BV", "THANH_TIEN_BH")}
        for k in ("T_BNTT", "T_BNCCT", "T_BHTT"):
            total[k] = sum((_d(r[k]) for r in lines), Decimal(0))
        assert _d(x["T_TONGCHI_BV"]) == total["THANH_TIEN_BV"] > 0
        assert _d(x["T_TONGCHI_BH"]) == total["THANH_TIEN_BH"]
        assert (_d(x["T_BNTT"]), _d(x["T_BNCCT"]), _d(x["T_BHTT"])) == (
            total["T_BNTT"],
            total["T_BNCCT"],
            total["T_BHTT"],
        )
        assert _d(x["T_BHTT"]) == _d(x["T_TONGCHI_BH"]) - _d(x["T_BNCCT"]) == _d(x["T_BHTT_GDV"])
        assert _d(x["T_THUOC"]) == sum((_d(r["THANH_TIEN_BV"]) for r in visit.tables.get("XML2", [])), Decimal(0))
        supplies = [r for r in visit.tables.get("XML3", []) if r["MA_NHOM"] == "10"]
        assert _d(x["T_VTYT"]) == sum((_d(r["THANH_TIEN_BV"]) for r in supplies), Decimal(0))
        assert _d(x["T_NGUONKHAC"]) == 0
    assert 0 < uninsured < len(visits) / 5


def test_dates_stay_inside_the_visit(run: tuple[Path, Xml130Summary, list[Visit]]) -> None:
    _, _, visits = run
    window = datetime.combine(people.AS_OF - timedelta(days=731), datetime.min.time())
    csst = re.compile(r"CSST<M\d+_T\d+(\.\d)?(_HA\d+/\d+)?_NT\d+>")
    for visit in visits:
        x = visit.tables["XML1"][0]
        start, end, kind = _t(x["NGAY_VAO"]), _t(x["NGAY_RA"]), x["MA_LOAI_KCB"]
        assert window <= start < end <= AS_OF_END
        assert start.date() >= datetime.strptime(x["NGAY_SINH"][:8], "%Y%m%d").date()
        assert (x["NAM_QT"], x["THANG_QT"]) == (str(end.year), str(end.month))
        days = (end.date() - start.date()).days + 1
        assert x["SO_NGAY_DTRI"] == ("0" if kind == "01" else str(days))
        if kind == "03":
            assert start <= _t(x["NGAY_VAO_NOI_TRU"]) <= end and x["LY_DO_VNT"]
            beds = sum(_d(r["SO_LUONG"]) for r in visit.tables["XML3"] if r["MA_NHOM"] == "15")
            assert 1 <= beds <= days
        else:
            assert x["NGAY_VAO_NOI_TRU"] == "" and all(r["MA_NHOM"] != "15" for r in visit.tables["XML3"])
        assert ("XML5" in visit.tables) == (kind != "01")
        for row in visit.tables.get("XML2", []) + visit.tables.get("XML3", []):
            order = _t(row["NGAY_YL"])
            assert start <= order <= end
            done = _t(row["NGAY_TH_YL"]) if row["NGAY_TH_YL"] else order
            result = _t(row["NGAY_KQ"]) if row.get("NGAY_KQ") else done
            assert order <= done <= result <= end, row
        for row in visit.tables.get("XML4", []):
            assert start <= _t(row["NGAY_KQ"]) <= end
        for row in visit.tables.get("XML5", []):
            assert start <= _t(row["THOI_DIEM_DBLS"]) <= end and csst.search(row["DIEN_BIEN_LS"])


def test_numbers_of_a_facility(run: tuple[Path, Xml130Summary, list[Visit]]) -> None:
    _, _, visits = run
    patient_numbers: dict[tuple[str, str], set[str]] = defaultdict(set)
    people_numbered: dict[tuple[str, str], set[str]] = defaultdict(set)
    for visit in visits:
        x = visit.tables["XML1"][0]
        person = x["SO_CCCD"] + x["HO_TEN"]
        patient_numbers[visit.facility, person].add(x["MA_BN"])
        people_numbered[visit.facility, x["MA_BN"]].add(person)
        assert re.fullmatch(r"\d{5}\d{7}", x["MA_LK"]) and re.fullmatch(r"(KB|NT|BA)\d{9}", x["MA_HSBA"])
        for rows in visit.tables.values():
            assert [r.get("STT") for r in rows] == [str(n) for n in range(1, len(rows) + 1)]
    assert all(len(numbers) == 1 for numbers in patient_numbers.values())  # stable for a person at a facility
    assert all(len(persons) == 1 for persons in people_numbered.values())  # and never shared


def test_about_twenty_lines_per_visit(run: tuple[Path, Xml130Summary, list[Visit]]) -> None:
    _, summary, visits = run
    assert summary.line_items == sum(len(v.tables.get("XML2", [])) + len(v.tables.get("XML3", [])) for v in visits)
    per_visit = summary.line_items / summary.visits
    assert 15 <= per_visit <= 30, per_visit
    assert PATIENTS <= summary.visits <= 3 * PATIENTS
    text = summary.table()
    assert "XML2" in text and f"visits {summary.visits:,}" in text and "per visit" in text


def test_files_hold_at_most_visits_per_file(tmp_path: Path) -> None:
    summary = generate_xml130(30, 6, tmp_path, visits_per_file=2)
    folder = tmp_path / "xml130"
    per_file = {p.name: [v.ma_lk for v in read_envelope(p)] for p in sorted(folder.glob("*.xml"))}
    assert all(1 <= len(lks) <= 2 for lks in per_file.values()) and summary.files == len(per_file)
    by_facility: dict[str, list[str]] = defaultdict(list)
    for name, lks in per_file.items():
        by_facility[name[:5]] += lks
    expected: dict[str, list[str]] = defaultdict(list)
    for code, tables in iter_visits(30, 6):
        expected[code].append(tables["XML1"][0]["MA_LK"])
    assert by_facility == expected
    with pytest.raises(ValueError, match="visits_per_file"):
        generate_xml130(1, 6, tmp_path, visits_per_file=0)


def test_legacy_districts_match_the_shipped_code_system() -> None:
    (legacy,) = [r for r in vn_resources() if r["id"] == "vn-admin-unit-legacy"]
    district_of = {
        x["code"]: d["code"] for p in legacy["concept"] for d in p.get("concept", []) for x in d.get("concept", [])
    }
    demo_communes = [code for p in places.PROVINCES for code in p.commune_codes]
    assert {c: district_of[c] for c in demo_communes if c in district_of} == LEGACY_DISTRICT
    assert len(LEGACY_DISTRICT) >= len(demo_communes) - 2


def test_cli(tmp_path: Path) -> None:
    options = ["--patients", "20", "--seed", "1", "--out", str(tmp_path), "--format", "xml130"]
    done = subprocess.run(
        [sys.executable, "-m", "ketnoi", "demo", "generate", *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "XML1" in done.stdout and "visits" in done.stdout and "format xml130" in done.stdout
    files = sorted((tmp_path / "xml130").glob("*.xml"))
    assert files and not (tmp_path / "duplicates.csv").exists()
    printed = re.search(r"visits (\d+)", done.stdout)
    assert printed and sum(1 for f in files for _ in read_envelope(f)) == int(printed[1])
