"""Prescriptions (MedicationRequest) of drugs common in Vietnam, coded in ATC and RxNorm."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vnehr.demo import systems
from vnehr.demo.chart import Chart, local
from vnehr.demo.encounters import Visit
from vnehr.demo.labs import quantity
from vnehr.demo.registry import practitioner_ref

Resource = dict[str, Any]

ROUTES = {
    "oral": ("26643006", "Oral route", "Uống"),
    "iv": ("47625008", "Intravenous route", "Tiêm tĩnh mạch"),
    "inhaled": ("447694001", "Respiratory tract route", "Xịt họng"),
}
# Dose units as UCUM annotations, with the Vietnamese word for the unit.
UNITS = {
    "tablet": ("viên", "{tbl}"),
    "capsule": ("viên", "{cap}"),
    "sachet": ("gói", "{sachet}"),
    "vial": ("lọ", "{vial}"),
    "puff": ("nhát xịt", "{puff}"),
}


@dataclass(frozen=True)
class Drug:
    atc: str
    inn: str  # the ATC name
    label: str  # Vietnamese product description, as on a prescription
    unit: str  # key of UNITS
    route: str  # key of ROUTES
    dose: float
    per_day: int
    instruction: str
    rxnorm: tuple[str, str] | None = None  # only where a US clinical drug matches exactly
    as_needed: bool = False


DRUGS = {
    "metformin": Drug("A10BA02", "metformin", "Metformin 500 mg, viên nén", "tablet", "oral", 1, 2,
                      "Uống 1 viên/lần, 2 lần/ngày, sau ăn sáng và tối",
                      ("861007", "metformin hydrochloride 500 MG Oral Tablet")),
    "gliclazide": Drug("A10BB09", "gliclazide", "Gliclazid 30 mg, viên giải phóng có kiểm soát",
                       "tablet", "oral", 1, 1, "Uống 1 viên vào buổi sáng, trước ăn"),
    "amlodipine": Drug("C08CA01", "amlodipine", "Amlodipin 5 mg, viên nén", "tablet", "oral", 1, 1,
                       "Uống 1 viên/ngày vào buổi sáng",
                       ("197361", "amlodipine 5 MG Oral Tablet")),
    "losartan": Drug("C09CA01", "losartan", "Losartan kali 50 mg, viên nén", "tablet", "oral", 1, 1,
                     "Uống 1 viên/ngày vào buổi sáng",
                     ("979492", "losartan potassium 50 MG Oral Tablet")),
    "atorvastatin": Drug("C10AA05", "atorvastatin", "Atorvastatin 20 mg, viên nén", "tablet",
                         "oral", 1, 1, "Uống 1 viên vào buổi tối"),
    "paracetamol": Drug("N02BE01", "paracetamol", "Paracetamol 500 mg, viên nén", "tablet", "oral",
                        1, 4, "Uống 1 viên khi sốt trên 38,5°C, cách nhau ít nhất 6 giờ",
                        ("198440", "acetaminophen 500 MG Oral Tablet"), as_needed=True),
    "paracetamol_child": Drug("N02BE01", "paracetamol",
                              "Paracetamol 250 mg, thuốc bột pha hỗn dịch uống", "sachet", "oral",
                              1, 4, "Uống 1 gói khi sốt trên 38,5°C, cách nhau ít nhất 6 giờ",
                              as_needed=True),
    "amoxicillin": Drug("J01CA04", "amoxicillin", "Amoxicilin 500 mg, viên nang", "capsule", "oral",
                        1, 3, "Uống 1 viên/lần, 3 lần/ngày",
                        ("308191", "amoxicillin 500 MG Oral Capsule")),
    "amoxicillin_child": Drug("J01CA04", "amoxicillin", "Amoxicilin 250 mg, thuốc bột uống",
                              "sachet", "oral", 1, 3, "Uống 1 gói/lần, 3 lần/ngày"),
    "ceftriaxone": Drug("J01DD04", "ceftriaxone", "Ceftriaxon 1 g, bột pha tiêm", "vial", "iv",
                        1, 2, "Tiêm tĩnh mạch chậm 1 lọ/lần, 2 lần/ngày"),
    "omeprazole": Drug("A02BC01", "omeprazole", "Omeprazol 20 mg, viên nang tan trong ruột",
                       "capsule", "oral", 1, 2, "Uống 1 viên/lần, 2 lần/ngày, trước ăn 30 phút"),
    "salbutamol": Drug("R03AC02", "salbutamol", "Salbutamol 100 mcg/liều, bình xịt định liều",
                       "puff", "inhaled", 2, 4, "Xịt 2 nhát khi khó thở", as_needed=True),
    "budesonide_formoterol": Drug("R03AK07", "formoterol and budesonide",
                                  "Budesonid/formoterol 160/4,5 mcg/liều, bình hít", "puff",
                                  "inhaled", 1, 2, "Hít 1 nhát/lần, 2 lần/ngày"),
    "tenofovir": Drug("J05AF07", "tenofovir disoproxil",
                      "Tenofovir disoproxil fumarat 300 mg, viên nén", "tablet", "oral", 1, 1,
                      "Uống 1 viên/ngày"),
    "ors": Drug("A07CA", "oral rehydration salt formulations", "Oresol 245, thuốc bột pha uống",
                "sachet", "oral", 1, 3,
                "Pha 1 gói với 200 ml nước đun sôi để nguội, uống dần sau mỗi lần đi ngoài"),
    "tb_rhze": Drug("J04AM06", "rifampicin, pyrazinamide, ethambutol and isoniazid",
                    "Viên phối hợp chống lao RHZE 150/75/400/275 mg", "tablet", "oral", 3, 1,
                    "Uống 3 viên/lần, 1 lần/ngày, lúc đói"),
}  # fmt: skip


def medication(drug: Drug) -> Resource:
    coding = [{"system": systems.ATC, "code": drug.atc, "display": drug.inn}]
    if drug.rxnorm:
        coding.append({"system": systems.RXNORM, "code": drug.rxnorm[0], "display": drug.rxnorm[1]})
    return {"coding": coding, "text": drug.label}


def prescribe(
    chart: Chart,
    visit: Visit,
    key: str,
    *,
    days: int,
    reason: Resource | None = None,
    active: bool = False,
) -> Resource:
    """A prescription written at `visit` for `days` days; `active` while still being taken."""
    drug = DRUGS[key]
    unit, ucum = UNITS[drug.unit]
    code, display, text = ROUTES[drug.route]
    timing = (
        {"repeat": {"frequency": 1, "period": 24 // drug.per_day, "periodUnit": "h"}}
        if drug.as_needed
        else {"repeat": {"frequency": drug.per_day, "period": 1, "periodUnit": "d"}}
    )
    dosage: Resource = {
        "sequence": 1,
        "text": drug.instruction,
        "timing": timing,
        "route": {
            "coding": [{"system": systems.SNOMED, "code": code, "display": display}],
            "text": text,
        },
        "doseAndRate": [{"doseQuantity": quantity(drug.dose, unit, ucum)}],
    }
    if drug.as_needed:
        dosage["asNeededBoolean"] = True
    setting = "inpatient" if visit.inpatient else "outpatient"
    resource: Resource = {
        "resourceType": "MedicationRequest",
        "id": chart.new_id(),
        "status": "active" if active else "completed",
        "intent": "order",
        "category": [
            {
                "coding": [
                    {
                        "system": systems.MEDICATION_REQUEST_CATEGORY,
                        "code": setting,
                        "display": setting.capitalize(),
                    }
                ]
            }
        ],
        "medicationCodeableConcept": medication(drug),
        "subject": chart.subject(),
        "encounter": visit.ref(),
        "authoredOn": visit.at(30),
        "requester": practitioner_ref(visit.clinician),
        "dosageInstruction": [dosage],
    }
    if reason is not None:
        resource["reasonReference"] = [local(reason)]
    if not visit.inpatient:
        per_day = drug.per_day if not drug.as_needed else max(1, drug.per_day // 2)
        resource["dispenseRequest"] = {
            "quantity": quantity(math.ceil(drug.dose * per_day * days), unit, ucum),
            "expectedSupplyDuration": {
                "value": days,
                "unit": "ngày",
                "system": systems.UCUM,
                "code": "d",
            },
        }
    return chart.add(resource)
