"""Rules of the R4 specification text that are not FHIRPath constraints, as the reference validator
applies them: Bundle entry fullUrl, references a document must resolve inside its Bundle, references
inside a Bundle that resolve to the wrong type, and absolute ``Extension.url``.

``check_resource_rules(resource)`` runs on a structurally valid resource (``validate`` calls it with
``invariants=True``). Only what the reference validator reports as an *error* is reported, and only
the cases it can decide from the data alone: nothing is fetched, transaction and batch Bundles are
left alone for references (their references are resolved by the server that processes them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import Issue

# An absolute URI as the reference validator tests it: a lower-case scheme, then something without
# whitespace (http://…, urn:uuid:…, urn:oid:…, mailto:…). "Patient/1" and "something" are relative.
_ABSOLUTE = re.compile(r"[a-z][a-z0-9+.\-]*:\S+")

# A relative extension url ("something", "#x") in serialized JSON. Cheap pre-filter: most resources
# have no such string, and then the extension walk is skipped entirely (see check_resource_rules).
_RELATIVE_URL_JSON = re.compile(rb'"url":"(?![a-z][a-z0-9+.\-]*:)')

# Types whose Bundle references a server processes itself; fullUrl is optional there as well.
_TRANSACTIONAL = frozenset({"transaction", "transaction-response", "batch", "batch-response"})


def is_absolute_url(url: str) -> bool:
    return _ABSOLUTE.fullmatch(url) is not None


_RESTFUL: re.Pattern[str] | None = None


def _restful() -> re.Pattern[str]:
    """A RESTful resource URL, [base/]Type/id[/_history/vid], the reference's URI_REGEX for R4 types.

    Compiled on first use: the resource type list is loaded lazily by ketnoi.fhir.definitions.
    """
    global _RESTFUL
    if _RESTFUL is None:
        types = "|".join(sorted(resource_types(), key=len, reverse=True))
        _RESTFUL = re.compile(
            r"((http|https)://([A-Za-z0-9\\.:%$]*/)*)?("
            + types
            + r")/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?"
        )
    return _RESTFUL


def _error(path: str, en: str, vi: str) -> Issue:
    # Code `invariant` ("a content validation rule failed"), like the FHIRPath invariants: the
    # write path (ketnoi.app.WriteValidator) treats both alike, refusing them under
    # KETNOI_VALIDATION=strict and demoting them to warnings under lenient.
    return Issue("error", "invariant", en, vi, (path,))


def check_resource_rules(resource: object) -> list[Issue]:
    """Errors of the specification's non-FHIRPath rules in a structurally valid R4 JSON resource."""
    issues: list[Issue] = []
    if type(resource) is not dict:
        return issues
    rtype = resource.get("resourceType")
    if type(rtype) is not str:
        return issues
    if rtype == "Bundle":
        _Bundle(resource, issues).check()
    # The extension walk visits every object; skip it unless some "url" is not absolute, which
    # orjson + one regex decide in a few microseconds for a typical resource.
    try:
        candidate = _RELATIVE_URL_JSON.search(orjson.dumps(resource)) is not None
    except TypeError:  # a value orjson cannot write (a Decimal, a huge int): walk without the filter
        candidate = True
    if candidate:
        _extensions(resource, rtype, False, issues)
    return issues


# --- Extension.url ---------------------------------------------------------------------------


def _extensions(value: Any, path: str, in_extension: bool, issues: list[Issue]) -> None:
    """Walk objects; a top-level extension (not a part of a complex extension) needs an absolute url.

    Relative urls ("given", "status") are only meaningful as names of the parts of a complex
    extension, resolved against its definition (R4 Extension.url, extensibility.html#Extension).
    """
    if type(value) is dict:
        for key, child in value.items():
            if key in ("extension", "modifierExtension") and type(child) is list:
                for index, ext in enumerate(child):
                    if type(ext) is not dict:
                        continue
                    ext_path = f"{path}.{key}[{index}]"
                    url = ext.get("url")
                    if not in_extension and type(url) is str and not is_absolute_url(url):
                        issues.append(
                            _error(
                                ext_path,
                                f"Extension.url must be an absolute URL, not '{url}' (a relative url only "
                                "names a part of a complex extension)",
                                f"Extension.url phải là URL tuyệt đối, không phải '{url}' (url tương đối chỉ "
                                "dùng cho phần con của một extension phức hợp)",
                            )
                        )
                    _extensions(ext, ext_path, True, issues)
            elif type(child) is dict:
                # An extension's value (valueReference, valueCodeableConcept…) holds ordinary data
                # again, whose own extensions are top-level ones. `_birthDate` reports at birthDate,
                # as structure.py does.
                _extensions(child, f"{path}.{key[1:] if key[0] == '_' else key}", False, issues)
            elif type(child) is list:
                for index, item in enumerate(child):
                    if type(item) is dict:
                        name = key[1:] if key[0] == "_" else key
                        _extensions(item, f"{path}.{name}[{index}]", False, issues)


# --- Bundle ----------------------------------------------------------------------------------


class _Bundle:
    """One Bundle: fullUrl rules, document references, in-Bundle reference targets."""

    __slots__ = ("btype", "by_full_url", "by_type_id", "entries", "issues", "reported")

    def __init__(self, bundle: dict[str, Any], issues: list[Issue]) -> None:
        self.issues = issues
        btype = bundle.get("type")
        self.btype = btype if type(btype) is str else ""
        entries = bundle.get("entry")
        self.entries: list[dict[str, Any]] = [e for e in entries if type(e) is dict] if type(entries) is list else []
        # fullUrl (and fullUrl/_history/vid) → entries; Type/id (and Type/id/_history/vid) → entries:
        # the two indexes the reference resolves a reference against.
        self.by_full_url: dict[str, list[int]] = {}
        self.by_type_id: dict[str, list[int]] = {}
        for index, entry in enumerate(self.entries):
            full_url = entry.get("fullUrl")
            resource = entry.get("resource")
            version = None
            if type(resource) is dict:
                meta = resource.get("meta")
                version = meta.get("versionId") if type(meta) is dict else None
            if type(full_url) is str:
                self.by_full_url.setdefault(full_url, []).append(index)
                if version is not None:
                    self.by_full_url.setdefault(f"{full_url}/_history/{version}", []).append(index)
            if type(resource) is dict and type(resource.get("id")) is str:
                type_id = f"{resource.get('resourceType')}/{resource['id']}"
                self.by_type_id.setdefault(type_id, []).append(index)
                if version is not None:
                    self.by_type_id.setdefault(f"{type_id}/_history/{version}", []).append(index)

    def check(self) -> None:
        for index, entry in enumerate(self.entries):
            self.full_url(index, entry)
        if self.btype == "document" and self.entries:
            self.document()
        elif self.btype == "message" and self.entries:
            self.message()
        self.reported = {issue.expression for issue in self.issues}  # said once
        for index, entry in enumerate(self.entries):
            resource = entry.get("resource")
            if type(resource) is not dict:
                continue
            if self.btype not in _TRANSACTIONAL:
                self.reference_types(index, entry, resource, f"Bundle.entry[{index}].resource")
            elif self.btype in ("transaction", "batch"):
                self._walk_urns(resource, f"Bundle.entry[{index}].resource")

    def full_url(self, index: int, entry: dict[str, Any]) -> None:
        """fullUrl is the entry's identity: absolute, agreeing with a RESTful id, present outside
        transactions/batches (bundle.html#bundle-unique; required from R4 on by the reference)."""
        path = f"Bundle.entry[{index}]"
        full_url = entry.get("fullUrl")
        resource = entry.get("resource")
        if full_url is None:
            # An OperationOutcome returned with search results (search.mode = outcome) has no
            # identity; the spec's own example (Bundle-bundle-search-warning) has no fullUrl there.
            search = entry.get("search")
            outcome = type(search) is dict and search.get("mode") == "outcome"
            if self.btype not in _TRANSACTIONAL and self.btype and not outcome:
                self.issues.append(
                    _error(
                        path,
                        "Except in transactions and batches, each Bundle entry needs a fullUrl, the identity "
                        "of its resource",
                        "Trừ giao dịch (transaction) và lô (batch), mỗi mục của Bundle cần fullUrl, định danh "
                        "của tài nguyên trong mục",
                    )
                )
            return
        if type(full_url) is not str:
            return
        if not is_absolute_url(full_url):
            self.issues.append(
                _error(
                    f"{path}.fullUrl",
                    f"Bundle.entry.fullUrl must be an absolute URL (or urn:uuid / urn:oid), not '{full_url}'",
                    f"Bundle.entry.fullUrl phải là URL tuyệt đối (hoặc urn:uuid / urn:oid), không phải '{full_url}'",
                )
            )
            return
        if type(resource) is not dict or _restful().fullmatch(full_url) is None:
            return
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if rid is None:
            self.issues.append(
                _error(
                    f"{path}.fullUrl",
                    f"The fullUrl '{full_url}' is a RESTful URL, so the resource must have the id it ends with",
                    f"fullUrl '{full_url}' là URL RESTful nên tài nguyên phải có id trùng với phần cuối của nó",
                )
            )
        elif not full_url.endswith(f"/{rtype}/{rid}"):
            self.issues.append(
                _error(
                    f"{path}.fullUrl",
                    f"The fullUrl '{full_url}' is a RESTful URL, so it must end with the resource's type and "
                    f"id (/{rtype}/{rid})",
                    f"fullUrl '{full_url}' là URL RESTful nên phải kết thúc bằng kiểu và id của tài nguyên "
                    f"(/{rtype}/{rid})",
                )
            )

    # Document and message: the references of the Composition / MessageHeader must resolve in the
    # Bundle (documents.html#content: "the document ... contains all the resources it references").

    def document(self) -> None:
        composition = self.entries[0].get("resource")
        if type(composition) is not dict or composition.get("resourceType") != "Composition":
            return  # bdl-11 reports it
        base = "Bundle.entry[0].resource"
        for name in ("subject", "encounter", "custodian", "author"):
            self.refs_of(composition, name, base)
        for name, part in (("attester", "party"), ("event", "detail")):
            items = composition.get(name)
            if type(items) is list:
                for i, item in enumerate(items):
                    if type(item) is dict:
                        self.refs_of(item, part, f"{base}.{name}[{i}]")
        self.sections(composition, base)

    def sections(self, parent: dict[str, Any], path: str) -> None:
        sections = parent.get("section")
        if type(sections) is not list:
            return
        for i, section in enumerate(sections):
            if type(section) is dict:
                spath = f"{path}.section[{i}]"
                for name in ("author", "focus", "entry"):
                    self.refs_of(section, name, spath)
                self.sections(section, spath)

    def message(self) -> None:
        header = self.entries[0].get("resource")
        if type(header) is not dict or header.get("resourceType") != "MessageHeader":
            return  # bdl-12 reports it
        self.refs_of(header, "focus", "Bundle.entry[0].resource")

    def refs_of(self, obj: dict[str, Any], name: str, path: str) -> None:
        value = obj.get(name)
        if type(value) is dict:
            self.must_resolve(value, f"{path}.{name}")
        elif type(value) is list:
            for i, item in enumerate(value):
                if type(item) is dict:
                    self.must_resolve(item, f"{path}.{name}[{i}]")

    def must_resolve(self, ref: dict[str, Any], path: str) -> None:
        """The reference's resolution inside the Bundle, from the first entry's fullUrl."""
        reference = ref.get("reference")
        if type(reference) is not str or reference.startswith("#"):
            return
        reference = reference.split("#", 1)[0]
        first = self.entries[0]
        found: list[int] | None
        if is_absolute_url(reference):
            found = self.by_full_url.get(reference)
        else:
            found = None
            full_url, resource = first.get("fullUrl"), first.get("resource")
            suffix = f"{resource.get('resourceType')}/{resource.get('id')}" if type(resource) is dict else ""
            # Relative to a RESTful fullUrl: the same server base. Otherwise (urn:uuid, no fullUrl, a
            # fullUrl that does not end with the Composition's own Type/id) nothing is found, even if
            # an entry has that Type/id: a relative reference means nothing without a base.
            if type(full_url) is str and _restful().fullmatch(full_url) and full_url.endswith(suffix):
                found = self.by_full_url.get(full_url[: len(full_url) - len(suffix)] + reference)
        if found is not None and len(found) == 1:
            return
        if found:
            en = f"'{reference}' matches {len(found)} entries of the document Bundle; it must identify one"
            vi = f"'{reference}' khớp {len(found)} mục của Bundle tài liệu; tham chiếu phải xác định đúng một mục"
        elif not is_absolute_url(reference) and self.by_type_id.get(_type_id(reference)):
            en = (
                f"Can't find '{reference}' in the document Bundle: an entry has that type and id, but a relative "
                "reference resolves against the fullUrl's base, and no entry has the resulting fullUrl"
            )
            vi = (
                f"Không tìm thấy '{reference}' trong Bundle tài liệu: có mục cùng kiểu và id, nhưng tham chiếu "
                "tương đối được giải theo gốc của fullUrl và không mục nào có fullUrl tương ứng"
            )
        else:
            en = f"Can't find '{reference}' in the document Bundle; a document must contain what it references"
            vi = f"Không tìm thấy '{reference}' trong Bundle tài liệu; tài liệu phải chứa mọi tài nguyên nó tham chiếu"
        if self.btype == "message":
            en, vi = en.replace("document Bundle", "message Bundle"), vi.replace("Bundle tài liệu", "Bundle thông điệp")
        self.issues.append(_error(f"{path}.reference", en, vi))

    # Any entry of a non-transactional Bundle: a relative Type/id reference from an entry whose
    # fullUrl is a urn resolves to urn:…:id; the entry found must then be of that Type.

    def reference_types(self, index: int, entry: dict[str, Any], value: Any, path: str) -> None:
        full_url = entry.get("fullUrl")
        if type(full_url) is not str or not full_url.startswith("urn:"):
            return
        base = full_url[: full_url.rfind(":") + 1]
        for reference, where in _references(value, path):
            if reference.count("/") == 1 and not is_absolute_url(reference):
                self._urn_target(reference, base, where)

    # A transaction or batch: the server resolves each urn:uuid / urn:oid reference to the entry with
    # that fullUrl (a urn is no address it could look up elsewhere), so one that names no entry is an
    # error. (A collection may hold one, as the reference validator allows; documents and messages
    # have their own rules above.)

    def _walk_urns(self, value: Any, path: str) -> None:
        for reference, where in _references(value, path):
            if (
                reference.startswith(("urn:uuid:", "urn:oid:"))
                and reference not in self.by_full_url
                and (where,) not in self.reported
            ):
                self.issues.append(
                    _error(
                        where,
                        f"The reference '{reference[:120]}' names no entry of the Bundle: a urn reference must be "
                        "the fullUrl of an entry (a urn cannot be looked up elsewhere)",
                        f"Tham chiếu '{reference[:120]}' không trỏ tới mục nào của Bundle: tham chiếu urn phải là "
                        "fullUrl của một mục (urn không tra cứu được ở nơi khác)",
                    )
                )

    def _urn_target(self, reference: str, base: str, path: str) -> None:
        rtype, rid = reference.split("/")
        for index in self.by_full_url.get(base + rid, ()):
            target = self.entries[index].get("resource")
            if type(target) is dict and target.get("resourceType") != rtype:
                found = target.get("resourceType")
                self.issues.append(
                    _error(
                        path,
                        f"The reference '{reference}' resolves in the Bundle to {base}{rid}, which is a {found}, "
                        f"not a {rtype}",
                        f"Tham chiếu '{reference}' trỏ tới {base}{rid} trong Bundle, là {found} chứ không phải {rtype}",
                    )
                )


def _references(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(reference, location of its ``reference`` element) of every Reference in an entry's resource,
    not inside nested resources (a nested Bundle's or a contained resource's references are their own)."""
    if type(value) is dict:
        reference = value.get("reference")
        if type(reference) is str:
            yield reference, f"{path}.reference"
        for key, child in value.items():
            if key == "resource" or key == "contained":
                continue
            if type(child) is dict:
                yield from _references(child, f"{path}.{key}")
            elif type(child) is list:
                for i, item in enumerate(child):
                    if type(item) is dict:
                        yield from _references(item, f"{path}.{key}[{i}]")


def _type_id(reference: str) -> str:
    """Type/id of a relative reference (a version suffix dropped), the key of the Type/id index."""
    return "/".join(reference.split("/")[:2])


__all__ = ["check_resource_rules", "is_absolute_url"]
