"""What the terminology operations share (docs/terminology.md): their parameters, read the same way
from a GET query string or a POSTed Parameters resource, and the small pieces of their answers.

Parameters are strict: a name the operation does not define is a 400 naming the ones it takes, so a
misspelt ``diplayLanguage`` is not silently ignored (a terminology answer that looks right but is not
is worse than an error). Every refusal is a 400 OperationOutcome in English and Vietnamese.
"""

from __future__ import annotations

from typing import Any

from ketnoi.fhir.outcome import FhirError, bad_request, not_found
from ketnoi.fhir.resource import loads
from ketnoi.interactions.repository import Repository, check_id
from ketnoi.interactions.request import FhirRequest
from ketnoi.terminology.expand import require_codes

_IGNORED = frozenset({"_format", "_pretty", "_summary", "_elements"})
TRANSLATION_URL = "http://hl7.org/fhir/StructureDefinition/translation"


class Params:
    """One operation's parameters: ``(name, value)`` where a value is text (primitives) or a dict
    (a Coding, a CodeableConcept, a resource)."""

    def __init__(self, request: FhirRequest, operation: str, allowed: frozenset[str]) -> None:
        self.operation = operation
        self.items: list[tuple[str, str | dict[str, Any]]] = [(k, v) for k, v in request.query if k not in _IGNORED]
        body = request.body
        if request.method == "POST" and body is not None:
            if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
                raise bad_request(
                    f"${operation} with POST takes a Parameters resource",
                    f"${operation} với POST nhận một tài nguyên Parameters",
                )
            for param in body.get("parameter") or ():
                if isinstance(param, dict) and isinstance(param.get("name"), str):
                    self.items.append((param["name"], _value(param, operation)))
        unknown = sorted({name for name, _ in self.items} - allowed)
        if unknown:
            names = ", ".join(sorted(allowed))
            raise bad_request(
                f"${operation} does not take the parameter '{unknown[0][:60]}' (it takes: {names})",
                f"${operation} không nhận tham số '{unknown[0][:60]}' (các tham số nhận được: {names})",
            )

    def text(self, name: str) -> str | None:
        """The one text value of ``name`` (None when absent); 400 when repeated or not text."""
        values = [v for k, v in self.items if k == name]
        if not values:
            return None
        if len(values) > 1 or not isinstance(values[0], str):
            raise self.invalid(name, "one text value", "một giá trị văn bản")
        return values[0]

    def texts(self, name: str) -> list[str]:
        return [v for k, v in self.items if k == name and isinstance(v, str)]

    def structure(self, name: str) -> dict[str, Any] | None:
        """The one Coding / CodeableConcept / resource value of ``name`` (POST only)."""
        values = [v for k, v in self.items if k == name]
        if not values:
            return None
        if len(values) > 1 or not isinstance(values[0], dict):
            raise self.invalid(name, "one structured value (POST a Parameters)", "một giá trị có cấu trúc (POST)")
        return values[0]

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        if not value.isdigit() or len(value) > 9:
            raise self.invalid(name, "a whole number ≥ 0", "một số nguyên ≥ 0")
        return int(value)

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        if value not in ("true", "false"):
            raise self.invalid(name, "true or false", "true hoặc false")
        return value == "true"

    def invalid(self, name: str, en: str, vi: str) -> FhirError:
        return bad_request(
            f"${self.operation}: the parameter '{name}' must be {en}",
            f"${self.operation}: tham số '{name}' phải là {vi}",
        )

    def require(self, name: str, value: object) -> None:
        if value is None or value == "":
            raise bad_request(
                f"${self.operation} needs the parameter '{name}'",
                f"${self.operation} cần tham số '{name}'",
                code="required",
            )


def _value(param: dict[str, Any], operation: str) -> str | dict[str, Any]:
    if isinstance(param.get("resource"), dict):
        return dict(param["resource"])
    values = [v for k, v in param.items() if k.startswith("value")]
    if len(values) == 1:
        value = values[0]
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return str(value)
        if isinstance(value, dict):
            return value
    raise bad_request(
        f"${operation}: the parameter '{str(param.get('name'))[:60]}' has no usable value",
        f"${operation}: tham số '{str(param.get('name'))[:60]}' không có giá trị dùng được",
    )


def stored(repo: Repository, rtype: str, id: str) -> dict[str, Any]:
    """The instance an instance-level call names, read with the caller's access (404/410 as a read)."""
    check_id(id)
    found = loads(repo.read(rtype, id).content or b"{}")
    if not isinstance(found, dict):
        raise bad_request(f"{rtype}/{id} cannot be read", f"Không đọc được {rtype}/{id}")
    return found


def coding_parts(coding: dict[str, Any] | None) -> tuple[str | None, str | None, str | None]:
    """(system, code, display) of a Coding value."""
    if coding is None:
        return None, None, None
    got = [coding.get(k) for k in ("system", "code", "display")]
    return tuple(v if isinstance(v, str) else None for v in got)  # type: ignore[return-value]


def pick_display(concept: dict[str, Any], language: str | None) -> str | None:
    """The display of ``concept``, or its designation in ``language`` when asked for and present."""
    if language:
        for d in concept.get("designation") or ():
            lang = d.get("language") if isinstance(d, dict) else None
            if not isinstance(lang, str) or lang.split("-")[0] != language.split("-")[0]:
                continue
            if isinstance(d.get("value"), str) and not _is_no_diacritics(d):
                return str(d["value"])
    display = concept.get("display")
    return display if isinstance(display, str) else None


def _is_no_diacritics(designation: dict[str, Any]) -> bool:
    # The "khong-dau" designation is vi too, but never the display a Vietnamese reader wants.
    use = designation.get("use")
    return isinstance(use, dict) and use.get("code") == "khong-dau"


def code_system_or_404(terminology: Any, url: str, version: str | None) -> dict[str, Any]:
    cs = terminology.code_system(url, version)
    label = f"{url}|{version}" if version else url
    if cs is None:
        raise not_found(
            f"CodeSystem '{label[:200]}' is not known to this server",
            f"Máy chủ này không biết CodeSystem '{label[:200]}'",
        )
    require_codes(cs, label)
    return dict(cs)


def translated(name: str, en: str, vi: str) -> dict[str, Any]:
    """A ``valueString`` parameter in English, carrying its Vietnamese as the standard translation
    extension: clients that do not know it still get a plain message."""
    extension = [{"url": "lang", "valueCode": "vi"}, {"url": "content", "valueString": vi}]
    return {
        "name": name,
        "valueString": en,
        "_valueString": {"extension": [{"url": TRANSLATION_URL, "extension": extension}]},
    }
