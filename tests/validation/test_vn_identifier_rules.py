"""The validator applies the Vietnamese identifier rules (issue 11): a CCCD whose embedded birth year
or sex disagrees with the Patient is reported where it stands, in both languages; through
``$validate`` too, and on write as the server's validation setting says (ADR 0020)."""

from __future__ import annotations

from typing import Any

import orjson

from ketnoi.app import WriteValidator
from ketnoi.interactions.request import FhirRequest
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.validation import check_vn_identifiers, validate

CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"
BHYT = "http://fhir.ehealth.gov.vn/core/sid/insurance_number"


def _patient(cccd: str, birth: str = "1999-03-04", gender: str = "male", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:other", "value": "x"}, {"system": CCCD, "value": cccd}],
        "birthDate": birth,
        "gender": gender,
        **extra,
    }


def test_a_cccd_that_agrees_with_the_patient_passes() -> None:
    assert check_vn_identifiers(_patient("001099012345")) == []  # 001 Hà Nội, 0 male 19xx, 99
    assert check_vn_identifiers({"resourceType": "Patient"}) == []


def test_a_cccd_whose_birth_year_disagrees_is_reported_where_it_stands() -> None:
    (issue,) = check_vn_identifiers(_patient("001099012345", birth="2001-03-04"))
    assert issue.severity == "error" and issue.code == "invariant"
    assert issue.expression == ("Patient.identifier[1].value",)
    assert "1999" in issue.en and "2001" in issue.en and "Quy tắc định danh Việt Nam" in issue.vi


def test_sex_digit_and_card_format() -> None:
    assert [i.en for i in check_vn_identifiers(_patient("001099012345", gender="female"))]
    card = {"resourceType": "Coverage", "identifier": [{"system": BHYT, "value": "XX1790123456789"}]}
    (issue,) = check_vn_identifiers(card)
    assert issue.expression == ("Coverage.identifier[0].value",)


def test_validate_runs_them_with_the_invariants() -> None:
    wrong = _patient("001099012345", birth="2001-03-04")
    assert not [i for i in validate(wrong) if i.code == "invariant"]  # the structural gate alone
    assert [i for i in validate(wrong, invariants=True) if i.expression == ("Patient.identifier[1].value",)]


def test_on_write_the_setting_decides() -> None:
    wrong = _patient("001099012345", birth="2001-03-04")
    assert {i.severity for i in WriteValidator("strict")(wrong, True) if i.code == "invariant"} == {"error"}
    assert {i.severity for i in WriteValidator("lenient")(wrong, True) if i.code == "invariant"} == {"warning"}
    assert not [i for i in WriteValidator("off")(wrong, True) if i.code == "invariant"]


def test_validate_operation_reports_it(services: Services) -> None:
    body = _patient("001099012345", birth="2001-03-04")
    r = handle(services, FhirRequest("POST", "Patient/$validate", [], {"content-type": "application/fhir+json"}, body))
    assert r.status == 200
    outcome = r.resource if r.resource is not None else orjson.loads(r.raw or b"{}")
    issues = [i for i in outcome["issue"] if i.get("expression") == ["Patient.identifier[1].value"]]
    assert issues and "1999" in issues[0]["diagnostics"], outcome
