"""The clinician's forms on a patient's record: a vital sign (an Observation) and an encounter note (an
Encounter with its ClinicalImpression, written together in one transaction).

A form is checked here first for what needs no server (a number that is not one, a time in the future,
a value no living patient has), then written through the interactions with the user's context, whose
validation answers the rest: its OperationOutcome issues name elements (``expression``), placed next
to the form's fields by :func:`ketnoi.console.outcome.place`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from ketnoi.claims.progress import VITALS
from ketnoi.console import records, show
from ketnoi.console.outcome import Message, place

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
V3_ACT: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
MAX_TEXT: Final = 4000  # characters kept of a note: more is not one visit's note
CLOCK_SKEW: Final = timedelta(minutes=5)  # a time this far ahead of the server's clock is still "now"


@dataclass(frozen=True, slots=True)
class Vital:
    code: str  # LOINC
    display: str  # LOINC's display
    vi: str  # the Vietnamese name (the concept's text)
    unit: str  # UCUM
    low: float  # physiological limits: a value outside is a typing mistake, not a patient
    high: float


#: The common vital signs: the codes and units the record's trend charts and the XML5 import
#: (ketnoi.claims.progress.VITALS) use, with the limits a living patient's value stays within.
_LIMITS: Final = {
    "8867-4": (20, 300),  # heart rate, /min
    "8310-5": (25, 45),  # body temperature, Cel
    "9279-1": (4, 100),  # respiratory rate, /min
    "59408-5": (50, 100),  # SpO2, %
    "29463-7": (0.3, 400),  # body weight, kg
    "8302-2": (20, 250),  # body height, cm
}
VITAL_SIGNS: Final = {
    code: Vital(code, display, vi, unit, *map(float, _LIMITS[code])) for code, display, vi, unit in VITALS.values()
}
ENCOUNTER_STATUSES: Final = ("finished", "in-progress")
ENCOUNTER_CLASSES: Final = ("AMB", "IMP")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")  # ASCII digits: what the server stores
_ENTRY = re.compile(r"Bundle\.entry\[\d+\]: ")


@dataclass(slots=True)
class Checked:
    """A form's values, what was wrong with them (field → messages) and the resources to write."""

    values: dict[str, str]
    messages: dict[str, list[Message]] = field(default_factory=dict)
    problems: list[Message] = field(default_factory=list)  # not about one field
    status: int = 400  # the answer's when the form is shown again: the server's refusal (403, 422 ...)

    def error(self, key: str, text: str) -> None:
        self.messages.setdefault(key, []).append(Message("error", text))

    @property
    def ok(self) -> bool:
        return not self.messages and not self.problems


def now_local() -> str:
    """Now in Vietnam's time, as a ``datetime-local`` input's value (the forms' default)."""
    return datetime.now(show.VIETNAM).strftime("%Y-%m-%dT%H:%M")


def parse_time(text: str, t: dict[str, str], checked: Checked, key: str) -> str | None:
    """A ``datetime-local`` value (Vietnam's time) as a FHIR dateTime; an error for ``key`` when it is
    not a time or is in the future."""
    try:
        moment = datetime.fromisoformat(text.strip()).replace(tzinfo=show.VIETNAM, microsecond=0)
    except ValueError:
        checked.error(key, t["clin_err_time"])
        return None
    if moment > datetime.now(show.VIETNAM) + CLOCK_SKEW:
        checked.error(key, t["clin_err_future"])
        return None
    return moment.isoformat(timespec="seconds")


def parse_number(text: str) -> float | int | None:
    """A decimal as typed, with a point or the Vietnamese decimal comma (``37,5``); None if not one."""
    clean = text.strip().replace(",", ".")
    if not _NUMBER.fullmatch(clean):
        return None
    return float(clean) if "." in clean else int(clean)


def _practitioner(reader: records.Reader) -> dict[str, str] | None:
    user = reader.context.fhir_user or ""
    return {"reference": user} if user.startswith("Practitioner/") else None


def _as_entry(issue: dict[str, Any]) -> dict[str, Any]:
    """A transaction's issue as its entry's own: the "Bundle.entry[n]: " before each language's text
    dropped (the form's fields already say which resource)."""
    return {**issue, "diagnostics": _ENTRY.sub("", str(issue.get("diagnostics") or ""))}


# ---- a vital sign --------------------------------------------------------------------------------
OBSERVATION_FIELDS: Final = {
    "code": "Observation.code",
    "value": "Observation.valueQuantity",
    "when": "Observation.effectiveDateTime",
    "encounter": "Observation.encounter",
    "note": "Observation.note",
}


def check_observation(
    values: dict[str, str], t: dict[str, str], encounters: set[str]
) -> tuple[Checked, dict[str, Any]]:
    """The form's values checked, and the Observation they make (subject and performer added later)."""
    checked = Checked(values)
    vital = VITAL_SIGNS.get(values.get("code", ""))
    if vital is None:
        checked.error("code", t["clin_err_choose"])
    number = parse_number(values.get("value", ""))
    if not values.get("value", "").strip():
        checked.error("value", t["clin_err_required"])
    elif number is None:
        checked.error("value", t["clin_err_number"])
    elif vital is not None and not vital.low <= number <= vital.high:
        limits = {"low": f"{vital.low:g}", "high": f"{vital.high:g}", "unit": vital.unit}
        checked.error("value", t["clin_err_limits"].format(name=t[f"vital_{vital.code}"], **limits))
    when = parse_time(values.get("when", ""), t, checked, "when")
    encounter = values.get("encounter", "")
    if encounter and encounter not in encounters:
        checked.error("encounter", t["clin_err_choose"])
    observation: dict[str, Any] = {"resourceType": "Observation", "status": "final"}
    if vital is not None and number is not None and when is not None:
        observation.update(
            category=[{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}],
            code={"coding": [{"system": LOINC, "code": vital.code, "display": vital.display}], "text": vital.vi},
            effectiveDateTime=when,
            valueQuantity={"value": number, "unit": vital.unit, "system": UCUM, "code": vital.unit},
        )
        if encounter:
            observation["encounter"] = {"reference": encounter}
        if values.get("note", "").strip():
            observation["note"] = [{"text": values["note"].strip()}]
    return checked, observation


def save_observation(
    reader: records.Reader, patient_id: str, checked: Checked, observation: dict[str, Any], lang: str
) -> Checked:
    """POST the Observation as the caller; the server's refusal placed on the form's fields."""
    observation["subject"] = {"reference": f"Patient/{patient_id}"}
    performer = _practitioner(reader)
    if performer is not None:
        observation["performer"] = [performer]
    written = reader.write("POST", "Observation", observation)
    if not written.ok:
        checked.status = written.status if written.status >= 400 else 400
        checked.messages, checked.problems = place(written.issues, OBSERVATION_FIELDS, lang)
        if not checked.messages and not checked.problems:
            checked.problems = [Message("error", str(written.status))]
    return checked


# ---- an encounter note ---------------------------------------------------------------------------
NOTE_FIELDS: Final = {
    "status": "Encounter.status",
    "class": "Encounter.class",
    "start": "Encounter.period",
    "reason": "Encounter.reasonCode",
    "note": "ClinicalImpression.summary",
}


def check_note(values: dict[str, str], t: dict[str, str]) -> tuple[Checked, str | None]:
    """The note form's values checked, and the visit's start as a FHIR dateTime."""
    checked = Checked(values)
    if values.get("status") not in ENCOUNTER_STATUSES:
        checked.error("status", t["clin_err_choose"])
    if values.get("class") not in ENCOUNTER_CLASSES:
        checked.error("class", t["clin_err_choose"])
    start = parse_time(values.get("start", ""), t, checked, "start")
    if not values.get("note", "").strip():
        checked.error("note", t["clin_err_required"])
    return checked, start


def note_bundle(reader: records.Reader, patient_id: str, values: dict[str, str], start: str) -> dict[str, Any]:
    """The transaction: the Encounter (the user's facility its service provider) and the
    ClinicalImpression of it that holds the note, linked by a ``urn:uuid`` the server resolves."""
    subject = {"reference": f"Patient/{patient_id}"}
    encounter_url, impression_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    finished = values["status"] == "finished"
    encounter: dict[str, Any] = {
        "resourceType": "Encounter", "status": values["status"],
        "class": {"system": V3_ACT, "code": values["class"]}, "subject": subject, "period": {"start": start},
    }  # fmt: skip
    if reader.context.organization:
        encounter["serviceProvider"] = {"reference": reader.context.organization}
    practitioner = _practitioner(reader)
    if practitioner is not None:
        encounter["participant"] = [{"individual": practitioner}]
    if values.get("reason", "").strip():
        encounter["reasonCode"] = [{"text": values["reason"].strip()}]
    impression: dict[str, Any] = {
        "resourceType": "ClinicalImpression", "status": "completed" if finished else "in-progress",
        "subject": subject, "encounter": {"reference": encounter_url}, "effectiveDateTime": start,
        "date": datetime.now(show.VIETNAM).isoformat(timespec="seconds"), "summary": values["note"].strip(),
    }  # fmt: skip
    if practitioner is not None:
        impression["assessor"] = practitioner
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": encounter_url, "resource": encounter, "request": {"method": "POST", "url": "Encounter"}},
            {
                "fullUrl": impression_url,
                "resource": impression,
                "request": {"method": "POST", "url": "ClinicalImpression"},
            },
        ],
    }


def save_note(reader: records.Reader, patient_id: str, checked: Checked, start: str, lang: str) -> Checked:
    """Write the note's transaction as the caller: both resources, or (refused) neither."""
    response = reader.post("", note_bundle(reader, patient_id, checked.values, start))
    if response.status == 200:
        return checked
    checked.status = response.status if response.status >= 400 else 400
    outcome = records.json_of(response)
    issues = [_as_entry(i) for i in outcome.get("issue") or () if isinstance(i, dict)]
    checked.messages, checked.problems = place(issues, NOTE_FIELDS, lang)
    if not checked.messages and not checked.problems:
        checked.problems = [Message("error", str(response.status))]
    return checked
