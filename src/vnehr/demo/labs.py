"""Laboratory results (LOINC, UCUM, reference ranges) and the DiagnosticReports grouping them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vnehr.demo import systems
from vnehr.demo.chart import Chart, local
from vnehr.demo.encounters import Visit
from vnehr.demo.registry import organization_ref

Resource = dict[str, Any]


@dataclass(frozen=True)
class LabTest:
    code: str
    display: str  # LOINC long common name
    text: str  # the name on a Vietnamese lab report
    unit: str
    ucum: str
    low: float | None
    high: float | None
    decimals: int
    female: tuple[float, float] | None = None  # (low, high) for women, where they differ


# Ranges are those printed by Vietnamese hospital labs (SI units).
TESTS = {
    "glucose": LabTest("14771-0", "Fasting glucose [Moles/volume] in Serum or Plasma",
                       "Glucose máu lúc đói", "mmol/L", "mmol/L", 3.9, 6.4, 1),
    "hba1c": LabTest("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood",
                     "HbA1c", "%", "%", 4.0, 5.6, 1),
    "creatinine": LabTest("14682-9", "Creatinine [Moles/volume] in Serum or Plasma",
                          "Creatinin máu", "µmol/L", "umol/L", 62, 106, 0, female=(44, 80)),
    "alt": LabTest("1742-6",
                   "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
                   "ALT (GPT)", "U/L", "U/L", None, 40, 0),
    "ast": LabTest("1920-8",
                   "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
                   "AST (GOT)", "U/L", "U/L", None, 40, 0),
    "cholesterol": LabTest("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma",
                           "Cholesterol toàn phần", "mmol/L", "mmol/L", None, 5.2, 2),
    "triglyceride": LabTest("14927-8", "Triglyceride [Moles/volume] in Serum or Plasma",
                            "Triglycerid", "mmol/L", "mmol/L", None, 1.7, 2),
    "hdl": LabTest("14646-4", "Cholesterol in HDL [Moles/volume] in Serum or Plasma",
                   "HDL-Cholesterol", "mmol/L", "mmol/L", 1.0, None, 2),
    "ldl": LabTest("22748-8", "Cholesterol in LDL [Moles/volume] in Serum or Plasma",
                   "LDL-Cholesterol", "mmol/L", "mmol/L", None, 3.4, 2),
    "wbc": LabTest("6690-2", "Leukocytes [#/volume] in Blood by Automated count",
                   "Số lượng bạch cầu (WBC)", "G/L", "10*9/L", 4.0, 10.0, 1),
    "rbc": LabTest("789-8", "Erythrocytes [#/volume] in Blood by Automated count",
                   "Số lượng hồng cầu (RBC)", "T/L", "10*12/L", 4.2, 5.4, 2, female=(3.8, 5.0)),
    "hgb": LabTest("718-7", "Hemoglobin [Mass/volume] in Blood",
                   "Huyết sắc tố (HGB)", "g/L", "g/L", 130, 170, 0, female=(120, 150)),
    "hct": LabTest("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count",
                   "Hematocrit (HCT)", "%", "%", 40, 50, 1, female=(36, 46)),
    "plt": LabTest("777-3", "Platelets [#/volume] in Blood by Automated count",
                   "Số lượng tiểu cầu (PLT)", "G/L", "10*9/L", 150, 450, 0),
}  # fmt: skip
# Qualitative tests, answered positive/negative: (LOINC code, LOINC name, Vietnamese name).
CODED_TESTS = {
    "ns1": ("75377-2", "Dengue virus NS1 Ag [Presence] in Serum or Plasma by Immunoassay",
            "Dengue NS1 Ag test nhanh"),
    "hbsag": ("5196-1",
              "Hepatitis B virus surface Ag [Presence] in Serum or Plasma by Immunoassay",
              "HBsAg"),
    "afb": ("11545-1", "Microscopic observation [Identifier] in Specimen by Acid fast stain",
            "Soi đờm nhuộm Ziehl-Neelsen tìm AFB"),
}  # fmt: skip
# Report (panel) codes: LOINC code, name, Vietnamese name, v2-0074 section, its display.
PANELS = {
    "cbc": ("58410-2", "CBC panel - Blood by Automated count",
            "Tổng phân tích tế bào máu ngoại vi", "HM", "Hematology"),
    "lipid": ("57698-3", "Lipid panel with direct LDL - Serum or Plasma",
              "Bộ mỡ máu", "CH", "Chemistry"),
    "chemistry": ("18719-5", "Chemistry studies (set)", "Hóa sinh máu", "CH", "Chemistry"),
    "serology": ("18727-8", "Serology studies (set)", "Miễn dịch", "SR", "Serology"),
    "microbiology": ("18725-2", "Microbiology studies (set)", "Vi sinh", "MB", "Microbiology"),
}  # fmt: skip
INTERPRETATIONS = {"L": "Low", "N": "Normal", "H": "High", "POS": "Positive", "NEG": "Negative"}
ANSWERS = {
    True: ("10828004", "Positive", "Dương tính"),
    False: ("260385009", "Negative", "Âm tính"),
}


def interpretation(code: str) -> list[Resource]:
    return [
        {
            "coding": [
                {
                    "system": systems.V3_INTERPRETATION,
                    "code": code,
                    "display": INTERPRETATIONS[code],
                }
            ]
        }
    ]


def quantity(value: float, unit: str, ucum: str) -> Resource:
    return {"value": value, "unit": unit, "system": systems.UCUM, "code": ucum}


def _observation(
    chart: Chart, visit: Visit, code: str, display: str, text: str, minutes: int
) -> Resource:
    return {
        "resourceType": "Observation",
        "id": chart.new_id(),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": systems.OBSERVATION_CATEGORY,
                        "code": "laboratory",
                        "display": "Laboratory",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": systems.LOINC, "code": code, "display": display}],
            "text": text,
        },
        "subject": chart.subject(),
        "encounter": visit.ref(),
        "effectiveDateTime": visit.at(minutes),
        "issued": visit.at(minutes + 90),
        "performer": [organization_ref(visit.facility)],
    }


def result(chart: Chart, visit: Visit, key: str, value: float, *, minutes: int = 20) -> Resource:
    """A quantitative result, flagged against the (sex-specific) reference range."""
    test = TESTS[key]
    low, high = test.low, test.high
    if test.female and chart.person.sex == "female":
        low, high = test.female
    number: float = round(value, test.decimals) if test.decimals else round(value)
    flag = (
        "L"
        if low is not None and number < low
        else "H"
        if high is not None and number > high
        else "N"
    )
    resource = _observation(chart, visit, test.code, test.display, test.text, minutes)
    resource["valueQuantity"] = quantity(number, test.unit, test.ucum)
    resource["interpretation"] = interpretation(flag)
    bounds: Resource = {}
    if low is not None:
        bounds["low"] = quantity(low, test.unit, test.ucum)
    if high is not None:
        bounds["high"] = quantity(high, test.unit, test.ucum)
    resource["referenceRange"] = [bounds]
    return chart.add(resource)


def detected(
    chart: Chart, visit: Visit, key: str, positive: bool, *, minutes: int = 20
) -> Resource:
    """A qualitative result: positive or negative (SNOMED CT answer)."""
    code, display, text = CODED_TESTS[key]
    answer, answer_display, answer_text = ANSWERS[positive]
    resource = _observation(chart, visit, code, display, text, minutes)
    resource["valueCodeableConcept"] = {
        "coding": [{"system": systems.SNOMED, "code": answer, "display": answer_display}],
        "text": answer_text,
    }
    resource["interpretation"] = interpretation("POS" if positive else "NEG")
    resource["referenceRange"] = [{"text": "Âm tính"}]
    return chart.add(resource)


def report(chart: Chart, visit: Visit, panel: str, results: list[Resource]) -> Resource:
    """A DiagnosticReport grouping `results`, issued when the last of them was."""
    code, display, text, section, section_display = PANELS[panel]
    return chart.add(
        {
            "resourceType": "DiagnosticReport",
            "id": chart.new_id(),
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": systems.V2_DIAGNOSTIC_SERVICE,
                            "code": section,
                            "display": section_display,
                        }
                    ]
                }
            ],
            "code": {
                "coding": [{"system": systems.LOINC, "code": code, "display": display}],
                "text": text,
            },
            "subject": chart.subject(),
            "encounter": visit.ref(),
            "effectiveDateTime": results[0]["effectiveDateTime"],
            "issued": max(r["issued"] for r in results),
            "performer": [organization_ref(visit.facility)],
            "result": [local(r) for r in results],
        }
    )


def panel(
    chart: Chart, visit: Visit, name: str, values: dict[str, float], *, minutes: int = 20
) -> list[Resource]:
    """Results for every test in `values`, and their report."""
    results = [result(chart, visit, key, v, minutes=minutes) for key, v in values.items()]
    report(chart, visit, name, results)
    return results
