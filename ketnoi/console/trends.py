"""Trend series of a patient's numeric observations for the record page's charts (ADR 0026).

One series per code (LOINC or the first coding) with at least two numeric values in the same unit,
oldest first, with the reference range when the observations carry one. A panel's numeric components
are series of their own (a blood pressure: its systolic and its diastolic, each under its code). The
page shows each series as a table (readable without scripts, and by a screen reader) that
``static/console-chart.js`` turns into a uPlot chart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ketnoi.console import show

MAX_SERIES = 8  # charts on one page: the most measured codes first


@dataclass(slots=True)
class Series:
    key: str  # system|code
    label: str
    unit: str
    points: list[tuple[str, float]] = field(default_factory=list)  # (FHIR dateTime, value), oldest first
    low: float | None = None
    high: float | None = None

    def data(self) -> dict[str, Any]:
        """What the chart script reads (a data attribute): seconds since the epoch and values."""
        return {
            "label": self.label, "unit": self.unit, "low": self.low, "high": self.high,
            "t": [_epoch(when) or 0.0 for when, _ in self.points], "v": [value for _, value in self.points],
        }  # fmt: skip


def series(observations: list[dict[str, Any]]) -> list[Series]:
    """The trend series of ``observations`` (any order), most points first, at most :data:`MAX_SERIES`."""
    found: dict[tuple[str, str], Series] = {}
    for obs in observations:
        when = obs.get("effectiveDateTime") or (obs.get("effectivePeriod") or {}).get("start") or obs.get("issued")
        parts = [obs, *(c for c in obs.get("component") or () if isinstance(c, dict))]
        for part in parts:
            point = _point(part, when)
            if point is None:
                continue
            key, label, unit, value = point
            one = found.setdefault((key, unit), Series(key, label, unit))
            one.points.append((str(when), value))
            low, high = _range(part)
            one.low = low if low is not None else one.low
            one.high = high if high is not None else one.high
    kept = [s for s in found.values() if len(s.points) >= 2]
    for s in kept:
        s.points.sort(key=lambda p: _epoch(p[0]) or 0.0)
    kept.sort(key=lambda s: (-len(s.points), s.label))
    return kept[:MAX_SERIES]


def _point(obs: dict[str, Any], when: Any) -> tuple[str, str, str, float] | None:
    """An observation's (or a component's) series key, label, unit and value, when it has a number."""
    value = obs.get("valueQuantity")
    codings = [c for c in (obs.get("code") or {}).get("coding") or () if isinstance(c, dict) and c.get("code")]
    if not isinstance(value, dict) or not isinstance(value.get("value"), int | float) or not when or not codings:
        return None
    if _epoch(str(when)) is None:
        return None
    first = codings[0]
    unit = str(value.get("unit") or value.get("code") or "")
    label = show.concept(obs.get("code")) or str(first["code"])
    return f"{first.get('system', '')}|{first['code']}", label, unit, float(value["value"])


def _range(obs: dict[str, Any]) -> tuple[float | None, float | None]:
    for item in obs.get("referenceRange") or ():
        if isinstance(item, dict):
            return _number(item.get("low")), _number(item.get("high"))
    return None, None


def _number(quantity: Any) -> float | None:
    value = quantity.get("value") if isinstance(quantity, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _epoch(when: str) -> float | None:
    """Seconds since the epoch of a FHIR date or dateTime (a date alone: its midnight UTC)."""
    text = when if "T" in when else f"{when[:10]}T00:00:00+00:00"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo else None
