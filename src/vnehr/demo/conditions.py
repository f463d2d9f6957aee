"""Conditions coded in ICD-10, with the Vietnamese display and an English translation."""

from __future__ import annotations

from datetime import date
from typing import Any

from vnehr.demo import systems
from vnehr.demo.chart import TODAY, Chart
from vnehr.demo.encounters import Visit, diagnose
from vnehr.demo.registry import practitioner_ref

Resource = dict[str, Any]

# code: (Vietnamese display, after the MoH Vietnamese edition of ICD-10; WHO English title)
ICD10 = {
    "I10": ("Bệnh tăng huyết áp vô căn (nguyên phát)", "Essential (primary) hypertension"),
    "E11": ("Bệnh đái tháo đường không phụ thuộc insulin", "Type 2 diabetes mellitus"),
    "E78.5": ("Tăng lipid máu, không đặc hiệu", "Hyperlipidaemia, unspecified"),
    "B18.1": (
        "Viêm gan virus B mạn tính, không có tác nhân delta",
        "Chronic viral hepatitis B without delta-agent",
    ),
    "J45.9": ("Hen, không đặc hiệu", "Asthma, unspecified"),
    "A90": ("Sốt Dengue [sốt Dengue cổ điển]", "Dengue fever [classical dengue]"),
    "A91": ("Sốt xuất huyết Dengue", "Dengue haemorrhagic fever"),
    "J18.9": ("Viêm phổi, không đặc hiệu", "Pneumonia, unspecified"),
    "B08.4": (
        "Viêm miệng có mụn nước do virus đường ruột kèm phát ban (bệnh tay chân miệng)",
        "Enteroviral vesicular stomatitis with exanthem",
    ),
    "A15.0": (
        "Lao phổi, xác định bằng soi đờm có hoặc không có nuôi cấy",
        "Tuberculosis of lung, confirmed by sputum microscopy with or without culture",
    ),
    "K29.7": ("Viêm dạ dày, không đặc hiệu", "Gastritis, unspecified"),
    "J06.9": (
        "Nhiễm trùng đường hô hấp trên cấp, không đặc hiệu",
        "Acute upper respiratory infection, unspecified",
    ),
    "A09": (
        "Viêm dạ dày ruột và viêm đại tràng khác do nhiễm trùng và không rõ nguồn gốc",
        "Other gastroenteritis and colitis of infectious and unspecified origin",
    ),
    "Z00.0": ("Khám sức khỏe tổng quát", "General medical examination"),
}
CHRONIC = frozenset({"I10", "E11", "E78.5", "B18.1", "J45.9"})


def icd10(code: str) -> Resource:
    """An ICD-10 coding: Vietnamese `display`, English through the translation extension."""
    vi, en = ICD10[code]
    return {
        "system": systems.ICD10,
        "code": code,
        "display": vi,
        "_display": {
            "extension": [
                {
                    "url": systems.TRANSLATION,
                    "extension": [
                        {"url": "lang", "valueCode": "en"},
                        {"url": "content", "valueString": en},
                    ],
                }
            ]
        },
    }


def condition(
    chart: Chart, visit: Visit, code: str, *, onset: str | None = None, abated: date | None = None
) -> Resource:
    """A Condition first recorded at `visit` and listed among its diagnoses.

    Chronic diseases go on the problem list and stay active; acute ones are encounter
    diagnoses, resolved when `abated` is given.
    """
    chronic = code in CHRONIC
    if abated is not None and abated >= TODAY:
        abated = None  # still ill on the day the population is seen
    category = "problem-list-item" if chronic else "encounter-diagnosis"
    status = "resolved" if abated else "active"
    resource: Resource = {
        "resourceType": "Condition",
        "id": chart.new_id(),
        "clinicalStatus": {"coding": [{"system": systems.CONDITION_CLINICAL, "code": status}]},
        "verificationStatus": {
            "coding": [{"system": systems.CONDITION_VERIFICATION, "code": "confirmed"}]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": systems.CONDITION_CATEGORY,
                        "code": category,
                        "display": "Problem List Item" if chronic else "Encounter Diagnosis",
                    }
                ]
            }
        ],
        "code": {"coding": [icd10(code)], "text": ICD10[code][0]},
        "subject": chart.subject(),
        "encounter": visit.ref(),
        "onsetDateTime": onset or visit.at(),
        "recordedDate": visit.at(10),
        "recorder": practitioner_ref(visit.clinician),
    }
    if abated:
        resource["abatementDateTime"] = abated.isoformat()
    chart.add(resource)
    diagnose(visit, resource)
    return resource
