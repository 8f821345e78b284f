"""Compartment search (http://hl7.org/fhir/R4/compartmentdefinition.html): ``GET [base]/Patient/123/Observation``.

The packaged R4 Patient CompartmentDefinition says, per resource type, which reference parameters
make a resource a member; the search is an ordinary type search plus one criterion: any of those
parameters refers to ``Patient/123``. Only the Patient compartment is packaged (others: 404).
"""

from __future__ import annotations

from functools import cache

from ketnoi.fhir.definitions import patient_compartment
from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.repository import Repository, check_id, check_type
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.search import run_search
from ketnoi.search.query import Compartment


@cache
def _members(compartment: str) -> dict[str, tuple[str, ...]]:
    """resource type → its membership parameters, for the packaged compartments."""
    if compartment != "Patient":
        return {}
    definition = patient_compartment()
    return {r["code"]: tuple(r["param"]) for r in definition.get("resource", []) if r.get("param")}


def search_compartment(repo: Repository, request: FhirRequest, ctype: str, cid: str, rtype: str) -> FhirResponse:
    check_type(ctype)
    check_type(rtype)
    check_id(cid)
    members = _members(ctype)
    if not members:
        raise FhirError.of(
            404,
            "not-supported",
            f"The {ctype} compartment is not supported (only Patient)",
            f"Không hỗ trợ ngăn {ctype} (chỉ Patient)",
        )
    params = members.get(rtype)
    if params is None:
        raise FhirError.of(
            400,
            "not-supported",
            f"{rtype} resources are not part of the {ctype} compartment",
            f"Tài nguyên {rtype} không thuộc ngăn {ctype}",
        )
    criterion = Compartment(params, ctype, cid)
    return run_search(repo, request, (rtype,), f"{request.base_url}/{ctype}/{cid}/{rtype}", [criterion])
