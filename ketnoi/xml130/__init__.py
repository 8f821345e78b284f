"""Reader of the Ministry of Health claims XML (QĐ 130/QĐ-BYT as amended by QĐ 4750/QĐ-BYT); see docs/xml130.md.

Standard library, defusedxml and ketnoi.vn only: this package reads, checks and writes the files as plain
records; mapping them to FHIR is ketnoi.claims's job.
"""
