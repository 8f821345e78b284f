"""Deliberate duplicates: the rate, the ground truth, each listed error really present in the FHIR Patient of
the duplicate against the original's, the error probabilities of both modes, and the legacy provinces."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from ketnoi.demo import names, places
from ketnoi.demo.duplicates import ERROR_KINDS, EXCLUSIVE, HARD, NORMAL, Mode, plus84, typo, wrong_order
from ketnoi.demo.generate import Summary, iter_blocks, read_duplicates
from ketnoi.terminology.vn import ADMIN_LEGACY_URL, ADMIN_MAP_URL, vn_resources

CCCD_SYSTEM = "http://fhir.ehealth.gov.vn/core/sid/national_id"
BHYT_SYSTEM = "http://fhir.ehealth.gov.vn/core/sid/insurance_number"
ADMIN_2025 = "https://fhir.ketnoi.vn/CodeSystem/vn-admin-unit-2025"
INDEPENDENT = {"missing_cccd", "missing_bhyt"}
Resource = dict[str, Any]


def read_ndjson(path: Path) -> list[Resource]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _osa(a: str, b: str) -> int:
    """Optimal-string-alignment (restricted Damerau-Levenshtein) distance."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def _ident(p: Resource, system: str) -> str | None:
    return next((i["value"] for i in p.get("identifier", []) if i["system"] == system), None)


# ---- names: the order, then the words ------------------------------------------------------------------


def _render(family: str, given: list[str], given_first: bool) -> str:
    """The text of a HumanName in one convention ("H'" joins its given name: "H'Linh")."""
    words = [*given, family] if given_first else [family, *given]
    return " ".join(words).replace("' ", "'")


def _given_first(name: Resource) -> bool:
    return bool(name["text"] == _render(name["family"], name["given"], True))


def _split(text: str, given_first: bool) -> tuple[str, list[str]]:
    """Family and given names read from a text in the given convention."""
    words = text.split()
    family, rest = (words[-1], words[:-1]) if given_first else (words[0], words[1:])
    given: list[str] = []
    for word in rest:
        given += ["H'", word[2:]] if word.startswith("H'") and len(word) > 2 else [word]
    return family, given


def _canonical(dn: Resource, on: Resource, errors: tuple[str, ...]) -> tuple[str, list[str]]:
    """The duplicate's family and given names in the person's own convention, checking ``name_order``."""
    gf = _given_first(on)
    family, given, text = dn["family"], list(dn["given"]), dn["text"]
    if "name_order" not in errors:
        assert text == _render(family, given, gf)
        return family, given
    # Either the fields or the text are in the other order than the other one.
    assert text == _render(family, given, not gf) != _render(family, given, gf)
    f = names.fold

    def distance(candidate: tuple[str, list[str]]) -> int:
        fam, giv = candidate
        return _osa(f(fam), f(on["family"])) + _osa(f(" ".join(giv)), f(" ".join(on["given"])))

    return min([(family, given), _split(text, gf)], key=distance)


def _check_name(dn: Resource, on: Resource, errors: tuple[str, ...]) -> None:
    family, given = _canonical(dn, on, errors)
    f = names.fold
    if "no_diacritics" in errors:
        assert dn["text"].isascii() and not on["text"].isascii()
    else:  # every word that is not mistyped keeps its diacritics
        words = on["text"].split()
        folded = {f(w) for w in words}
        assert all(w in words for w in dn["text"].split() if f(w) in folded)
    # middle name (compared without diacritics, so it composes with no_diacritics)
    if "swapped_middle_name" in errors:
        assert len(given) == len(on["given"]) == 2
        assert f(given[0]) != f(on["given"][0])
    elif "dropped_middle_name" in errors:
        assert len(on["given"]) == 2 and len(given) == 1
    else:
        assert [f(x) for x in given[:-1]] == [f(x) for x in on["given"][:-1]]
    # one-keystroke typo in the family or the given name
    fam_d, giv_d = _osa(f(family), f(on["family"])), _osa(f(given[-1]), f(on["given"][-1]))
    if "typo" in errors:
        assert sorted((fam_d, giv_d)) == [0, 1]
    else:
        assert fam_d == giv_d == 0


# ---- the rest of the record ------------------------------------------------------------------------------


def _admin(address: Resource) -> dict[str, Resource]:
    (ext,) = address["extension"]
    return {part["url"]: part["valueCodeableConcept"]["coding"][0] for part in ext["extension"]}


def _check_address(da: Resource, oa: Resource, errors: tuple[str, ...]) -> None:
    dparts, oparts = _admin(da), _admin(oa)
    province = oparts["state"]["code"]
    if "old_address_codes" in errors:
        assert set(dparts) == {"state"} and dparts["state"]["system"] == ADMIN_LEGACY_URL
        assert places.LEGACY_BY_CODE[dparts["state"]["code"]].new_code == province
        assert "city" not in da and da["line"] == oa["line"] and da["text"].startswith(oa["line"][0])
    elif "moved_commune" in errors:
        assert dparts["state"] == oparts["state"] and dparts["ward"]["system"] == ADMIN_2025
        assert dparts["ward"]["code"] != oparts["ward"]["code"]
        assert dparts["ward"]["code"] in places.PROVINCE_BY_CODE[province].commune_codes
        assert da["city"] == dparts["ward"]["display"] and da["line"] != oa["line"]
    else:
        assert da == oa


def _check_birth(dup: Resource, orig: Resource, errors: tuple[str, ...]) -> None:
    y, m, d = orig["birthDate"].split("-")
    if "day_month_swap" in errors:
        assert dup["birthDate"] == f"{y}-{d}-{m}" != orig["birthDate"]
    elif "birth_year_only" in errors:
        assert dup["birthDate"] == y
    else:
        assert dup["birthDate"] == orig["birthDate"]


def _check_phone(dup: Resource, orig: Resource, errors: tuple[str, ...]) -> None:
    if "missing_phone" in errors:
        assert "telecom" not in dup and "telecom" in orig
    elif "phone_format" in errors:
        written, phone = dup["telecom"][0]["value"], orig["telecom"][0]["value"]
        assert re.fullmatch(r"\+84 \d{3} \d{3} \d{3}", written)
        assert "0" + written[4:].replace(" ", "") == phone
        assert {**dup["telecom"][0], "value": phone} == orig["telecom"][0]
    else:
        assert dup.get("telecom") == orig.get("telecom")


def _check_identifiers(dup: Resource, orig: Resource, errors: tuple[str, ...]) -> None:
    for kind, system in (("missing_cccd", CCCD_SYSTEM), ("missing_bhyt", BHYT_SYSTEM)):
        if kind in errors:
            assert _ident(dup, system) is None and _ident(orig, system) is not None
        else:
            assert _ident(dup, system) == _ident(orig, system)


def check_pair(dup: Resource, orig: Resource, errors: tuple[str, ...]) -> None:
    assert errors and set(errors) <= set(ERROR_KINDS) and len(set(errors)) == len(errors)
    assert list(errors) == [k for k in ERROR_KINDS if k in errors]  # listed in ERROR_KINDS order
    assert not any(a in errors and b in errors for a, b in EXCLUSIVE)
    assert dup["id"] != orig["id"]
    _check_name(dup["name"][0], orig["name"][0], errors)
    _check_birth(dup, orig, errors)
    _check_identifiers(dup, orig, errors)
    _check_address(dup["address"][0], orig["address"][0], errors)
    _check_phone(dup, orig, errors)
    assert dup["gender"] == orig["gender"]
    assert dup["generalPractitioner"] != orig["generalPractitioner"]  # registered at another facility


def _pairs(n: int, seed: int, rate: float, hard: bool) -> list[tuple[Resource, Resource, tuple[str, ...]]]:
    """(duplicate, original, errors) of every duplicate, each checked against its listed errors."""
    found = []
    for block, record in iter_blocks(n, seed, rate, hard=hard):
        if record is None:
            continue
        dup = next(r for r in block if r["resourceType"] == "Patient" and r["id"] == record.duplicate_id)
        check_pair(dup, block[0], record.errors)
        found.append((dup, block[0], record.errors))
    return found


def test_ground_truth_pairs_exist_and_differ_as_listed(ndjson_run: tuple[Path, Summary]) -> None:
    out, summary = ndjson_run
    patients = {p["id"]: p for p in read_ndjson(out / "Patient.ndjson")}
    records = read_duplicates(out / "duplicates.csv")
    assert len(records) == summary.duplicates > 0
    assert len(patients) == summary.patients + summary.duplicates
    for r in records:
        check_pair(patients[r.duplicate_id], patients[r.original_id], r.errors)
    # A duplicate has its own visits at a facility.
    encounters = {e["subject"]["reference"] for e in read_ndjson(out / "Encounter.ndjson")}
    assert all(f"Patient/{r.duplicate_id}" in encounters for r in records)


def test_rate_is_respected_and_all_kinds_occur() -> None:
    n, rate = 4000, 0.1
    pairs = _pairs(n, 77, rate, hard=False)
    sd = (n * rate * (1 - rate)) ** 0.5
    assert abs(len(pairs) - n * rate) < 4 * sd
    assert {e for _, _, errors in pairs for e in errors} == set(ERROR_KINDS)


def test_zero_rate_means_no_duplicates() -> None:
    assert all(record is None for _, record in iter_blocks(200, 1, 0.0))
    assert all(record is None for _, record in iter_blocks(200, 1, 0.0, hard=True))


@pytest.mark.parametrize(("hard", "mode"), [(False, NORMAL), (True, HARD)])
def test_error_counts_and_probabilities(hard: bool, mode: Mode) -> None:
    """2,000 patients, half duplicated: k errors drawn as the mode says, plus the independent ones."""
    n, rate = 2000, 0.5
    pairs = _pairs(n, 2026, rate, hard)
    assert abs(len(pairs) - n * rate) < 4 * (n * rate * (1 - rate)) ** 0.5
    drawn = Counter(len(set(errors) - INDEPENDENT) for _, _, errors in pairs)
    assert max(drawn) <= max(mode.counts)
    assert min(len(errors) for _, _, errors in pairs) >= min(mode.counts)
    p_cccd, p_bhyt = dict(mode.independent)["missing_cccd"], dict(mode.independent)["missing_bhyt"]
    # The share is p plus (1 - p) times the chance the k draws took the kind (about k / 12 here).
    cccd = sum("missing_cccd" in e for _, _, e in pairs) / len(pairs)
    assert p_cccd - 0.05 < cccd < p_cccd + (1 - p_cccd) * 0.4
    insured = [e for _, orig, e in pairs if _ident(orig, BHYT_SYSTEM)]
    bhyt = sum("missing_bhyt" in e for e in insured) / len(insured)
    assert p_bhyt - 0.05 < bhyt < p_bhyt + (1 - p_bhyt) * 0.4
    # How many errors besides the identifiers: about the mode's mean k (the draws that took an identifier
    # kind count one less; a rare name that reads the same either way loses its name_order).
    mean_k = sum(c * w for c, w in zip(mode.counts, mode.weights, strict=True))
    mean_drawn = sum(k * c for k, c in drawn.items()) / len(pairs)
    assert mean_k - 0.5 < mean_drawn <= mean_k + 0.1
    if hard:
        assert all(len(errors) >= 2 for _, _, errors in pairs)
    else:
        assert drawn[1] > drawn[2] > drawn[3] > 0


def test_hard_mode_is_harder_on_the_same_patients() -> None:
    normal, hard = _pairs(400, 5, 0.5, False), _pairs(400, 5, 0.5, True)
    assert [orig["id"] for _, orig, _ in normal] == [orig["id"] for _, orig, _ in hard]  # same decisions
    assert sum(map(len, (e for _, _, e in hard))) > 1.4 * sum(map(len, (e for _, _, e in normal)))


def test_typo_is_one_edit_without_diacritics() -> None:
    rng = random.Random(0)
    for word in ["Nguyễn", "An", "Thủy", "Hương", "Đặng", "Lê", "Rơ-mah"] * 50:
        wrong = typo(word, rng)
        assert wrong != word
        assert _osa(names.fold(wrong), names.fold(word)) == 1


def test_wrong_order_and_plus84_examples() -> None:
    kinh = names.NameParts("Nguyễn", "Văn", "An", False)
    highlands = names.NameParts("Ksor", "H'", "Linh", True)
    seen = {tuple(wrong_order(kinh, random.Random(i))) for i in range(20)}
    assert seen == {("An", ("Nguyễn", "Văn"), "Nguyễn Văn An"), ("Nguyễn", ("Văn", "An"), "Văn An Nguyễn")}
    seen = {tuple(wrong_order(highlands, random.Random(i))) for i in range(20)}
    assert seen == {("H'Linh", ("Ksor",), "H'Linh Ksor"), ("Ksor", ("H'", "Linh"), "Ksor H'Linh")}
    assert plus84("0912345678") == "+84 912 345 678"


# ---- legacy provinces: those the shipped ConceptMap gives -----------------------------------------------


def _by_url() -> dict[str, Resource]:
    return {r["url"]: r for r in vn_resources() if "url" in r}


def test_each_communes_legacy_province_is_the_one_the_concept_map_gives() -> None:
    legacy = _by_url()[ADMIN_LEGACY_URL]
    province_of: dict[str, str] = {}
    for province in legacy["concept"]:
        for district in province.get("concept", []):
            province_of[district["code"]] = province["code"]
            province_of.update((c["code"], province["code"]) for c in district.get("concept", []))
    sources: dict[str, Counter[str]] = {}
    for group in _by_url()[ADMIN_MAP_URL]["group"]:
        for element in group["element"]:
            for target in element.get("target", []):
                if element["code"] in province_of:  # an old commune (or an island district)
                    sources.setdefault(target["code"], Counter())[province_of[element["code"]]] += 1
    for province in places.PROVINCES:
        for i, code in enumerate(province.commune_codes):
            old = places.legacy_province_of(province.code, i)
            assert old.new_code == province.code
            # The old province most of the commune's old communes were in.
            assert sources[code].most_common(1)[0][0] == old.code, (province.name, province.communes[i])


def test_legacy_displays_are_those_of_the_shipped_code_system() -> None:
    shipped = {c["code"]: c["display"] for c in _by_url()[ADMIN_LEGACY_URL]["concept"]}
    assert {lp.code: places.legacy_display(lp.code)[0] for lp in places.LEGACY_PROVINCES} == shipped


def test_a_wrong_birth_date_is_only_written() -> None:
    """The duplicate keeps the person's true birth date: its birthplace (named by the birth date: a birth
    in the first half of 2025 has a legacy province) is the original's, whatever the desk wrote."""
    for block, record in iter_blocks(3000, 12, 0.5):
        if record and {"day_month_swap", "birth_year_only"} & set(record.errors):
            dup = next(r for r in block if r["resourceType"] == "Patient" and r["id"] == record.duplicate_id)
            assert dup["extension"] == block[0]["extension"]
