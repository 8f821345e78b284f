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

from ketnoi.console import records, show
from ketnoi.console.measures import BP_PANEL, BP_UNIT, DIASTOLIC, LAB_TESTS, SYSTOLIC, VITAL_SIGNS, Vital
from ketnoi.console.outcome import Message, place

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
V3_ACT: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
MAX_TEXT: Final = 4000  # characters kept of a note: more is not one visit's note
CLOCK_SKEW: Final = timedelta(minutes=5)  # a time this far ahead of the server's clock is still "now"


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


# ---- a measurement: a vital sign, a blood pressure, a laboratory result -------------------------
#: The observation form's kinds (``?kind=``): each its own fields, one Observation POST.
OBSERVATION_KINDS: Final = ("vital", "bp", "lab")
OBSERVATION_FIELDS: Final = {
    "code": "Observation.code",
    "value": "Observation.valueQuantity",
    "systolic": "Observation.component[0]",
    "diastolic": "Observation.component[1]",
    "when": "Observation.effectiveDateTime",
    "encounter": "Observation.encounter",
    "note": "Observation.note",
}


def _category(code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": OBSERVATION_CATEGORY, "code": code, "display": display}]}]


def _concept(code: str, display: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": text}


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def _measured(
    checked: Checked, key: str, t: dict[str, str], limits: tuple[str, float, float, str] | None
) -> float | int | None:
    """The number typed in field ``key``, or None with its error: missing, not a number, or outside
    ``limits`` (the name shown, low, high, the unit shown; None when the measurement is not chosen)."""
    text = checked.values.get(key, "")
    number = parse_number(text)
    if not text.strip():
        checked.error(key, t["clin_err_required"])
    elif number is None:
        checked.error(key, t["clin_err_number"])
    elif limits is not None and not limits[1] <= number <= limits[2]:
        name, low, high, unit = limits
        checked.error(key, t["clin_err_limits"].format(name=name, low=f"{low:g}", high=f"{high:g}", unit=unit))
    else:
        return number
    return None


def _context(checked: Checked, t: dict[str, str], encounters: set[str]) -> str | None:
    """The time measured (a FHIR dateTime) and the chosen encounter checked, the form's errors noted."""
    when = parse_time(checked.values.get("when", ""), t, checked, "when")
    encounter = checked.values.get("encounter", "")
    if encounter and encounter not in encounters:
        checked.error("encounter", t["clin_err_choose"])
    return when


def _observation(checked: Checked, category: list[dict[str, Any]], code: dict[str, Any], when: str,
                 **value: Any) -> dict[str, Any]:  # fmt: skip
    observation: dict[str, Any] = {
        "resourceType": "Observation", "status": "final", "category": category, "code": code,
        "effectiveDateTime": when, **value,
    }  # fmt: skip
    if checked.values.get("encounter"):
        observation["encounter"] = {"reference": checked.values["encounter"]}
    if checked.values.get("note", "").strip():
        observation["note"] = [{"text": checked.values["note"].strip()}]
    return observation


def check_observation(
    values: dict[str, str], t: dict[str, str], encounters: set[str]
) -> tuple[Checked, dict[str, Any]]:
    """The vital sign form's values checked, and the Observation they make (subject and performer added
    later; an empty one when the form has errors)."""
    checked = Checked(values)
    vital = VITAL_SIGNS.get(values.get("code", ""))
    if vital is None:
        checked.error("code", t["clin_err_choose"])
    limits = (t[f"vital_{vital.code}"], vital.low, vital.high, vital.unit) if vital else None
    number = _measured(checked, "value", t, limits)
    when = _context(checked, t, encounters)
    if vital is None or number is None or when is None:
        return checked, {}
    vital_signs = _category("vital-signs", "Vital Signs")
    code = _concept(vital.code, vital.display, vital.vi)
    return checked, _observation(
        checked, vital_signs, code, when, valueQuantity=_quantity(number, vital.unit, vital.unit)
    )


def _bp_limits(part: Vital, t: dict[str, str]) -> tuple[str, float, float, str]:
    return t[f"clin_bp_{part.code}"], part.low, part.high, BP_UNIT


def check_blood_pressure(
    values: dict[str, str], t: dict[str, str], encounters: set[str]
) -> tuple[Checked, dict[str, Any]]:
    """The blood pressure form: the R4 vital-signs panel (85354-9), its systolic and diastolic components
    in mm[Hg], both required, the systolic above the diastolic (the other way is two fields swapped)."""
    checked = Checked(values)
    systolic = _measured(checked, "systolic", t, _bp_limits(SYSTOLIC, t))
    diastolic = _measured(checked, "diastolic", t, _bp_limits(DIASTOLIC, t))
    if systolic is not None and diastolic is not None and systolic <= diastolic:
        checked.error("diastolic", t["clin_err_bp_order"].format(systolic=systolic, diastolic=diastolic))
    when = _context(checked, t, encounters)
    if systolic is None or diastolic is None or when is None or not checked.ok:
        return checked, {}
    components = [
        {"code": _concept(part.code, part.display, part.vi), "valueQuantity": _quantity(value, BP_UNIT, part.unit)}
        for part, value in ((SYSTOLIC, systolic), (DIASTOLIC, diastolic))
    ]
    vital_signs = _category("vital-signs", "Vital Signs")
    code = _concept(BP_PANEL.code, BP_PANEL.display, BP_PANEL.vi)
    return checked, _observation(checked, vital_signs, code, when, component=components)


def check_lab(values: dict[str, str], t: dict[str, str], encounters: set[str]) -> tuple[Checked, dict[str, Any]]:
    """The laboratory result form: a listed test's value in its unit, with the test's reference range."""
    checked = Checked(values)
    lab = LAB_TESTS.get(values.get("code", ""))
    if lab is None:
        checked.error("code", t["clin_err_choose"])
    number = _measured(checked, "value", t, (t[f"lab_{lab.code}"], lab.low, lab.high, lab.unit) if lab else None)
    when = _context(checked, t, encounters)
    if lab is None or number is None or when is None:
        return checked, {}
    band: dict[str, Any] = {}
    if lab.normal_low is not None:
        band["low"] = _quantity(lab.normal_low, lab.unit, lab.ucum)
    if lab.normal_high is not None:
        band["high"] = _quantity(lab.normal_high, lab.unit, lab.ucum)
    laboratory = _category("laboratory", "Laboratory")
    code = _concept(lab.code, lab.display, lab.vi)
    return checked, _observation(
        checked, laboratory, code, when, valueQuantity=_quantity(number, lab.unit, lab.ucum), referenceRange=[band]
    )


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
