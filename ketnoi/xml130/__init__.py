"""Reader of the Ministry of Health claims XML (QĐ 130/QĐ-BYT as amended by QĐ 4750/QĐ-BYT); see docs/xml130.md.

Standard library and defusedxml only: this package turns files into plain records; mapping them to FHIR is
someone else's job.
"""
