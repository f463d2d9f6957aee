"""Readers of published code systems and catalogues: LOINC, ICD-10, the national lab catalogue."""

from __future__ import annotations

from vnehr.terminology.model import CodeSystemContent, Json


def shipped(catalogue_url: str | None = None) -> list[tuple[CodeSystemContent, list[Json]]]:
    """The content vnehr ships (terminology/data): the LOINC subset, the ICD-10 demo subset
    with Vietnamese displays, and the sample national lab catalogue with its value sets and
    its map to LOINC; each with the resources to store alongside."""
    from vnehr.terminology.sources.catalogue import sample_catalogue
    from vnehr.terminology.sources.icd10 import icd10_demo
    from vnehr.terminology.sources.loinc import shipped_loinc

    catalogue = sample_catalogue(catalogue_url)
    return [
        (shipped_loinc(), []),
        (icd10_demo(), []),
        (catalogue.code_system, [*catalogue.value_sets, catalogue.concept_map]),
    ]
