"""Vietnamese data rules for the validator, claims importer and patient index; pure: stdlib, plus ketnoi.fhir."""
