"""The FHIR packages ketnoi ships, as standard FHIR NPM package archives (``<packageId>-<version>.tgz``).

Each archive is built by a script under ``scripts/`` from its source and is reproducible byte for
byte, so a rebuild shows whether the shipped file is current:

- ``hl7.fhir.vn.core-1.0.0.tgz``: the draft Vietnam Core implementation guide (CC0), converted from
  FHIR XML to JSON with the corrections listed in docs/vn-core-report.md, by
  ``scripts/build_vn_core.py``.
"""
