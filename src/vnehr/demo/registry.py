"""The facility registry as FHIR: Organization, Practitioner and PractitionerRole resources."""

from __future__ import annotations

from typing import Any

from vnehr.demo import systems
from vnehr.demo.facilities import LEVELS, Clinician, Facility
from vnehr.demo.places import address

Resource = dict[str, Any]


def organization_ref(facility: Facility) -> Resource:
    """Registry entries are referred to by type and id: they live in other bundles."""
    return {"reference": f"Organization/{facility.id}", "display": facility.name}


def practitioner_ref(clinician: Clinician) -> Resource:
    return {"reference": f"Practitioner/{clinician.id}", "display": clinician.name.text}


def organization(facility: Facility) -> Resource:
    resource: Resource = {
        "resourceType": "Organization",
        "id": facility.id,
        "extension": [
            {
                "url": systems.FACILITY_LEVEL_EXTENSION,
                "valueCoding": {
                    "system": systems.FACILITY_LEVEL,
                    "code": facility.level,
                    "display": LEVELS[facility.level],
                },
            },
            {
                "url": systems.FACILITY_OWNERSHIP_EXTENSION,
                "valueCoding": {
                    "system": systems.FACILITY_OWNERSHIP,
                    "code": "private" if facility.private else "public",
                    "display": "Tư nhân" if facility.private else "Công lập",
                },
            },
        ],
        "identifier": [
            {
                "use": "secondary",
                "type": {
                    "coding": [
                        {
                            "system": systems.V2_IDENTIFIER_TYPE,
                            "code": "PRN",
                            "display": "Provider number",
                        }
                    ],
                    "text": "Mã cơ sở khám bệnh, chữa bệnh",
                },
                "system": systems.PROVIDER_CODE,
                "value": facility.code,
            }
        ],
        "active": True,
        # Fixed by the VN Core Provider profile (1..1).
        "type": [
            {
                "coding": [
                    {
                        "system": systems.ORGANIZATION_TYPE,
                        "code": "prov",
                        "display": "Healthcare Provider",
                    }
                ],
                "text": "Healthcare Provider",
            }
        ],
        "name": facility.name,
        "address": [address(facility.line, facility.province, facility.ward, use="work")],
    }
    if facility.parent is not None:
        resource["partOf"] = organization_ref(facility.parent)
    return resource


def practitioner(clinician: Clinician) -> Resource:
    return {
        "resourceType": "Practitioner",
        "id": clinician.id,
        "identifier": [
            {
                "use": "secondary",
                "system": systems.EMPLOYEE_NUMBER,
                "value": clinician.employee_number,
            }
        ],
        "active": True,
        "name": [clinician.name.human_name()],
        "gender": clinician.sex,
        "qualification": [{"code": {"text": "Bác sĩ"}, "issuer": {"display": "Bộ Y tế"}}],
    }


def practitioner_role(clinician: Clinician, facility: Facility) -> Resource:
    code, display, department = clinician.specialty
    return {
        "resourceType": "PractitionerRole",
        "id": clinician.role_id,
        "active": True,
        "practitioner": practitioner_ref(clinician),
        "organization": organization_ref(facility),
        "code": [
            {
                "coding": [
                    {"system": systems.PRACTITIONER_ROLE, "code": "doctor", "display": "Doctor"}
                ],
                "text": "Bác sĩ",
            }
        ],
        "specialty": [
            {
                "coding": [{"system": systems.SNOMED, "code": code, "display": display}],
                "text": department,
            }
        ],
    }
