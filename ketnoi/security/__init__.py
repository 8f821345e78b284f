"""Sign-in and the OAuth 2 / SMART on FHIR authorization server, over the store.

Accounts, OAuth clients, signing keys, authorization codes and refresh tokens live in the store's
``security_record`` table; the cryptography and protocol checks come from ``ketnoi.auth`` (pure).
The HTTP endpoints (``ketnoi.api``) and the CLI (``ketnoi.cli``) are built on this package.
"""
