"""One patient's care: Encounters, Conditions, Observations, MedicationRequests and Immunizations.

Everything is drawn from the patient's own RNG, so a patient's care never depends on the others. Episodes
fall in a three-year window ending at ``people.AS_OF``; childhood immunisations are the full history.

The resources follow the VN Core profiles (http://fhir.ehealth.gov.vn/core): every Encounter has one
chief-complaint diagnosis (diagnosis-role ``CC``, no rank) and its other diagnoses are comorbidities
(``CM``); every Condition has an ``encounter`` (a chronic problem-list item: the first encounter that
lists it, the one where it was diagnosed when that falls in the window); every MedicationRequest has a
``performer`` (the patient, or a nurse of the facility for inpatient and injected medicines).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from typing import Any

from ketnoi.demo import catalog, ids, measures, people
from ketnoi.demo.facilities import Facility, HealthSystem

Resource = dict[str, Any]

WINDOW_START = date(2023, 7, 1)
_WINDOW_START_ORD = WINDOW_START.toordinal()
_AS_OF_ORD = people.AS_OF.toordinal()
_TZ = "+07:00"

_V3 = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CLASSES = {
    "AMB": {"system": _V3, "code": "AMB", "display": "ambulatory"},
    "EMER": {"system": _V3, "code": "EMER", "display": "emergency"},
    "IMP": {"system": _V3, "code": "IMP", "display": "inpatient encounter"},
    "VR": {"system": _V3, "code": "VR", "display": "virtual"},
}
_ATND = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "code": "ATND",
                "display": "attender",
            }
        ]
    }
]
_EMERGENCY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActPriority",
            "code": "EM",
            "display": "emergency",
        }
    ]
}
_HOME = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
            "code": "home",
            "display": "Home",
        }
    ]
}
_ADMIT = {
    True: {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/admit-source",
                "code": "emd",
                "display": "From accident/emergency department",
            }
        ]
    },
    False: {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/admit-source",
                "code": "outp",
                "display": "From outpatient department",
            }
        ]
    },
}
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_ACTIVE = {"coding": [{"system": _CLINICAL, "code": "active", "display": "Active"}]}
_RESOLVED = {"coding": [{"system": _CLINICAL, "code": "resolved", "display": "Resolved"}]}
_CONFIRMED = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": "confirmed",
            "display": "Confirmed",
        }
    ]
}
_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
# VN Core's problem-list profile fixes the whole category, text included.
_PROBLEM = [
    {
        "coding": [{"system": _CAT, "code": "problem-list-item", "display": "Problem List Item"}],
        "text": "Problem List Item",
    }
]
_ENC_DX = [{"coding": [{"system": _CAT, "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}]}]
_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
# Encounter.diagnosis.use of VN Core's slices ChiefComplaint_CDBenhChinh (bệnh chính, exactly one, no
# rank) and ComorbidityDiagnosis-CDBenhPhu (bệnh kèm theo); their patterns, text included.
_CHIEF = {"coding": [{"system": _ROLE, "code": "CC", "display": "Chief complaint"}], "text": "Chief complaint"}
_COMORBIDITY = {
    "coding": [{"system": _ROLE, "code": "CM", "display": "Comorbidity diagnosis"}],
    "text": "Comorbidity diagnosis",
}
_OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
_VITAL_CAT = [{"coding": [{"system": _OBS_CAT, "code": "vital-signs", "display": "Vital Signs"}]}]
_LAB_CAT = [{"coding": [{"system": _OBS_CAT, "code": "laboratory", "display": "Laboratory"}]}]
_INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
INTERPRETATION = {
    "H": [{"coding": [{"system": _INTERP, "code": "H", "display": "High"}]}],
    "L": [{"coding": [{"system": _INTERP, "code": "L", "display": "Low"}]}],
    "N": [{"coding": [{"system": _INTERP, "code": "N", "display": "Normal"}]}],
}

# Episodes per year by age group (children <5, 5-14, 15-59, 60+) and chronic follow-ups per year.
EPISODE_RATE = ((5, 1.6), (15, 0.6), (60, 0.35), (200, 0.7))
FOLLOWUP_RATE = 1.3
_ACUTE_WEIGHTS = tuple(tuple(a.weights[g] for a in catalog.ACUTE) for g in range(3))
_PRECISION = {"weight": 1, "height": 1, "bmi": 1, "temp": 1, "hr": 0}


def local_time(day: date, minute_of_day: int) -> str:
    """``day`` at ``minute_of_day`` (minutes after midnight), Vietnam time (+07:00)."""
    return f"{day.isoformat()}T{minute_of_day // 60:02d}:{minute_of_day % 60:02d}:00{_TZ}"


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method; lam is small here.
    limit, k, p = 2.718281828459045**-lam, 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _height_cm(age: float, female: bool, adult_height: float) -> float:
    """Rough growth curve towards the person's adult height."""
    if age >= 17:
        return adult_height
    if age < 1:
        h = 50 + 25 * age
    elif age < 3:
        h = 75 + 10.5 * (age - 1)
    else:
        h = 96 + 6.1 * (age - 3)
    return min(h * adult_height / (158 if female else 167), adult_height)


@dataclass(slots=True)
class Problem:
    """A chronic condition of the patient: its problem-list Condition (``resource``, whose ``encounter``,
    ``recordedDate`` and ``recorder`` are set by the first encounter that lists it) and its onset."""

    chronic: catalog.Chronic
    ref: dict[str, str]
    resource: Resource
    onset: int  # date ordinal

    @property
    def linked(self) -> bool:
        return self.resource["encounter"] is not None


class PatientCare:
    """Builds the resources of one patient into ``out``; ``urn`` chooses bundle-style references."""

    def __init__(
        self, rng: random.Random, person: people.Person, hs: HealthSystem, urn: bool, out: list[Resource]
    ) -> None:
        self.rng = rng
        self.p = person
        self.hs = hs
        self.urn = urn
        self.out = out
        self.patient_ref = {"reference": self.ref("Patient", person.id)}
        self.station = hs.stations[person.province][person.commune]
        self.age_now = person.age
        female = person.female
        self.adult_height = rng.gauss(155.5 if female else 165.5, 5.5)
        self.bmi = max(16.0, rng.gauss(21.8, 2.8))
        self.measured_height = False
        self.chronic: list[Problem] = []

    def ref(self, rtype: str, rid: str) -> str:
        return f"urn:uuid:{rid}" if self.urn else f"{rtype}/{rid}"

    def new_id(self) -> str:
        return ids.rng_uuid(self.rng)

    # -- facility choice -------------------------------------------------------------------------------
    def facility(self, kind: str, severe: bool = False) -> Facility:
        r = self.rng.random()
        hs, p = self.hs, self.p
        if kind == "AMB" and r < 0.55:
            return self.station
        if kind == "VR" or (severe and r < 0.35) or (kind == "IMP" and r < 0.1):
            return self.rng.choice(hs.central_by_region[p.region])
        if (kind != "AMB" and r < 0.5) or (kind == "AMB" and r < 0.85):
            return hs.regional_for(p.province, p.commune)
        return hs.provincial[p.province]

    # -- whole patient ---------------------------------------------------------------------------------
    def build(self, chronic: bool = True, episodes: float = 1.0, kinds: tuple[str, ...] = ()) -> None:
        rng, p = self.rng, self.p
        birth_ord = p.birth.toordinal()
        start = max(_WINDOW_START_ORD, birth_ord + 1)
        if start >= _AS_OF_ORD - 1:
            return
        years = (_AS_OF_ORD - start) / 365.25
        plan: list[tuple[int, int, Any]] = []  # (day ordinal, order, spec)
        if chronic:
            for c in catalog.CHRONIC:
                prevalence = 0.0
                for min_age, male, female in c.prevalence:
                    if self.age_now >= min_age:
                        prevalence = female if p.female else male
                if prevalence and rng.random() < prevalence:
                    self.add_chronic(c)
            if self.chronic:
                # Follow-ups from the first diagnosis on; a condition diagnosed in the window is
                # diagnosed at a visit on its onset day.
                first = max(start, min(pr.onset for pr in self.chronic))
                if first < _AS_OF_ORD:
                    fu_rate = FOLLOWUP_RATE * (_AS_OF_ORD - first) / 365.25 * (1 + 0.3 * (len(self.chronic) - 1))
                    for _ in range(_poisson(rng, fu_rate)):
                        plan.append((first + rng.randrange(_AS_OF_ORD - first), 1, None))
                for onset in sorted({pr.onset for pr in self.chronic if pr.onset >= start}):
                    plan.append((onset, 1, None))
        rate = next(r for limit, r in EPISODE_RATE if self.age_now < limit)
        group = 0 if self.age_now < 15 else 1 if self.age_now < 60 else 2
        weights = _ACUTE_WEIGHTS[group]
        for _ in range(_poisson(rng, rate * years * episodes)):
            acute = rng.choices(catalog.ACUTE, weights)[0]
            if acute.sex == "F" and not (p.female and 20 <= self.age_now < 40):
                acute = catalog.ACUTE[0]  # deliveries only for women aged 20-39
            elif acute.sex == "f" and not p.female and rng.random() < 0.7:
                acute = catalog.ACUTE[0]  # mostly women
            span = _AS_OF_ORD - start - acute.stay[1]
            if span > 0:
                plan.append((start + rng.randrange(span), 0, acute))
        plan.sort(key=lambda x: (x[0], x[1]))
        for day_ord, _order, spec in plan:
            day = date.fromordinal(day_ord)
            if spec is None:
                self.followup(day)
            else:
                self.episode(day, spec, kinds)
        for pr in self.chronic:  # diagnosed before the window and not seen in it (no follow-up drawn)
            if not pr.linked:
                first = max(start, pr.onset)
                self.followup(date.fromordinal(first + rng.randrange(_AS_OF_ORD - first + 1)))
            assert pr.linked

    def add_chronic(self, c: catalog.Chronic) -> None:
        rng, p = self.rng, self.p
        min_age = c.prevalence[0][0]
        onset_age = rng.randint(min_age, max(min_age, self.age_now))
        onset = date(min(p.birth.year + onset_age, people.AS_OF.year), rng.randint(1, 12), rng.randint(1, 28))
        if onset.toordinal() > _AS_OF_ORD or onset <= p.birth:
            onset = people.AS_OF
        cid = self.new_id()
        cond: Resource = {
            "resourceType": "Condition",
            "id": cid,
            "clinicalStatus": _ACTIVE,
            "verificationStatus": _CONFIRMED,
            "category": _PROBLEM,
            "code": c.concept,
            "subject": self.patient_ref,
            "encounter": None,  # these three: set by the first encounter that lists it (link())
            "onsetDateTime": onset.isoformat(),
            "recordedDate": None,
            "recorder": None,
        }
        self.out.append(cond)
        self.chronic.append(Problem(c, {"reference": self.ref("Condition", cid)}, cond, onset.toordinal()))

    def link(self, problems: list[Problem], enc_ref: dict[str, str], start: str, doctor: str) -> None:
        """Record the problems not yet recorded as created at this encounter."""
        for pr in problems:
            if not pr.linked:
                pr.resource["encounter"] = enc_ref
                pr.resource["recordedDate"] = start
                pr.resource["recorder"] = {"reference": f"Practitioner/{doctor}"}

    def known(self, day: date) -> list[Problem]:
        """The chronic problems diagnosed on or before ``day``, those diagnosed that day first."""
        d = day.toordinal()
        return sorted((pr for pr in self.chronic if pr.onset <= d), key=lambda pr: pr.onset != d)

    # -- encounters ------------------------------------------------------------------------------------
    def encounter(
        self,
        kind: str,
        fac: Facility,
        start: str,
        end: str,
        diagnoses: list[dict[str, str]],
        doctor: str,
        emergency_admit: bool = False,
    ) -> dict[str, str]:
        eid = self.new_id()
        enc: Resource = {"resourceType": "Encounter", "id": eid, "status": "finished", "class": CLASSES[kind]}
        if kind == "EMER" or emergency_admit:
            enc["priority"] = _EMERGENCY
        enc["subject"] = self.patient_ref
        enc["participant"] = [{"type": _ATND, "individual": {"reference": f"Practitioner/{doctor}"}}]
        enc["period"] = {"start": start, "end": end}
        chief, *others = diagnoses
        enc["diagnosis"] = [{"condition": chief, "use": _CHIEF}] + [
            {"condition": d, "use": _COMORBIDITY, "rank": i} for i, d in enumerate(others, 1)
        ]
        if kind == "IMP":
            enc["hospitalization"] = {"admitSource": _ADMIT[emergency_admit], "dischargeDisposition": _HOME}
        if kind != "VR":
            enc["location"] = [{"location": {"reference": f"Location/{fac.loc_id}"}, "status": "completed"}]
        enc["serviceProvider"] = {"reference": f"Organization/{fac.org_id}"}
        self.out.append(enc)
        return {"reference": self.ref("Encounter", eid)}

    def episode(self, day: date, acute: catalog.Acute, kinds: tuple[str, ...]) -> None:
        rng = self.rng
        kind = rng.choices(("AMB", "EMER", "IMP"), acute.classes)[0]
        if kinds and kind not in kinds:
            kind = kinds[0]
        severe = acute.stay[1] >= 10
        fac = self.facility(kind, severe)
        if fac.level == "commune" and kind != "AMB":
            fac = self.hs.regional_for(self.p.province, self.p.commune)
        doctor = rng.choice(fac.doctors)
        if kind == "IMP":
            minute = rng.randrange(24 * 60)
            out_day = date.fromordinal(day.toordinal() + rng.randint(*acute.stay))
            start, end = local_time(day, minute), local_time(out_day, rng.randrange(8 * 60, 11 * 60))
        elif kind == "EMER":
            minute = rng.randrange(24 * 60 - 360)
            start, end = local_time(day, minute), local_time(day, minute + rng.randrange(60, 360))
        else:
            minute = rng.randrange(7 * 60, 16 * 60 + 30)
            start, end = local_time(day, minute), local_time(day, minute + rng.randrange(10, 60))
        cid = self.new_id()
        cond_ref = {"reference": self.ref("Condition", cid)}
        comorbid = [pr for pr in self.known(day) if kind == "IMP" and pr.chronic.code in ("I10", "E11.9")]
        diagnoses = [cond_ref] + [pr.ref for pr in comorbid]
        enc_ref = self.encounter(kind, fac, start, end, diagnoses, doctor, kind == "IMP" and rng.random() < 0.6)
        self.link(comorbid, enc_ref, start, doctor)
        cond: Resource = {
            "resourceType": "Condition",
            "id": cid,
            "clinicalStatus": _RESOLVED,
            "verificationStatus": _CONFIRMED,
            "category": _ENC_DX,
            "code": acute.concept,
            "subject": self.patient_ref,
            "encounter": enc_ref,
            "onsetDateTime": date.fromordinal(day.toordinal() - rng.randint(0, 3)).isoformat(),
            "abatementDateTime": date.fromordinal(day.toordinal() + rng.randint(3, 14)).isoformat()
            if kind != "IMP"
            else end[:10],
            "recordedDate": start,
            "recorder": {"reference": f"Practitioner/{doctor}"},
        }
        self.out.append(cond)
        codes = {acute.code}
        self.vitals(enc_ref, start, day, fever=acute.fever)
        for lab in acute.labs:
            self.lab(lab, enc_ref, start, codes)
        if kind == "IMP":
            for lab in ("glucose", "creatinine"):
                if lab not in acute.labs:
                    self.lab(lab, enc_ref, start, codes | {pr.chronic.code for pr in self.chronic})
        for key in acute.meds:
            self.prescribe(rng.choice(key.split("|")), enc_ref, start, doctor, cond_ref, day, fac, kind == "IMP")

    def followup(self, day: date) -> None:
        """A chronic-disease follow-up visit (outpatient, sometimes telemedicine) for the problems known
        that day, the one diagnosed that day (in person) as the chief complaint; without any, a check-up."""
        rng = self.rng
        problems = self.known(day)
        kind = "VR" if rng.random() < 0.08 and problems and problems[0].onset != day.toordinal() else "AMB"
        fac = self.facility(kind) if kind == "VR" or rng.random() < 0.5 else self.station
        doctor = rng.choice(fac.doctors)
        minute = rng.randrange(7 * 60, 16 * 60 + 30)
        start, end = local_time(day, minute), local_time(day, minute + rng.randrange(10, 40))
        if not problems:
            self.checkup(fac, doctor, day, start, end)
            return
        enc_ref = self.encounter(kind, fac, start, end, [pr.ref for pr in problems], doctor)
        self.link(problems, enc_ref, start, doctor)
        codes = {pr.chronic.code for pr in self.chronic}
        if kind != "VR":
            self.vitals(enc_ref, start, day, fever=False)
            for pr in problems:
                for lab, prob in pr.chronic.labs:
                    if rng.random() < prob:
                        self.lab(lab, enc_ref, start, codes)
        for pr in problems:
            for key in pr.chronic.meds:
                self.prescribe(rng.choice(key.split("|")), enc_ref, start, doctor, pr.ref, day, fac, False)

    def checkup(self, fac: Facility, doctor: str, day: date, start: str, end: str) -> None:
        """A general health check (khám sức khỏe): a Z00 reason and vital signs."""
        concept = catalog.CHECKUP_CHILD if day.year - self.p.birth.year < 16 else catalog.CHECKUP_ADULT
        enc_ref = self.visit(fac, doctor, start, end, concept)
        self.vitals(enc_ref, start, day, fever=False)

    def visit(self, fac: Facility, practitioner: str, start: str, end: str, reason: dict[str, Any]) -> dict[str, str]:
        """An outpatient visit for a reason that is no disease (a check-up, a vaccination): its Encounter
        and, as the chief complaint, an encounter-diagnosis Condition coded ``reason`` (ICD-10 Z)."""
        cid = self.new_id()
        enc_ref = self.encounter("AMB", fac, start, end, [{"reference": self.ref("Condition", cid)}], practitioner)
        self.out.append(
            {
                "resourceType": "Condition",
                "id": cid,
                "clinicalStatus": _RESOLVED,
                "verificationStatus": _CONFIRMED,
                "category": _ENC_DX,
                "code": reason,
                "subject": self.patient_ref,
                "encounter": enc_ref,
                "recordedDate": start,
                "recorder": {"reference": f"Practitioner/{practitioner}"},
            }
        )
        return enc_ref

    # -- observations ----------------------------------------------------------------------------------
    def _obs(self, cat: list[Any], concept: dict[str, Any], enc_ref: dict[str, str], when: str) -> Resource:
        return {
            "resourceType": "Observation",
            "id": self.new_id(),
            "status": "final",
            "category": cat,
            "code": concept,
            "subject": self.patient_ref,
            "encounter": enc_ref,
            "effectiveDateTime": when,
        }

    def _vital(self, key: str, value: float, enc_ref: dict[str, str], when: str) -> None:
        v = measures.VITALS[key]
        obs = self._obs(_VITAL_CAT, v.concept, enc_ref, when)
        digits = _PRECISION[key]
        obs["valueQuantity"] = {
            "value": round(value, digits) if digits else round(value),
            "unit": v.unit,
            "system": catalog.UCUM,
            "code": v.code,
        }
        self.out.append(obs)

    def vitals(self, enc_ref: dict[str, str], when: str, day: date, fever: bool) -> None:
        rng, p = self.rng, self.p
        age = (day.toordinal() - p.birth.toordinal()) / 365.25
        codes = {pr.chronic.code for pr in self.chronic}
        if age >= 16:
            sys = 108 + 0.45 * max(0.0, age - 20) + rng.gauss(0, 9) + (22 if "I10" in codes else 0)
            dia = 0.55 * sys + 8 + rng.gauss(0, 5)
            obs = self._obs(_VITAL_CAT, measures.VITALS["bp"].concept, enc_ref, when)
            obs["component"] = [
                {
                    "code": measures.VITALS["sys"].concept,
                    "valueQuantity": {
                        "value": int(sys),
                        "unit": "mmHg",
                        "system": catalog.UCUM,
                        "code": "mm[Hg]",
                    },
                },
                {
                    "code": measures.VITALS["dia"].concept,
                    "valueQuantity": {
                        "value": int(dia),
                        "unit": "mmHg",
                        "system": catalog.UCUM,
                        "code": "mm[Hg]",
                    },
                },
            ]
            self.out.append(obs)
        hr = (135 - 8 * age if age < 6 else 78) + rng.gauss(0, 8) + (12 if fever else 0)
        self._vital("hr", hr, enc_ref, when)
        if fever:
            self._vital("temp", rng.uniform(37.8, 39.6), enc_ref, when)
        height = _height_cm(age, p.female, self.adult_height)
        bmi = self.bmi if age >= 17 else 15.5 + rng.gauss(0, 1.2) + (age > 10) * 1.5
        bmi += (2.5 if "E11.9" in codes else 0.0) + rng.gauss(0, 0.4)
        weight = bmi * (height / 100) ** 2
        self._vital("weight", weight, enc_ref, when)
        if not self.measured_height or age < 17:
            self.measured_height = True
            self._vital("height", height, enc_ref, when)
            self._vital("bmi", weight / (height / 100) ** 2, enc_ref, when)

    def lab(self, key: str, enc_ref: dict[str, str], when: str, codes: set[str]) -> None:
        rng = self.rng
        lab = measures.LABS[key]
        mean, sd = lab.normal
        if key == "hemoglobin" and self.p.female:
            mean -= 1.2
        for code in codes:
            if (key, code) in measures.LAB_ABNORMAL:
                mean, sd = measures.LAB_ABNORMAL[key, code]
                break
        value = max(rng.gauss(mean, sd), mean / 4)
        value = round(value, lab.decimals) if lab.decimals else round(value)
        obs = self._obs(_LAB_CAT, lab.concept, enc_ref, when)
        obs["valueQuantity"] = {"value": value, "unit": lab.unit, "system": catalog.UCUM, "code": lab.code}
        flag = (
            "H"
            if lab.high is not None and value > lab.high
            else "L"
            if lab.low is not None and value < lab.low
            else "N"
        )
        obs["interpretation"] = INTERPRETATION[flag]
        rr: Resource = {}
        if lab.low is not None:
            rr["low"] = {"value": lab.low, "unit": lab.unit, "system": catalog.UCUM, "code": lab.code}
        if lab.high is not None:
            rr["high"] = {"value": lab.high, "unit": lab.unit, "system": catalog.UCUM, "code": lab.code}
        obs["referenceRange"] = [rr]
        self.out.append(obs)

    # -- medications -----------------------------------------------------------------------------------
    def prescribe(
        self,
        key: str,
        enc_ref: dict[str, str],
        when: str,
        doctor: str,
        reason: dict[str, str],
        day: date,
        fac: Facility,
        inpatient: bool,
    ) -> None:
        med = catalog.MEDS[key]
        # Who gives it (VN Core wants a performer): a nurse in hospital or for an injection, else the
        # patient (or the child's parent) at home.
        if inpatient or med.injected:
            performer = {"reference": f"Practitioner/{self.rng.choice(fac.nurses)}"}
        else:
            performer = self.patient_ref
        dose = med.dose
        if self.age_now < 12 and key in catalog.CHILD_DOSE:
            dose = catalog.CHILD_DOSE[key]
        text = med.text if dose == med.dose else med.text.replace(f"{med.dose:g} {med.unit}", f"{dose:g} {med.unit}")
        dosage: Resource = {
            "text": text,
            "timing": {"repeat": {"frequency": med.per_day, "period": 1, "periodUnit": "d"}},
        }
        if med.as_needed:
            dosage["asNeededBoolean"] = True
        dosage["route"] = med.route
        dosage["doseAndRate"] = [
            {"doseQuantity": {"value": dose, "unit": med.unit, "system": catalog.UCUM, "code": med.unit}}
        ]
        active = day.toordinal() + med.days >= _AS_OF_ORD
        self.out.append(
            {
                "resourceType": "MedicationRequest",
                "id": self.new_id(),
                "status": "active" if active else "completed",
                "intent": "order",
                "medicationCodeableConcept": med.concept,
                "subject": self.patient_ref,
                "encounter": enc_ref,
                "authoredOn": when,
                "requester": {"reference": f"Practitioner/{doctor}"},
                "performer": performer,
                "reasonReference": [reason],
                "dosageInstruction": [dosage],
                "dispenseRequest": {
                    "expectedSupplyDuration": {
                        "value": med.days,
                        "unit": "days",
                        "system": catalog.UCUM,
                        "code": "d",
                    }
                },
            }
        )
