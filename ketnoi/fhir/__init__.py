"""FHIR vocabulary with no I/O: definitions, OperationOutcome, Bundle and reference helpers."""
