"""The measurements the clinician's observation form offers (issue 15), in one table: the vital signs,
the blood pressure panel and the common laboratory tests, each with its LOINC code, its UCUM unit and
the limits a living patient's value stays within (a value outside is a typing mistake, not a patient).

The vital signs are the codes and units of the record's trend charts and of the XML5 import
(:data:`ketnoi.claims.progress.VITALS`). The laboratory tests are those the demo data and the XML4
claims produce most (glucose, HbA1c, creatinine, lipids, liver enzymes, blood count), in the units
Vietnamese laboratories report (mmol/L, µmol/L, g/L, G/L: the XML4 results' units), hence LOINC's
moles-per-volume codes where the demo's FHIR data use the US mass codes (docs/demo-data.md note 11).
Each carries the reference range an adult's result is read against, written into the Observation so
that the record's trend chart draws the band.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ketnoi.claims.progress import VITALS


@dataclass(frozen=True, slots=True)
class Vital:
    code: str  # LOINC
    display: str  # LOINC's display
    vi: str  # the Vietnamese name (the concept's text)
    unit: str  # UCUM
    low: float  # physiological limits
    high: float


@dataclass(frozen=True, slots=True)
class LabTest:
    code: str  # LOINC
    display: str  # LOINC's display
    vi: str  # the Vietnamese name (the concept's text)
    en: str  # a short English name for the form
    unit: str  # as Vietnamese laboratories print it (the Quantity's unit)
    ucum: str  # the Quantity's code
    low: float  # plausible limits of a result
    high: float
    normal_low: float | None  # the reference range (Observation.referenceRange)
    normal_high: float | None


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

#: The R4 vital-signs blood pressure panel (85354-9) and its two components, in mm[Hg].
BP_PANEL: Final = Vital("85354-9", "Blood pressure panel with all children optional", "Huyết áp", "mm[Hg]", 0, 0)
SYSTOLIC: Final = Vital("8480-6", "Systolic blood pressure", "Huyết áp tâm thu", "mm[Hg]", 40, 300)
DIASTOLIC: Final = Vital("8462-4", "Diastolic blood pressure", "Huyết áp tâm trương", "mm[Hg]", 20, 200)
BP_UNIT: Final = "mmHg"  # as shown and as the demo data write it (the code is UCUM's mm[Hg])

LAB_TESTS: Final = {
    lab.code: lab
    for lab in (
        LabTest("14749-6", "Glucose [Moles/volume] in Serum or Plasma", "Glucose máu", "Blood glucose",
                "mmol/L", "mmol/L", 0.5, 60, 3.9, 6.4),
        LabTest("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "HbA1c", "HbA1c (glycated haemoglobin)",
                "%", "%", 2, 25, 4.0, 6.4),
        LabTest("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "Creatinin máu", "Creatinine",
                "µmol/L", "umol/L", 5, 3000, 53, 115),
        LabTest("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "Cholesterol toàn phần",
                "Total cholesterol", "mmol/L", "mmol/L", 0.5, 30, 3.9, 5.2),
        LabTest("14927-8", "Triglyceride [Moles/volume] in Serum or Plasma", "Triglycerid", "Triglycerides",
                "mmol/L", "mmol/L", 0.1, 100, 0.46, 1.88),
        LabTest("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "ALT (GPT)",
                "ALT (alanine aminotransferase)", "U/L", "U/L", 0, 20000, None, 40),
        LabTest("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "AST (GOT)",
                "AST (aspartate aminotransferase)", "U/L", "U/L", 0, 20000, None, 37),
        LabTest("718-7", "Hemoglobin [Mass/volume] in Blood", "Huyết sắc tố (Hb)", "Haemoglobin",
                "g/L", "g/L", 20, 260, 120, 170),
        LabTest("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "Số lượng bạch cầu",
                "White blood cells", "G/L", "10*9/L", 0.1, 500, 4.0, 10.0),
        LabTest("777-3", "Platelets [#/volume] in Blood by Automated count", "Số lượng tiểu cầu", "Platelets",
                "G/L", "10*9/L", 1, 3000, 150, 450),
    )
}  # fmt: skip
