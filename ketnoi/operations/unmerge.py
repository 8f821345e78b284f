"""``POST Patient/$unmerge``: undo a ``$merge`` exactly (:mod:`ketnoi.mpi.merge`).

Parameters: ``provenance`` (valueReference ``Provenance/ID``, the merge's record, as ``$merge`` wrote it),
or ``source-patient`` (valueReference: the latest merge of that Patient). Every resource the merge changed
is put back to its version before the merge, as a new version (history is kept), in one transaction with
the caller's rights; if any of them changed since, nothing is undone (409, naming it). The answer is a
Parameters with ``outcome`` and ``result`` (the target Patient as restored).
"""

from __future__ import annotations

from ketnoi.fhir.outcome import bad_request
from ketnoi.interactions.operation import Operation
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest, FhirResponse
from ketnoi.mpi import merge
from ketnoi.operations.merge import answer, parameters, patient_id, refuse_patients


def handle(repo: Repository, request: FhirRequest, rtype: str | None, id: str | None) -> FhirResponse:
    refuse_patients(repo, "unmerge")
    params = parameters(request.body)
    ref = (params.get("provenance", {}).get("valueReference") or {}).get("reference")
    if ref is not None:
        if not isinstance(ref, str) or not ref.startswith("Provenance/") or ref.count("/") != 1:
            raise bad_request(
                f"'provenance' must reference Provenance/ID, not {ref!r}", "'provenance' phải là Provenance/ID"
            )
        record = ref.removeprefix("Provenance/")
    else:
        record = merge.find_merge(repo, patient_id(repo, params, "source-patient"))
    restored = merge.unmerge(repo, record)
    return answer(request.body, f"The merge recorded by Provenance/{record} was undone", restored)


OPERATION = Operation(
    name="unmerge",
    handler=handle,
    levels=frozenset({"type"}),
    types=frozenset({"Patient"}),
    methods=frozenset({"POST"}),
    write=True,
    access="read",  # every write it makes passes the caller's write scopes and ownership on its own
    definition={"name": "unmerge", "definition": "https://fhir.ketnoi.vn/OperationDefinition/Patient-unmerge"},
)
