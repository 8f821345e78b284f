"""Plain words for FHIR values on the console's pages (templates call these as ``show.name(...)``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from ketnoi.vn.identifier_rules import BHYT_SYSTEM, CCCD_SYSTEM

_ID_LABELS = {CCCD_SYSTEM: "CCCD", BHYT_SYSTEM: "BHYT"}


def name(patient: dict[str, Any]) -> str:
    """The official (else first) name as written: family first, the Vietnamese order."""
    names = [n for n in patient.get("name") or () if isinstance(n, dict)]
    chosen = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    if chosen is None:
        return "—"
    if chosen.get("text"):
        return str(chosen["text"])
    parts = [chosen.get("family") or "", *(chosen.get("given") or ())]
    return " ".join(str(p) for p in parts if p) or "—"


def identifiers(patient: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) of each identifier: CCCD and BHYT by name, others by their type's text or system."""
    found = []
    for ident in patient.get("identifier") or ():
        if not isinstance(ident, dict) or not ident.get("value"):
            continue
        system = str(ident.get("system") or "")
        label = _ID_LABELS.get(system) or concept(ident.get("type") or {}) or system.rsplit("/", 1)[-1] or "—"
        found.append((label, str(ident["value"])))
    return found


def concept(value: Any) -> str:
    """A CodeableConcept's text, else its first coding's display, else its code."""
    if not isinstance(value, dict):
        return ""
    if value.get("text"):
        return str(value["text"])
    for coding in value.get("coding") or ():
        if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return ""


def concepts(values: Any) -> str:
    return ", ".join(c for c in (concept(v) for v in values or ()) if c)


def address(patient: dict[str, Any]) -> str:
    for addr in patient.get("address") or ():
        if isinstance(addr, dict):
            if addr.get("text"):
                return str(addr["text"])
            parts = [*(addr.get("line") or ()), addr.get("district"), addr.get("city"), addr.get("state")]
            return ", ".join(str(p) for p in parts if p)
    return ""


def date(value: Any) -> str:
    """A FHIR date or dateTime as day/month/year (the Vietnamese order), time dropped."""
    text = str(value or "")
    parts = text[:10].split("-")
    if len(parts) == 3:
        return f"{parts[2]}/{parts[1]}/{parts[0]}"
    if len(parts) == 2:
        return f"{parts[1]}/{parts[0]}"
    return text


VIETNAM = timezone(timedelta(hours=7), "ICT")  # the country's one time zone, no daylight saving


def moment(value: Any, fmt: str = "%H:%M %d/%m/%Y") -> str:
    """A FHIR instant in Vietnam's time (by default hour:minute day/month/year); the text itself if it is not one."""
    text = str(value or "")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if parsed.tzinfo is None:
        return text
    return parsed.astimezone(VIETNAM).strftime(fmt)


def epoch_moment(epoch: float | None) -> str:
    """A server-side time (seconds since 1970: a job's, a checkpoint's) as :func:`moment`; a dash for none."""
    return "—" if epoch is None else moment(datetime.fromtimestamp(epoch, UTC).isoformat())


def when(resource: dict[str, Any], *fields: str) -> str:
    """The first of ``fields`` present (a dateTime, or a Period's start), as :func:`date`."""
    for field in fields:
        value = resource.get(field)
        if isinstance(value, dict):
            value = value.get("start")
        if value:
            return date(value)
    return ""


def quantity(observation: dict[str, Any]) -> str:
    """An Observation's value in words: a quantity with its unit, a concept, a string, or components."""
    value = observation.get("valueQuantity")
    if isinstance(value, dict) and "value" in value:
        return f"{value['value']} {value.get('unit') or value.get('code') or ''}".strip()
    for key in ("valueString", "valueBoolean", "valueInteger"):
        if key in observation:
            return str(observation[key])
    if "valueCodeableConcept" in observation:
        return concept(observation["valueCodeableConcept"])
    parts = [
        f"{concept(c.get('code'))}: {quantity(c)}" for c in observation.get("component") or () if isinstance(c, dict)
    ]
    return "; ".join(parts)


def reference(value: Any, names: dict[str, str] | None = None) -> str:
    """A Reference's display, else the name of what it points to when known, else the reference."""
    if isinstance(value, dict):
        target = str(value.get("reference") or "")
        return str(value.get("display") or (names or {}).get(target) or target)
    return ""
