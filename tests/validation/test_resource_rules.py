"""Rules of the specification text beyond FHIRPath (ketnoi.validation.resource_rules)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from ketnoi.fhir.outcome import Issue
from ketnoi.validation import check_resource_rules, validate
from ketnoi.validation.resource_rules import is_absolute_url
from tests.support.fhir_examples import EXAMPLES, FILES

# Official examples that break a rule, checked by hand (file → location of the first finding):
KNOWN_BROKEN_EXAMPLES: dict[str, str] = {
    # RESTful fullUrl .../Patient/pat12 on the Patient with id pat2.
    "Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json": "Bundle.entry[2].fullUrl",
    "Bundle-3a0707d3-549e-4467-b8b8-5a2ab3800efe.json": "Bundle.entry[3].fullUrl",
    # fullUrl .../Observation/lri-gramstain1 on the Observation with id gramstain1 (and 15 more).
    "Bundle-lri-example.json": "Bundle.entry[1].fullUrl",
}


def only(issues: list[Issue]) -> Issue:
    assert len(issues) == 1, issues
    return issues[0]


def test_absolute_url() -> None:
    for url in ("http://a.org/x", "https://a/b", "urn:uuid:1f7d4c2e-0000-4000-8000-000000000000", "urn:oid:1.2.3"):
        assert is_absolute_url(url)
    for url in ("something", "Patient/1", "#a", "http:", "http://a b", "HTTP://a", ""):
        assert not is_absolute_url(url)


# --- Extension.url ---


def test_top_level_extension_url_must_be_absolute() -> None:
    patient: dict[str, Any] = {"resourceType": "Patient", "extension": [{"url": "something", "valueString": "x"}]}
    issue = only(check_resource_rules(patient))
    assert (issue.severity, issue.code, issue.expression) == ("error", "invariant", ("Patient.extension[0]",))
    assert issue.en.startswith("Extension.url must be an absolute URL, not 'something'")
    assert issue.vi.startswith("Extension.url phải là URL tuyệt đối, không phải 'something'")
    # Through validate(), at the invariants' level only.
    assert validate(patient) == []
    assert validate(patient, invariants=True) == [issue]
    patient["extension"][0]["url"] = "http://example.org/ext"
    assert check_resource_rules(patient) == []


def test_nested_extension_parts_may_be_relative() -> None:
    race = {
        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
        "extension": [{"url": "text", "valueString": "Asian"}, {"url": "detail", "valueCoding": {"code": "x"}}],
    }
    patient: dict[str, Any] = {"resourceType": "Patient", "extension": [race]}
    assert check_resource_rules(patient) == []
    # A value inside an extension is ordinary data again: its own extensions are top-level ones.
    coded = {
        "url": "http://example.org/coded",
        "valueCodeableConcept": {"text": "t", "extension": [{"url": "rel", "valueString": "x"}]},
    }
    patient["extension"].append(coded)
    assert only(check_resource_rules(patient)).expression == ("Patient.extension[1].valueCodeableConcept.extension[0]",)


def test_extension_locations_modifier_primitive_and_contained() -> None:
    bad = [{"url": "rel", "valueString": "x"}]
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "modifierExtension": bad,
        "_birthDate": {"extension": bad},
        "name": [{"_given": [None, {"extension": bad}], "given": ["A", "B"]}],
        "contained": [{"resourceType": "Organization", "id": "o", "extension": bad}],
    }
    assert sorted(i.expression[0] for i in check_resource_rules(patient)) == [
        "Patient.birthDate.extension[0]",
        "Patient.contained[0].extension[0]",
        "Patient.modifierExtension[0]",
        "Patient.name[0].given[1].extension[0]",
    ]


# --- Bundle fullUrl ---


def bundle(btype: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": btype, "entry": list(entries)}


def test_full_url_must_be_absolute() -> None:
    b = bundle("collection", {"fullUrl": "Patient/1", "resource": {"resourceType": "Patient", "id": "1"}})
    issue = only(check_resource_rules(b))
    assert (issue.severity, issue.code, issue.expression) == ("error", "invariant", ("Bundle.entry[0].fullUrl",))
    assert "must be an absolute URL" in issue.en and "phải là URL tuyệt đối" in issue.vi
    b["entry"][0]["fullUrl"] = "urn:uuid:1f7d4c2e-0000-4000-8000-000000000000"
    assert check_resource_rules(b) == []


def test_restful_full_url_must_match_type_and_id() -> None:
    b = bundle(
        "collection", {"fullUrl": "http://acme.com/Patient/pat1", "resource": {"resourceType": "Patient", "id": "x"}}
    )
    issue = only(check_resource_rules(b))
    assert (issue.severity, issue.code, issue.expression) == ("error", "invariant", ("Bundle.entry[0].fullUrl",))
    assert issue.en.endswith("(/Patient/x)") and issue.vi.endswith("(/Patient/x)")
    assert "RESTful" in issue.en and "kết thúc bằng kiểu và id" in issue.vi
    del b["entry"][0]["resource"]["id"]
    issue = only(check_resource_rules(b))
    assert "must have the id" in issue.en and "phải có id" in issue.vi
    b["entry"][0]["resource"]["id"] = "pat1"
    assert check_resource_rules(b) == []
    # Not a RESTful URL (no Type/id at the end): any id is fine.
    b["entry"][0]["fullUrl"] = "http://acme.com/patients?mrn=1"
    assert check_resource_rules(b) == []


def test_full_url_required_except_transactions_and_batches() -> None:
    entry: dict[str, Any] = {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
    issue = only(check_resource_rules(bundle("message", entry)))
    assert (issue.severity, issue.code, issue.expression) == ("error", "invariant", ("Bundle.entry[0]",))
    assert "needs a fullUrl" in issue.en and "cần fullUrl" in issue.vi
    for btype in ("transaction", "batch", "transaction-response", "batch-response"):
        assert check_resource_rules(bundle(btype, entry)) == []
    # The OperationOutcome of a search has no identity (the spec's own Bundle-bundle-search-warning).
    outcome = {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}}
    assert check_resource_rules(bundle("searchset", outcome)) == []


# --- References inside a Bundle ---


def document(*section_refs: str, author: str = "Practitioner/p") -> dict[str, Any]:
    composition = {
        "resourceType": "Composition",
        "id": "c",
        "author": [{"reference": author}],
        "section": [{"entry": [{"reference": r} for r in section_refs]}],
    }
    obs = {"resourceType": "Observation", "id": "o", "meta": {"versionId": "1"}}
    return bundle(
        "document",
        {"fullUrl": "http://x.org/fhir/Composition/c", "resource": composition},
        {"fullUrl": "http://x.org/fhir/Practitioner/p", "resource": {"resourceType": "Practitioner", "id": "p"}},
        {"fullUrl": "http://x.org/fhir/Observation/o", "resource": obs},
    )


def test_document_references_resolve_in_the_bundle() -> None:
    assert (
        check_resource_rules(document("Observation/o", "Observation/o/_history/1", "http://x.org/fhir/Observation/o"))
        == []
    )
    issue = only(check_resource_rules(document("Observation/missing")))
    assert (issue.severity, issue.code) == ("error", "invariant")
    assert issue.expression == ("Bundle.entry[0].resource.section[0].entry[0].reference",)
    assert issue.en.startswith("Can't find 'Observation/missing' in the document Bundle")
    assert issue.vi.startswith("Không tìm thấy 'Observation/missing' trong Bundle tài liệu")
    # A version that is not in the Bundle.
    assert "an entry has that type and id" in only(check_resource_rules(document("Observation/o/_history/3"))).en
    issue = only(check_resource_rules(document(author="Practitioner/other")))
    assert issue.expression == ("Bundle.entry[0].resource.author[0].reference",)
    # Contained (#) references and transactions are not this rule's business.
    assert check_resource_rules(document("#x")) == []


def test_document_reference_matching_two_versions_is_ambiguous() -> None:
    b = document("Observation/o")
    second = copy.deepcopy(b["entry"][2])
    second["resource"]["meta"]["versionId"] = "2"
    b["entry"].append(second)
    issue = only(check_resource_rules(b))
    assert issue.en == "'Observation/o' matches 2 entries of the document Bundle; it must identify one"
    assert "khớp 2 mục" in issue.vi
    b["entry"][0]["resource"]["section"][0]["entry"][0]["reference"] = "Observation/o/_history/2"
    assert check_resource_rules(b) == []


def test_relative_reference_needs_a_restful_base() -> None:
    b = document("Observation/o")
    b["entry"][0]["fullUrl"] = "urn:uuid:1f7d4c2e-0000-4000-8000-000000000000"
    found = check_resource_rules(b)
    assert [i.expression[0] for i in found] == [
        "Bundle.entry[0].resource.author[0].reference",
        "Bundle.entry[0].resource.section[0].entry[0].reference",
    ]


def test_message_focus_resolves() -> None:
    header = {
        "resourceType": "MessageHeader",
        "focus": [{"reference": "urn:uuid:1f7d4c2e-0000-4000-8000-00000000000a"}],
    }
    b = bundle("message", {"fullUrl": "urn:uuid:1f7d4c2e-0000-4000-8000-000000000001", "resource": header})
    issue = only(check_resource_rules(b))
    assert issue.expression == ("Bundle.entry[0].resource.focus[0].reference",)
    assert "message Bundle" in issue.en and "Bundle thông điệp" in issue.vi
    b["entry"].append(
        {"fullUrl": "urn:uuid:1f7d4c2e-0000-4000-8000-00000000000a", "resource": {"resourceType": "Patient"}}
    )
    assert check_resource_rules(b) == []


def test_relative_reference_from_urn_entry_must_match_the_target_type() -> None:
    uuid = "5d9588d8-3cd6-4b32-8fb7-ad13694e069d"
    patient = {"resourceType": "Patient", "generalPractitioner": [{"reference": f"Practitioner/{uuid}"}]}
    b = bundle(
        "collection",
        {"fullUrl": "urn:uuid:54fc3e09-e279-4b74-a8ff-2649ec968642", "resource": patient},
        {"fullUrl": f"urn:uuid:{uuid}", "resource": {"resourceType": "Organization", "name": "foo"}},
    )
    issue = only(check_resource_rules(b))
    assert (issue.severity, issue.code) == ("error", "invariant")
    assert issue.expression == ("Bundle.entry[0].resource.generalPractitioner[0].reference",)
    assert "which is a Organization, not a Practitioner" in issue.en and "là Organization" in issue.vi
    # Transactions and batches are resolved by the server that processes them.
    b["type"] = "transaction"
    assert check_resource_rules(b) == []
    b["type"] = "collection"
    b["entry"][1]["resource"] = {"resourceType": "Practitioner"}
    assert check_resource_rules(b) == []


@pytest.mark.parametrize("name", [n for n in FILES if n.startswith("Bundle-") or "extension" in n.lower()])
def test_official_examples(name: str) -> None:
    resource = orjson.loads((EXAMPLES / name).read_bytes())
    found = check_resource_rules(resource)
    if name in KNOWN_BROKEN_EXAMPLES:
        assert found and found[0].expression == (KNOWN_BROKEN_EXAMPLES[name],)
    else:
        assert found == []


def test_all_official_examples_cleared() -> None:
    """Every example (not only Bundles) passes, except the ones listed above."""
    flagged = {n for n in FILES if check_resource_rules(orjson.loads((EXAMPLES / n).read_bytes()))}
    assert flagged == set(KNOWN_BROKEN_EXAMPLES)


def test_writes_treat_them_like_invariants() -> None:
    """KETNOI_VALIDATION=lenient stores the resource with a warning; strict refuses it."""
    from ketnoi.app import WriteValidator

    patient = {"resourceType": "Patient", "extension": [{"url": "something", "valueString": "x"}]}
    assert [i.severity for i in WriteValidator("lenient")(patient, True)] == ["warning"]
    assert [i.severity for i in WriteValidator("strict")(patient, True)] == ["error"]
    assert WriteValidator("off")(patient, True) == []


def test_a_urn_reference_must_name_an_entry_of_the_bundle() -> None:
    """A urn is no address: in a transaction it resolves to an entry's fullUrl or not at all (a
    collection may hold one, as the reference validator allows)."""
    target = "urn:uuid:22222222-2222-2222-2222-222222222222"

    def bundle(kind: str, with_target: bool) -> dict[str, Any]:
        entries: list[dict[str, Any]] = [
            {
                "fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": {"reference": target},
                },
            }
        ]
        if with_target:
            entries.append({"fullUrl": target, "resource": {"resourceType": "Patient"}})
        if kind == "transaction":
            for entry in entries:
                entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
        return {"resourceType": "Bundle", "type": kind, "entry": entries}

    found = check_resource_rules(bundle("transaction", with_target=False))
    assert [i.expression for i in found] == [("Bundle.entry[0].resource.subject.reference",)]
    assert "names no entry of the Bundle" in found[0].en
    assert check_resource_rules(bundle("transaction", with_target=True)) == []
    assert check_resource_rules(bundle("collection", with_target=False)) == []
