"""The registries' forms as data: which FHIR element each form field edits (a path of steps), how a value
is read from a resource and written back into it, and where it lands (the FHIRPath the server's
OperationOutcome names, so that an error is shown next to its field).

An edit changes only the form's fields in the resource as read: every element the form does not show
(extensions, other identifiers, meta.tag ...) is kept as it was.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ketnoi.console import show
from ketnoi.vn.identifier_rules import FACILITY_SYSTEM, LICENCE_SYSTEM
from ketnoi.vn.provinces import PROVINCES

#: One step of a path: a key of an object, an index in a list, or (key, value): the first item of a
#: list whose ``key`` is ``value`` (created with it when there is none: ``telecom[system=phone]``).
Step = str | int | tuple[str, str]
Path = tuple[Step, ...]
Value = str | list[str] | None

ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
#: The provinces since 01/07/2025 (QĐ 19/2025/QĐ-TTg), suggested for an address's province.
PROVINCE_NAMES: tuple[str, ...] = tuple(sorted(p.name for p in PROVINCES))


@dataclass(frozen=True, slots=True)
class Choice:
    code: str
    label: str  # text key
    display: str = ""  # the code system's display, written beside a coding's code


@dataclass(frozen=True, slots=True)
class Field:
    key: str  # the form field's name
    label: str  # text key
    path: Path
    kind: str = "text"  # text | email | tel | select | words (a list of words: given names) | ref
    choices: tuple[Choice, ...] = ()
    target: str = ""  # ref: the type referred to ("Organization")
    hint: str = ""  # text key of a hint shown under the label
    # Elements derived from this one, dropped when it changes (a name's or an address's text, the coded
    # administrative unit of an address): kept, they would contradict the new value.
    stale: tuple[Path, ...] = ()
    own_org: bool = False  # a new resource's default: the caller's organization (a facility's partOf)
    suggest: str = ""  # the id of a <datalist> of suggestions


@dataclass(frozen=True, slots=True)
class Registry:
    slug: str  # in URLs: /registry/organization/new
    rtype: str
    title: str  # text key: the registry's name
    new: str  # text key: "add a ..." link
    search_hint: str  # text key
    fields: tuple[Field, ...]
    columns: tuple[str, ...]  # keys of the fields shown in the results table, after the name
    name_param: str  # the search parameter a typed name goes to, once per word
    sort: str
    title_of: Callable[[dict[str, Any]], str]

    def field(self, key: str) -> Field:
        return next(f for f in self.fields if f.key == key)


# ---- paths ---------------------------------------------------------------------------------------
def get(resource: Any, path: Path) -> Any:
    """The element at ``path``, or None."""
    node = resource
    for step in path:
        if isinstance(step, str):
            node = node.get(step) if isinstance(node, dict) else None
        elif isinstance(step, int):
            node = node[step] if isinstance(node, list) and step < len(node) else None
        else:
            node = node[index] if (index := _find(node, step)) is not None else None
        if node is None:
            return None
    return node


def _find(node: Any, step: tuple[str, str]) -> int | None:
    if not isinstance(node, list):
        return None
    key, value = step
    return next((i for i, item in enumerate(node) if isinstance(item, dict) and item.get(key) == value), None)


def locate(resource: dict[str, Any], path: Path) -> str:
    """The FHIRPath of ``path`` in ``resource`` (``Organization.telecom[1].value``): where the server
    reports a problem of that element. Indexes of elements not there yet are where they would go."""
    parts = [str(resource.get("resourceType", ""))]
    node: Any = resource
    for step in path:
        if isinstance(step, str):
            parts.append(f".{step}")
            node = node.get(step) if isinstance(node, dict) else None
            continue
        items = node if isinstance(node, list) else []
        found = _find(items, step) if isinstance(step, tuple) else step
        index = found if found is not None and found < len(items) else len(items)
        parts.append(f"[{index}]")
        node = items[index] if index < len(items) else None
    return "".join(parts)


def put(resource: dict[str, Any], path: Path, value: Value) -> None:
    """Set the element at ``path``, making the objects and lists on the way; None removes it."""
    if value is None:
        remove(resource, path)
        return
    node: Any = resource
    for step, following in itertools.pairwise(path):
        node = _child(node, step, [] if not isinstance(following, str) else {})
    last = path[-1]
    if isinstance(last, str) or (isinstance(last, int) and last < len(node)):
        node[last] = value
    else:
        node.append(value)


def _child(node: Any, step: Step, empty: dict[str, Any] | list[Any]) -> Any:
    if isinstance(step, str):
        if not isinstance(node.get(step), type(empty)):
            node[step] = empty
        return node[step]
    if isinstance(step, int):
        if step < len(node):
            return node[step]
        node.append(empty)
        return empty
    index = _find(node, step)
    if index is not None:
        return node[index]
    made = {step[0]: step[1]}
    node.append(made)
    return made


def remove(resource: dict[str, Any], path: Path) -> None:
    """Remove the element at ``path``, and the objects and lists it leaves empty (or holding only the
    key that selected them: ``{"system": "phone"}`` without a value says nothing)."""
    chain: list[tuple[Any, str | int]] = []
    node: Any = resource
    for step in path:
        if isinstance(step, str):
            if not isinstance(node, dict) or step not in node:
                return
            chain.append((node, step))
        else:
            index = _find(node, step) if isinstance(step, tuple) else step
            if not isinstance(node, list) or index is None or index >= len(node):
                return
            chain.append((node, index))
        node = chain[-1][0][chain[-1][1]]
    for depth in range(len(chain) - 1, -1, -1):
        container, key = chain[depth]
        child, step = container[key], path[depth]
        hollow = child in ({}, []) or (isinstance(step, tuple) and child == {step[0]: step[1]})
        if depth != len(chain) - 1 and not hollow:
            break
        del container[key]


# ---- form values ---------------------------------------------------------------------------------
def shown(field: Field, resource: dict[str, Any]) -> str:
    """The field's value in ``resource`` as the form shows it."""
    value = get(resource, field.path)
    if field.kind == "words":
        return " ".join(str(v) for v in value) if isinstance(value, list) else ""
    if field.kind == "ref":
        return str(value or "").removeprefix(f"{field.target}/")
    return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else ""


def parsed(field: Field, text: str) -> Value:
    """What a typed value writes: None (remove) when empty; a reference for an id alone."""
    text = " ".join(text.split())
    if not text:
        return None
    if field.kind == "words":
        return text.split()
    if field.kind == "ref" and "/" not in text:
        return f"{field.target}/{text}"
    return text


def merge(resource: dict[str, Any], fields: tuple[Field, ...], form: dict[str, str]) -> dict[str, Any]:
    """A copy of ``resource`` with the form's fields changed; a field left as it was is not touched."""
    out = copy.deepcopy(resource)
    changed = False
    for field in fields:
        text = " ".join(form.get(field.key, "").split())
        if text == shown(field, out):
            continue
        changed = True
        for derived in field.stale:
            remove(out, derived)
        put(out, field.path, parsed(field, text))
        choice = next((c for c in field.choices if c.code == text and c.display), None)
        if field.path[-1] == "code" and field.choices:  # a coding: its display follows the code
            put(out, (*field.path[:-1], "display"), choice.display if choice else None)
    narrative = out.get("text")
    if changed and isinstance(narrative, dict) and narrative.get("status") == "generated":
        del out["text"]  # a narrative generated from the old values would now say something else
    return out


def cell(field: Field, resource: dict[str, Any], t: dict[str, str]) -> str:
    """The field's value in a results table: a choice by its label."""
    value = shown(field, resource)
    choice = next((c for c in field.choices if c.code == value), None)
    return t.get(choice.label, value) if choice else value


# ---- the registries ------------------------------------------------------------------------------
def _choices(prefix: str, *codes: str) -> tuple[Choice, ...]:
    return tuple(Choice(code, f"{prefix}{code}") for code in codes)


def _telecom(system: str, key: str, kind: str) -> Field:
    return Field(key, f"reg_{key}", ("telecom", ("system", system), "value"), kind)


def _address(single: bool) -> tuple[Field, ...]:
    base: Path = ("address",) if single else ("address", 0)
    units = ((*base, "extension"), (*base, "text"))  # VN Core's coded unit and the written-out text
    return (
        Field("line", "reg_line", (*base, "line", 0), stale=((*base, "text"),)),
        Field("ward", "reg_ward", (*base, "city"), stale=units),
        Field("province", "reg_province", (*base, "state"), stale=units, suggest="provinces"),
    )


def _string_name(resource: dict[str, Any]) -> str:
    return str(resource.get("name") or "—")


_DEVICE_NAME: Path = ("deviceName", ("type", "user-friendly-name"), "name")
_MEDICATION_NAME: Path = ("code", "text")


def _device_name(resource: dict[str, Any]) -> str:
    return str(get(resource, _DEVICE_NAME) or "—")


def _medication_name(resource: dict[str, Any]) -> str:
    return str(get(resource, _MEDICATION_NAME) or "—")


ORG_TYPES = (
    Choice("prov", "org_type_prov", "Healthcare Provider"),
    Choice("dept", "org_type_dept", "Hospital Department"),
    Choice("govt", "org_type_govt", "Government"),
    Choice("pay", "org_type_pay", "Payer"),
    Choice("edu", "org_type_edu", "Educational Institute"),
    Choice("other", "org_type_other", "Other"),
)

ORGANIZATION = Registry(
    "organization", "Organization", "reg_organizations", "reg_new_organization", "reg_search_hint_org",
    (
        Field("name", "reg_name", ("name",)),
        Field("alias", "reg_alias", ("alias", 0)),
        Field("code", "reg_facility_code", ("identifier", ("system", FACILITY_SYSTEM), "value"),
              hint="reg_facility_code_hint"),
        Field("type", "reg_org_type", ("type", 0, "coding", ("system", ORG_TYPE), "code"), "select", ORG_TYPES,
              stale=(("type", 0, "text"),)),
        _telecom("phone", "phone", "tel"),
        _telecom("email", "email", "email"),
        *_address(single=False),
        Field("part_of", "reg_part_of", ("partOf", "reference"), "ref", target="Organization",
              hint="reg_part_of_hint", own_org=True),
    ),
    ("code", "type", "province"), "name:contains", "name", _string_name,
)  # fmt: skip

_NAME_TEXT: Path = ("name", 0, "text")
PRACTITIONER = Registry(
    "practitioner", "Practitioner", "reg_practitioners", "reg_new_practitioner", "reg_search_hint_person",
    (
        Field("family", "reg_family", ("name", 0, "family"), stale=(_NAME_TEXT,)),
        Field("given", "reg_given", ("name", 0, "given"), "words", stale=(_NAME_TEXT,)),
        Field("licence", "reg_licence", ("identifier", ("system", LICENCE_SYSTEM), "value"),
              hint="reg_licence_hint"),
        Field("gender", "gender", ("gender",), "select", tuple(Choice(c, c) for c in
              ("male", "female", "other", "unknown"))),
        _telecom("phone", "phone", "tel"),
        _telecom("email", "email", "email"),
        Field("qualification", "reg_qualification", ("qualification", 0, "code", "text"),
              hint="reg_qualification_hint"),
    ),
    ("licence", "gender", "qualification"), "name", "family", show.name,
)  # fmt: skip

LOCATION = Registry(
    "location", "Location", "reg_locations", "reg_new_location", "reg_search_hint_org",
    (
        Field("name", "reg_name", ("name",)),
        Field("status", "status", ("status",), "select", _choices("loc_", "active", "suspended", "inactive")),
        _telecom("phone", "phone", "tel"),
        *_address(single=True),
        Field("managing", "reg_managing_org", ("managingOrganization", "reference"), "ref", target="Organization",
              hint="reg_part_of_hint", own_org=True),
    ),
    ("status", "province", "managing"), "name:contains", "name", _string_name,
)  # fmt: skip

DEVICE = Registry(
    "device", "Device", "reg_devices", "reg_new_device", "reg_search_hint_thing",
    (
        Field("name", "reg_name", _DEVICE_NAME),
        Field("serial", "reg_serial", ("serialNumber",)),
        Field("manufacturer", "reg_manufacturer", ("manufacturer",)),
        Field("status", "status", ("status",), "select",
              _choices("dev_", "active", "inactive", "entered-in-error", "unknown")),
        Field("owner", "reg_owner", ("owner", "reference"), "ref", target="Organization",
              hint="reg_part_of_hint", own_org=True),
    ),
    ("serial", "status", "owner"), "device-name:contains", "device-name",
    _device_name,
)  # fmt: skip

MEDICATION = Registry(
    "medication", "Medication", "reg_medications", "reg_new_medication", "reg_search_hint_thing",
    (
        Field("name", "reg_name", _MEDICATION_NAME),
        Field("form", "reg_dose_form", ("form", "text"), hint="reg_dose_form_hint"),
        Field("status", "status", ("status",), "select", _choices("med_", "active", "inactive", "entered-in-error")),
        Field("manufacturer", "reg_manufacturer", ("manufacturer", "reference"), "ref", target="Organization",
              hint="reg_part_of_hint"),
    ),
    ("form", "status"), "code:text", "",
    _medication_name,
)  # fmt: skip

REGISTRIES: dict[str, Registry] = {r.slug: r for r in (ORGANIZATION, PRACTITIONER, LOCATION, DEVICE, MEDICATION)}
