"""Build ketnoi's own FHIR package, ``ketnoi.fhir.vn`` 0.1.0: what VN Core lacks for ketnoi's data.

    .venv/bin/python scripts/build_ketnoi_package.py [--out DIR]

The resources are defined below, in Python; there is no other source. Their code tables are imported
from the modules ketnoi's identifier rules and demo generator use (``ketnoi.vn.identifier_rules``,
``ketnoi.demo.ids``), so the package cannot drift from them:

* StructureDefinition ``ketnoi-coverage-bhyt``: a Vietnamese health-insurance (BHYT) card as Coverage,
  shaped as ketnoi's demo generator writes it (a differential only), with the invariant
  ``ketnoi-bhyt-1`` (the card's benefit level is the benefit-level class).
* NamingSystems for ketnoi's identifier systems that VN Core has none for: the social-insurance number
  (``BHXH_SYSTEM``) and the practising licence (``LICENCE_SYSTEM``).
* CodeSystem and ValueSet ``bhyt-category`` (beneficiary categories) and ``bhyt-benefit-level``.
* The ImplementationGuide ``ketnoi.fhir.vn``, which depends on VN Core (``hl7.fhir.vn.core`` 1.0.0).

The build checks the package with ``build_vn_core.check`` (ids, unique URLs, references that resolve,
structural validation) and ``ketnoi.validation.validate(..., invariants=True)``, checks it against the
VN Core package ketnoi ships (the references into VN Core resolve there, the NamingSystems added here
are still missing there), evaluates ``ketnoi-bhyt-1`` with fhirpathpy on demo Coverages (true) and on
the same with another benefit level (false), and writes nothing when any check fails. The archive
``<packageId>-<version>.tgz`` is made by ``build_vn_core.package_files`` and ``build_vn_core.tgz``, so it
is reproducible byte for byte as VN Core's is. Why each resource exists: docs/ketnoi-package.md.
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
from pathlib import Path
from typing import Any

from fhirpathpy import evaluate

from ketnoi.demo import ids, people
from ketnoi.fhir import packages
from ketnoi.validation import validate
from ketnoi.vn.identifier_rules import BHXH_SYSTEM, BHYT_CATEGORIES, BHYT_LEVELS, BHYT_SYSTEM, LICENCE_SYSTEM

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path (the tests)

from build_vn_core import CORE_PACKAGE, BuildError, _canonicals, check, package_files, tgz

Resource = dict[str, Any]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "ketnoi" / "fhir" / "packages"
PACKAGE_ID = "ketnoi.fhir.vn"
VERSION = "0.1.0"
CANONICAL = "https://fhir.ketnoi.vn"
PUBLISHER = "ketnoi"
DATE = "2026-12-01"  # fixed, so that a rebuild gives the same bytes; change it with VERSION
VN_CORE = ("hl7.fhir.vn.core", "1.0.0")
VN_CORE_BASE = "http://fhir.ehealth.gov.vn/core/"
VN_CORE_PATIENT = VN_CORE_BASE + "StructureDefinition/vn-core-patient"

_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
_CORE_SD = "http://hl7.org/fhir/StructureDefinition/"
_JURISDICTION = [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "VN", "display": "Viet Nam"}]}]
_STATE_DOCUMENTS = "văn bản hành chính không thuộc đối tượng bảo hộ quyền tác giả (Điều 15 Luật Sở hữu trí tuệ)"


def url(resource_type: str, resource_id: str) -> str:
    """The canonical URL of one of this package's resources."""
    return f"{CANONICAL}/{resource_type}/{resource_id}"


CATEGORY_CS = url("CodeSystem", "bhyt-category")
CATEGORY_VS = url("ValueSet", "bhyt-category")
LEVEL_CS = url("CodeSystem", "bhyt-benefit-level")
LEVEL_VS = url("ValueSet", "bhyt-benefit-level")
COVERAGE_PROFILE = url("StructureDefinition", "ketnoi-coverage-bhyt")


def _header(resource_type: str, resource_id: str, name: str, title: str, description: str) -> Resource:
    """The metadata the canonical resources of the package share, in FHIR JSON's element order."""
    return {
        "resourceType": resource_type,
        "id": resource_id,
        "language": "vi",
        "url": url(resource_type, resource_id),
        "version": VERSION,
        "name": name,
        "title": title,
        "status": "draft",
        "experimental": False,
        "date": DATE,
        "publisher": PUBLISHER,
        "description": description,
        "jurisdiction": _JURISDICTION,
    }


def _bilingual(vi: str, en: str) -> str:
    """A description: Vietnamese first, English beside it."""
    return f"{vi}\n\nEnglish: {en}"


def _coding_pattern(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


# --- (a) the BHYT card as Coverage ----------------------------------------------------------------

# Character 3 of the card number (0-based substring 2) against the value of the benefit-level class;
# each side guarded, so that the rule is true or false, never empty, when a part is absent.
_CARD = f"identifier.where(system = '{BHYT_SYSTEM}').value"
_LEVEL = f"class.where(type.coding.where(system = '{_COVERAGE_CLASS}' and code = 'class').exists()).value"
BENEFIT_LEVEL_RULE = f"{_CARD}.exists().not() or {_LEVEL}.exists().not() or {_CARD}.substring(2, 1) = {_LEVEL}"


def _element(path: str, slice_name: str | None = None, parent: str | None = None, **facets: Any) -> dict[str, Any]:
    """A differential element: ``slice_name`` makes it a slice; ``parent`` is the id of the slice it
    lies under (``Coverage.class:category`` for ``Coverage.class.type``)."""
    if slice_name is not None:
        elem_id = f"{path}:{slice_name}"
    elif parent is not None:
        elem_id = parent + path.removeprefix(parent.partition(":")[0])
    else:
        elem_id = path
    element: dict[str, Any] = {"id": elem_id, "path": path}
    if slice_name is not None:
        element["sliceName"] = slice_name
    element.update(facets)
    return element


def _class_slice(name: str, code: str, short: str, value_short: str, value_set: str) -> list[dict[str, Any]]:
    """A slice of Coverage.class by its type (coverage-class ``code``), with a required value."""
    slice_id = f"Coverage.class:{name}"
    return [
        _element("Coverage.class", name, short=short, min=1, max="1"),
        _element("Coverage.class.type", parent=slice_id, patternCodeableConcept=_coding_pattern(_COVERAGE_CLASS, code)),
        _element(
            "Coverage.class.value",
            parent=slice_id,
            short=value_short,
            min=1,
            binding={"strength": "required", "valueSet": value_set},
        ),
    ]


def coverage_profile() -> Resource:
    """StructureDefinition ketnoi-coverage-bhyt: the BHYT card as ketnoi.demo's coverage_resource writes it."""
    sd = _header(
        "StructureDefinition",
        "ketnoi-coverage-bhyt",
        "KetnoiCoverageBhyt",
        "Thẻ bảo hiểm y tế (BHYT)",
        _bilingual(
            "Thẻ bảo hiểm y tế (BHYT) của người bệnh biểu diễn bằng Coverage: mã thẻ 15 ký tự (hệ định danh "
            "insurance_number của VN Core), loại bảo hiểm công (PUBLICPOL), thời hạn sử dụng, cơ quan bảo "
            "hiểm xã hội chi trả, mã đối tượng (class 'plan') và mức hưởng (class 'class'), nơi đăng ký khám "
            "chữa bệnh ban đầu (network). Ràng buộc ketnoi-bhyt-1: ký tự thứ 3 của mã thẻ là mức hưởng. "
            "VN Core chưa có profile cho Coverage.",
            "A Vietnamese health-insurance (BHYT) card as Coverage: the 15-character card number (VN Core's "
            "insurance_number identifier system), public-policy coverage (PUBLICPOL), the validity period, "
            "the paying social-insurance office, the beneficiary category (class 'plan') and the benefit "
            "level (class 'class'), and the registered primary-care facility (network). Invariant "
            "ketnoi-bhyt-1: character 3 of the card number is the benefit level. VN Core has no Coverage "
            "profile.",
        ),
    )
    elements = [
        _element(
            "Coverage",
            short="Thẻ BHYT (BHYT card)",
            constraint=[
                {
                    "key": "ketnoi-bhyt-1",
                    "requirements": "QĐ 1351/QĐ-BHXH: ký tự thứ 3 của mã thẻ BHYT là mức hưởng (mã quyền lợi)",
                    "severity": "error",
                    "human": "The card's benefit level (character 3 of the BHYT number) must equal the "
                    "benefitLevel class value",
                    "expression": BENEFIT_LEVEL_RULE,
                    "source": COVERAGE_PROFILE,
                }
            ],
        ),
        _element(
            "Coverage.identifier",
            slicing={"discriminator": [{"type": "value", "path": "system"}], "rules": "open"},
            min=1,
        ),
        _element("Coverage.identifier", "bhyt", short="Mã thẻ BHYT (BHYT card number)", min=1, max="1"),
        _element("Coverage.identifier.system", parent="Coverage.identifier:bhyt", min=1, fixedUri=BHYT_SYSTEM),
        _element(
            "Coverage.identifier.value",
            parent="Coverage.identifier:bhyt",
            short="Mã thẻ 15 ký tự, ví dụ HS4010159778857 (15-character card number)",
            min=1,
        ),
        _element("Coverage.status"),
        _element(
            "Coverage.type",
            short="Bảo hiểm y tế: chính sách công (public healthcare policy)",
            min=1,
            patternCodeableConcept=_coding_pattern(_ACT_CODE, "PUBLICPOL"),
        ),
        _element("Coverage.subscriberId", short="Mã thẻ BHYT, như in trên thẻ (the card number)", min=1),
        _element(
            "Coverage.beneficiary",
            type=[{"code": "Reference", "targetProfile": [_CORE_SD + "Patient", VN_CORE_PATIENT]}],
        ),
        _element("Coverage.period", short="Thời hạn sử dụng thẻ (card validity)", min=1),
        _element("Coverage.period.start", short="Giá trị sử dụng từ ngày (valid from)", min=1),
        _element("Coverage.period.end", short="Giá trị sử dụng đến ngày (valid to)", min=1),
        _element(
            "Coverage.payor",
            short="Cơ quan bảo hiểm xã hội (the social-insurance office)",
            max="1",
            type=[{"code": "Reference", "targetProfile": [_CORE_SD + "Organization"]}],
        ),
        _element(
            "Coverage.class",
            slicing={"discriminator": [{"type": "pattern", "path": "type"}], "rules": "open"},
            min=2,
        ),
        *_class_slice(
            "category",
            "plan",
            "Mã đối tượng (beneficiary category)",
            "Ký tự 1-2 của mã thẻ (characters 1-2 of the card number)",
            CATEGORY_VS,
        ),
        *_class_slice(
            "benefitLevel",
            "class",
            "Mức hưởng (benefit level)",
            "Ký tự 3 của mã thẻ, 1-5 (character 3 of the card number)",
            LEVEL_VS,
        ),
        _element(
            "Coverage.network",
            short="Mã cơ sở đăng ký KCB ban đầu (the registered primary-care facility code, KCB ban đầu)",
        ),
    ]
    sd.update(
        {
            "fhirVersion": CORE_PACKAGE[1],
            "kind": "resource",
            "abstract": False,
            "type": "Coverage",
            "baseDefinition": _CORE_SD + "Coverage",
            "derivation": "constraint",
            "differential": {"element": elements},
        }
    )
    return sd


# --- (b) identifier systems VN Core has no NamingSystem for ------------------------------------------


def _naming_system(
    resource_id: str, name: str, system: str, type_code: str, type_display: str, vi: str, en: str
) -> Resource:
    """An identifier NamingSystem (R4's has no url, version, title or experimental)."""
    return {
        "resourceType": "NamingSystem",
        "id": resource_id,
        "language": "vi",
        "name": name,
        "status": "draft",
        "kind": "identifier",
        "date": DATE,
        "publisher": PUBLISHER,
        "responsible": PUBLISHER,
        "type": {"coding": [{"system": _V2_0203, "code": type_code, "display": type_display}]},
        "description": _bilingual(vi, en),
        "jurisdiction": _JURISDICTION,
        "uniqueId": [{"type": "uri", "value": system, "preferred": True}],
    }


def naming_systems() -> list[Resource]:
    return [
        _naming_system(
            "social-insurance-number",
            "KetnoiSocialInsuranceNumber",
            BHXH_SYSTEM,
            "SS",
            "Social Security number",
            "Mã số bảo hiểm xã hội (mã số BHXH): 10 chữ số, cũng là 10 ký tự cuối của mã thẻ BHYT; trường "
            "MA_BHXH của QĐ 4750/QĐ-BYT. Hệ định danh của ketnoi: VN Core chưa có NamingSystem cho mã số "
            "BHXH.",
            "The social-insurance number (mã số BHXH): 10 digits, also the last 10 characters of the BHYT "
            "card number; field MA_BHXH of QĐ 4750/QĐ-BYT. ketnoi's own system: VN Core has no NamingSystem "
            "for it.",
        ),
        _naming_system(
            "practising-licence",
            "KetnoiPractisingLicence",
            LICENCE_SYSTEM,
            "MD",
            "Medical License number",
            "Số chứng chỉ hành nghề / giấy phép hành nghề khám bệnh, chữa bệnh của người hành nghề (ví dụ "
            "000123/HNO-CCHN; mã nơi cấp là một phần của số). Hệ định danh của ketnoi: các NamingSystem giấy "
            "phép của VN Core là của cơ sở khám, chữa bệnh, không phải của người hành nghề.",
            "A practitioner's practising licence number (chứng chỉ hành nghề / giấy phép hành nghề, e.g. "
            "000123/HNO-CCHN; the issuer's code is part of the number). ketnoi's own system: VN Core's "
            "licence NamingSystems are those of facilities, not of practitioners.",
        ),
    ]


# --- (c), (d) the code systems and value sets of the card --------------------------------------------


def category_code_system() -> Resource:
    """Every beneficiary category of ketnoi.vn.identifier_rules.BHYT_CATEGORIES, in the table's order."""
    cs = _header(
        "CodeSystem",
        "bhyt-category",
        "BhytCategory",
        "Mã đối tượng tham gia bảo hiểm y tế",
        _bilingual(
            "Mã đối tượng (ký tự 1-2 của mã thẻ BHYT), theo danh mục kèm QĐ 1351/QĐ-BHXH (16/11/2015) như các "
            "nguồn thứ cấp chép lại; thuộc tính 'group' là nhóm đóng BHYT (Luật BHYT Điều 12), 'benefit-level' "
            "là mức hưởng thường gặp của đối tượng (chỉ để tham khảo). Sinh từ ketnoi.vn.identifier_rules."
            "BHYT_CATEGORIES (docs/vn-identifiers.md). Không có tên tiếng Anh: danh mục không cho.",
            "The beneficiary categories (characters 1-2 of a BHYT card number), from the code list annexed "
            "to QĐ 1351/QĐ-BHXH as reproduced by secondary sources; property 'group' is the contribution "
            "group (Law on Health Insurance Art. 12), 'benefit-level' the level the category usually "
            "carries (informative only). Generated from ketnoi.vn.identifier_rules.BHYT_CATEGORIES "
            "(docs/vn-identifiers.md). No English names: the code list gives none.",
        ),
    )
    concepts = []
    for category in BHYT_CATEGORIES.values():
        properties: list[dict[str, Any]] = [{"code": "group", "valueInteger": category.group}]
        if category.level is not None:
            properties.append({"code": "benefit-level", "valueCode": str(category.level)})
        concepts.append({"code": category.code, "display": category.name, "property": properties})
    cs.update(
        {
            "copyright": f"Danh mục của Bảo hiểm xã hội Việt Nam (QĐ 1351/QĐ-BHXH); {_STATE_DOCUMENTS}.",
            "caseSensitive": True,
            "valueSet": CATEGORY_VS,
            "content": "complete",
            "count": len(concepts),
            "property": [
                {
                    "code": "group",
                    "uri": f"{CATEGORY_CS}#group",
                    "description": "Nhóm đóng BHYT 1-5, Luật BHYT Điều 12 (contribution group 1-5)",
                    "type": "integer",
                },
                {
                    "code": "benefit-level",
                    "uri": f"{CATEGORY_CS}#benefit-level",
                    "description": "Mức hưởng thường gặp, một mã của " + LEVEL_CS + " (usual benefit level)",
                    "type": "code",
                },
            ],
            "concept": concepts,
        }
    )
    return cs


def benefit_levels() -> dict[int, int]:
    """Benefit level → percentage paid (ketnoi.demo.ids.BENEFIT_PERCENT), checked against the level
    texts of ketnoi.vn.identifier_rules.BHYT_LEVELS, which name the same percentages."""
    if sorted(ids.BENEFIT_PERCENT) != sorted(BHYT_LEVELS):
        raise BuildError(f"benefit levels differ: demo {sorted(ids.BENEFIT_PERCENT)}, rules {sorted(BHYT_LEVELS)}")
    for level, percent in ids.BENEFIT_PERCENT.items():
        if not BHYT_LEVELS[level].startswith(f"{percent}%"):
            raise BuildError(f"benefit level {level}: {percent}% in the demo, {BHYT_LEVELS[level]!r} in the rules")
    return dict(sorted(ids.BENEFIT_PERCENT.items()))


def level_display(level: int, percent: int) -> str:
    """The display ketnoi.demo's coverage_resource gives the benefit-level class too."""
    return f"Mức hưởng {level} ({percent}%)"


def level_code_system() -> Resource:
    cs = _header(
        "CodeSystem",
        "bhyt-benefit-level",
        "BhytBenefitLevel",
        "Mức hưởng bảo hiểm y tế",
        _bilingual(
            "Mức hưởng (mã quyền lợi, ký tự 3 của mã thẻ BHYT) theo QĐ 1351/QĐ-BHXH; tỷ lệ chi trả theo Luật "
            "BHYT Điều 22 (nguồn thứ cấp). Sinh từ ketnoi.vn.identifier_rules.BHYT_LEVELS và "
            "ketnoi.demo.ids.BENEFIT_PERCENT.",
            "The benefit level (character 3 of a BHYT card number) of QĐ 1351/QĐ-BHXH; the share paid follows "
            "the Law on Health Insurance Art. 22 (secondary sources). Generated from "
            "ketnoi.vn.identifier_rules.BHYT_LEVELS and ketnoi.demo.ids.BENEFIT_PERCENT.",
        ),
    )
    concepts = [
        {
            "code": str(level),
            "display": level_display(level, percent),
            "definition": BHYT_LEVELS[level],
            "designation": [{"language": "en", "value": f"Benefit level {level} ({percent}%)"}],
        }
        for level, percent in benefit_levels().items()
    ]
    cs.update(
        {
            "copyright": f"Danh mục của Bảo hiểm xã hội Việt Nam (QĐ 1351/QĐ-BHXH); {_STATE_DOCUMENTS}.",
            "caseSensitive": True,
            "valueSet": LEVEL_VS,
            "content": "complete",
            "count": len(concepts),
            "concept": concepts,
        }
    )
    return cs


def _whole_system(code_system: Resource, name: str, title: str, vi: str, en: str) -> Resource:
    vs = _header("ValueSet", code_system["id"], name, title, _bilingual(vi, en))
    vs["immutable"] = False
    vs["compose"] = {"include": [{"system": code_system["url"]}]}
    return vs


def value_sets() -> list[Resource]:
    return [
        _whole_system(
            category_code_system(),
            "BhytCategory",
            "Mã đối tượng tham gia bảo hiểm y tế",
            "Mọi mã đối tượng của CodeSystem bhyt-category; ràng buộc (required) cho Coverage.class:category."
            "value của profile ketnoi-coverage-bhyt.",
            "Every code of the bhyt-category CodeSystem; the required binding of Coverage.class:category.value "
            "in the ketnoi-coverage-bhyt profile.",
        ),
        _whole_system(
            level_code_system(),
            "BhytBenefitLevel",
            "Mức hưởng bảo hiểm y tế",
            "Mọi mức hưởng của CodeSystem bhyt-benefit-level; ràng buộc (required) cho Coverage.class:"
            "benefitLevel.value của profile ketnoi-coverage-bhyt.",
            "Every level of the bhyt-benefit-level CodeSystem; the required binding of "
            "Coverage.class:benefitLevel.value in the ketnoi-coverage-bhyt profile.",
        ),
    ]


# --- (e) the guide -------------------------------------------------------------------------------------


def guide(others: list[Resource]) -> Resource:
    """The ImplementationGuide: package id, license, the VN Core dependency, one entry per resource."""
    ig = _header(
        "ImplementationGuide",
        PACKAGE_ID,
        "KetnoiFhirVn",
        "Gói FHIR của ketnoi, bổ sung cho VN Core",
        _bilingual(
            "Các tài nguyên FHIR R4 mà dữ liệu của ketnoi cần và VN Core (hl7.fhir.vn.core 1.0.0, dự thảo) "
            "chưa có: profile thẻ BHYT (Coverage), danh mục mã đối tượng và mức hưởng BHYT, NamingSystem "
            "cho mã số BHXH và số chứng chỉ hành nghề. Dựng bằng scripts/build_ketnoi_package.py.",
            "The FHIR R4 resources ketnoi's data needs and VN Core (hl7.fhir.vn.core 1.0.0, draft) lacks: "
            "a BHYT card profile (Coverage), the BHYT beneficiary categories and benefit levels, "
            "NamingSystems for the social-insurance number and the practising licence. Built by "
            "scripts/build_ketnoi_package.py.",
        ),
    )
    ig.update(
        {
            "packageId": PACKAGE_ID,
            "license": "CC0-1.0",
            "fhirVersion": [CORE_PACKAGE[1]],
            "dependsOn": [
                {
                    "uri": f"{VN_CORE_BASE}ImplementationGuide/{VN_CORE[0]}",
                    "packageId": VN_CORE[0],
                    "version": VN_CORE[1],
                }
            ],
            "definition": {
                "resource": [
                    {
                        "reference": {"reference": f"{res['resourceType']}/{res['id']}"},
                        "name": res.get("title", res["name"]),
                        "exampleBoolean": False,
                    }
                    for res in sorted(others, key=lambda r: (r["resourceType"], r["id"]))
                ]
            },
        }
    )
    return ig


def make_resources() -> dict[str, Resource]:
    """``<ResourceType>-<id>`` → resource, the guide last."""
    made = [coverage_profile(), *naming_systems(), category_code_system(), level_code_system(), *value_sets()]
    made.append(guide(made))
    return {f"{res['resourceType']}-{res['id']}": res for res in made}


# --- checks ------------------------------------------------------------------------------------------


def _vn_core() -> packages.ShippedPackage:
    found = packages.shipped_package(*VN_CORE)
    if found is None:
        raise BuildError(f"{VN_CORE[0]}#{VN_CORE[1]} is not shipped in ketnoi/fhir/packages")
    return found


def vn_core_problems(resources: dict[str, Resource]) -> list[str]:
    """References into VN Core that the shipped VN Core does not resolve, identifier systems added here
    that VN Core has after all, and a BHYT system that is no longer VN Core's."""
    problems: list[str] = []
    vn_core = _vn_core()
    for name, res in resources.items():
        for ref in _canonicals(res):
            if ref.startswith(VN_CORE_BASE):
                found = packages.find_package(ref[len(VN_CORE_BASE) :].partition("/")[0], ref)
                if found is None or found[0].name != vn_core.name:
                    problems.append(f"{name}: {ref} is not in {vn_core.label}")
    systems = {
        unique["value"]
        for res in vn_core.resources
        if res.get("resourceType") == "NamingSystem"
        for unique in res.get("uniqueId", ())
    }
    if BHYT_SYSTEM not in systems:
        problems.append(f"{BHYT_SYSTEM} (the BHYT card system) has no NamingSystem in {vn_core.label}")
    for name, res in resources.items():
        if res["resourceType"] == "NamingSystem":
            problems.extend(
                f"{name}: {vn_core.label} has a NamingSystem for {unique['value']}: drop this one"
                for unique in res["uniqueId"]
                if unique["value"] in systems
            )
    return problems


def invariant_problems(resources: dict[str, Resource]) -> list[str]:
    """Errors of ketnoi's validation with the invariants on (build_vn_core.check runs it without)."""
    return [
        f"{name}: {issue.text}"
        for name, res in resources.items()
        for issue in validate(res, invariants=True)
        if issue.severity in ("error", "fatal")
    ]


def demo_coverages(count: int = 12, seed: int = 0) -> list[Resource]:
    """The Coverages ketnoi.demo writes for the first ``count`` insured people drawn with ``seed``."""
    rng = random.Random(seed)
    found: list[Resource] = []
    n = 0
    while len(found) < count:
        person = people.draw_person(rng, f"p{n}")
        n += 1
        if person.bhyt:
            found.append(people.coverage_resource(f"c{n}", person, f"Patient/p{n}", "bhxh-office", "01001"))
    return found


def rule_problems(resources: dict[str, Resource]) -> list[str]:
    """ketnoi-bhyt-1 evaluated with fhirpathpy: true on demo Coverages, false with another benefit level."""
    profile = resources["StructureDefinition-ketnoi-coverage-bhyt"]
    (rule,) = (c for e in profile["differential"]["element"] for c in e.get("constraint", ()))
    problems = []
    for coverage in demo_coverages():
        wrong = copy.deepcopy(coverage)
        level = next(c for c in wrong["class"] if c["type"]["coding"][0]["code"] == "class")
        level["value"] = "5" if level["value"] != "5" else "4"
        card = coverage["identifier"][0]["value"]
        cases = ((coverage, True, f"card {card}"), (wrong, False, f"card {card}, benefit-level class {level['value']}"))
        for sample, expected, label in cases:
            try:
                got = evaluate(sample, rule["expression"], {})
            except Exception as exc:  # fhirpathpy raises what its parser meets (KeyError, ValueError...)
                return [f"{rule['key']}: fhirpathpy cannot evaluate {rule['expression']!r}: {exc!r}"]
            if got != [expected]:
                problems.append(f"{rule['key']} gives {got} instead of [{expected}] on the demo Coverage of {label}")
    return problems


def problems_of(resources: dict[str, Resource]) -> list[str]:
    """Everything that keeps the package from being written (none: it can be)."""
    found = [
        *check(resources),
        *invariant_problems(resources),
        *vn_core_problems(resources),
        *rule_problems(resources),
    ]
    return list(dict.fromkeys(found))


# --- the package ---------------------------------------------------------------------------------------


def build(out: Path) -> Path:
    """Define, check and write the package; returns the path of the .tgz (nothing written on a problem)."""
    resources = make_resources()
    problems = problems_of(resources)
    if problems:
        raise BuildError("the package is not valid:\n  " + "\n  ".join(problems))
    files = package_files(resources)
    target = out / f"{PACKAGE_ID}-{VERSION}.tgz"
    out.mkdir(parents=True, exist_ok=True)
    target.write_bytes(tgz(files))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the .tgz")
    args = parser.parse_args(argv)
    try:
        target = build(args.out)
    except BuildError as exc:
        sys.stderr.write(f"build_ketnoi_package: {exc}\n")
        return 1
    sys.stdout.write(f"{target}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
