"""FHIR implementation-guide packages: reading NPM package archives (``npm``), installing their
conformance resources into a database through the write path (``install``), and the ``ketnoi ig``
commands (``commands``). The packages ketnoi ships are in ``ketnoi.fhir.packages``, available in
every database without being installed. Decisions: docs/adr/0019-ig-packages.md.
"""
