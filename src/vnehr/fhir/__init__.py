"""Pure FHIR knowledge: resources, definitions, validation, patch. No I/O here."""
