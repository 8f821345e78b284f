"""Authentication and authorization building blocks (SMART on FHIR 2, OAuth 2, accounts).

Pure logic only: no database, no web framework. The token endpoint, sign-in pages and the
enforcement point that every request passes through are built on top of these modules.
"""
