"""FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html): a Parameters resource of operations.

Each ``operation`` parameter has parts ``type`` (add | insert | delete | replace | move),
``path`` (a FHIRPath expression), and, depending on the type, ``name``, ``value``, ``index``,
``source`` and ``destination``. A value is a ``value[x]`` (a datatype), a ``resource``, or nested
``part``s naming the children of an anonymous (backbone) element.

Paths are evaluated with fhirpathpy (R4 model) on a view of the working copy that leaves out the
``_element`` primitive-extension members (fhirpathpy would otherwise list them as extra items and
shift indexes); every selected node is mapped back to its location in the JSON by the node's
property path, so primitives, list items and choice elements (``Patient.deceased`` →
``deceasedBoolean``) can all be changed in place. Whether an added element is a list, and which
``[x]`` suffix a choice value takes, comes from the R4 StructureDefinitions.

Rules (from the specification):

* the path must select a single element, except for ``insert``/``move``, whose path selects the
  items of one list;
* except for ``delete`` (which is then a no-op), it is an error when the path selects nothing;
* ``add`` appends to a list, or sets a non-repeating element that has no value yet;
* ``insert`` needs ``0 <= index <= len(list)``; ``move`` needs source and destination in range.

Errors: 400 ``invalid`` for a body that is not a well-formed FHIRPath Patch (not a Parameters,
unknown parameter or part, a missing part, an unparsable FHIRPath); 422 ``processing`` for an
operation that cannot be applied. Messages name the operation by its 0-based position among the
``Parameters.parameter`` entries.

The package is split by responsibility: :mod:`.model` (errors and the parsed types),
:mod:`.parse` (the Parameters into operations), :mod:`.structure` (StructureDefinition look-ups),
:mod:`.locate` (FHIRPath evaluation and JSON locations), :mod:`.values` (typing ``value`` parts and
writing them into the JSON) and :mod:`.operations` (applying each operation type).
"""

from __future__ import annotations

import copy
from typing import Any

from ketnoi.fhir.fhirpath_patch.model import _Failed, _Malformed
from ketnoi.fhir.fhirpath_patch.operations import _apply
from ketnoi.fhir.fhirpath_patch.parse import _parse
from ketnoi.fhir.outcome import FhirError

__all__ = ["apply_fhirpath_patch"]


# --- entry point ---------------------------------------------------------------------------------


def apply_fhirpath_patch(resource: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Apply a FHIRPath Patch ``Parameters`` resource to a copy of ``resource``; return the copy."""
    try:
        operations = _parse(parameters)
    except _Malformed as exc:
        raise FhirError.of(400, "invalid", exc.en, exc.vi) from None
    result: dict[str, Any] = copy.deepcopy(resource)
    for position, op in enumerate(operations):
        try:
            _apply(result, op)
        except _Malformed as exc:
            status, code = (422, "processing") if isinstance(exc, _Failed) else (400, "invalid")
            label = f"{op.type} {op.path}"
            raise FhirError.of(
                status,
                code,
                f"FHIRPath Patch operation {position} ({label}): {exc.en}",
                f"Thao tác FHIRPath Patch số {position} ({label}): {exc.vi}",
                (f"Parameters.parameter[{position}]",),
            ) from None
    return result
