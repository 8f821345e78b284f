"""FHIR RESTful interactions, transport-agnostic: FhirRequest in, FhirResponse out."""
