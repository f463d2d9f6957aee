"""Periodic health checks (khám sức khỏe định kỳ): measurements, chemistry, lipids, blood count."""

from __future__ import annotations

from vnehr.demo import labs, physiology, vitals
from vnehr.demo.chart import Chart
from vnehr.demo.conditions import icd10
from vnehr.demo.encounters import reason, visit

HEALTH_CHECK = "Khám sức khỏe định kỳ"


def health_check(chart: Chart, chronic: frozenset[str]) -> None:
    """A yearly check-up, as employers must offer; results reflect known chronic disease."""
    rng, person, care = chart.rng, chart.person, chart.care
    choices = [care.centre, care.hospital] + ([care.private] if care.private else [])
    facility = rng.choice(choices)
    v = visit(chart, facility, chart.history_day(), HEALTH_CHECK)
    reason(v, icd10("Z00.0"), "Khám sức khỏe định kỳ")
    metabolic = bool(chronic & {"E11", "I10", "E78.5"})
    height = physiology.height_cm(rng, person)
    vitals.body_measures(
        chart, v, physiology.adult_weight_kg(rng, height, metabolic=metabolic), height
    )
    systolic = rng.gauss(142, 10) if "I10" in chronic else None
    vitals.blood_pressure(chart, v, *physiology.blood_pressure(rng, systolic=systolic))
    chemistry = physiology.chemistry(
        rng, person, diabetic="E11" in chronic, hepatitis="B18.1" in chronic
    )
    labs.panel(chart, v, "chemistry", chemistry, minutes=15)
    labs.panel(chart, v, "lipid", physiology.lipids(rng, high="E78.5" in chronic), minutes=15)
    labs.panel(chart, v, "cbc", physiology.blood_count(rng, person), minutes=15)
