"""Where tokens are for and who issues them: the audience is the server's public FHIR base, the
issuer the same URL ending in ``/auth`` (``http://h:8080/fhir`` → ``http://h:8080/auth``). The CLI
signs with exactly these and the server verifies exactly these; a request's Host header never
decides them (a forged header must not make a token for another server acceptable here)."""

from __future__ import annotations

from ketnoi import config


def fhir_base(settings: config.Settings) -> str:
    """The FHIR base URL: ``base_url`` if set, else from the host and port the server listens on."""
    return settings.public_base()


issuer_for = config.issuer_of  # one rule, kept in the settings every layer can read
