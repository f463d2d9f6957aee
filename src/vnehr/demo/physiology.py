"""Plausible measurements for one person: body size, blood pressure, blood counts, chemistry."""

from __future__ import annotations

import random

from vnehr.demo.chart import Person


def height_cm(rng: random.Random, person: Person) -> float:
    """Adult height: Vietnamese averages, a little lower for older generations."""
    mean = 166.0 if person.sex == "male" else 155.0
    mean -= max(0, person.age - 40) * 0.06
    return rng.gauss(mean, 5.5)


def adult_weight_kg(rng: random.Random, height: float, *, metabolic: bool) -> float:
    bmi = rng.gauss(24.5 if metabolic else 21.8, 2.6)
    return max(15.5, bmi) * (height / 100) ** 2


def child_weight_kg(rng: random.Random, age_days: int) -> float:
    """Weight by age, close to the WHO growth standard medians, +-10%."""
    months = age_days / 30.4
    median = 3.3 + 0.6 * months if months < 12 else 2 * age_days / 365.25 + 8
    return median * rng.uniform(0.9, 1.1)


def blood_pressure(rng: random.Random, *, systolic: float | None = None) -> tuple[int, int]:
    sbp = systolic if systolic is not None else rng.gauss(120, 9)
    dbp = sbp * 0.62 + rng.gauss(0, 4)
    return round(sbp), round(dbp)


def blood_count(
    rng: random.Random,
    person: Person,
    *,
    wbc: float | None = None,
    platelets: float | None = None,
    haemoconcentration: float = 0.0,
) -> dict[str, float]:
    """WBC, RBC, haemoglobin, haematocrit and platelets, consistent with each other.

    `haemoconcentration` raises the haematocrit by that fraction (plasma leakage in dengue).
    """
    hgb = rng.gauss(146 if person.sex == "male" and person.age >= 14 else 131, 9)
    hct = hgb * 0.3 * (1 + haemoconcentration) + rng.gauss(0, 0.8)
    return {
        "wbc": wbc if wbc is not None else rng.gauss(7.0, 1.5),
        "rbc": hgb / 30 + rng.gauss(0, 0.15),
        "hgb": hgb,
        "hct": hct,
        "plt": platelets if platelets is not None else rng.gauss(270, 55),
    }


def chemistry(
    rng: random.Random, person: Person, *, diabetic: bool = False, hepatitis: bool = False
) -> dict[str, float]:
    """Fasting glucose, creatinine, ALT and AST."""
    glucose = rng.gauss(8.6, 1.8) if diabetic else rng.gauss(5.2, 0.5)
    creatinine = rng.gauss(85, 12) if person.sex == "male" else rng.gauss(64, 10)
    alt = rng.gauss(62, 22) if hepatitis else rng.gauss(24, 8)
    ast = alt * rng.uniform(0.7, 1.0) if hepatitis else rng.gauss(25, 7)
    return {
        "glucose": max(3.5, glucose),
        "creatinine": creatinine,
        "alt": max(8, alt),
        "ast": max(10, ast),
    }


def lipids(rng: random.Random, *, high: bool = False) -> dict[str, float]:
    shift = 1.2 if high else 0.0
    ldl = rng.gauss(2.9 + shift, 0.5)
    hdl = rng.gauss(1.3 - shift / 6, 0.2)
    triglyceride = rng.gauss(1.5 + shift / 2, 0.4)
    total = ldl + hdl + triglyceride / 2.2
    return {
        "cholesterol": total,
        "triglyceride": max(0.4, triglyceride),
        "hdl": max(0.5, hdl),
        "ldl": ldl,
    }
