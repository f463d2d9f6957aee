"""Readers of published code systems and catalogues: LOINC, ICD-10, the national lab catalogue."""
