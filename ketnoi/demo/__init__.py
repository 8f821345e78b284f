"""Deterministic synthetic Vietnamese population and health system as FHIR R4 (``ketnoi demo generate``).

Entry points: ``ketnoi.demo.generate.generate`` / ``iter_resources`` and ``ketnoi.demo.commands.register``.
"""
