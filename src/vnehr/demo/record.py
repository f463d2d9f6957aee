"""One citizen's whole record: Patient, immunizations, chronic care, acute episodes, check-ups."""

from __future__ import annotations

import random
from typing import Any

from vnehr.demo import acute
from vnehr.demo.chart import Chart
from vnehr.demo.checkups import health_check
from vnehr.demo.chronic import asthma, cardiometabolic, chronic_conditions, hepatitis_b
from vnehr.demo.facilities import Network
from vnehr.demo.immunizations import covid, epi
from vnehr.demo.patients import make_person, patient

Resource = dict[str, Any]


def record(index: int, seed: int, network: Network, serial_offset: int) -> list[Resource]:
    """The resources of citizen number `index`, the Patient first.

    Each citizen has a random stream of their own, so citizen i is the same whether 10 or
    10,000 are generated: a larger population extends a smaller one.
    """
    rng = random.Random(f"vnehr.demo:{seed}:citizen:{index}")
    person = make_person(rng, index)
    chart = Chart(rng, person, network.care(person.province, person.ward))
    chart.add(patient(chart, serial_offset))
    epi(chart)
    covid(chart)
    chronic = chronic_conditions(rng, person)
    if chronic & {"I10", "E11", "E78.5"}:
        cardiometabolic(chart, chronic)
    if "B18.1" in chronic:
        hepatitis_b(chart)
    if "J45.9" in chronic:
        asthma(chart)
    _acute_episodes(chart)
    if person.age >= 18 and rng.random() < 0.3:
        health_check(chart, chronic)
    return chart.resources


def _acute_episodes(chart: Chart) -> None:
    """Three years of acute illness, at rates loosely following Vietnamese surveillance."""
    rng, person = chart.rng, chart.person
    age = person.age
    child = age < 12
    if rng.random() < (0.6 if age < 5 else 0.35 if child else 0.25):
        acute.respiratory_infection(chart)
    if rng.random() < (0.15 if age < 5 else 0.05):
        acute.diarrhoea(chart)
    if age >= 16 and rng.random() < 0.08:
        acute.gastritis(chart)
    dengue_risk = 0.02 if person.province.region == "north" else 0.05
    if age >= 1 and rng.random() < dengue_risk:
        acute.dengue(chart, severe=rng.random() < 0.25)
    if rng.random() < (0.06 if age < 5 else 0.05 if age >= 65 else 0.01):
        acute.pneumonia(chart)
    if 1 <= age < 6 and rng.random() < 0.06:
        acute.hand_foot_mouth(chart)
    if age >= 18 and rng.random() < 0.006:
        acute.tuberculosis(chart)
