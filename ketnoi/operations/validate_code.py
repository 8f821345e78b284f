"""``CodeSystem/$validate-code`` and ``ValueSet/$validate-code``
(http://hl7.org/fhir/R4/codesystem-operation-validate-code.html, valueset-operation-validate-code.html).

The code is ``code`` (+ ``system`` for a ValueSet; for a CodeSystem ``url`` or ``system`` names it),
a ``coding``, or a ``codeableConcept`` (valid when one of its codings is). The CodeSystem is ``url``
or the instance; the ValueSet is ``url`` (+ ``valueSetVersion``), a posted ``valueSet`` or the
instance. The answer is a Parameters with ``result``, ``message`` and the right ``display``.

Decisions (docs/terminology.md):

- ``message`` is English; its Vietnamese rides on it as the standard ``translation`` extension
  (http://hl7.org/fhir/StructureDefinition/translation), since a Parameters has one ``message``;
- a right code with a wrong display is ``result`` true with a message saying the right display, as
  the R4 reference server answers (a display is not part of a code's identity);
- a code or system that is not known is ``result`` false with a message (not an error): the question
  was answered. An unknown CodeSystem named by ``url`` at the CodeSystem level is a 404, as ``$lookup``.
"""

from __future__ import annotations

from typing import Any

from ketnoi.fhir.outcome import bad_request
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.operations.expand import value_set_source
from ketnoi.operations.terminology_common import Params, code_system_or_404, coding_parts, stored, translated
from ketnoi.search.normalize import fold
from ketnoi.terminology.expand import Hierarchy, expand

_ALLOWED = frozenset(
    {"url", "system", "systemVersion", "version", "code", "display", "coding", "codeableConcept", "valueSet",
     "valueSetVersion", "displayLanguage", "abstract", "context", "date", "codeSystem"}
)  # fmt: skip
_SCAN_LIMIT = 100_000  # membership needs the whole expansion, but nothing of it is sent back


def _codings(params: Params, system: str | None) -> list[tuple[str | None, str, str | None]]:
    """(system, code, display) to try, in order; 400 when none is given."""
    out: list[tuple[str | None, str, str | None]] = []
    code = params.text("code")
    if code:
        out.append((system, code, params.text("display")))
    coding = params.structure("coding")
    concept = params.structure("codeableConcept")
    for c in [coding] if coding else (concept or {}).get("coding") or ():
        c_system, c_code, c_display = coding_parts(c if isinstance(c, dict) else None)
        if c_code:
            out.append((c_system, c_code, c_display))
    if not out:
        raise bad_request(
            f"${params.operation} needs a code, a coding or a codeableConcept",
            f"${params.operation} cần code, coding hoặc codeableConcept",
            code="required",
        )
    return out


def _display_check(concept: dict[str, Any], display: str | None) -> tuple[str | None, tuple[str, str] | None]:
    """(the right display, a warning when the given one is none of its display and designations)."""
    right = concept.get("display") if isinstance(concept.get("display"), str) else None
    if display is None or right is None:
        return right, None
    known = [right, *(d.get("value") for d in concept.get("designation") or () if isinstance(d, dict))]
    # Compared folded: "Phuong Ba Dinh" for "Phường Ba Đình" is the same name typed without diacritics.
    if any(isinstance(k, str) and fold(k) == fold(display) for k in known):
        return right, None
    return right, (
        f"The display '{display[:100]}' is not the display of this code; it is '{right[:100]}'",
        f"Tên hiển thị '{display[:100]}' không đúng với mã này; tên đúng là '{right[:100]}'",
    )


def _answer(result: bool, message: tuple[str, str] | None, display: str | None) -> FhirResponse:
    out: list[dict[str, Any]] = [{"name": "result", "valueBoolean": result}]
    if message is not None:
        out.append(translated("message", *message))
    if display is not None:
        out.append({"name": "display", "valueString": display})
    return FhirResponse(200, resource={"resourceType": "Parameters", "parameter": out})


def _in_code_system(tree: Hierarchy, code: str, display: str | None) -> FhirResponse | None:
    concept = tree.concepts.get(code)
    if concept is None:
        return None
    right, warning = _display_check(concept, display)
    return _answer(True, warning, right)


def _code_system(repo: Repository, params: Params, id: str | None) -> FhirResponse:
    if id is not None:
        cs = stored(repo, "CodeSystem", id)
    else:
        url = params.text("url") or params.text("system")
        params.require("url", url)
        cs = code_system_or_404(repo.terminology(), str(url), params.text("version"))
    url = str(cs.get("url", ""))
    tree = Hierarchy(cs)
    tried: list[str] = []
    for system, code, display in _codings(params, url):
        if system not in (None, url):
            continue  # a coding of another system in a CodeableConcept
        answer = _in_code_system(tree, code, display)
        if answer is not None:
            return answer
        tried.append(code)
    what = ", ".join(tried)[:100] or "-"
    return _answer(
        False,
        (
            f"The code '{what}' is not in the CodeSystem '{url[:200]}'",
            f"Mã '{what}' không có trong CodeSystem '{url[:200]}'",
        ),
        None,
    )


def _value_set(repo: Repository, params: Params, id: str | None) -> FhirResponse:
    source, canonical = value_set_source(repo, params, id)
    members = expand(source, canonical, _SCAN_LIMIT)
    tried: list[str] = []
    for system, code, display in _codings(params, params.text("system")):
        if system is None:
            raise bad_request(
                "ValueSet/$validate-code needs the system of the code (system, or a coding)",
                "ValueSet/$validate-code cần hệ mã của mã (system, hoặc coding)",
                code="required",
            )
        tried.append(f"{system}|{code}")
        if (system, code) in members:
            cs = source.code_system(system)
            concept = Hierarchy(cs).concepts.get(code) if cs is not None else None
            right, warning = _display_check(concept, display) if concept else (None, None)
            return _answer(True, warning, right)
    label = canonical if canonical.startswith("http") else (source.value_set(canonical) or {}).get("url", "ValueSet")
    what = ", ".join(tried)[:200]
    return _answer(
        False,
        (
            f"'{what}' is not in the ValueSet '{str(label)[:200]}'",
            f"'{what}' không thuộc ValueSet '{str(label)[:200]}'",
        ),
        None,
    )


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    params = Params(request, "validate-code", _ALLOWED)
    if rtype == "CodeSystem":
        return _code_system(repo, params, id)
    return _value_set(repo, params, id)


OPERATION = Operation(
    name="validate-code",
    handler=handle,
    levels=frozenset({"type", "instance"}),
    types=frozenset({"CodeSystem", "ValueSet"}),
    methods=frozenset({"GET", "POST"}),
    write=False,
    access="read",  # checks a code against shared reference data; an instance needs read permission
    definition={
        "name": "validate-code",
        "definition": "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code",
    },
)
