"""Canonical URLs of the code systems the national services rely on."""

from __future__ import annotations

LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
# The Ministry of Health's national catalogue of lab and paraclinical indicators (QĐ
# 1227/QĐ-BYT): the default canonical URL; deployments set VNEHR_LAB_CATALOGUE_URL.
CATALOGUE_URL = "https://fhir.moh.gov.vn/CodeSystem/lab-catalogue"
