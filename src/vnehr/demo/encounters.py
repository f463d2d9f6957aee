"""Encounters: outpatient visits (khám ngoại trú) and inpatient stays (điều trị nội trú)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from vnehr.demo import systems
from vnehr.demo.chart import TODAY, Chart, instant, local
from vnehr.demo.facilities import Clinician, Facility
from vnehr.demo.registry import organization_ref, practitioner_ref

Resource = dict[str, Any]

CLASSES = {"AMB": "ambulatory", "IMP": "inpatient encounter"}
DIAGNOSIS_ROLES = {
    "CC": "Chief complaint",
    "AD": "Admission diagnosis",
    "DD": "Discharge diagnosis",
}


@dataclass(frozen=True)
class Visit:
    resource: Resource
    facility: Facility
    clinician: Clinician
    day: date
    start: int  # minutes after midnight on `day`
    inpatient: bool

    def at(self, minutes: int = 0) -> str:
        """The dateTime `minutes` after the start of the encounter."""
        return instant(self.day, self.start + minutes)

    def ref(self) -> Resource:
        return local(self.resource)


def visit(
    chart: Chart,
    facility: Facility,
    day: date,
    kind: str,
    *,
    nights: int = 0,
    clinician: Clinician | None = None,
) -> Visit:
    """An outpatient visit (nights=0) or an inpatient stay of `nights` nights, finished."""
    rng = chart.rng
    inpatient = nights > 0
    if inpatient:
        nights = min(nights, (TODAY - day).days - 1)
        nights = max(nights, 1)
        day = min(day, TODAY - timedelta(days=nights + 1))
    clinician = clinician or facility.clinician(rng)
    start = rng.randrange(7 * 60, 21 * 60 if inpatient else 16 * 60, 5)
    end = (
        nights * 1440 + rng.randrange(9 * 60, 11 * 60, 5)
        if inpatient
        else start + rng.randrange(15, 120, 5)
    )
    identifiers = [
        {
            "use": "official",
            "system": systems.VISIT_NUMBER,
            "value": f"{facility.code}{day:%y%m%d}{rng.randrange(1_000_000):06d}",
        }
    ]
    if inpatient:
        identifiers.append(
            {
                "use": "official",
                "system": systems.MEDICAL_RECORD_NUMBER,
                "value": f"{day.year}.{facility.code}.{rng.randrange(100_000):05d}",
            }
        )
    code = "IMP" if inpatient else "AMB"
    resource: Resource = {
        "resourceType": "Encounter",
        "id": chart.new_id(),
        "identifier": identifiers,
        "status": "finished",
        "class": {"system": systems.V3_ACT_CODE, "code": code, "display": CLASSES[code]},
        "type": [{"text": kind}],
        "subject": chart.subject(),
        "participant": [
            {
                "type": [
                    {
                        "coding": [
                            {
                                "system": systems.V3_PARTICIPATION,
                                "code": "ATND",
                                "display": "attender",
                            }
                        ]
                    }
                ],
                "individual": practitioner_ref(clinician),
            }
        ],
        "period": {"start": instant(day, start), "end": instant(day, end)},
        "serviceProvider": organization_ref(facility),
    }
    if inpatient:
        resource["hospitalization"] = {
            "dischargeDisposition": {
                "coding": [
                    {"system": systems.DISCHARGE_DISPOSITION, "code": "home", "display": "Home"}
                ],
                "text": "Ra viện",
            }
        }
    chart.add(resource)
    return Visit(resource, facility, clinician, day, start, inpatient)


def diagnose(visit: Visit, condition: Resource, role: str = "") -> None:
    """List a Condition among the encounter's diagnoses; the first listed is the main one."""
    diagnoses = visit.resource.setdefault("diagnosis", [])
    role = role or ("DD" if visit.inpatient else "CC")
    diagnoses.append(
        {
            "condition": local(condition),
            "use": {
                "coding": [
                    {
                        "system": systems.DIAGNOSIS_ROLE,
                        "code": role,
                        "display": DIAGNOSIS_ROLES[role],
                    }
                ]
            },
            "rank": len(diagnoses) + 1,
        }
    )


def reason(visit: Visit, coding: Resource, text: str) -> None:
    visit.resource["reasonCode"] = [{"coding": [coding], "text": text}]
