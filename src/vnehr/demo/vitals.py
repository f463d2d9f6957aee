"""Vital signs, shaped as the R4 vital signs profiles require (LOINC code, UCUM unit)."""

from __future__ import annotations

from typing import Any

from vnehr.demo import systems
from vnehr.demo.chart import Chart, local
from vnehr.demo.encounters import Visit
from vnehr.demo.labs import interpretation, quantity
from vnehr.demo.registry import practitioner_ref

Resource = dict[str, Any]


def _vital(chart: Chart, code: str, display: str, text: str, when: str) -> Resource:
    return {
        "resourceType": "Observation",
        "id": chart.new_id(),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": systems.OBSERVATION_CATEGORY,
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": systems.LOINC, "code": code, "display": display}],
            "text": text,
        },
        "subject": chart.subject(),
        "effectiveDateTime": when,
    }


def _at_visit(chart: Chart, visit: Visit, code: str, display: str, text: str) -> Resource:
    resource = _vital(chart, code, display, text, visit.at(5))
    resource["encounter"] = visit.ref()
    resource["performer"] = [practitioner_ref(visit.clinician)]
    return resource


def blood_pressure(chart: Chart, visit: Visit, systolic: int, diastolic: int) -> Resource:
    resource = _at_visit(
        chart, visit, "85354-9", "Blood pressure panel with all children optional", "Huyết áp"
    )
    resource["component"] = [
        _component("8480-6", "Systolic blood pressure", "Huyết áp tâm thu", systolic, 140, 90),
        _component("8462-4", "Diastolic blood pressure", "Huyết áp tâm trương", diastolic, 90, 60),
    ]
    return chart.add(resource)


def _component(code: str, display: str, text: str, mmhg: int, high: int, low: int) -> Resource:
    coding = {"system": systems.LOINC, "code": code, "display": display}
    return {
        "code": {"coding": [coding], "text": text},
        "valueQuantity": quantity(mmhg, "mmHg", "mm[Hg]"),
        "interpretation": interpretation("H" if mmhg >= high else "L" if mmhg < low else "N"),
    }


def body_weight(chart: Chart, visit: Visit, kg: float) -> Resource:
    resource = _at_visit(chart, visit, "29463-7", "Body weight", "Cân nặng")
    resource["valueQuantity"] = quantity(round(kg, 1), "kg", "kg")
    return chart.add(resource)


def body_measures(chart: Chart, visit: Visit, kg: float, cm: float) -> list[Resource]:
    """Weight, height and the BMI derived from them."""
    weight = body_weight(chart, visit, kg)
    height = _at_visit(chart, visit, "8302-2", "Body height", "Chiều cao")
    height["valueQuantity"] = quantity(round(cm), "cm", "cm")
    chart.add(height)
    bmi_value = round(
        weight["valueQuantity"]["value"] / (height["valueQuantity"]["value"] / 100) ** 2, 1
    )
    bmi = _at_visit(
        chart, visit, "39156-5", "Body mass index (BMI) [Ratio]", "Chỉ số khối cơ thể (BMI)"
    )
    bmi["valueQuantity"] = quantity(bmi_value, "kg/m2", "kg/m2")
    # WHO Asian cut-offs, used in Vietnam: overweight from 23.
    bmi["interpretation"] = interpretation(
        "L" if bmi_value < 18.5 else "H" if bmi_value >= 23 else "N"
    )
    bmi["derivedFrom"] = [local(weight), local(height)]
    chart.add(bmi)
    return [weight, height, bmi]


def body_temperature(
    chart: Chart, when: str, celsius: float, visit: Visit | None = None
) -> Resource:
    """A temperature, at a visit or reported at home (after a vaccination, for instance)."""
    if visit is not None:
        resource = _at_visit(chart, visit, "8310-5", "Body temperature", "Nhiệt độ")
    else:
        resource = _vital(chart, "8310-5", "Body temperature", "Nhiệt độ", when)
    resource["valueQuantity"] = quantity(round(celsius, 1), "°C", "Cel")
    resource["interpretation"] = interpretation("H" if celsius >= 37.5 else "N")
    return chart.add(resource)
