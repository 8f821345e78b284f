"""Observation code tables: vital signs and laboratory tests (LOINC, UCUM units, reference ranges)."""

from __future__ import annotations

from typing import NamedTuple

from ketnoi.demo.catalog import LOINC, Json, concept


class Lab(NamedTuple):
    concept: Json
    unit: str
    code: str  # UCUM
    low: float | None
    high: float | None
    normal: tuple[float, float]  # mean, sd of a healthy value
    decimals: int


def _lab(
    loinc: str,
    display: str,
    vi: str,
    unit: str,
    ucum: str,
    low: float | None,
    high: float | None,
    normal: tuple[float, float],
    decimals: int = 1,
) -> Lab:
    return Lab(concept(LOINC, loinc, display, vi), unit, ucum, low, high, normal, decimals)


LABS: dict[str, Lab] = {
    "glucose": _lab(
        "2345-7",
        "Glucose [Mass/volume] in Serum or Plasma",
        "Glucose máu",
        "mg/dL",
        "mg/dL",
        70,
        100,
        (88, 8),
        0,
    ),
    "hba1c": _lab("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "HbA1c", "%", "%", 4.0, 5.6, (5.2, 0.3)),
    "cholesterol": _lab(
        "2093-3",
        "Cholesterol [Mass/volume] in Serum or Plasma",
        "Cholesterol toàn phần",
        "mg/dL",
        "mg/dL",
        None,
        200,
        (180, 25),
        0,
    ),
    "creatinine": _lab(
        "2160-0",
        "Creatinine [Mass/volume] in Serum or Plasma",
        "Creatinin máu",
        "mg/dL",
        "mg/dL",
        0.6,
        1.2,
        (0.9, 0.15),
        2,
    ),
    "alt": _lab(
        "1742-6",
        "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "ALT (GPT)",
        "U/L",
        "U/L",
        0,
        40,
        (24, 8),
        0,
    ),
    "hemoglobin": _lab(
        "718-7",
        "Hemoglobin [Mass/volume] in Blood",
        "Huyết sắc tố (Hb)",
        "g/dL",
        "g/dL",
        12.0,
        17.0,
        (13.8, 1.1),
    ),
    "wbc": _lab(
        "6690-2",
        "Leukocytes [#/volume] in Blood by Automated count",
        "Số lượng bạch cầu",
        "10*3/uL",
        "10*3/uL",
        4.0,
        10.0,
        (7.0, 1.5),
    ),
    "platelets": _lab(
        "777-3",
        "Platelets [#/volume] in Blood by Automated count",
        "Số lượng tiểu cầu",
        "10*3/uL",
        "10*3/uL",
        150,
        450,
        (260, 50),
        0,
    ),
}
# Abnormal value (mean, sd) for a lab when the patient has one of these conditions.
LAB_ABNORMAL: dict[tuple[str, str], tuple[float, float]] = {
    ("glucose", "E11.9"): (165, 35),
    ("hba1c", "E11.9"): (7.6, 1.0),
    ("cholesterol", "E78.5"): (245, 25),
    ("creatinine", "N18.9"): (2.2, 0.6),
    ("alt", "B18.1"): (62, 25),
    ("wbc", "J18.9"): (14.5, 2.5),
    ("wbc", "K35.8"): (15.0, 2.5),
    ("platelets", "A90"): (95, 30),
    ("platelets", "A91"): (45, 20),
    ("hemoglobin", "O80"): (11.4, 1.0),
}


class Vital(NamedTuple):
    concept: Json
    unit: str
    code: str


def _vital(loinc: str, display: str, vi: str, unit: str, ucum: str) -> Vital:
    return Vital(concept(LOINC, loinc, display, vi), unit, ucum)


VITALS: dict[str, Vital] = {
    "bp": _vital("85354-9", "Blood pressure panel with all children optional", "Huyết áp", "mmHg", "mm[Hg]"),
    "sys": _vital("8480-6", "Systolic blood pressure", "Huyết áp tâm thu", "mmHg", "mm[Hg]"),
    "dia": _vital("8462-4", "Diastolic blood pressure", "Huyết áp tâm trương", "mmHg", "mm[Hg]"),
    "hr": _vital("8867-4", "Heart rate", "Mạch", "/min", "/min"),
    "temp": _vital("8310-5", "Body temperature", "Nhiệt độ", "Cel", "Cel"),
    "weight": _vital("29463-7", "Body weight", "Cân nặng", "kg", "kg"),
    "height": _vital("8302-2", "Body height", "Chiều cao", "cm", "cm"),
    "bmi": _vital("39156-5", "Body mass index (BMI) [Ratio]", "Chỉ số khối cơ thể (BMI)", "kg/m2", "kg/m2"),
}
