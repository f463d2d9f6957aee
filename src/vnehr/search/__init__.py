"""FHIR search: index extraction at write time, and (later) parse -> IR -> SQL."""
