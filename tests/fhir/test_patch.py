"""JSON Patch (RFC 6902) for FHIR resources: ketnoi.fhir.patch.apply_json_patch.

Runs every case of tests/data/patch/json-patch-tests.json (copied from the shared fhir-patch-r4
suite: the RFC 6902 appendix examples plus two extra cases). No case is skipped.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ketnoi.fhir.outcome import FhirError
from ketnoi.fhir.patch import apply_json_patch, json_equal

DATA = Path(__file__).resolve().parent.parent / "data" / "patch"
CASES: list[dict[str, Any]] = json.loads((DATA / "json-patch-tests.json").read_text(encoding="utf-8"))


def test_suite_is_complete() -> None:
    assert len(CASES) == 16
    assert all(("expected" in c) != ("error" in c) for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["comment"] for c in CASES])
def test_json_patch_suite(case: dict[str, Any]) -> None:
    doc = copy.deepcopy(case["doc"])
    if "error" in case:
        with pytest.raises(FhirError) as info:
            apply_json_patch(doc, case["patch"])
        assert info.value.status == 422
        assert info.value.issues[0].code == "processing"
        assert "JSON Patch operation 0" in str(info.value)
    else:
        result = apply_json_patch(doc, case["patch"])
        assert result == case["expected"]
        assert json_equal(result, case["expected"])
    assert doc == case["doc"]  # never mutated


# --- focused tests -------------------------------------------------------------------------------

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "active": True,
    "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
    "telecom": [{"system": "phone", "value": "0901"}],
}


def _error(resource: dict[str, Any], ops: object) -> FhirError:
    with pytest.raises(FhirError) as info:
        apply_json_patch(resource, ops)
    return info.value


def test_input_and_operations_are_never_mutated() -> None:
    resource = copy.deepcopy(PATIENT)
    ops = [
        {"op": "add", "path": "/name/0/given/-", "value": "Bình"},
        {"op": "replace", "path": "/active", "value": False},
        {"op": "remove", "path": "/telecom/0"},
        {"op": "add", "path": "/address", "value": [{"city": "Huế"}]},
        {"op": "move", "from": "/id", "path": "/meta"},
        {"op": "copy", "from": "/name/0", "path": "/name/-"},
    ]
    ops_before = copy.deepcopy(ops)
    result = apply_json_patch(resource, ops)
    assert resource == PATIENT
    assert ops == ops_before
    assert result["name"][0]["given"] == ["Văn", "An", "Bình"]
    assert result["active"] is False
    assert result["telecom"] == []  # RFC 6902 leaves an emptied array in place
    assert "id" not in result and result["meta"] == "p1"
    # the result shares nothing with the operations or the input
    result["address"][0]["city"] = "Đà Nẵng"
    result["name"][1]["given"].append("X")
    assert ops == ops_before
    assert resource == PATIENT
    assert result["name"][0]["given"] == ["Văn", "An", "Bình"]


def test_input_not_mutated_when_a_later_operation_fails() -> None:
    resource = copy.deepcopy(PATIENT)
    ops = [
        {"op": "replace", "path": "/active", "value": False},
        {"op": "remove", "path": "/nope"},
    ]
    assert _error(resource, ops).status == 422
    assert resource == PATIENT


def test_error_message_names_operation_index_and_path() -> None:
    ops = [
        {"op": "test", "path": "/id", "value": "p1"},
        {"op": "add", "path": "/gender", "value": "male"},
        {"op": "replace", "path": "/name/3/family", "value": "Trần"},
    ]
    error = _error(PATIENT, ops)
    assert error.status == 422
    issue = error.issues[0]
    assert issue.code == "processing"
    assert issue.en.startswith("JSON Patch operation 2 (replace /name/3/family): ")
    assert "path not found" in issue.en
    assert issue.vi.startswith("Thao tác JSON Patch số 2 (replace /name/3/family): ")
    assert "không tìm thấy đường dẫn" in issue.vi
    outcome = error.outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "processing"
    assert " / " in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    "body",
    [{"op": "add", "path": "/a", "value": 1}, "[]", None, [["op"]], [{"op": "test"}, 1], 42],
    ids=["object", "string", "null", "nested-array", "mixed", "number"],
)
def test_body_not_an_array_of_objects_is_400(body: object) -> None:
    error = _error(PATIENT, body)
    assert error.status == 400
    assert error.issues[0].code == "invalid"


def test_empty_patch_returns_an_equal_copy() -> None:
    result = apply_json_patch(PATIENT, [])
    assert result == PATIENT and result is not PATIENT


@pytest.mark.parametrize(
    ("op", "fragment"),
    [
        ({"path": "/a", "value": 1}, "'op'"),
        ({"op": "delete", "path": "/id"}, "unknown op"),
        ({"op": "add", "value": 1}, "'path'"),
        ({"op": "add", "path": 5, "value": 1}, "'path'"),
        ({"op": "add", "path": "/x"}, "'value'"),
        ({"op": "replace", "path": "/id"}, "'value'"),
        ({"op": "test", "path": "/id"}, "'value'"),
        ({"op": "move", "path": "/x"}, "'from'"),
        ({"op": "copy", "path": "/x", "from": "/nope"}, "'from' path not found"),
        ({"op": "add", "path": "id", "value": 1}, "not a JSON Pointer"),
        ({"op": "add", "path": "/a~2b", "value": 1}, "invalid escape"),
        ({"op": "add", "path": "/a~", "value": 1}, "invalid escape"),
        ({"op": "add", "path": "/name/01", "value": {}}, "invalid array index"),
        ({"op": "add", "path": "/name/-1", "value": {}}, "invalid array index"),
        ({"op": "add", "path": "/name/+1", "value": {}}, "invalid array index"),
        ({"op": "add", "path": "/name/2", "value": {}}, "out of range"),
        ({"op": "remove", "path": "/name/1"}, "path not found"),
        ({"op": "remove", "path": "/name/-"}, "path not found"),
        ({"op": "replace", "path": "/name/-", "value": {}}, "path not found"),
        ({"op": "remove", "path": "/gender"}, "path not found"),
        ({"op": "replace", "path": "/gender", "value": "male"}, "path not found"),
        ({"op": "add", "path": "/id/x", "value": 1}, "not an object or an array"),
        ({"op": "remove", "path": ""}, "whole document"),
        ({"op": "move", "from": "/name", "path": "/name/0/x"}, "its own children"),
        ({"op": "test", "path": "/active", "value": 1}, "test failed"),
        ({"op": "test", "path": "/nope", "value": 1}, "path not found"),
        ({"op": "replace", "path": "", "value": [1]}, "no longer be a JSON object"),
        ({"op": "add", "path": "", "value": "x"}, "no longer be a JSON object"),
    ],
)
def test_invalid_or_failing_operation_is_422(op: dict[str, Any], fragment: str) -> None:
    error = _error(PATIENT, [op])
    assert error.status == 422
    assert error.issues[0].code == "processing"
    assert fragment in error.issues[0].en
    assert error.issues[0].vi.startswith("Thao tác JSON Patch số 0")


def test_json_pointer_escapes() -> None:
    doc = {"resourceType": "Basic", "a/b": 1, "m~n": 2}
    result = apply_json_patch(
        doc,
        [
            {"op": "test", "path": "/a~1b", "value": 1},
            {"op": "test", "path": "/m~0n", "value": 2},
            {"op": "add", "path": "/c~1d~0e", "value": 3},
            {"op": "remove", "path": "/a~1b"},
        ],
    )
    assert result == {"resourceType": "Basic", "m~n": 2, "c/d~e": 3}


def test_empty_member_name_and_root_pointer() -> None:
    result = apply_json_patch({"resourceType": "Basic"}, [{"op": "add", "path": "/", "value": 1}])
    assert result == {"resourceType": "Basic", "": 1}
    whole = {"resourceType": "Patient", "id": "x"}
    assert apply_json_patch(PATIENT, [{"op": "replace", "path": "", "value": whole}]) == whole
    assert apply_json_patch(PATIENT, [{"op": "test", "path": "", "value": PATIENT}]) == PATIENT


def test_array_index_rules() -> None:
    result = apply_json_patch(
        PATIENT,
        [
            {"op": "add", "path": "/name/0/given/-", "value": "C"},
            {"op": "add", "path": "/name/0/given/0", "value": "Z"},
            {"op": "add", "path": "/name/0/given/4", "value": "end"},
            {"op": "replace", "path": "/name/0/given/1", "value": "V"},
            {"op": "test", "path": "/name/0/given", "value": ["Z", "V", "An", "C", "end"]},
            {"op": "move", "from": "/name/0/given/0", "path": "/name/0/given/-"},
            {"op": "copy", "from": "/name/0/given/0", "path": "/name/0/given/1"},
        ],
    )
    assert result["name"][0]["given"] == ["V", "V", "An", "C", "end", "Z"]


def test_move_to_same_location_and_into_sibling() -> None:
    assert apply_json_patch(PATIENT, [{"op": "move", "from": "/name", "path": "/name"}]) == PATIENT
    result = apply_json_patch(PATIENT, [{"op": "move", "from": "/name/0/given", "path": "/name/0/given2"}])
    assert result["name"][0] == {"family": "Nguyễn", "given2": ["Văn", "An"]}


def test_replace_keeps_member_order() -> None:
    result = apply_json_patch(PATIENT, [{"op": "replace", "path": "/id", "value": "p2"}])
    assert list(result) == list(PATIENT)


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1, True, False),
        (0, False, False),
        (True, True, True),
        (1, 1.0, True),
        ("1", 1, False),
        (None, None, True),
        (None, False, False),
        ({"a": [1, {"b": None}], "c": "x"}, {"c": "x", "a": [1, {"b": None}]}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ([1, 2], [2, 1], False),
        ([1, [True]], [1, [1]], False),
        ({}, [], False),
    ],
)
def test_json_equal(a: object, b: object, equal: bool) -> None:
    assert json_equal(a, b) is equal
    assert json_equal(b, a) is equal


def test_test_op_uses_strict_json_equality() -> None:
    doc = {"resourceType": "Basic", "n": 1, "flag": True, "obj": {"x": [1, 2]}}
    assert apply_json_patch(doc, [{"op": "test", "path": "/n", "value": 1.0}]) == doc
    assert apply_json_patch(doc, [{"op": "test", "path": "/obj", "value": {"x": [1, 2]}}]) == doc
    assert _error(doc, [{"op": "test", "path": "/flag", "value": 1}]).status == 422
    assert _error(doc, [{"op": "test", "path": "/n", "value": True}]).status == 422
    assert _error(doc, [{"op": "test", "path": "/obj", "value": {"x": [2, 1]}}]).status == 422
