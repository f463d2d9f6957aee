"""Fixture people, reused across tests (synthetic; identifiers follow the VN Core draft IG)."""

from __future__ import annotations

from typing import Any

# The VN Core draft IG: national_id is the CCCD (căn cước công dân); citizen_id is the old CMND.
CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"
BHYT = "http://fhir.ehealth.gov.vn/core/sid/insurance_number"
LOINC = "http://loinc.org"


def lan(cccd: str = "001185012345") -> dict[str, Any]:
    """Nguyễn Thị Lan: adult woman from Hà Nội, diabetic."""
    return {
        "resourceType": "Patient",
        "identifier": [
            {"system": CCCD, "value": cccd},
            {"system": BHYT, "value": "DN4010123456789"},
        ],
        "name": [{"family": "Nguyễn", "given": ["Thị", "Lan"], "text": "Nguyễn Thị Lan"}],
        "gender": "female",
        "birthDate": "1985-03-12",
        "address": [{"city": "Hà Nội", "country": "VN"}],
    }


def lan_without_accents() -> dict[str, Any]:
    """Nguyen Thi Lan: the same person typed without accents at a district clinic."""
    return {
        "resourceType": "Patient",
        "name": [{"family": "Nguyen", "given": ["Thi", "Lan"]}],
        "gender": "female",
        "birthDate": "1985",
    }


def duc(cccd: str = "079214000123") -> dict[str, Any]:
    """Trần Văn Đức: a child from TP Hồ Chí Minh."""
    return {
        "resourceType": "Patient",
        "identifier": [{"system": CCCD, "value": cccd}],
        "name": [{"family": "Trần", "given": ["Văn", "Đức"]}],
        "gender": "male",
        "birthDate": "2014-07-01",
    }


def hba1c(patient_ref: str, value: float = 7.2) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "4548-4", "display": "Hemoglobin A1c"}]},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": "2024-03-05T08:30:00+07:00",
        "valueQuantity": {
            "value": value,
            "unit": "%",
            "system": "http://unitsofmeasure.org",
            "code": "%",
        },
    }
