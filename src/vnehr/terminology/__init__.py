"""The terminology service: code systems in concept tables, value sets, concept maps,
the FHIR terminology operations, and the national catalogues (docs/terminology.md)."""
