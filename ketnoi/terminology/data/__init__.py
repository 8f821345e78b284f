"""The Vietnamese CodeSystems and ConceptMap ketnoi ships, as gzip'd JSON arrays of FHIR R4 resources.

Built by ``scripts/build_vn_terminology.py`` (do not edit by hand); read by :mod:`ketnoi.terminology.vn`;
sources, counts and known gaps in docs/vn-code-systems.md.
"""
