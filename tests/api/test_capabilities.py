"""GET /metadata: a CapabilityStatement that says what really works."""

from __future__ import annotations

import httpx


def test_capability_statement_lists_what_is_implemented(client: httpx.Client) -> None:
    r = client.get("/metadata")
    assert r.status_code == 200
    cs = r.json()
    assert (cs["resourceType"], cs["fhirVersion"], cs["kind"]) == ("CapabilityStatement", "4.0.1", "instance")
    rest = cs["rest"][0]
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch", "search-system", "history-system"}
    by_type = {res["type"]: res for res in rest["resource"]}
    assert len(by_type) >= 145
    patient = by_type["Patient"]
    assert {"read", "vread", "update", "patch", "delete", "create", "search-type"} <= {
        i["code"] for i in patient["interaction"]
    }
    names = [p["name"] for p in patient["searchParam"]]
    assert len(names) == len(set(names))  # no parameter twice
    assert {"_id", "_lastUpdated", "name", "identifier", "birthdate", "_text", "_content"} <= set(names)
    observation = {p["name"]: p["type"] for p in by_type["Observation"]["searchParam"]}
    assert observation["code-value-quantity"] == "composite"  # a supported composite is advertised
    location = {p["name"] for p in by_type["Location"]["searchParam"]}
    assert "near" not in location  # not supported: not advertised
    assert {"validate", "import", "reindex"} <= {op["name"] for op in rest["operation"]}
    # Operations on one type are listed under it too, with Bulk Data's definitions per level.
    bulk = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition"
    assert {"name": "export", "definition": f"{bulk}/export"} in rest["operation"]
    assert {"name": "export", "definition": f"{bulk}/patient-export"} in patient["operation"]
    assert {"name": "export", "definition": f"{bulk}/group-export"} in by_type["Group"]["operation"]
    assert "everything" in {op["name"] for op in patient["operation"]}
    assert "export" not in {op["name"] for op in by_type["Observation"].get("operation", [])}
