"""``CodeSystem/$subsumes`` (http://hl7.org/fhir/R4/codesystem-operation-subsumes.html), GET and POST.

Two codes of one CodeSystem (``codeA``/``codeB`` with ``system`` (+ ``version``), ``codingA``/
``codingB``, or the instance ``CodeSystem/[id]/$subsumes``) are compared in its hierarchy, read by
``ketnoi.terminology.expand.Hierarchy`` exactly as the ``:below`` / ``:above`` search modifiers read
it (nested concepts, ``parent`` / ``subsumedBy`` / ``child`` properties): ``equivalent`` (the same
code), ``subsumes`` (B is below A), ``subsumed-by`` (A is below B) or ``not-subsumed``. A code that
is not in the CodeSystem is a 404 naming it; codings of two different systems are a 400.
"""

from __future__ import annotations

from ketnoi.fhir.outcome import bad_request, not_found
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.operations.terminology_common import Params, code_system_or_404, coding_parts, stored
from ketnoi.terminology.expand import Hierarchy

_ALLOWED = frozenset({"codeA", "codeB", "system", "version", "codingA", "codingB"})


def outcome(tree: Hierarchy, a: str, b: str) -> str:
    if a == b:
        return "equivalent"
    if b in tree.descendants(a):
        return "subsumes"
    if a in tree.descendants(b):
        return "subsumed-by"
    return "not-subsumed"


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    params = Params(request, "subsumes", _ALLOWED)
    system_a, code_a, _ = coding_parts(params.structure("codingA"))
    system_b, code_b, _ = coding_parts(params.structure("codingB"))
    code_a, code_b = params.text("codeA") or code_a, params.text("codeB") or code_b
    params.require("codeA", code_a)
    params.require("codeB", code_b)
    if id is not None:
        cs = stored(repo, "CodeSystem", id)
        system = str(cs.get("url", ""))
    else:
        system = params.text("system") or system_a or system_b or ""
        params.require("system", system)
        cs = code_system_or_404(repo.terminology(), system, params.text("version"))
    for other in (system_a, system_b):
        if other is not None and other != system:
            raise bad_request(
                f"$subsumes compares two codes of one CodeSystem ('{system[:200]}'), not of '{other[:200]}'",
                f"$subsumes so sánh hai mã của cùng một CodeSystem ('{system[:200]}'), không phải của '{other[:200]}'",
            )
    tree = Hierarchy(cs)
    for code in (str(code_a), str(code_b)):
        if code not in tree.concepts:
            raise not_found(
                f"The code '{code[:100]}' is not in the CodeSystem '{system[:200]}'",
                f"Mã '{code[:100]}' không có trong CodeSystem '{system[:200]}'",
            )
    result = outcome(tree, str(code_a), str(code_b))
    return FhirResponse(
        200, resource={"resourceType": "Parameters", "parameter": [{"name": "outcome", "valueCode": result}]}
    )


OPERATION = Operation(
    name="subsumes",
    handler=handle,
    levels=frozenset({"type", "instance"}),
    types=frozenset({"CodeSystem"}),
    methods=frozenset({"GET", "POST"}),
    write=False,
    access="read",  # compares codes of shared reference data; an instance needs read permission
    definition={"name": "subsumes", "definition": "http://hl7.org/fhir/OperationDefinition/CodeSystem-subsumes"},
)
