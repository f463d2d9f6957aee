"""vnehr: a FHIR R4 server and the national EHR services around it."""

__version__ = "0.1.0"
