"""ketnoi (kết nối, "connect"): a FHIR R4-native digital-health data platform."""

__version__ = "0.1.0"
FHIR_VERSION = "4.0.1"
