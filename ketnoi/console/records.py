"""What the console shows, read through the FHIR interactions with the signed-in user's context (ADR 0026
decision 3): the same scopes, facility reach, Consents and audit trail as an API client's requests. No
query of its own; a search the policy narrows shows less, a read it forbids is "not found"."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from ketnoi.console import trends
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services
from ketnoi.vn.identifiers import identifier_in

PAGE = 20  # patients a search shows, rows of a record's table
TREND_OBSERVATIONS = 200  # the newest observations the record's trend charts are drawn from
_YEAR = re.compile(r"(19|20)\d{2}")


@dataclass(frozen=True, slots=True)
class Reader:
    """FHIR reads and searches as one caller."""

    services: Services
    context: RequestContext
    base_url: str

    def call(self, path: str, query: list[tuple[str, str]] | None = None) -> FhirResponse:
        request = FhirRequest(
            "GET", path, query or [], {"accept": "application/fhir+json"}, None, self.base_url, self.context
        )
        return handle(self.services, request)

    def post(self, path: str, body: dict[str, Any]) -> FhirResponse:
        request = FhirRequest(
            "POST", path, [], {"accept": "application/fhir+json", "content-type": "application/fhir+json"}, body,
            self.base_url, self.context,
        )  # fmt: skip
        return handle(self.services, request)

    def delete(self, path: str, query: list[tuple[str, str]] | None = None) -> FhirResponse:
        """A DELETE as this caller (e.g. of a background job's status URL: cancelling it)."""
        request = FhirRequest(
            "DELETE", path, query or [], {"accept": "application/fhir+json"}, None, self.base_url, self.context
        )
        return handle(self.services, request)

    def count(self, rtype: str, query: list[tuple[str, str]]) -> Counted:
        """``rtype?query&_summary=count``: the Bundle's total, or the server's reason for refusing. With
        ``handling=strict`` a parameter the server does not know is refused: leniently ignored, it would
        make the count silently wrong (``Immunization?encounter.…`` would count every immunization)."""
        request = FhirRequest(
            "GET", rtype, [*query, ("_summary", "count")],
            {"accept": "application/fhir+json", "prefer": "handling=strict"}, None, self.base_url, self.context,
        )  # fmt: skip
        response = handle(self.services, request)
        bundle = json_of(response)
        total = bundle.get("total")
        if response.status != 200 or not isinstance(total, int):
            return Counted(None, diagnostics(bundle) or str(response.status))
        return Counted(total, None)

    def read(self, rtype: str, id: str) -> dict[str, Any] | None:
        """The resource, or None when it does not exist or the caller may not see it."""
        response = self.call(f"{rtype}/{id}")
        return (json_of(response) or None) if response.status == 200 else None

    def search(self, rtype: str, query: list[tuple[str, str]]) -> Found:
        """The matches (``mode: match`` entries), whether there are more pages, and the server's
        message when it refused the search (shown to the user: it says what to change)."""
        response = self.call(rtype, query)
        bundle = json_of(response)
        if response.status != 200:
            return Found([], False, diagnostics(bundle) or str(response.status))
        found: list[dict[str, Any]] = []
        included: list[dict[str, Any]] = []
        for entry in bundle.get("entry") or ():
            if isinstance(entry.get("resource"), dict):
                mode = (entry.get("search") or {}).get("mode", "match")
                (found if mode == "match" else included).append(entry["resource"])
        more = any(link.get("relation") == "next" for link in bundle.get("link") or ())
        return Found(found, more, None, included)

    def write(self, method: str, path: str, body: dict[str, Any], if_match: str | None = None) -> Written:
        """A create (POST) or update (PUT) as this caller: the API's own checks (scopes, who may change
        what, validation) decide. ``if_match``: the version the change was made from (412 when it is
        no longer the current one). The answer is the OperationOutcome (``Prefer``), so that the
        warnings of a write stored anyway (``KETNOI_VALIDATION=lenient``) can be shown."""
        headers = {
            "accept": "application/fhir+json",
            "content-type": "application/fhir+json",
            "prefer": "return=OperationOutcome",
        }
        if if_match:
            headers["if-match"] = f'W/"{if_match}"'
        response = handle(self.services, FhirRequest(method, path, [], headers, body, self.base_url, self.context))
        outcome = json_of(response)
        issues = [i for i in outcome.get("issue") or () if isinstance(i, dict)]
        # Location: {base}/{type}/{id}/_history/{version}
        parts = response.headers.get("Location", "").rsplit("/", 3)
        stored = len(parts) == 4 and parts[2] == "_history"
        return Written(response.status, parts[1] if stored else None, parts[3] if stored else None, issues)


@dataclass(frozen=True, slots=True)
class Written:
    status: int
    id: str | None  # of the resource written, when it was
    version: str | None
    issues: list[dict[str, Any]]  # the OperationOutcome's: why it was refused, or the warnings

    @property
    def ok(self) -> bool:
        return self.status in (200, 201)


@dataclass(frozen=True, slots=True)
class Found:
    entries: list[dict[str, Any]]
    more: bool
    problem: str | None  # the OperationOutcome's text when the search was refused
    included: list[dict[str, Any]] = field(default_factory=list)  # _include'd resources (mode: include)


@dataclass(frozen=True, slots=True)
class Counted:
    total: int | None  # None when the search was refused
    problem: str | None = None


def names(resources: list[dict[str, Any]]) -> dict[str, str]:
    """``Type/id`` → name of the included resources that have one (facilities, practitioners)."""
    return {f"{r['resourceType']}/{r.get('id')}": str(r["name"]) for r in resources if isinstance(r.get("name"), str)}


def diagnostics(outcome: dict[str, Any]) -> str:
    """An OperationOutcome's texts, for the user (each bilingual as the server wrote it)."""
    return "; ".join(str(i.get("diagnostics", "")) for i in outcome.get("issue") or () if i.get("diagnostics"))


def json_of(response: FhirResponse) -> dict[str, Any]:
    """A response's JSON object, whether the interaction answered a resource or its stored bytes ({}: none)."""
    if response.resource is not None:
        return response.resource
    data = orjson.loads(response.raw) if response.raw else None
    return data if isinstance(data, dict) else {}


def patient_query(text: str) -> list[tuple[str, str]] | None:
    """The Patient search for what a user typed: a CCCD, CMND, BHXH or BHYT number is an identifier, a four-digit
    year a birth year, the rest the name (the server's name search ignores diacritics and case).
    None when nothing was typed."""
    words = text.split()
    if not words:
        return None
    query: list[tuple[str, str]] = []
    names: list[str] = []
    for word in words:
        if number := identifier_in(word):
            query.append(("identifier", number))
        elif _YEAR.fullmatch(word):
            query.append(("birthdate", word))
        else:
            names.append(word)
    # One name= per word (all must match): "nguyen van an" finds Nguyễn Văn An whatever the parts' order.
    query.extend(("name", word) for word in names)
    return [*query, ("_count", str(PAGE)), ("_sort", "family,given")]


def record(reader: Reader, patient_id: str) -> dict[str, Any] | None:
    """The patient and the summary sections of their record, or None when the caller may not see them."""
    patient = reader.read("Patient", patient_id)
    if patient is None:
        return None
    subject = f"Patient/{patient_id}"

    def section(rtype: str, *query: tuple[str, str]) -> list[dict[str, Any]]:
        return reader.search(rtype, [("patient", subject), *query]).entries

    encounters = reader.search(
        "Encounter",
        [("patient", subject), ("_sort", "-date"), ("_count", "20"), ("_include", "Encounter:service-provider")],
    )
    # The latest observations: the newest twenty in the table, and the trend charts from them all.
    observations = section("Observation", ("_sort", "-date"), ("_count", str(TREND_OBSERVATIONS)))
    return {
        "patient": patient,
        "coverage": reader.search("Coverage", [("beneficiary", subject), ("_count", "5")]).entries,
        "allergies": section("AllergyIntolerance", ("_count", "20")),
        "problems": section("Condition", ("clinical-status", "active"), ("_count", "20")),
        "medications": section("MedicationRequest", ("status", "active"), ("_count", "20")),
        "encounters": encounters.entries,
        # Facilities by name, not Organization/123: the service providers the search included (those the
        # user may read; another's stays a reference).
        "names": names(encounters.included),
        "observations": observations[:PAGE],
        "trends": trends.series(observations),
    }


def break_glass(reader: Reader, patient_id: str, reason: str) -> tuple[bool, str]:
    """Open ``patient_id``'s record in an emergency: (True, the instant the opening ends) or (False, the
    server's reason for refusing)."""
    body = {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": reason}]}
    response = reader.post(f"Patient/{patient_id}/$break-the-glass", body)
    answer = json_of(response)
    if response.status != 200:
        return False, diagnostics(answer) or str(response.status)
    until = next((p.get("valueInstant", "") for p in answer.get("parameter") or () if p.get("name") == "until"), "")
    return True, str(until)
