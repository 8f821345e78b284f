"""A registry form's reference fields made findable without JavaScript (issue 15): beside each one (an
Organization's ``partOf``, a Location's ``managingOrganization`` ...) a search box whose results come back
as choices in the same form round trip, everything typed kept; the field still holds the id, the form
says the name of what it points to.

The form posts its values with the search (a ``find`` button, or a search box whose text was not yet
searched: the Enter key in it); the page answers the form as typed, nothing written, with the
referred-to registry's name search (without diacritics, as the registry's own box) run through
:class:`ketnoi.console.records.Reader` as the user, so the choices are what they may read. A choice
picked (``pick_<field>``) replaces the field's value on the next post, whether it saves or searches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from ketnoi.console import records
from ketnoi.console.outcome import outcome_text
from ketnoi.console.registry_fields import REGISTRIES, Field, Registry

CHOICES: Final = 20  # results offered: a search more precise finds the rest
_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # the FHIR id datatype


@dataclass(slots=True)
class Pick:
    """A reference field's search box: what was typed, and what it found (None: not searched)."""

    text: str = ""
    found: list[tuple[str, str]] | None = None  # (Type/id, its name as offered)
    problem: str | None = None  # the server's reason for refusing the search


def references(registry: Registry) -> list[Field]:
    return [f for f in registry.fields if f.kind == "ref"]


def picked(registry: Registry, form: Any, values: dict[str, str]) -> None:
    """The choices picked in the form (``pick_<key>``: ``Type/id`` of the field's target type) put in
    ``values`` in place of what the field held, as the field shows it (the id)."""
    for field in references(registry):
        choice = str(form.get(f"pick_{field.key}") or "")
        kind, _, rid = choice.partition("/")
        if kind == field.target and _ID.fullmatch(rid):
            values[field.key] = rid


def typed(registry: Registry, form: Any) -> dict[str, Pick]:
    """What each search box beside a reference field holds, kept as typed (not yet searched)."""
    return {f.key: Pick(" ".join(str(form.get(f"find_{f.key}") or "").split())[:200]) for f in references(registry)}


def finding(registry: Registry, form: Any) -> str | None:
    """The reference field whose search the post asks for: its ``find`` button, else a search box with
    text not yet searched (Enter pressed in it submits the form's first button, which saves). None:
    the post saves."""
    keys = [f.key for f in references(registry)]
    button = str(form.get("find") or "")
    if button in keys:
        return button
    for key in keys:
        text = " ".join(str(form.get(f"find_{key}") or "").split())
        if text and text != " ".join(str(form.get(f"searched_{key}") or "").split()):
            return key
    return None


def search(reader: records.Reader, field: Field, text: str, lang: str) -> Pick:
    """The resources of ``field``'s target type whose name holds every typed word (the registry's own
    name search), as the user may read them, at most :data:`CHOICES`; a refusal in ``lang``."""
    target = next((r for r in REGISTRIES.values() if r.rtype == field.target), None)
    words = text.split()
    if target is None or not words:
        return Pick(text, [])
    query = [(target.name_param, word) for word in words]
    response = reader.call(field.target, [*query, ("_sort", target.sort), ("_count", str(CHOICES))])
    bundle = records.json_of(response)
    if response.status != 200:
        return Pick(text, [], outcome_text(bundle, lang) or str(response.status))
    found = [e["resource"] for e in bundle.get("entry") or () if isinstance(e.get("resource"), dict)]
    return Pick(text, [(f"{field.target}/{r.get('id')}", f"{target.title_of(r)} ({r.get('id')})") for r in found])


def names(reader: records.Reader, registry: Registry, values: dict[str, str]) -> dict[str, str]:
    """Each reference field's target by name (read as the user); absent when it cannot be read (no
    such resource, or not one the user may see)."""
    found: dict[str, str] = {}
    for field in references(registry):
        rid = values.get(field.key, "").strip().removeprefix(f"{field.target}/")
        target = next((r for r in REGISTRIES.values() if r.rtype == field.target), None)
        if target is None or not _ID.fullmatch(rid):
            continue
        resource = reader.read(field.target, rid)
        if resource is not None:
            found[field.key] = target.title_of(resource)
    return found
