"""HTTP edge (Starlette): HTTP ↔ FhirRequest/FhirResponse. No FHIR rules, no SQL."""
