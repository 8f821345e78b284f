"""Vietnamese identifier rules (ketnoi.vn.identifiers, docs/vn-identifiers.md)."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

import fhirpathpy
import pytest
from fhirpathpy import evaluate
from fhirpathpy.models import models

from ketnoi.demo import facilities, ids, people, places
from ketnoi.fhir.fhirpath_syntax import syntax_error
from ketnoi.vn.identifier_rules import BHYT_CATEGORIES, BHYT_ISSUERS, PROVINCES
from ketnoi.vn.identifiers import (
    BHXH_SYSTEM,
    BHYT_SYSTEM,
    CCCD_SYSTEM,
    CMND_SYSTEM,
    FACILITY_SYSTEM,
    LICENCE_SYSTEM,
    RULES,
    BhytParts,
    CccdParts,
    IdentifierError,
    Problem,
    identifier_in,
    invariants,
    normalize_bhxh,
    normalize_bhyt,
    normalize_cccd,
    normalize_cmnd,
    normalize_facility_code,
    normalize_licence,
    parse_bhyt,
    parse_cccd,
    rule_for,
    validate_bhxh,
    validate_bhyt,
    validate_cccd,
    validate_cmnd,
    validate_facility_code,
    validate_licence,
)


def codes(problems: list[Problem]) -> list[str]:
    return [p.code for p in problems]


# --- CCCD ---


@pytest.mark.parametrize(
    ("value", "birth_date", "gender"),
    [
        ("001099012345", "1999-03-04", "male"),
        ("079303000001", "2003", "female"),
        ("096200000000", "2000-01", "male"),
        ("046187654321", "1987-12-31", "female"),
        ("001099012345", None, None),
        ("001099012345", "1999-03-04", "other"),  # other/unknown cannot be compared with digit 4
        ("001199012345", "1999-03-04", "unknown"),
        ("001099012345", "not a date", None),  # an unreadable birthDate is not the CCCD's problem
    ],
)
def test_valid_cccd(value: str, birth_date: str | None, gender: str | None) -> None:
    assert validate_cccd(value, birth_date=birth_date, gender=gender) == []


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        ("", {}, ["cccd-empty"]),
        ("0010990123456", {}, ["cccd-length"]),
        ("00109901", {}, ["cccd-length"]),
        ("00109901234", {}, ["cccd-leading-zero"]),
        ("012345678", {}, ["cccd-is-cmnd"]),
        ("00109901234a", {}, ["cccd-characters"]),
        ("O01099012345", {}, ["cccd-characters"]),  # letter O for zero
        ("003099012345", {}, ["cccd-province"]),  # 03 was never a province code
        ("097099012345", {}, ["cccd-province"]),
        ("101099012345", {}, ["cccd-province"]),
        ("001499012345", {}, ["cccd-century"]),  # 2199: in the future
        ("001899012345", {}, ["cccd-century"]),  # 8/9 → 2300s (Circular 07/2016/TT-BCA)
        ("001299012345", {}, ["cccd-century"]),  # 2099
        ("001099012345", {"birth_date": "1998-05-06"}, ["cccd-birth-year"]),
        ("001099012345", {"birth_date": "2001-03-04"}, ["cccd-birth-century"]),
        ("001299012345", {"birth_date": "1999"}, ["cccd-century", "cccd-birth-century"]),
        ("001199012345", {"gender": "male"}, ["cccd-gender"]),
        ("001299012345", {"gender": "female", "birth_date": "2099"}, ["cccd-century", "cccd-gender"]),
        ("001 099 012345", {}, ["cccd-not-normalized"]),
        ("001.099-012345", {"gender": "female"}, ["cccd-not-normalized", "cccd-gender"]),
    ],
)
def test_invalid_cccd(value: str, kwargs: dict[str, Any], expected: list[str]) -> None:
    assert codes(validate_cccd(value, **kwargs)) == expected


def test_cccd_messages_name_the_wrong_part() -> None:
    [year] = validate_cccd("001099012345", birth_date="1998-05-06")
    assert "001099012345" in year.en and "digits 5-6 (99)" in year.en and "1998-05-06" in year.en
    assert "chữ số 5-6 (99)" in year.vi and "ngày sinh" in year.vi
    [century] = validate_cccd("001099012345", birth_date="2001-03-04")
    assert "digit 4 (0)" in century.en and "1900-1999" in century.en and "2001-03-04" in century.en
    [gender] = validate_cccd("001199012345", gender="male")
    assert "means female" in gender.en and "gender is male" in gender.en
    assert "giới tính nữ" in gender.vi and "ghi là nam" in gender.vi
    [province] = validate_cccd("097099012345")
    assert "digits 1-3 (097)" in province.en and "07/2016/TT-BCA" in province.en


@pytest.mark.parametrize(
    ("digit", "gender", "century"),
    [
        (0, "male", 1900),
        (1, "female", 1900),
        (2, "male", 2000),
        (3, "female", 2000),
        (4, "male", 2100),
        (5, "female", 2100),
        (6, "male", 2200),
        (7, "female", 2200),
        (8, "male", 2300),  # the brief's "8/9 → 1800s" is not what Circular 07/2016/TT-BCA Art. 7(2) says
        (9, "female", 2300),
    ],
)
def test_parse_cccd_sex_and_century(digit: int, gender: str, century: int) -> None:
    parts = parse_cccd(f"079{digit}05123456")
    assert parts == CccdParts(f"079{digit}05123456", "079", "Thành phố Hồ Chí Minh", gender, century + 5, "123456")


@pytest.mark.parametrize("value", ["", "00109901234", "0010990123456", "00109901234a"])
def test_parse_cccd_needs_twelve_digits(value: str) -> None:
    assert parse_cccd(value) is None


def test_parse_cccd_normalises_and_keeps_unknown_provinces() -> None:
    assert parse_cccd("001 099 012345") == CccdParts("001099012345", "001", "Hà Nội", "male", 1999, "012345")
    parts = parse_cccd("097099012345")
    assert parts is not None and parts.province is None


def test_every_province_code_is_a_cccd_prefix() -> None:
    assert len(PROVINCES) == 63
    assert set(PROVINCES) == set(places.LEGACY_BY_CODE)  # the demo's independently kept list
    assert set(places.PROVINCE_BY_CODE) <= set(PROVINCES)  # the 34 provinces kept former codes
    for code, name in PROVINCES.items():
        parts = parse_cccd(f"0{code}085000001")
        assert parts is not None and parts.province == name
        assert validate_cccd(f"0{code}085000001", birth_date="1985") == []


# --- CMND ---


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("012345678", []),
        ("271234567", []),
        (" 012 345 678", ["cmnd-not-normalized"]),
        ("", ["cmnd-empty"]),
        ("001099012345", ["cmnd-is-cccd"]),
        ("01234567", ["cmnd-length"]),
        ("0123456789", ["cmnd-length"]),
        ("01234567X", ["cmnd-characters"]),
    ],
)
def test_cmnd(value: str, expected: list[str]) -> None:
    assert codes(validate_cmnd(value)) == expected


def test_cmnd_and_cccd_point_at_each_other() -> None:
    [cmnd] = validate_cmnd("001099012345")
    assert CCCD_SYSTEM in cmnd.en and CCCD_SYSTEM in cmnd.vi
    [cccd] = validate_cccd("012345678")
    assert CMND_SYSTEM in cccd.en and CMND_SYSTEM in cccd.vi


# --- BHYT ---


@pytest.mark.parametrize(
    ("value", "temporary"),
    [
        ("DN4790123456789", False),
        ("HS4010120878811", False),
        ("GD4480000000001", False),
        ("CC1010000000001", False),
        ("QN5970123456789", False),  # issued by the Ministry of Defence social insurance
        ("DN2790123456789", False),  # the level follows the most favourable entitlement, not the category
        ("TE1010000000001", True),
        ("TE1790123456789", True),
    ],
)
def test_valid_bhyt(value: str, temporary: bool) -> None:
    assert validate_bhyt(value, temporary=temporary) == []


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        ("", {}, ["bhyt-empty"]),
        ("DN479012345678", {}, ["bhyt-length"]),
        ("DN47901234567890", {}, ["bhyt-length"]),
        ("7912058865", {}, ["bhyt-is-bhxh"]),
        ("DN4790123456789!", {}, ["bhyt-characters"]),
        ("1N4790123456789", {}, ["bhyt-category-format"]),
        ("XX4790123456789", {}, ["bhyt-category"]),
        ("ZZ4790123456789", {}, ["bhyt-category"]),
        ("DN0790123456789", {}, ["bhyt-level"]),
        ("DN6790123456789", {}, ["bhyt-level"]),
        ("DNA790123456789", {}, ["bhyt-level"]),
        ("DN4990123456789", {}, ["bhyt-province"]),
        ("DN4030123456789", {}, ["bhyt-province"]),
        ("DN4AB0123456789", {}, ["bhyt-province"]),
        ("DN479012345678A", {}, ["bhyt-bhxh"]),
        ("XX0990123456789", {}, ["bhyt-category", "bhyt-level", "bhyt-province"]),
        ("DN4790123456789", {"temporary": True}, ["bhyt-temporary"]),
        ("TE2010000000001", {"temporary": True}, ["bhyt-temporary"]),
        ("dn4790123456789", {}, ["bhyt-not-normalized"]),
        ("DN 4 79 0123456789", {}, ["bhyt-not-normalized"]),
        ("dn-4-79-012345678", {}, ["bhyt-not-normalized", "bhyt-length"]),
    ],
)
def test_invalid_bhyt(value: str, kwargs: dict[str, Any], expected: list[str]) -> None:
    assert codes(validate_bhyt(value, **kwargs)) == expected


def test_bhyt_messages_name_the_character_positions() -> None:
    [level] = validate_bhyt("DN6790123456789")
    assert "character 3 (6)" in level.en and "ký tự thứ 3 (6)" in level.vi
    [province] = validate_bhyt("DN4990123456789")
    assert "characters 4-5 (99)" in province.en and "ký tự 4-5 (99)" in province.vi
    [bhxh] = validate_bhyt("7912058865")
    assert BHXH_SYSTEM in bhxh.en


def test_parse_bhyt() -> None:
    assert parse_bhyt("dn 4 79 0123456789") == BhytParts(
        "DN4790123456789", "DN", "Người lao động làm việc trong doanh nghiệp", 4, "79", "0123456789"
    )
    assert parse_bhyt("XX0990123456789") == BhytParts("XX0990123456789", "XX", None, 0, "99", "0123456789")
    assert parse_bhyt("DN479012345678") is None
    assert parse_bhyt("DN479012345678A") is None


def test_bhyt_tables() -> None:
    assert len(BHYT_CATEGORIES) == 44
    assert all(len(c) == 2 and c.isalpha() and c.isupper() for c in BHYT_CATEGORIES)
    assert all(c.level in {1, 2, 3, 4, 5, None} and 1 <= c.group <= 5 for c in BHYT_CATEGORIES.values())
    assert set(PROVINCES) < set(BHYT_ISSUERS)


# --- Social-insurance number, facility code, practising licence ---


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7912058865", []),
        ("0120878811", []),
        ("", ["bhxh-empty"]),
        ("79 1205 8865", ["bhxh-not-normalized"]),
        ("791205886", ["bhxh-length"]),
        ("79120588650", ["bhxh-length"]),
        ("79120588A5", ["bhxh-characters"]),
        ("DN4790123456789", ["bhxh-is-bhyt"]),
    ],
)
def test_bhxh(value: str, expected: list[str]) -> None:
    assert codes(validate_bhxh(value)) == expected


def test_bhxh_inside_a_card_is_named() -> None:
    [problem] = validate_bhxh("DN4790123456789")
    assert "0123456789" in problem.en and "0123456789" in problem.vi


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        ("01832", {}, []),
        ("79560", {}, []),
        ("74001", {}, []),  # a pre-2025 province (Bình Dương) keeps its facility codes
        ("01000", {"placeholder_ok": True}, []),
        ("01000", {}, ["facility-placeholder"]),
        ("", {}, ["facility-empty"]),
        ("0183", {}, ["facility-length"]),
        ("018321", {}, ["facility-length"]),
        ("01A32", {}, ["facility-characters"]),
        ("03832", {}, ["facility-province"]),
        ("99000", {}, ["facility-province", "facility-placeholder"]),
        ("01 832", {}, ["facility-not-normalized"]),
    ],
)
def test_facility_code(value: str, kwargs: dict[str, Any], expected: list[str]) -> None:
    assert codes(validate_facility_code(value, **kwargs)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("000123/HNO-CCHN", []),
        ("0012345/BYT-GPHN", []),
        ("123/ĐNA-CCHN", []),
        ("7912058865", []),  # QĐ 130 coded staff by their 10-digit health ID
        ("000001/79-CCHN", []),
        ("000123/hno-cchn", ["licence-not-normalized"]),
        (" 000123 / HNO-CCHN ", ["licence-not-normalized"]),
        ("", ["licence-empty"]),
        ("12", ["licence-length"]),
        ("1" + "A" * 40, ["licence-length"]),
        ("000123/HNO-CCHN;000456/HNO-CCHN", ["licence-multiple"]),
        ("000123#HNO", ["licence-characters"]),
        ("(000123/HNO-CCHN)", ["licence-characters"]),
        ("BYT-CCHN", ["licence-no-digit"]),
        ("Bác sĩ", ["licence-not-normalized", "licence-characters", "licence-no-digit"]),
    ],
)
def test_licence(value: str, expected: list[str]) -> None:
    assert codes(validate_licence(value)) == expected


# Every invalid example above, for the properties all problems share.
_INVALID: list[tuple[str, str]] = [
    (CCCD_SYSTEM, "00109901234a"),
    (CCCD_SYSTEM, "097099012345"),
    (CMND_SYSTEM, "01234567"),
    (BHYT_SYSTEM, "XX0990123456789"),
    (BHXH_SYSTEM, "791205886"),
    (FACILITY_SYSTEM, "03832"),
    (LICENCE_SYSTEM, "Bác sĩ"),
    (LICENCE_SYSTEM, ""),
]


@pytest.mark.parametrize(("system", "value"), _INVALID)
def test_problems_are_bilingual_and_name_the_value(system: str, value: str) -> None:
    rule = rule_for(system)
    assert rule is not None
    problems = rule.validate(value)
    assert problems
    for p in problems:
        assert p.code.startswith(f"{rule.kind}-")
        assert p.en and p.vi and p.en != p.vi
        assert not p.vi.isascii()  # Vietnamese with its diacritics
        assert "{" not in p.en + p.vi  # every template field filled
        if value:
            assert value in p.en or value.replace(" ", "").upper() in p.en


# --- Normalisation ---


@pytest.mark.parametrize(
    ("normalize", "value", "expected"),
    [
        (normalize_cccd, " 001 099 012345 ", "001099012345"),
        (normalize_cccd, "001.099.012.345", "001099012345"),
        (normalize_cccd, "001-099-012345", "001099012345"),
        (normalize_cccd, "００１０９９０１２３４５", "001099012345"),  # full-width digits
        (normalize_cccd, "00109901234", "00109901234"),  # wrong length: left for validate to report
        (normalize_cmnd, "012 345 678", "012345678"),
        (normalize_bhyt, "dn 4 79 0123456789", "DN4790123456789"),
        (normalize_bhyt, "HS-4-01-0120878811", "HS4010120878811"),
        (normalize_bhxh, "79-1205-8865", "7912058865"),
        (normalize_facility_code, "01.832", "01832"),
        (normalize_licence, " 000123 / hno-cchn ", "000123/HNO-CCHN"),
        (normalize_licence, "123/đna-cchn", "123/ĐNA-CCHN"),
    ],
)
def test_normalize(normalize: Any, value: str, expected: str) -> None:
    assert normalize(value) == expected
    assert normalize(expected) == expected


@pytest.mark.parametrize(
    ("normalize", "value", "code"),
    [
        (normalize_cccd, "", "cccd-empty"),
        (normalize_cccd, " - . ", "cccd-empty"),
        (normalize_cccd, "00109901234a", "cccd-characters"),
        (normalize_cmnd, "A1234567", "cmnd-characters"),
        (normalize_bhyt, "DN4790123456789#", "bhyt-characters"),
        (normalize_bhxh, "abc", "bhxh-characters"),
        (normalize_facility_code, "BV01", "facility-characters"),
        (normalize_licence, "   ", "licence-empty"),
    ],
)
def test_normalize_refuses_hopeless_values(normalize: Any, value: str, code: str) -> None:
    with pytest.raises(IdentifierError) as raised:
        normalize(value)
    assert codes(raised.value.problems) == [code]
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("rule", list(RULES.values()), ids=lambda r: r.kind)
def test_normalized_values_raise_no_normalisation_problem(rule: Any) -> None:
    samples = {
        "cccd": "001 099 012345",
        "cmnd": "012 345 678",
        "bhyt": "dn 4 79 0123456789",
        "bhxh": "79 1205 8865",
        "facility": "01 832",
        "licence": "000123 / hno-cchn",
    }
    value = samples[rule.kind]
    assert codes(rule.validate(value)) == [f"{rule.kind}-not-normalized"]
    assert rule.validate(rule.normalize(value)) == []


# --- Registry ---


def test_rule_for() -> None:
    assert {system: rule.kind for system, rule in RULES.items()} == {
        CCCD_SYSTEM: "cccd",
        CMND_SYSTEM: "cmnd",
        BHYT_SYSTEM: "bhyt",
        BHXH_SYSTEM: "bhxh",
        FACILITY_SYSTEM: "facility",
        LICENCE_SYSTEM: "licence",
    }
    for system, rule in RULES.items():
        assert rule.system == system and rule_for(system) is rule
    assert CCCD_SYSTEM == "http://fhir.ehealth.gov.vn/core/sid/national_id"
    assert CMND_SYSTEM == "http://fhir.ehealth.gov.vn/core/sid/citizen_id"
    assert BHYT_SYSTEM == "http://fhir.ehealth.gov.vn/core/sid/insurance_number"
    assert FACILITY_SYSTEM == "http://fhir.ehealth.gov.vn/core/sid/provider-code"
    assert rule_for("http://example.org/unknown") is None
    assert rule_for("") is None


@pytest.mark.parametrize(
    ("demo_system", "kind"),
    [
        (ids.CCCD_SYSTEM, "cccd"),
        (ids.BHYT_SYSTEM, "bhyt"),
        (ids.BHXH_SYSTEM, "bhxh"),
        (ids.FACILITY_SYSTEM, "facility"),
        (ids.LICENCE_SYSTEM, "licence"),
    ],
)
def test_rule_for_accepts_the_demo_generators_systems(demo_system: str, kind: str) -> None:
    rule = rule_for(demo_system)
    assert rule is not None and rule.kind == kind


# --- FHIRPath invariants ---


def _patient(
    cccd: str | None = None,
    bhyt: str | None = None,
    cccd_system: str = CCCD_SYSTEM,
    **fields: Any,
) -> dict[str, Any]:
    identifier = [{"system": "urn:oid:1.2.3", "value": "not checked"}]
    if cccd is not None:
        identifier.append({"system": cccd_system, "value": cccd})
    if bhyt is not None:
        identifier.append({"system": BHYT_SYSTEM, "value": bhyt})
    return {"resourceType": "Patient", "identifier": identifier, **fields}


_GOOD = _patient("001099012345", "DN4790123456789", birthDate="1999-03-04", gender="male")

# (key, Patient that satisfies it, Patient that breaks it)
_INVARIANT_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("vn-cccd-1", _patient("001099012345"), _patient("00109901234")),
    ("vn-cccd-1", _patient(), _patient("00109901234a")),
    ("vn-cccd-1", _patient("079303000001"), _patient("00109901234", cccd_system=ids.CCCD_SYSTEM)),
    ("vn-cccd-2", _patient("001099012345", birthDate="1999"), _patient("001099012345", birthDate="1998-05-06")),
    ("vn-cccd-2", _patient("079303000001", birthDate="2003-02"), _patient("001099012345", birthDate="2099")),
    ("vn-cccd-2", _patient("001099012345"), _patient("001299012345", birthDate="1999-01-01")),
    ("vn-cccd-2", _patient(birthDate="1999"), _patient("001099012345", cccd_system=ids.CCCD_SYSTEM, birthDate="1998")),
    ("vn-cccd-2", _patient("0010990123", birthDate="2001"), _patient("079303000001", birthDate="1903")),
    ("vn-cccd-3", _patient("001099012345", gender="male"), _patient("001099012345", gender="female")),
    ("vn-cccd-3", _patient("001199012345", gender="female"), _patient("001199012345", gender="male")),
    ("vn-cccd-3", _patient("001199012345", gender="other"), _patient("079302000001", gender="male")),
    ("vn-cccd-3", _patient("001199012345"), _patient("079303000001", gender="male")),
    ("vn-cccd-3", _patient("001199012345", gender="unknown"), _patient("079202000001", gender="female")),
    ("vn-cccd-4", _patient("096099012345"), _patient("097099012345")),
    ("vn-cccd-4", _patient("001099012345"), _patient("003099012345")),
    ("vn-bhyt-1", _patient(bhyt="DN4790123456789"), _patient(bhyt="DN479012345678")),
    ("vn-bhyt-1", _patient(bhyt="TE1010000000001"), _patient(bhyt="DN0790123456789")),
    ("vn-bhyt-1", _patient(), _patient(bhyt="dn4790123456789")),
    ("vn-bhyt-2", _patient(bhyt="GD4790123456789"), _patient(bhyt="XX4790123456789")),
    ("vn-bhyt-3", _patient(bhyt="QN5970123456789"), _patient(bhyt="DN4990123456789")),
    ("vn-bhyt-3", _patient(bhyt="DN4010123456789"), _patient(bhyt="DN4030123456789")),
]


def _by_key() -> dict[str, dict[str, Any]]:
    return {inv["key"]: inv for inv in invariants()}


@functools.cache
def _compiled(key: str, model: str | None) -> Callable[[dict[str, Any]], list[Any]]:
    """The invariant parsed once (fhirpathpy parsing dominates the cost of an evaluation)."""
    run = fhirpathpy.compile(_by_key()[key]["expression"], models[model] if model else None)
    return lambda resource: list(run(resource, {}))


def test_invariants_are_constraints_on_patient() -> None:
    found = invariants()
    assert [inv["key"] for inv in found] == list(_by_key())  # unique keys
    assert set(_by_key()) == {key for key, _, _ in _INVARIANT_CASES}
    for inv in found:
        assert inv["severity"] == "error"
        assert "xpath" not in inv
        assert inv["human"] and inv["expression"] and inv["requirements"]
        assert syntax_error(inv["expression"]) is None  # fhirpathpy itself recovers silently from bad syntax


@pytest.mark.parametrize("model", ["r4", None], ids=["r4-model", "untyped"])
@pytest.mark.parametrize(("key", "passing", "failing"), _INVARIANT_CASES)
def test_invariant(key: str, passing: dict[str, Any], failing: dict[str, Any], model: str | None) -> None:
    assert evaluate(passing, _by_key()[key]["expression"], {}, models[model] if model else None) == [True]
    check = _compiled(key, model)
    assert check(passing) == [True]
    assert check(failing) == [False]
    assert check(_GOOD) == [True]


def test_invariants_agree_with_the_validators() -> None:
    rng = random.Random(20)
    for _ in range(60):
        year = rng.randint(1900, 2025)
        female = rng.random() < 0.5
        value = ids.cccd(rng.choice(list(PROVINCES)), year, female, rng)
        for birth in (f"{year}-01-02", f"{year + rng.choice((-100, -1, 1))}"):
            for gender in ("male", "female", "other"):
                patient = _patient(value, birthDate=birth, gender=gender)
                valid = validate_cccd(value, birth_date=birth, gender=gender) == []
                results = [_compiled(key, "r4")(patient) for key in _by_key()]
                assert (results == [[True]] * len(results)) == valid, (value, birth, gender, results)


# --- The demo generator (ketnoi/demo/ids.py) ---


def test_demo_cccds_pass() -> None:
    rng = random.Random(2026)
    codes_ = set(places.LEGACY_BY_CODE) | set(places.PROVINCE_BY_CODE)
    for code in sorted(codes_):
        for year in range(1900, 2027):
            for female in (False, True):
                value = ids.cccd(code, year, female, rng)
                gender = "female" if female else "male"
                assert validate_cccd(value, birth_date=f"{year}-07-01", gender=gender) == [], value
                assert ids.decode_cccd(value) == (code, year, female)


def test_demo_bhyt_and_bhxh_numbers_pass() -> None:
    rng = random.Random(2026)
    for category in ids.BHYT_CATEGORIES:
        for province in places.PROVINCE_BY_CODE:
            bhxh = ids.bhxh_number(province, rng)
            card = ids.bhyt_card(category, province, bhxh)
            assert validate_bhxh(bhxh) == [], bhxh
            assert validate_bhyt(card) == [], card
            parts = parse_bhyt(card)
            assert parts is not None and parts.bhxh == bhxh and parts.category_name is not None


def test_demo_people_pass() -> None:
    for seed in range(500):
        person = people.draw_person(random.Random(seed), f"p{seed}")
        gender = "female" if person.female else "male"
        if person.cccd:
            assert validate_cccd(person.cccd, birth_date=person.birth.isoformat(), gender=gender) == []
        if person.bhyt:
            assert validate_bhyt(person.bhyt) == [], person.bhyt


def test_demo_facility_codes_and_licences_pass() -> None:
    checked: dict[str, int] = {}
    for resource in facilities.build(1).resources:
        for identifier in resource.get("identifier", []):
            rule = rule_for(identifier["system"])
            if rule is not None:
                assert rule.validate(identifier["value"]) == [], identifier
                checked[rule.kind] = checked.get(rule.kind, 0) + 1
    assert set(checked) == {"facility", "licence"}


@pytest.mark.parametrize(
    ("word", "found"),
    [
        ("079203001234", "079203001234"),  # CCCD
        ("０７９２０３００１２３４", "079203001234"),  # full-width digits, as some input methods type them
        ("123456789", "123456789"),  # CMND
        ("7901234567", "7901234567"),  # BHXH (VssID, VNeID)
        ("dn4797914012345", "DN4797914012345"),  # BHYT card, typed in lower case
        ("1985", None),  # a birth year
        ("nguyen", None),
        ("DN47979140123", None),  # a card number short of two digits: a name search, not a wrong identifier
    ],
)
def test_identifier_in_a_search_word(word: str, found: str | None) -> None:
    """The console's patient search treats a word of an identifier's shape as that identifier."""
    assert identifier_in(word) == found
