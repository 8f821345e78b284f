"""The official R4 examples (tests/data/fhir-r4-examples) and the few that are invalid by the spec."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "fhir-r4-examples" / "json"
FILES = sorted(p.name for p in EXAMPLES.glob("*.json"))

# Official examples that violate the base R4 definitions, with the error we must report for each.
# Checked by hand against the files: the examples are at fault, not the validator.
_NO_BASE = "SearchParameter.base is 1..* but this generated extension SearchParameter has none"
KNOWN_INVALID: dict[str, tuple[str, str]] = {
    # file → (expression of the expected error, reason)
    "Questionnaire-qs1.json": (
        "Questionnaire.item[0].item[0]",
        "display items have no linkId, which is 1..1 on Questionnaire.item",
    ),
    "SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json": (
        "SearchParameter.id",
        "the id is 67 characters long; the id type allows at most 64",
    ),
    **{
        f"SearchParameter-{kind}-extensions-{rtype}-{code}.json": ("SearchParameter", _NO_BASE)
        for kind, rtype in (("codesystem", "CodeSystem"), ("valueset", "ValueSet"))
        for code in ("author", "effective", "end", "keyword", "workflow")
    },
}
