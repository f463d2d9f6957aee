"""Immunizations: the national EPI schedule for children and the COVID-19 campaign of 2021-22."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from vnehr.demo import systems
from vnehr.demo.chart import TODAY, Chart, instant, local
from vnehr.demo.facilities import Facility
from vnehr.demo.labs import quantity
from vnehr.demo.registry import organization_ref, practitioner_ref
from vnehr.demo.vitals import body_temperature

Resource = dict[str, Any]

ROUTES = {
    "IM": "Injection, intramuscular",
    "SQ": "Injection, subcutaneous",
    "IDINJ": "Injection, intradermal",
    "PO": "Swallow, oral",
}
SITES = {"LA": "left arm", "RA": "right arm", "LT": "left thigh", "RT": "right thigh"}
# SNOMED CT disorders the vaccines protect against.
DISEASES = {
    "tb": ("56717001", "Tuberculosis"),
    "hepb": ("66071002", "Viral hepatitis type B"),
    "diphtheria": ("397430003", "Diphtheria caused by Corynebacterium diphtheriae"),
    "tetanus": ("76902006", "Tetanus"),
    "pertussis": ("27836007", "Pertussis"),
    "polio": ("398102009", "Acute poliomyelitis"),
    "measles": ("14189004", "Measles"),
    "rubella": ("36653000", "Rubella"),
    "je": ("52947006", "Japanese encephalitis virus disease"),
    "covid": ("840539006", "Disease caused by severe acute respiratory syndrome coronavirus 2"),
}


@dataclass(frozen=True)
class Vaccine:
    cvx: str
    display: str  # CVX full vaccine name
    label: str  # Vietnamese name
    route: str
    site: str
    ml: float | None
    diseases: tuple[str, ...]
    manufacturer: str | None = None


_DTP = ("diphtheria", "tetanus", "pertussis")
VACCINES = {
    "bcg": Vaccine("19", "Bacillus Calmette-Guerin vaccine", "Vắc xin BCG (phòng lao)",
                   "IDINJ", "LA", 0.1, ("tb",)),
    "hepb": Vaccine("08", "hepatitis B vaccine, pediatric or pediatric/adolescent dosage",
                    "Vắc xin viêm gan B sơ sinh", "IM", "RT", 0.5, ("hepb",)),
    # The EPI pentavalent (DTwP-HepB-Hib, e.g. ComBE Five) is whole-cell: CVX 102.
    "penta": Vaccine("102", "DTP- Haemophilus influenzae type b conjugate and hepatitis b vaccine",
                     "Vắc xin 5 trong 1 (DPT-VGB-Hib)", "IM", "LT", 0.5, (*_DTP, "hepb")),
    "bopv": Vaccine("178", "Non-US bivalent oral polio vaccine (types 1 and 3)",
                    "Vắc xin bại liệt uống (bOPV)", "PO", "", None, ("polio",)),
    "ipv": Vaccine("10", "poliovirus vaccine, inactivated", "Vắc xin bại liệt tiêm (IPV)",
                   "IM", "RT", 0.5, ("polio",)),
    "measles": Vaccine("05", "measles virus vaccine", "Vắc xin sởi", "SQ", "RA", 0.5, ("measles",)),
    "mr": Vaccine("04", "measles and rubella virus vaccine", "Vắc xin sởi - rubella (MR)",
                  "SQ", "RA", 0.5, ("measles", "rubella")),
    "dtp": Vaccine("01", "diphtheria, tetanus toxoids and pertussis vaccine",
                   "Vắc xin DPT (nhắc lại)", "IM", "LA", 0.5, _DTP),
    "je": Vaccine("39", "Japanese Encephalitis Vaccine SC", "Vắc xin viêm não Nhật Bản",
                  "SQ", "LA", 0.5, ("je",)),
    "az": Vaccine("210", "SARS-COV-2 (COVID-19) vaccine, vector non-replicating, recombinant "
                  "spike protein-ChAdOx1, preservative free, 0.5 mL",
                  "Vắc xin phòng COVID-19 Vaxzevria (AstraZeneca)", "IM", "LA", 0.5, ("covid",),
                  "AstraZeneca"),
    "pfizer": Vaccine("208", "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, "
                      "preservative free, 30 mcg/0.3mL dose",
                      "Vắc xin phòng COVID-19 Comirnaty (Pfizer-BioNTech)", "IM", "LA", 0.3,
                      ("covid",), "Pfizer-BioNTech"),
    "pfizer_child": Vaccine("218", "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, "
                            "preservative free, 10 mcg/0.2mL dose, tris-sucrose formulation",
                            "Vắc xin phòng COVID-19 Comirnaty cho trẻ 5-11 tuổi (Pfizer-BioNTech)",
                            "IM", "LA", 0.2, ("covid",), "Pfizer-BioNTech"),
    "moderna": Vaccine("207", "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, "
                       "preservative free, 100 mcg/0.5mL dose",
                       "Vắc xin phòng COVID-19 Spikevax (Moderna)", "IM", "LA", 0.5, ("covid",),
                       "Moderna"),
    "vero": Vaccine("510", "COVID-19 IV Non-US Vaccine (BIBP, Sinopharm)",
                    "Vắc xin phòng COVID-19 Vero Cell (Sinopharm)", "IM", "LA", 0.5, ("covid",),
                    "Sinopharm"),
    "janssen": Vaccine("212", "SARS-COV-2 (COVID-19) vaccine, vector non-replicating, "
                       "recombinant spike protein-Ad26, preservative free, 0.5 mL",
                       "Vắc xin phòng COVID-19 Janssen", "IM", "LA", 0.5, ("covid",), "Janssen"),
}  # fmt: skip

# Vietnam's EPI schedule (Tiêm chủng mở rộng): (age in days, vaccine, dose number).
EPI_SCHEDULE = (
    (0, "hepb", 1), (1, "bcg", 1),
    (60, "penta", 1), (60, "bopv", 1), (90, "penta", 2), (90, "bopv", 2),
    (120, "penta", 3), (120, "bopv", 3), (150, "ipv", 1), (270, "measles", 1),
    (365, "je", 1), (379, "je", 2), (540, "mr", 1), (540, "dtp", 4), (730, "je", 3),
)  # fmt: skip
COVID_START = date(2021, 3, 8)  # first doses in Vietnam
EPI_SERIES = "Tiêm chủng mở rộng"
COVID_SERIES = "Tiêm chủng vắc xin phòng COVID-19"


def immunize(
    chart: Chart, key: str, day: date, dose: int, facility: Facility, series: str
) -> Resource:
    rng = chart.rng
    vaccine = VACCINES[key]
    when = instant(day, rng.randrange(7 * 60 + 30, 16 * 60 + 30, 5))
    resource: Resource = {
        "resourceType": "Immunization",
        "id": chart.new_id(),
        "status": "completed",
        "vaccineCode": {
            "coding": [{"system": systems.CVX, "code": vaccine.cvx, "display": vaccine.display}],
            "text": vaccine.label,
        },
        "patient": chart.subject(),
        "occurrenceDateTime": when,
        "recorded": when,
        "primarySource": True,
    }
    if vaccine.manufacturer:
        resource["manufacturer"] = {"display": vaccine.manufacturer}
    resource["lotNumber"] = f"{vaccine.cvx}{rng.choice('ABCDEFGH')}{rng.randrange(10_000):04d}"
    if vaccine.site:
        resource["site"] = {
            "coding": [
                {
                    "system": systems.V3_ACT_SITE,
                    "code": vaccine.site,
                    "display": SITES[vaccine.site],
                }
            ]
        }
    resource["route"] = {
        "coding": [
            {"system": systems.V3_ROUTE, "code": vaccine.route, "display": ROUTES[vaccine.route]}
        ]
    }
    if vaccine.ml is not None:
        resource["doseQuantity"] = quantity(vaccine.ml, "mL", "mL")
    resource["performer"] = [
        {
            "function": {
                "coding": [
                    {
                        "system": systems.V2_PERFORMER_FUNCTION,
                        "code": "AP",
                        "display": "Administering Provider",
                    }
                ]
            },
            "actor": practitioner_ref(facility.clinician(rng)),
        },
        {"actor": organization_ref(facility)},
    ]
    resource["protocolApplied"] = [
        {
            "series": series,
            "targetDisease": [
                {
                    "coding": [
                        {
                            "system": systems.SNOMED,
                            "code": DISEASES[d][0],
                            "display": DISEASES[d][1],
                        }
                    ]
                }
                for d in vaccine.diseases
            ],
            "doseNumberPositiveInt": dose,
        }
    ]
    return chart.add(resource)


def fever(chart: Chart, immunization: Resource, day: date) -> None:
    """A fever after the injection, reported by the person and recorded as a reaction."""
    rng = chart.rng
    when = instant(day, rng.randrange(18 * 60, 34 * 60, 15))
    observation = body_temperature(chart, when, rng.uniform(37.8, 39.4))
    immunization["reaction"] = [{"date": when, "detail": local(observation), "reported": True}]


def epi(chart: Chart) -> None:
    """The EPI doses a child born in the last six years has had by TODAY."""
    person, rng = chart.person, chart.rng
    if person.birth_date < date(TODAY.year - 6, 1, 1):
        return
    diligence = rng.uniform(0.85, 1.0)  # families differ in how reliably they attend
    delay = 0
    for age_days, key, dose in EPI_SCHEDULE:
        if age_days > 1:
            delay += rng.choice((0, 0, 0, 2, 5, 7, 14))
        day = person.birth_date + timedelta(days=age_days + delay)
        if day >= TODAY:
            return
        if rng.random() > diligence:
            continue
        # Birth doses are given where the child was born; the rest at the commune station.
        facility = chart.care.centre if age_days <= 1 else chart.care.station
        immunize(chart, key, day, dose, facility, EPI_SERIES)


def covid(chart: Chart) -> None:
    """COVID-19 doses: adults from 2021, 12-17 from late 2021, 5-11 from April 2022."""
    person, rng = chart.person, chart.rng
    age = person.age_at(date(2021, 10, 1))
    if age >= 18 and rng.random() < 0.95:
        product = rng.choices(("az", "pfizer", "vero", "moderna", "janssen"), (40, 25, 20, 12, 3))[
            0
        ]
        first = date(2021, 6, 15) + timedelta(days=rng.randrange(170))
        gap = {"az": 56, "pfizer": 21, "vero": 21, "moderna": 28, "janssen": 0}[product]
        doses = [(product, first)]
        if gap:
            doses.append((product, first + timedelta(days=gap + rng.randrange(21))))
        if rng.random() < 0.7:
            booster = rng.choices(("pfizer", "moderna", "az"), (50, 30, 20))[0]
            doses.append((booster, date(2022, 1, 5) + timedelta(days=rng.randrange(170))))
            if age >= 50 and rng.random() < 0.35:
                booster = rng.choice(("pfizer", "moderna"))
                doses.append((booster, date(2022, 7, 10) + timedelta(days=rng.randrange(150))))
    elif 12 <= age < 18 and rng.random() < 0.9:
        first = date(2021, 10, 20) + timedelta(days=rng.randrange(70))
        doses = [("pfizer", first), ("pfizer", first + timedelta(days=21 + rng.randrange(14)))]
    elif 5 <= person.age_at(date(2022, 4, 15)) < 12 and rng.random() < 0.6:
        first = date(2022, 4, 15) + timedelta(days=rng.randrange(120))
        doses = [
            ("pfizer_child", first),
            ("pfizer_child", first + timedelta(days=21 + rng.randrange(14))),
        ]
    else:
        return
    reactive = {
        "az": 0.25,
        "moderna": 0.2,
        "janssen": 0.2,
        "pfizer": 0.12,
        "pfizer_child": 0.08,
        "vero": 0.05,
    }
    for number, (key, day) in enumerate(doses, start=1):
        facility = chart.care.station if rng.random() < 0.7 else chart.care.centre
        immunization = immunize(chart, key, day, number, facility, COVID_SERIES)
        if rng.random() < reactive[key] / (1 if number == 1 else 2):
            fever(chart, immunization, day)
