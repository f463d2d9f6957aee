"""FHIR operations, declared once as data (registry.py), one module per operation."""
