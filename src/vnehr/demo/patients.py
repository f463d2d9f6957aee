"""Citizens: who they are (age, sex, name, home, identifiers) and their Patient resource."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from vnehr.demo import systems
from vnehr.demo.chart import TODAY, Chart, Person
from vnehr.demo.identifiers import (
    MERGER,
    bhxh_number,
    bhyt_group,
    bhyt_number,
    cccd,
    mobile_phone,
    new_uuid,
)
from vnehr.demo.names import person_name
from vnehr.demo.places import FormerProvince, address, geography, street_line
from vnehr.demo.registry import organization_ref

Resource = dict[str, Any]

# Population by five-year age group, per cent (GSO estimates for 2024, rounded).
AGE_BANDS = (
    (0, 7.2), (5, 8.0), (10, 8.0), (15, 7.0), (20, 6.8), (25, 7.4), (30, 8.0), (35, 8.0),
    (40, 7.5), (45, 7.0), (50, 6.4), (55, 5.8), (60, 5.0), (65, 3.9), (70, 2.6), (75, 1.5),
    (80, 0.9), (85, 0.5), (90, 0.2),
)  # fmt: skip
_AGE_STARTS = tuple(a for a, _ in AGE_BANDS)
_AGE_WEIGHTS = tuple(w for _, w in AGE_BANDS)
# Ethnic groups (dân tộc) by region: VN Core race code, name, weight.
ETHNIC_GROUPS = {
    "north": (("01", "Kinh", 84), ("02", "Tày", 4), ("03", "Thái", 3), ("06", "Mường", 3),
              ("07", "Nùng", 2), ("08", "HMông", 2), ("09", "Dao", 2)),
    "central": (("01", "Kinh", 92), ("03", "Thái", 2), ("10", "Gia-rai", 3), ("06", "Mường", 3)),
    "south": (("01", "Kinh", 91), ("05", "Khơ-me", 6), ("04", "Hoa", 3)),
}  # fmt: skip
MARITAL = {
    "M": ("Married", "Đã kết hôn"),
    "S": ("Never Married", "Chưa kết hôn"),
    "W": ("Widowed", "Góa"),
    "D": ("Divorced", "Ly hôn"),
}


def make_person(rng: random.Random, index: int) -> Person:
    geo = geography()
    band = rng.choices(_AGE_STARTS, _AGE_WEIGHTS)[0]
    age_days = rng.randrange(max(1, int(band * 365.25)), int((band + 5) * 365.25))
    birth = TODAY - timedelta(days=age_days)
    age = int(age_days / 365.25)
    male_share = 0.51 if age < 60 else 0.45 if age < 80 else 0.35
    sex = "male" if rng.random() < male_share else "female"
    province = geo.pick_province(rng)
    home = rng.choices(province.former, [f.population for f in province.former])[0]
    ward = rng.choice(province.wards)
    birthplace = home if rng.random() < 0.85 else geo.pick_former(rng)
    if birth >= MERGER:
        birthplace = FormerProvince(province.code, province.name, province.code, 0.0)
    southern = geo.by_code(birthplace.into).southern_names
    name = person_name(rng, sex, birth.year, southern=southern)
    return Person(index, new_uuid(rng), sex, birth, name, province, ward, home, birthplace)


def patient(chart: Chart, serial_offset: int) -> Resource:
    rng, person = chart.rng, chart.person
    age = person.age
    identifiers = [
        identifier_entry(
            "official",
            "NI",
            "National unique individual identifier",
            "Căn cước công dân",
            systems.CCCD,
            cccd(
                person.birthplace.code, person.sex, person.birth_date, person.index, serial_offset
            ),
        ),
    ]
    group = bhyt_group(rng, age)
    if group is not None:
        bhxh = bhxh_number(person.home.code, person.index, serial_offset)
        card = identifier_entry(
            "official",
            "SB",
            "Social Beneficiary Identifier",
            "Thẻ bảo hiểm y tế",
            systems.BHYT,
            bhyt_number(group, person.home.code, bhxh),
        )
        end = date(TODAY.year, 12, 31)
        if group == "TE":  # a child's card runs until the day before the sixth birthday
            born = person.birth_date
            end = date(born.year + 6, born.month, min(born.day, 28)) - timedelta(days=1)
        card["period"] = {"start": f"{TODAY.year}-01-01", "end": end.isoformat()}
        card["assigner"] = {"display": "Bảo hiểm xã hội Việt Nam"}
        identifiers.append(card)
    internal = identifier_entry(
        "secondary",
        "PI",
        "Patient internal identifier",
        "Mã bệnh nhân",
        systems.PATIENT_INTERNAL_ID,
        f"BN{person.index + 1:08d}",
    )
    internal["assigner"] = organization_ref(chart.care.centre)
    identifiers.append(internal)
    code, label = _ethnicity(rng, person.province.region)
    resource: Resource = {
        "resourceType": "Patient",
        "id": person.id,
        "extension": [
            {
                "url": systems.ETHNICITY_EXTENSION,
                "valueCodeableConcept": {
                    "coding": [{"system": systems.ETHNICITY, "code": code, "display": label}],
                    "text": label,
                },
            }
        ],
        "identifier": identifiers,
        "active": True,
        "name": [person.name.human_name()],
    }
    if age >= 15 and rng.random() < 0.92:
        resource["telecom"] = [{"system": "phone", "value": mobile_phone(rng), "use": "mobile"}]
    resource["gender"] = person.sex
    resource["birthDate"] = person.birth_date.isoformat()
    line = street_line(rng, person.province, person.ward)
    resource["address"] = [address(line, person.province, person.ward)]
    if age >= 18:
        status = _marital_status(rng, age, person.sex)
        resource["maritalStatus"] = {
            "coding": [
                {"system": systems.V3_MARITAL_STATUS, "code": status, "display": MARITAL[status][0]}
            ],
            "text": MARITAL[status][1],
        }
    if age < 16:
        resource["contact"] = [_mother(chart)]
    resource["communication"] = [
        {
            "language": {
                "coding": [{"system": systems.LANGUAGE, "code": "vi", "display": "Vietnamese"}],
                "text": "Tiếng Việt",
            },
            "preferred": True,
        }
    ]
    resource["managingOrganization"] = organization_ref(chart.care.centre)
    return resource


def identifier_entry(
    use: str, type_code: str, type_display: str, text: str, system: str, value: str
) -> Resource:
    """An Identifier with its v2-0203 type (and the Vietnamese name of the document)."""
    return {
        "use": use,
        "type": {
            "coding": [
                {"system": systems.V2_IDENTIFIER_TYPE, "code": type_code, "display": type_display}
            ],
            "text": text,
        },
        "system": system,
        "value": value,
    }


def _ethnicity(rng: random.Random, region: str) -> tuple[str, str]:
    groups = ETHNIC_GROUPS[region]
    code, label, _ = rng.choices(groups, [w for _, _, w in groups])[0]
    return code, label


def _marital_status(rng: random.Random, age: int, sex: str) -> str:
    if age < 25:
        return "M" if rng.random() < 0.25 else "S"
    if age >= 70 and rng.random() < (0.45 if sex == "female" else 0.15):
        return "W"
    return rng.choices(("M", "S", "D"), (85, 11, 4))[0]


def _mother(chart: Chart) -> Resource:
    rng, person = chart.rng, chart.person
    southern = person.province.southern_names
    mother = person_name(
        rng, "female", person.birth_date.year - rng.randint(20, 38), southern=southern
    )
    return {
        "relationship": [
            {
                "coding": [
                    {"system": systems.V2_CONTACT_ROLE, "code": "N", "display": "Next-of-Kin"},
                    {"system": systems.V3_ROLE_CODE, "code": "MTH", "display": "mother"},
                ],
                "text": "Mẹ",
            }
        ],
        "name": mother.human_name(),
        "telecom": [{"system": "phone", "value": mobile_phone(rng), "use": "mobile"}],
        "gender": "female",
    }
