"""The terminology operations ($expand, $lookup, $validate-code, $subsumes, $translate) on both
backends, through ``handle`` as an operator: R4 and Vietnamese packaged resources, a stored ICD-10."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.terminology.icd10 import ICD10_VN_URL, code_system, read_csv
from ketnoi.terminology.vn import ADMIN_2025_URL, ADMIN_LEGACY_URL, ADMIN_MAP_URL

OPERATOR = RequestContext.operator("test")
SAMPLE = Path(__file__).parent.parent / "data" / "icd10-vn-sample.csv"
COMMUNES = ADMIN_2025_URL + "?vs"
GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"


def call(s: Services, method: str, path: str, query: dict[str, str] | None = None, body: Any = None) -> FhirResponse:
    headers = {"content-type": "application/fhir+json"}
    return handle(s, FhirRequest(method, path, list((query or {}).items()), headers, body, "http://x/fhir", OPERATOR))


def ok(r: FhirResponse) -> dict[str, Any]:
    assert r.status == 200, r.resource
    assert r.resource is not None
    return r.resource


def param(resource: dict[str, Any], name: str) -> Any:
    found = [p for p in resource["parameter"] if p["name"] == name]
    assert found, (name, resource)
    return next(v for k, v in found[0].items() if k.startswith("value"))


def displays(vs: dict[str, Any]) -> list[str]:
    return [c.get("display", "") for c in vs["expansion"]["contains"]]


def test_expand_an_r4_value_set(services: Services) -> None:
    vs = ok(call(services, "GET", "ValueSet/$expand", {"url": GENDER_VS}))
    assert {c["code"] for c in vs["expansion"]["contains"]} == {"male", "female", "other", "unknown"}
    assert vs["expansion"]["total"] == 4 and vs["expansion"]["identifier"].startswith("urn:uuid:")
    posted = {"resourceType": "Parameters", "parameter": [{"name": "url", "valueUri": GENDER_VS}]}
    assert ok(call(services, "POST", "ValueSet/$expand", body=posted))["expansion"]["total"] == 4


@pytest.mark.parametrize("text", ["thanh xuan", "Thanh Xuân", "thanh xu", "THANH XUÂN"])
def test_expand_communes_with_a_filter_with_or_without_diacritics(services: Services, text: str) -> None:
    vs = ok(call(services, "GET", "ValueSet/$expand", {"url": COMMUNES, "filter": text}))
    assert "Phường Thanh Xuân" in displays(vs)
    assert {"name": "filter", "valueString": text} in vs["expansion"]["parameter"]


def test_expand_paging_and_total(services: Services) -> None:
    whole = ok(call(services, "GET", "ValueSet/$expand", {"url": COMMUNES, "filter": "phuong"}))
    total = whole["expansion"]["total"]
    assert total == len(whole["expansion"]["contains"]) > 20
    page = ok(
        call(services, "GET", "ValueSet/$expand", {"url": COMMUNES, "filter": "phuong", "count": "10", "offset": "5"})
    )
    assert page["expansion"]["total"] == total and page["expansion"]["offset"] == 5
    assert page["expansion"]["contains"] == whole["expansion"]["contains"][5:15]
    assert {"name": "count", "valueInteger": 10} in page["expansion"]["parameter"]


def test_expand_display_language_and_designations(services: Services) -> None:
    query = {"url": COMMUNES, "filter": "ha noi", "displayLanguage": "en", "count": "50"}
    vs = ok(call(services, "GET", "ValueSet/$expand", query))
    assert "Ha Noi City" in displays(vs)
    with_designations = ok(call(services, "GET", "ValueSet/$expand", {**query, "includeDesignations": "true"}))
    assert any(c.get("designation") for c in with_designations["expansion"]["contains"])


def test_expand_too_costly_without_filter_or_count(services: Services) -> None:
    r = call(services, "GET", "ValueSet/$expand", {"url": ADMIN_LEGACY_URL + "?vs"})
    assert r.status == 400 and r.resource is not None
    issue = r.resource["issue"][0]
    assert issue["code"] == "too-costly" and "filter" in issue["diagnostics"] and "Hãy thêm" in issue["diagnostics"]
    paged = ok(call(services, "GET", "ValueSet/$expand", {"url": ADMIN_LEGACY_URL + "?vs", "count": "3"}))
    assert paged["expansion"]["total"] == 10_794 and len(paged["expansion"]["contains"]) == 3


def test_lookup(services: Services) -> None:
    found = ok(call(services, "GET", "CodeSystem/$lookup", {"system": ADMIN_2025_URL, "code": "01"}))
    assert param(found, "display") == "Thành phố Hà Nội"
    props = [p["part"] for p in found["parameter"] if p["name"] == "property"]
    assert any(parts[0]["valueCode"] == "child" and parts[1]["valueCode"] == "00004" for parts in props)
    english = ok(
        call(services, "GET", "CodeSystem/$lookup", {"system": ADMIN_2025_URL, "code": "01", "displayLanguage": "en"})
    )
    assert param(english, "display") == "Ha Noi City"
    missing = call(services, "GET", "CodeSystem/$lookup", {"system": ADMIN_2025_URL, "code": "99999"})
    assert missing.status == 404 and "99999" in str(missing.resource)
    unknown = call(services, "GET", "CodeSystem/$lookup", {"system": "urn:nothing", "code": "1"})
    assert unknown.status == 404 and "urn:nothing" in str(unknown.resource)


def test_validate_code_on_a_code_system(services: Services) -> None:
    good = ok(call(services, "GET", "CodeSystem/$validate-code", {"url": ADMIN_2025_URL, "code": "00004"}))
    assert param(good, "result") is True and param(good, "display") == "Phường Ba Đình"
    plain = {"url": ADMIN_2025_URL, "code": "00004", "display": "Phuong Ba Dinh"}
    assert len(ok(call(services, "GET", "CodeSystem/$validate-code", plain))["parameter"]) == 2  # no warning
    wrong = ok(call(services, "GET", "CodeSystem/$validate-code", {**plain, "display": "Phường Sai"}))
    assert param(wrong, "result") is True and "Phường Ba Đình" in param(wrong, "message")
    bad = ok(call(services, "GET", "CodeSystem/$validate-code", {"url": ADMIN_2025_URL, "code": "nope"}))
    assert param(bad, "result") is False
    vi = bad["parameter"][1]["_valueString"]["extension"][0]["extension"][1]["valueString"]
    assert "không có trong" in vi


def test_validate_code_on_a_value_set(services: Services) -> None:
    coding = {"system": "http://hl7.org/fhir/administrative-gender", "code": "female"}
    body = {"resourceType": "Parameters", "parameter": [{"name": "url", "valueUri": GENDER_VS},
                                                        {"name": "coding", "valueCoding": coding}]}  # fmt: skip
    assert param(ok(call(services, "POST", "ValueSet/$validate-code", body=body)), "result") is True
    query = {"url": GENDER_VS, "system": "http://hl7.org/fhir/administrative-gender", "code": "woman"}
    assert param(ok(call(services, "GET", "ValueSet/$validate-code", query)), "result") is False


def test_subsumes_a_commune_under_its_province(services: Services) -> None:
    def outcome(a: str, b: str) -> str:
        query = {"system": ADMIN_2025_URL, "codeA": a, "codeB": b}
        return str(param(ok(call(services, "GET", "CodeSystem/$subsumes", query)), "outcome"))

    assert outcome("01", "00004") == "subsumes"
    assert outcome("00004", "01") == "subsumed-by"
    assert outcome("01", "01") == "equivalent"
    assert outcome("79", "00004") == "not-subsumed"


def test_translate_a_former_commune_to_its_2025_commune(services: Services) -> None:
    query = {"url": ADMIN_MAP_URL, "system": ADMIN_LEGACY_URL, "code": "00070"}  # Phường Hàng Trống
    r = ok(call(services, "GET", "ConceptMap/$translate", query))
    assert param(r, "result") is True
    targets = [m["part"][1]["valueCoding"] for m in r["parameter"] if m["name"] == "match"]
    assert {"system": ADMIN_2025_URL, "code": "00070", "display": "Phường Hoàn Kiếm"} in targets
    back = ok(
        call(services, "GET", "ConceptMap/$translate", {"url": ADMIN_MAP_URL, "code": "00070", "reverse": "true"})
    )
    assert any(
        m["part"][1]["valueCoding"]["system"] == ADMIN_LEGACY_URL for m in back["parameter"] if m["name"] == "match"
    )
    none = ok(call(services, "GET", "ConceptMap/$translate", {"url": ADMIN_MAP_URL, "code": "nope"}))
    assert param(none, "result") is False


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("ValueSet/$expand", {"url": COMMUNES, "count": "-1"}),
        ("ValueSet/$expand", {"url": COMMUNES, "colour": "red"}),
        ("ValueSet/$expand", {}),
        ("ValueSet/$expand", {"url": COMMUNES, "activeOnly": "maybe"}),
        ("CodeSystem/$lookup", {"system": ADMIN_2025_URL}),
        ("CodeSystem/$subsumes", {"system": ADMIN_2025_URL, "codeA": "01"}),
        ("ConceptMap/$translate", {"code": "00070"}),
        ("ValueSet/$validate-code", {"url": GENDER_VS, "code": "male"}),
    ],
)
def test_bad_parameters_are_400_in_both_languages(services: Services, path: str, query: dict[str, str]) -> None:
    r = call(services, "GET", path, query)
    assert r.status == 400, r.resource
    text = r.resource["issue"][0]["diagnostics"] if r.resource else ""
    assert " / " in text and any(w in text for w in ("tham số", "cần", "không"))


def test_post_needs_parameters(services: Services) -> None:
    assert call(services, "POST", "ValueSet/$expand", body={"resourceType": "Patient"}).status == 400


def test_icd10_stored_subsumes_and_search_below(fresh_services: Services) -> None:
    s = fresh_services
    cs = code_system(read_csv(SAMPLE), "2024")
    stored = call(s, "PUT", "CodeSystem", {"url": ICD10_VN_URL}, cs)
    assert stored.status == 201
    query = {"system": ICD10_VN_URL, "codeA": "A00-A09", "codeB": "A00.1"}
    assert param(ok(call(s, "GET", "CodeSystem/$subsumes", query)), "outcome") == "subsumes"
    query = {"system": ICD10_VN_URL, "codeA": "A00", "codeB": "I10"}
    assert param(ok(call(s, "GET", "CodeSystem/$subsumes", query)), "outcome") == "not-subsumed"
    for code in ("A00.1", "J18.9"):
        condition = {"resourceType": "Condition", "subject": {"reference": "Patient/p"},
                     "code": {"coding": [{"system": ICD10_VN_URL, "code": code}]}}  # fmt: skip
        assert call(s, "POST", "Condition", body=condition).status == 201
    found = ok(call(s, "GET", "Condition", {"code:below": f"{ICD10_VN_URL}|A00"}))
    assert [e["resource"]["code"]["coding"][0]["code"] for e in found.get("entry", [])] == ["A00.1"]
    vs = ok(call(s, "GET", "ValueSet/$expand", {"url": ICD10_VN_URL + "?vs", "filter": "ta"}))
    assert "Bệnh tả" in displays(vs)
    english = ok(call(s, "GET", "CodeSystem/$lookup", {"system": ICD10_VN_URL, "code": "A00", "displayLanguage": "en"}))
    assert param(english, "display") == "Cholera"
