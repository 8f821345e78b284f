"""The claims XML of QĐ 130/QĐ-BYT (as amended by QĐ 4750/QĐ-BYT) as FHIR R4, both ways (docs/xml130.md).

``ketnoi.xml130`` reads and writes the files; this package maps a visit's tables to FHIR resources that
conform to VN Core (``to_fhir``), imports them through the repository's write path (``importer``) and maps
stored resources back to tables (``from_fhir``).
"""
