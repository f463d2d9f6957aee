"""Acute episodes: respiratory infections, diarrhoea, gastritis, dengue, pneumonia, HFMD, TB."""

from __future__ import annotations

from datetime import timedelta

from vnehr.demo import labs, physiology, vitals
from vnehr.demo.chart import TODAY, Chart
from vnehr.demo.conditions import condition
from vnehr.demo.encounters import Visit, visit
from vnehr.demo.facilities import Facility
from vnehr.demo.medications import prescribe

OUTPATIENT = "Khám bệnh ngoại trú"
INPATIENT = "Điều trị nội trú"
RAINY_SEASON = (6, 7, 8, 9, 10, 11)  # dengue peaks with the rains
SPRING_AND_AUTUMN = (3, 4, 5, 9, 10, 11)  # the two HFMD waves


def _first_contact(chart: Chart) -> Facility:
    care = chart.care
    if care.private is not None and chart.rng.random() < 0.2:
        return care.private
    return chart.rng.choices((care.station, care.centre), (55, 45))[0]


def _child(chart: Chart) -> bool:
    return chart.person.age < 12


def _weigh_child(chart: Chart, v: Visit) -> None:
    if _child(chart):
        age_days = (v.day - chart.person.birth_date).days
        vitals.body_weight(chart, v, physiology.child_weight_kg(chart.rng, age_days))


def _fever(chart: Chart, v: Visit, low: float = 38.0, high: float = 39.5) -> None:
    vitals.body_temperature(chart, v.at(5), chart.rng.uniform(low, high), v)


def respiratory_infection(chart: Chart) -> None:
    day = chart.history_day()
    v = visit(chart, _first_contact(chart), day, OUTPATIENT)
    _weigh_child(chart, v)
    _fever(chart, v, 37.6, 38.9)
    c = condition(chart, v, "J06.9", abated=day + timedelta(days=7))
    prescribe(chart, v, "paracetamol_child" if _child(chart) else "paracetamol", days=3, reason=c)


def diarrhoea(chart: Chart) -> None:
    day = chart.history_day()
    v = visit(chart, _first_contact(chart), day, OUTPATIENT)
    _weigh_child(chart, v)
    c = condition(chart, v, "A09", abated=day + timedelta(days=5))
    prescribe(chart, v, "ors", days=3, reason=c)


def gastritis(chart: Chart) -> None:
    day = chart.history_day()
    v = visit(chart, chart.care.centre, day, OUTPATIENT)
    c = condition(chart, v, "K29.7", abated=day + timedelta(days=30))
    prescribe(chart, v, "omeprazole", days=28, reason=c)


def hand_foot_mouth(chart: Chart) -> None:
    day = chart.history_day(months=SPRING_AND_AUTUMN)
    v = visit(chart, chart.care.centre, day, OUTPATIENT)
    _weigh_child(chart, v)
    _fever(chart, v, 37.8, 39.0)
    c = condition(chart, v, "B08.4", abated=day + timedelta(days=10))
    prescribe(chart, v, "paracetamol_child", days=3, reason=c)


def dengue(chart: Chart, *, severe: bool) -> None:
    """Dengue: NS1-positive with low platelets; severe cases admitted with serial blood counts."""
    rng, person = chart.rng, chart.person
    day = chart.history_day(months=RAINY_SEASON)
    if not severe:
        v = visit(chart, rng.choice((chart.care.centre, chart.care.hospital)), day, OUTPATIENT)
        _weigh_child(chart, v)
        _fever(chart, v, 38.5, 40.0)
        c = condition(chart, v, "A90", abated=day + timedelta(days=7))
        counts = physiology.blood_count(
            rng, person, wbc=rng.uniform(2.2, 4.8), platelets=rng.uniform(70, 160)
        )
        labs.panel(chart, v, "cbc", counts)
        labs.report(chart, v, "serology", [labs.detected(chart, v, "ns1", True)])
        prescribe(
            chart, v, "paracetamol_child" if _child(chart) else "paracetamol", days=5, reason=c
        )
        return
    care = chart.care
    hospital = (
        care.infectious if rng.random() < 0.1 else care.children if _child(chart) else care.hospital
    )
    nights = rng.randint(4, 7)
    v = visit(chart, hospital, day, INPATIENT, nights=nights)
    _weigh_child(chart, v)
    _fever(chart, v, 38.5, 40.0)
    c = condition(chart, v, "A91", abated=v.day + timedelta(days=nights))
    labs.report(chart, v, "serology", [labs.detected(chart, v, "ns1", True)])
    # Platelets fall to their lowest around day 3, haematocrit rises as plasma leaks.
    course = (
        (0, rng.uniform(60, 120), 0.05),
        (2, rng.uniform(15, 50), 0.2),
        (nights - 1, rng.uniform(90, 160), 0.05),
    )
    for day_of_stay, platelets, leak in course:
        counts = physiology.blood_count(
            rng, person, wbc=rng.uniform(2.0, 5.0), platelets=platelets, haemoconcentration=leak
        )
        labs.panel(chart, v, "cbc", counts, minutes=day_of_stay * 1440 + 60)
    prescribe(
        chart, v, "paracetamol_child" if _child(chart) else "paracetamol", days=nights, reason=c
    )


def pneumonia(chart: Chart) -> None:
    """Outpatient amoxicillin for adults; young children and the elderly are admitted."""
    rng, person = chart.rng, chart.person
    day = chart.history_day(months=(11, 12, 1, 2, 3))
    admitted = person.age < 5 or person.age >= 65 or rng.random() < 0.3
    if admitted:
        facility = chart.care.children if _child(chart) else chart.care.hospital
        if rng.random() < 0.08:
            facility = chart.care.referral
        nights = rng.randint(5, 9)
        v = visit(chart, facility, day, INPATIENT, nights=nights)
        abated = v.day + timedelta(days=nights)
    else:
        v = visit(chart, chart.care.centre, day, OUTPATIENT)
        abated = day + timedelta(days=10)
    _weigh_child(chart, v)
    _fever(chart, v)
    c = condition(chart, v, "J18.9", abated=abated)
    labs.panel(chart, v, "cbc", physiology.blood_count(rng, person, wbc=rng.uniform(11.5, 21.0)))
    if admitted:
        prescribe(chart, v, "ceftriaxone", days=7, reason=c)
    else:
        prescribe(
            chart, v, "amoxicillin_child" if _child(chart) else "amoxicillin", days=7, reason=c
        )


def tuberculosis(chart: Chart) -> None:
    """Smear-positive pulmonary TB, diagnosed at the provincial hospital, on RHZE."""
    day = chart.history_day()
    v = visit(chart, chart.care.hospital, day, OUTPATIENT)
    treated = day + timedelta(days=180)
    c = condition(chart, v, "A15.0", abated=treated if treated < TODAY else None)
    labs.report(chart, v, "microbiology", [labs.detected(chart, v, "afb", True)])
    prescribe(chart, v, "tb_rhze", days=56, reason=c, active=(TODAY - day).days < 56)
