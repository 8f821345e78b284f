"""Build the VN Core FHIR package ketnoi ships from the draft Vietnam Core IG (FHIR XML).

    .venv/bin/python scripts/build_vn_core.py [IG_FOLDER] [--out DIR] [--list-fixes]

Reads ``IG_FOLDER/input/vn-core-ig.xml`` and ``IG_FOLDER/input/resources/*.xml`` (default
``../shared/vn/vn-core-ig``, from the repository root), converts each resource with
``ketnoi.fhir.xml.read_xml``, applies the corrections listed in ``TEXT_FIXES``, ``DROPS`` and
``FIXES`` (each named, with its reason and the source element it touches; a correction that no longer
finds what it corrects stops the build, so a fixed upstream draft is noticed, never silently
"re-fixed"), checks the result (ids, unique URLs, resolvable canonical references, ketnoi's structural
validation) and writes ``<packageId>-<version>.tgz`` under ``--out`` (default
``ketnoi/fhir/packages``): a standard FHIR NPM package (``package/package.json``,
``package/.index.json``, ``package/<ResourceType>-<id>.json``). The archive is byte-for-byte
reproducible: sorted entries, fixed owner and times, gzip without name or time.

Why corrections are needed and what each one changes: docs/vn-core-report.md.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import sys
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ketnoi.fhir.definitions import load
from ketnoi.fhir.xml import read_xml
from ketnoi.validation import validate

Resource = dict[str, Any]
# An edit changes one resource (the others are given for edits that list them) and returns how many
# things it changed: zero means the draft no longer has the problem, which stops the build.
Edit = Callable[[Resource, Sequence[Resource]], int]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "vn" / "vn-core-ig"
DEFAULT_OUT = ROOT / "ketnoi" / "fhir" / "packages"
IG_FILE = "vn-core-ig.xml"
CORE_PACKAGE = ("hl7.fhir.r4.core", "4.0.1")
# npm's own fixed timestamp for reproducible tarballs (1985-10-26T08:15:00Z).
TAR_MTIME = 499162500
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_OBS_CATEGORY_CS = "http://terminology.hl7.org/CodeSystem/observation-category"
_CANONICAL_KEYS = ("baseDefinition", "profile", "targetProfile", "valueSet")


class BuildError(Exception):
    """The draft or a correction is not what this script expects."""


def sd(name: str) -> str:
    """The source file of a VN Core StructureDefinition, e.g. ``sd("Patient")``."""
    return f"StructureDefinition.VN-Core.{name}_v1.0.0.xml"


# --- edits ---------------------------------------------------------------------------------------


def el(elem_id: str, *rest: str | int) -> tuple[Any, ...]:
    """A set_at path into the differential element with id ``elem_id``."""
    return ("differential", "element", {"id": elem_id}, *rest)


def _step(node: Any, step: Any) -> Any:
    """One step of a path: a key, an index, or a dict matching the first list item with those fields."""
    if not isinstance(step, dict):
        return node[step]
    for item in node:
        if all(item.get(key) == value for key, value in step.items()):
            return item
    raise BuildError(f"nothing matches {step}")


def set_at(path: tuple[Any, ...], old: Any, new: Any) -> Edit:
    """Replace the value at ``path`` when it equals ``old`` (``new`` None removes it)."""

    def edit(res: Resource, _: Sequence[Resource]) -> int:
        parent: Any = res
        for step in path[:-1]:
            parent = _step(parent, step)
        key = path[-1]
        if (parent.get(key) if isinstance(parent, dict) else parent[key]) != old:
            return 0
        if new is None:
            del parent[key]
        else:
            parent[key] = new
        return 1

    return edit


def replace_string(old: str, new: str) -> Edit:
    """Replace every string value equal to ``old`` anywhere in the resource."""
    return lambda res, _: _replace(res, old, new)


def replace_word(old: str, new: str) -> Edit:
    """Replace ``old`` inside every string value of the resource (a misspelt word)."""
    return lambda res, _: _replace(res, old, new, whole=False)


def _replace(node: Any, old: str, new: str, *, whole: bool = True) -> int:
    count = 0
    for key, value in list(node.items() if isinstance(node, dict) else enumerate(node)):
        if value == old or (not whole and isinstance(value, str) and old in value):
            node[key] = new if whole else value.replace(old, new)
            count += 1
        elif isinstance(value, dict | list):
            count += _replace(value, old, new, whole=whole)
    return count


def _with_id(res: Resource, new: str) -> int:
    """Set the id, written right after resourceType as FHIR JSON orders it."""
    if res.get("id") == new:
        return 0
    rest = {k: v for k, v in res.items() if k not in ("resourceType", "id")}
    rtype = res["resourceType"]
    res.clear()
    res.update({"resourceType": rtype, "id": new, **rest})
    return 1


def set_id_from_url(res: Resource, _: Sequence[Resource]) -> int:
    return 0 if "id" in res else _with_id(res, res["url"].rpartition("/")[2])


def hyphenate_id(res: Resource, _: Sequence[Resource]) -> int:
    return _with_id(res, res["id"].replace("_", "-"))


def insert_before(elem_id: str, new: dict[str, Any]) -> Edit:
    """Insert a differential element before ``elem_id`` (slicing goes before its slices)."""

    def edit(res: Resource, _: Sequence[Resource]) -> int:
        elements: list[dict[str, Any]] = res["differential"]["element"]
        if any(e.get("id") == new["id"] for e in elements):
            return 0
        elements.insert(elements.index(_step(elements, {"id": elem_id})), dict(new))
        return 1

    return edit


def unslice(slice_id: str) -> Edit:
    """Turn a slice of a non-repeating element into constraints on the element itself."""

    def edit(res: Resource, _: Sequence[Resource]) -> int:
        elements: list[dict[str, Any]] = res["differential"]["element"]
        piece = _step(elements, {"id": slice_id})
        base_id = slice_id.partition(":")[0]
        base = next((e for e in elements if e["id"] == base_id), None)
        if base is None:
            del piece["sliceName"]
            piece["id"] = base_id
        else:
            base.update({k: v for k, v in piece.items() if k not in ("id", "path", "sliceName")})
            elements.remove(piece)
        return 1

    return edit


def not_a_modifier(res: Resource, _: Sequence[Resource]) -> int:
    """The extension's root element declared no modifier (it was ``isModifier: true`` without a
    reason, which R4's eld-18 forbids)."""
    root = res["differential"]["element"][0]
    if root.get("path") != "Extension" or root.get("isModifier") is not True or "isModifierReason" in root:
        return 0
    root["isModifier"] = False
    return 1


def drop_repeated_concepts(res: Resource, _: Sequence[Resource]) -> int:
    """Keep the first of each code listed more than once in one ValueSet.compose.include."""
    dropped = 0
    for include in res["compose"]["include"]:
        concepts = include.get("concept", [])
        kept = [c for i, c in enumerate(concepts) if all(c["code"] != d["code"] for d in concepts[:i])]
        dropped += len(concepts) - len(kept)
        if concepts:
            include["concept"] = kept
    return dropped


def drop_parameters(*codes: str) -> Edit:
    def edit(res: Resource, _: Sequence[Resource]) -> int:
        params = res["definition"].get("parameter", [])
        res["definition"]["parameter"] = [p for p in params if p["code"] not in codes]
        return len(params) - len(res["definition"]["parameter"])

    return edit


def list_ig_resources(res: Resource, others: Sequence[Resource]) -> int:
    """ImplementationGuide.definition.resource (1..* in R4): every resource of the package, as the IG
    Publisher lists them when it builds a guide with find-other-resources."""
    definition = res["definition"]
    if definition.get("resource"):
        return 0
    entries = [
        {
            "reference": {"reference": f"{r['resourceType']}/{r['id']}"},
            "name": r.get("title") or r.get("name") or r["id"],
            "exampleBoolean": False,
        }
        for r in sorted(others, key=lambda r: (r["resourceType"], r["id"]))
        if r is not res
    ]
    # R4 element order: grouping, resource, page, parameter, template.
    rest = {k: definition.pop(k) for k in ("page", "parameter", "template") if k in definition}
    definition.update({"resource": entries, **rest})
    return len(entries)


# --- the corrections -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TextFix:
    """A correction of the source XML itself, for what the XML reader rightly refuses."""

    name: str
    file: str
    pattern: str  # a regular expression (multi-line) whose matches are removed
    count: int  # exactly this many matches, or the build stops
    where: str
    reason: str


@dataclass(frozen=True)
class Drop:
    name: str
    files: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Fix:
    """One named correction: (source file, edit) pairs, each of which must change something."""

    name: str
    where: str
    reason: str
    changes: tuple[tuple[str, Edit], ...]

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(file for file, _ in self.changes))


def _v2(code: str, display: str) -> dict[str, Any]:
    """An identifier type of HL7 v2 table 0203, as the NamingSystems write it."""
    coding = {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": code, "display": display}
    return {"coding": [coding], "text": display}


def each(files: Sequence[str], *edits: Edit) -> tuple[tuple[str, Edit], ...]:
    return tuple((file, edit) for file in files for edit in edits)


def sds(names: str) -> list[str]:
    """The source files of the space-separated StructureDefinition names (see sd())."""
    return [sd(name) for name in names.split()]


TEXT_FIXES = tuple(
    TextFix(
        f"empty-definition-{stem}",
        f"CodeSystem-vn-core-{stem}-v1.0.xml",
        r'^[ \t]*<definition value=""\s*/>\r?\n',
        count,
        "CodeSystem.concept.definition",
        "empty attributes are not allowed in FHIR XML (nor empty strings in JSON): these concepts have no "
        "definition, the element is removed",
    )
    for stem, count in (("education-level", 12), ("occupation-4069", 13), ("race", 4))
)

DROPS = (
    Drop(
        "duplicate-core-resources",
        ("CodeSystem-snomedct.xml", "valueset-iso3166-1-2.xml", "valueset-observation-codes.xml"),
        "copies of hl7.fhir.r4.core resources (same url and version, only the narrative differs): two "
        "resources per url once core is loaded",
    ),
)

# Listed explicitly rather than searched for: each profile must still need its fix.
_VS_AS_SYSTEM = sds(
    "Observation-Birth-Height Observation-Birth-Weight Observation-BirthControlMethod Observation-BirthsTotal "
    "Observation-EctopicPregnancy-Total Observation-FunctionalStatusAssessmentNote Observation-NewbornBirthInjury "
    "Observation-NewbornComplication Observation-NutritionAssessment Observation-PreviousCesareanDeliveries "
    "Observation-PreviousLiveBirthsNowDeadTotal Observation-StillLiveBirths-Total"
)
_IMMUNITY = sds(
    "Observation-InfluenzaVirusImmunizationStatus Observation-PolioVirusImmunizationStatus "
    "Observation-RubellaVirusStatus"
)
_HEPATITIS = sds(
    "Observation-HepatitisAVirusImmunizationStatus Observation-HepatitisBVirusStatus Observation-HepatitisCVirusStatus"
)
_CODING_SLICING = {
    "id": "Observation.code.coding",
    "path": "Observation.code.coding",
    "slicing": {"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "open"},
}
_COPIED_TEXT = {"text": "Những bệnh nặng và thương tổn chính mà bệnh nhân đã gặp"}
_STRING, _CC = {"code": "string"}, {"code": "CodeableConcept"}
_IPS = "http://hl7.org/fhir/uv/ips"
_SID = "http://fhir.ehealth.gov.vn/core/sid/"
_VN = "http://fhir.ehealth.gov.vn/core/"
_SOCIAL_VS = "ValueSet-patient-history-social-factor-type.xml"

FIXES = (
    Fix(
        "missing-ids",
        "StructureDefinition.id",
        "no id, which every packaged resource needs: the tail of its url",
        each(sds("MedicationStatement Observation-TobaccoUse-Overall"), set_id_from_url),
    ),
    Fix(
        "invalid-ids",
        "NamingSystem.id 'insurance_number'; StructureDefinition.id '…patienthistory_socialfactor'",
        "'_' is not allowed in an id: '-' as in the other ids (the url, where '_' is allowed, is kept)",
        each(["NamingSystem.sid-insurance_number.xml", sd("Observation-PatientHistory_SocialFactor")], hyphenate_id),
    ),
    Fix(
        "broken-canonical-practitioner",
        "Observation.performer type.targetProfile",
        "http://ehealth.gov.vn/fhir/core/… is no canonical of this guide (wrong host and path)",
        each(
            sds("Observation-TobaccoUse-Overall"),
            replace_word("http://ehealth.gov.vn/fhir/core/", _VN),
        ),
    ),
    Fix(
        "valueset-url-as-code-system",
        "Observation.category.coding patternCoding.system",
        "the observation-category value set url used as the code system: no R4 coding could match",
        each(_VS_AS_SYSTEM, replace_string("http://hl7.org/fhir/ValueSet/observation-category", _OBS_CATEGORY_CS)),
    ),
    Fix(
        "category-displays",
        "Observation.category(:sliceCategory) fixedCodeableConcept.coding.display",
        "fixed displays differing from R4's ('Social History', 'Exam') refused correctly coded instances",
        (
            (
                sd("Observation-PatientHistory_SocialFactor"),
                replace_string("Social Factor & Patient History", "Social History"),
            ),
            *each(
                sds("Observation-PhysicalFindings Observation-ReviewOfSystems"), replace_string("Physical Exam", "Exam")
            ),
        ),
    ),
    Fix(
        "slice-without-slicing",
        "Observation.code.coding:requireCoding",
        "a slice of an element that is not sliced: slicing added (pattern on $this, as the slice has a patternCoding)",
        each([*_VS_AS_SYSTEM, *_IMMUNITY], insert_before("Observation.code.coding:requireCoding", _CODING_SLICING)),
    ),
    Fix(
        "type-slice-outside-types",
        "Observation.value[x] type",
        "value[x] allowed only string, yet its type slice valueCodeableConcept is a CodeableConcept",
        each([*_HEPATITIS, *_IMMUNITY], set_at(el("Observation.value[x]", "type"), [_STRING], [_STRING, _CC])),
    ),
    Fix(
        "slice-on-single-element",
        "Condition.code:conditionCode; Immunization.vaccineCode:vaccineCode; Medication.code:medicationCode",
        "only repeating or choice elements can be sliced: the slice's type and binding go to the element",
        (
            *each(sds("Condition-Encounter-Diagnosis Condition-ProblemList"), unslice("Condition.code:conditionCode")),
            (sd("Immunization"), unslice("Immunization.vaccineCode:vaccineCode")),
            (sd("Medication"), unslice("Medication.code:medicationCode")),
        ),
    ),
    Fix(
        "copied-code-text",
        "Observation.code patternCodeableConcept",
        "HIV and measles status required the code text of the patient-history profile (major illnesses)",
        each(
            sds("Observation-HIVStatus Observation-MeaslesVirusStatus"),
            set_at(el("Observation.code", "patternCodeableConcept"), _COPIED_TEXT, None),
        ),
    ),
    Fix(
        "radiology-category-from-laboratory",
        "Observation.category:laboratory",
        "the radiology category slice (code imaging) was named, and its fixed text was, 'laboratory'",
        each(
            sds("Observation-RadiologyCode"),
            set_at(el("Observation.category:laboratory", "fixedCodeableConcept", "text"), "laboratory", "imaging"),
            set_at(el("Observation.category:laboratory", "sliceName"), "laboratory", "imaging"),
            replace_word("Observation.category:laboratory", "Observation.category:imaging"),
        ),
    ),
    Fix(
        "namingsystem-provider-code",
        "NamingSystem.uniqueId.value, type, jurisdiction",
        "copy of sid-provider-medical-license-number: the Provider profile uses …/sid/provider-code, PRN; 826→704",
        each(
            ["NamingSystem.sid-provider-code.xml"],
            set_at(("uniqueId", 0, "value"), _SID + "provider-medical-license-number", _SID + "provider-code"),
            set_at(("type",), _v2("LN", "License number"), _v2("PRN", "Provider number")),
            set_at(("jurisdiction", 0, "coding", 0, "code"), "826", "704"),
        ),
    ),
    Fix(
        "namingsystem-driver-license",
        "NamingSystem.uniqueId.value",
        "the Patient profile (identifier:BangLaiXe) uses …/sid/driver_license_number",
        each(
            ["NamingSystem.sid-driver-license-number.xml"],
            set_at(("uniqueId", 0, "value"), _SID + "driver-license-number", _SID + "driver_license_number"),
        ),
    ),
    Fix(
        "valueset-repeated-concepts",
        "ValueSet.compose.include.concept 10176-6, 10181-6",
        "each listed twice in the same include",
        each([_SOCIAL_VS], drop_repeated_concepts),
    ),
    Fix(
        "ethic-is-religion",
        "StructureDefinition.title; CodeSystem.description",
        "'ethic' is religion (tôn giáo); urls and ids keep 'ethic', they are the published identifiers",
        (
            (sd("Extension-Ethic"), replace_word("Patient Ethic", "Patient Religion")),
            ("CodeSystem-vn-core-ethic-v1.0.xml", replace_word("Danh mục Dân tộc", "Danh mục Tôn giáo")),
        ),
    ),
    Fix(
        "typos",
        "titles, descriptions, Patient.extension:patientOccupationExtenstion, ValueSet.name, binding.description",
        "'Extenstion', 'Soical', 'Conditon', 'Condtion' (a slice name in Patient: its element ids too)",
        (
            *each(sds("Extension-Nationality Patient"), replace_word("Extenstion", "Extension")),
            (_SOCIAL_VS, replace_word("Soical", "Social")),
            (sd("Condition-Encounter-Diagnosis"), replace_word("Conditon", "Condition")),
            (sd("Condition-ProblemList"), replace_word("Condtion", "Condition")),
        ),
    ),
    Fix(
        "ig-canonical-urls",
        "ImplementationGuide.url; dependsOn.uri",
        "an IG's url is <base>/ImplementationGuide/<id>; dependsOn.uri is that canonical of the IG depended on",
        each(
            [IG_FILE],
            set_at(("url",), _VN[:-1], _VN + "ImplementationGuide/hl7.fhir.vn.core"),
            set_at(("dependsOn", 0, "uri"), _IPS, _IPS + "/ImplementationGuide/hl7.fhir.uv.ips"),
        ),
    ),
    Fix(
        "ig-publisher-parameters",
        "ImplementationGuide.definition.parameter",
        "IG Publisher settings that are not codes of R4's required GuideParameterCode binding",
        each(
            [IG_FILE],
            drop_parameters("copyrightyear", "releaselabel", "find-other-resources", "excludettl", "excludemap"),
        ),
    ),
    Fix(
        "extensions-not-modifiers",
        "Extension isModifier (EducationLevel, Race)",
        "isModifier true without isModifierReason breaks eld-18; an education level or an ethnic group "
        "changes no meaning of the Patient: an ordinary extension, as the IG's other extensions are",
        each(sds("Extension-EducationLevel Extension-Race"), not_a_modifier),
    ),
    Fix(
        "ig-definition-resources",
        "ImplementationGuide.definition.resource",
        "required (1..*) in R4 and absent (the IG Publisher fills it in): one entry per packaged resource",
        each([IG_FILE], list_ig_resources),
    ),
)


# --- reading, correcting, checking ---------------------------------------------------------------


def read_sources(source: Path) -> dict[str, Resource]:
    """Source file name → resource, read after the text fixes of that file."""
    folder = source / "input"
    paths = [*sorted((folder / "resources").glob("*.xml")), folder / IG_FILE]
    if not paths[:-1] or not paths[-1].is_file():
        raise BuildError(f"{folder}: no IG resources found")
    unknown = {fix.file for fix in TEXT_FIXES} - {path.name for path in paths}
    if unknown:
        raise BuildError(f"text fixes name files that are not in the draft: {sorted(unknown)}")
    resources: dict[str, Resource] = {}
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for fix in TEXT_FIXES:
            if fix.file == path.name:
                text, found = re.subn(fix.pattern, "", text, flags=re.MULTILINE)
                if found != fix.count:
                    raise BuildError(f"{fix.name}: expected {fix.count} matches in {fix.file}, found {found}")
        try:
            resources[path.name] = read_xml(text)
        except ValueError as exc:
            raise BuildError(f"{path.name}: {exc}") from exc
    return resources


def correct(resources: dict[str, Resource]) -> None:
    """Apply DROPS then FIXES, in order; a correction that changes nothing stops the build."""
    for drop in DROPS:
        for file in drop.files:
            if resources.pop(file, None) is None:
                raise BuildError(f"{drop.name}: {file} is not in the draft")
    for fix in FIXES:
        for index, (file, edit) in enumerate(fix.changes):
            if file not in resources:
                raise BuildError(f"{fix.name}: {file} is not in the draft")
            if edit(resources[file], list(resources.values())) == 0:
                raise BuildError(f"{fix.name} (change {index + 1}): nothing to correct in {file}")


def _core_urls() -> frozenset[str]:
    return frozenset(
        entry["resource"]["url"]
        for name in ("profiles-types", "profiles-resources", "valuesets")
        for entry in load(name).get("entry", ())
        if "url" in entry["resource"]
    )


def _canonicals(node: Any) -> Iterator[str]:
    """The canonical references a StructureDefinition or ValueSet makes to profiles and value sets."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _CANONICAL_KEYS:
                for url in value if isinstance(value, list) else [value]:
                    if isinstance(url, str):
                        yield url.partition("|")[0]
            else:
                yield from _canonicals(value)
    elif isinstance(node, list):
        for item in node:
            yield from _canonicals(item)


def check(resources: dict[str, Resource]) -> list[str]:
    """What would make the package wrong: bad or repeated ids and URLs, references that resolve
    nowhere (package, R4 core, or a declared dependency's canonical base), structural errors."""
    problems: list[str] = []
    seen_ids: dict[tuple[str, str], str] = {}
    seen_urls: dict[str, str] = {}
    for file, res in resources.items():
        key = (res["resourceType"], str(res.get("id")))
        if not _ID.fullmatch(key[1]):
            problems.append(f"{file}: invalid or missing id {res.get('id')!r}")
        if key in seen_ids:
            problems.append(f"{file}: id {key} already used by {seen_ids[key]}")
        seen_ids[key] = file
        url = res.get("url")
        if url in seen_urls:
            problems.append(f"{file}: url {url} already used by {seen_urls[url]}")
        if url:
            seen_urls[url] = file
        problems.extend(f"{file}: {issue.text}" for issue in validate(res) if issue.severity in ("error", "fatal"))
    known = _core_urls() | seen_urls.keys()
    bases = tuple(
        dep["uri"].partition("/ImplementationGuide/")[0] + "/" for dep in _guide(resources).get("dependsOn", ())
    )
    for file, res in resources.items():
        for url in _canonicals(res):
            if url not in known and not url.startswith(bases):
                problems.append(f"{file}: {url} resolves to nothing in the package, R4 core or a dependency")
    return problems


def _guide(resources: dict[str, Resource]) -> Resource:
    guides = [r for r in resources.values() if r["resourceType"] == "ImplementationGuide"]
    if len(guides) != 1:
        raise BuildError(f"expected one ImplementationGuide, found {len(guides)}")
    return guides[0]


# --- the package ---------------------------------------------------------------------------------


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"


def _index_entry(filename: str, res: Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {"filename": filename, "resourceType": res["resourceType"], "id": res["id"]}
    keys = ("url", "version", "kind", "type") if res["resourceType"] == "StructureDefinition" else ("url", "version")
    entry.update({key: res[key] for key in keys if isinstance(res.get(key), str)})
    return entry


def package_files(resources: dict[str, Resource]) -> dict[str, bytes]:
    """The files of the package (names below ``package/``): manifest, index and one per resource."""
    guide = _guide(resources)
    files: dict[str, bytes] = {}
    index = []
    for res in sorted(resources.values(), key=lambda r: (r["resourceType"], r["id"])):
        filename = f"{res['resourceType']}-{res['id']}.json"
        files[filename] = _json(res)
        index.append(_index_entry(filename, res))
    files[".index.json"] = _json({"index-version": 1, "files": index})
    dependencies = dict([CORE_PACKAGE])
    dependencies.update({dep["packageId"]: dep["version"] for dep in guide.get("dependsOn", ())})
    canonical = guide["url"].partition("/ImplementationGuide/")[0]
    manifest = {
        "name": guide["packageId"],
        "version": guide["version"],
        "type": "fhir.ig",
        "title": guide.get("title", guide["name"]),
        "description": guide.get("description", ""),
        "author": guide.get("publisher", ""),
        "license": guide.get("license", ""),
        "canonical": canonical,
        "url": canonical,
        "fhirVersions": guide.get("fhirVersion", [CORE_PACKAGE[1]]),
        "dependencies": dependencies,
    }
    files["package.json"] = _json(manifest)
    return files


def tgz(files: dict[str, bytes]) -> bytes:
    """A reproducible tar.gz of ``files`` under ``package/``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(files[name])
            info.mtime = TAR_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as archive:
        archive.write(raw.getvalue())
    return out.getvalue()


def build(source: Path, out: Path) -> Path:
    """Read, correct, check and write the package; returns the path of the .tgz."""
    resources = read_sources(source)
    correct(resources)
    problems = check(resources)
    if problems:
        raise BuildError("the corrected package is not valid:\n  " + "\n  ".join(problems))
    guide = _guide(resources)
    target = out / f"{guide['packageId']}-{guide['version']}.tgz"
    out.mkdir(parents=True, exist_ok=True)
    target.write_bytes(tgz(package_files(resources)))
    return target


def fixes_markdown() -> str:
    """Every correction as a Markdown table, for docs/vn-core-report.md."""
    rows = ["| name | source | element | reason |", "|---|---|---|---|"]
    rows += [f"| `{f.name}` | {f.file} ({f.count}×) | {f.where} | {f.reason} |" for f in TEXT_FIXES]
    rows += [f"| `{d.name}` | {', '.join(d.files)} | whole resource | {d.reason} |" for d in DROPS]
    rows += [f"| `{f.name}` | {', '.join(f.files)} | {f.where} | {f.reason} |" for f in FIXES]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE, help="the IG folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the .tgz")
    parser.add_argument("--list-fixes", action="store_true", help="print the corrections as Markdown and exit")
    args = parser.parse_args(argv)
    if args.list_fixes:
        sys.stdout.write(fixes_markdown())
        return 0
    try:
        target = build(args.source, args.out)
    except BuildError as exc:
        sys.stderr.write(f"build_vn_core: {exc}\n")
        return 1
    sys.stdout.write(f"{target}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
