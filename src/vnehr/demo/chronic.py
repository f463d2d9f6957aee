"""Chronic disease management: hypertension, type 2 diabetes, dyslipidaemia, hepatitis B, asthma."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from vnehr.demo import labs, physiology, vitals
from vnehr.demo.chart import HISTORY_START, TODAY, Chart, Person
from vnehr.demo.conditions import condition
from vnehr.demo.encounters import diagnose, visit
from vnehr.demo.medications import prescribe

Resource = dict[str, Any]

FOLLOW_UP = "Khám và điều trị ngoại trú bệnh mạn tính"
INTERVAL = 90  # days between follow-up visits, and the supply prescribed at each


def chronic_conditions(rng: random.Random, person: Person) -> frozenset[str]:
    """ICD-10 codes of the chronic diseases this person lives with (STEPS-like prevalence)."""
    age = person.age
    out: set[str] = set()
    if age >= 18:
        bands = (
            (30, 0.03, 0.01),
            (40, 0.08, 0.03),
            (50, 0.18, 0.06),
            (60, 0.3, 0.1),
            (70, 0.45, 0.14),
        )
        p_htn, p_dm = next(((h, d) for limit, h, d in bands if age < limit), (0.55, 0.15))
        if rng.random() < p_dm:
            out.add("E11")
        if rng.random() < p_htn * (1.5 if out else 1.0):
            out.add("I10")
        if (out and rng.random() < 0.4) or (age >= 40 and rng.random() < 0.06):
            out.add("E78.5")
        if rng.random() < 0.06:  # hepatitis B is endemic: about 8% of adults carry HBsAg
            out.add("B18.1")
    if age >= 5 and rng.random() < 0.04:
        out.add("J45.9")
    return frozenset(out)


def _onset(rng: random.Random, person: Person, first: date) -> str:
    """A diagnosis some years before the first visit on record, never before adulthood."""
    year = max(first.year - rng.randint(0, 8), person.birth_date.year + 18)
    year = min(year, first.year)
    month = rng.randint(1, 12) if year < first.year else rng.randint(1, first.month)
    return f"{year}-{month:02d}"


def _schedule(rng: random.Random, visits: int, interval: int) -> list[date]:
    first = TODAY - timedelta(days=visits * interval - rng.randrange(interval // 2))
    first = max(first, HISTORY_START)
    days = [first + timedelta(days=k * interval + rng.randint(-10, 10)) for k in range(visits)]
    return sorted({d for d in days if d < TODAY})


def cardiometabolic(chart: Chart, codes: frozenset[str]) -> None:
    """Quarterly outpatient follow-up of hypertension, diabetes and dyslipidaemia."""
    rng, person, care = chart.rng, chart.person, chart.care
    diabetic, hypertensive, lipids = "E11" in codes, "I10" in codes, "E78.5" in codes
    # Commune stations manage hypertension; HbA1c and lipids need a district laboratory.
    weights = (75, 0, 25) if diabetic or lipids else (55, 30, 15)
    facility = rng.choices((care.centre, care.station, care.hospital), weights)[0]
    clinician = facility.clinician(rng)
    a1c_start, a1c_goal = rng.gauss(8.4, 1.0), rng.gauss(7.0, 0.5)
    sbp_start, sbp_goal = rng.gauss(158, 9), rng.gauss(132, 6)
    conditions: list[Resource] = []
    days = _schedule(rng, rng.randint(3, 5), INTERVAL)
    for k, day in enumerate(days):
        v = visit(chart, facility, day, FOLLOW_UP, clinician=clinician)
        if k == 0:
            for code in ("I10", "E11", "E78.5"):
                if code in codes:
                    conditions.append(condition(chart, v, code, onset=_onset(rng, person, day)))
        else:
            for c in conditions:
                diagnose(v, c)
        systolic = (
            sbp_goal + (sbp_start - sbp_goal) * 0.5**k + rng.gauss(0, 6) if hypertensive else None
        )
        vitals.blood_pressure(chart, v, *physiology.blood_pressure(rng, systolic=systolic))
        if diabetic:
            a1c = a1c_goal + (a1c_start - a1c_goal) * 0.6**k + rng.gauss(0, 0.3)
            values = {"glucose": max(4.5, 1.59 * a1c - 2.59 + rng.gauss(0, 0.8)), "hba1c": a1c}
            if k == 0:
                values["creatinine"] = physiology.chemistry(rng, person)["creatinine"]
            labs.panel(chart, v, "chemistry", values)
        if lipids and k % 2 == 0:
            labs.panel(chart, v, "lipid", physiology.lipids(rng, high=k == 0))
        active = (TODAY - day).days < INTERVAL
        for c in conditions:
            code = c["code"]["coding"][0]["code"]
            drugs = {
                "E11": ["metformin"] + (["gliclazide"] if a1c_start > 8.5 else []),
                "I10": ["amlodipine"] + (["losartan"] if sbp_start > 160 else []),
                "E78.5": ["atorvastatin"],
            }[code]
            for drug in drugs:
                prescribe(chart, v, drug, days=INTERVAL, reason=c, active=active)


def hepatitis_b(chart: Chart) -> None:
    """Chronic hepatitis B on tenofovir, seen twice a year at the provincial hospital."""
    rng, person = chart.rng, chart.person
    facility = chart.care.hospital
    clinician = facility.clinician(rng)
    hbv: Resource | None = None
    for k, day in enumerate(_schedule(rng, 2, 180)):
        v = visit(chart, facility, day, FOLLOW_UP, clinician=clinician)
        if hbv is None:
            hbv = condition(chart, v, "B18.1", onset=_onset(rng, person, day))
        else:
            diagnose(v, hbv)
        values = physiology.chemistry(rng, person, hepatitis=k == 0)
        labs.panel(chart, v, "chemistry", {"alt": values["alt"], "ast": values["ast"]})
        if k == 0:
            labs.report(chart, v, "serology", [labs.detected(chart, v, "hbsag", True)])
        prescribe(chart, v, "tenofovir", days=180, reason=hbv, active=(TODAY - day).days < 180)


def asthma(chart: Chart) -> None:
    rng = chart.rng
    facility = chart.care.children if chart.person.age < 16 else chart.care.centre
    day = chart.history_day()
    v = visit(chart, facility, day, FOLLOW_UP)
    c = condition(
        chart, v, "J45.9", onset=_onset(rng, chart.person, day) if chart.person.age >= 18 else None
    )
    prescribe(chart, v, "salbutamol", days=30, reason=c, active=(TODAY - day).days < 30)
    if chart.person.age >= 12 and rng.random() < 0.5:
        prescribe(
            chart, v, "budesonide_formoterol", days=30, reason=c, active=(TODAY - day).days < 30
        )
