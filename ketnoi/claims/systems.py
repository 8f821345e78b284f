"""The names the claims mapping writes: identifier systems, code systems, extensions, stable ids.

VN Core's systems where it has one (CCCD, BHYT card, facility code: ``ketnoi.vn.identifier_rules``);
ketnoi's own, under ``https://fhir.ketnoi.vn/``, for the claims XML's business keys and code lists.
A facility's own numbers (MA_BN, MA_LK, MA_HSBA) are unique only at that facility, so their system
ends with the facility code: the same patient number at two hospitals is two identifiers.
"""

from __future__ import annotations

import uuid
from typing import Final

from ketnoi.vn.identifier_rules import BHYT_SYSTEM, CCCD_SYSTEM, CMND_SYSTEM, FACILITY_SYSTEM, LICENCE_SYSTEM

__all__ = ["BHYT_SYSTEM", "CCCD_SYSTEM", "CMND_SYSTEM", "FACILITY_SYSTEM", "LICENCE_SYSTEM"]

SID: Final = "https://fhir.ketnoi.vn/sid/"
CS: Final = "https://fhir.ketnoi.vn/CodeSystem/"
EXT: Final = "https://fhir.ketnoi.vn/StructureDefinition/"
VN_CORE: Final = "http://fhir.ehealth.gov.vn/core/"

MRN: Final = VN_CORE + "sid/MRN"  # VN Core: medical-record number (MA_HSBA)
PASSPORT_SYSTEM: Final = SID + "passport"
ORG_SYSTEM: Final = SID + "org"  # organizations without a facility code (BHXH Việt Nam)
ICD10: Final = "http://hl7.org/fhir/sid/icd-10"
ICD9CM: Final = "http://hl7.org/fhir/sid/icd-9-cm"
UCUM: Final = "http://unitsofmeasure.org"
# The Ministry's common code lists the claims XML cites (QĐ 7603, QĐ 5937, ...): ketnoi names them; the
# codes are the Ministry's, kept as written.
DRUG_CODE: Final = CS + "byt-ma-thuoc"  # MA_THUOC, active-ingredient codes
SERVICE_CODE: Final = CS + "byt-ma-dich-vu"  # MA_DICH_VU, technical services
SUPPLY_CODE: Final = CS + "byt-ma-vat-tu"  # MA_VAT_TU, medical supplies
TEST_CODE: Final = CS + "byt-ma-chi-so"  # MA_CHI_SO, test items (QĐ 7603 App. 11)
ROUTE_CODE: Final = CS + "byt-duong-dung"  # DUONG_DUNG
DEPARTMENT_CODE: Final = CS + "byt-ma-khoa"  # MA_KHOA (QĐ 5937 App. 5)
YHCT_CODE: Final = CS + "byt-ma-benh-yhct"  # traditional-medicine disease codes
COST_GROUP: Final = CS + "xml130-ma-nhom"  # MA_NHOM (QĐ 5937 App. 3)
AMOUNT_KIND: Final = CS + "xml130-amount"  # the amount fields: T_BHTT, T_BNCCT, ...
NATIONALITY_CODE: Final = CS + "bca-quoc-tich"  # MA_QUOCTICH (TT 07/2016/TT-BCA App. 2)
OCCUPATION_CODE: Final = CS + "nghe-nghiep"  # MA_NGHE_NGHIEP (QĐ 34/2020/QĐ-TTg)
LOAI_KCB: Final = CS + "xml130-ma-loai-kcb"
DOITUONG_KCB: Final = CS + "xml130-ma-doituong-kcb"
KET_QUA_DTRI: Final = CS + "xml130-ket-qua-dtri"
LOAI_RV: Final = CS + "xml130-ma-loai-rv"
PHAM_VI: Final = CS + "xml130-pham-vi"
MA_PTTT: Final = CS + "xml130-ma-pttt"
PP_VO_CAM: Final = CS + "xml130-pp-vo-cam"
NGUON_CTRA: Final = CS + "xml130-nguon-ctra"

ETHNICITY_URL: Final = VN_CORE + "StructureDefinition/extension-race"
ETHNICITY_SYSTEM: Final = VN_CORE + "CodeSystem/vn-core-race"
ADMIN_ADDRESS_URL: Final = VN_CORE + "StructureDefinition/extension-administrative-address"
ADMIN_2025: Final = CS + "vn-admin-unit-2025"
ADMIN_LEGACY: Final = CS + "vn-admin-unit-legacy"
NATIONALITY_URL: Final = "http://hl7.org/fhir/StructureDefinition/patient-nationality"
OCCUPATION_URL: Final = EXT + "occupation"
AMOUNT_URL: Final = EXT + "xml130-amount"  # complex: kind (Coding) + amount (Money)
LINE_URL: Final = EXT + "xml130-line"  # complex: the fields of a line no FHIR element holds
SOURCE_URL: Final = EXT + "xml130-source"  # valueString: the facility and MA_LK a resource came from

VISIT_TAG: Final = CS + "xml130-visit"  # meta.tag code "<MACSKCB>/<MA_LK>": every resource of a visit


def patient_system(facility: str) -> str:
    return f"{SID}ma-bn/{facility}"


def visit_system(facility: str) -> str:
    return f"{SID}ma-lk/{facility}"


def line_system(facility: str) -> str:
    """A line of a visit's table: value ``<MA_LK>/<table>/<STT>[/<part>]``."""
    return f"{SID}xml130-line/{facility}"


_NAMESPACE: Final = uuid.UUID("6b3c2f8e-1d0a-5e4b-9c7d-6b6574303133")


def stable_id(system: str, value: str) -> str:
    """The resource id of a business identifier: the same identifier always gives the same id, so a
    re-imported visit updates its resources in place instead of adding copies."""
    return str(uuid.uuid5(_NAMESPACE, f"{system}|{value}"))
