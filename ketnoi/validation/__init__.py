"""Validation of FHIR R4 resources: ``structure.validate`` is the fast structural gate on every write."""

from .structure import validate

__all__ = ["validate"]
