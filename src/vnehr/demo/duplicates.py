"""Duplicate registrations with ground truth: one person as several facilities record them.

The master patient index (docs/identity.md) must link the Patients that facilities send for
one human and keep apart those of different humans who look alike. Measuring that needs
labelled data, which real registries cannot give: here each synthetic person (drawn with the
population generator, `make_person` and `patient`) is registered at one or more facilities
of their care network, each registration with the errors that facility level typically
makes, and every record says which person it belongs to and what was done to it.

The hard negatives are generated on purpose, as separate people: twins (same family name,
birth date, address, phone and mother, consecutive CCCD serials), households (spouses,
parents and children sharing address and phone), and namesakes (the commonest names, born
the same year in the same province).

Records come out as a stream: a person's registrations are adjacent, in the order they
happened (the first one usually a clean hospital registration with the CCCD). Same seed,
same records; more people with the same seed extend fewer.
"""

from __future__ import annotations

import dataclasses
import random
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from itertools import combinations
from typing import Any

import orjson

from vnehr.demo import systems
from vnehr.demo.chart import TODAY, Chart, Person
from vnehr.demo.facilities import Care, Facility, Network, network
from vnehr.demo.identifiers import MERGER, mobile_phone, new_uuid
from vnehr.demo.names import VietName, family_name, person_name
from vnehr.demo.patients import identifier_entry, make_person, patient
from vnehr.demo.places import FormerProvince, Province, Ward, address, geography, street_line
from vnehr.demo.registry import organization_ref

Resource = dict[str, Any]

# The old 9-digit identity card (CMND, giấy chứng minh nhân dân): the `SoCMT` slice of the
# VN Core Patient profile. It was issued until the CCCD replaced it (2016-2021) and many
# older people still give it where nobody scans the new chip.
CMND = "http://fhir.ehealth.gov.vn/core/sid/citizen_id"
# Marks an identifier typed by hand from what the patient said, not read from the card's
# chip or checked against the population register: the index may trust it less.
IDENTIFIER_UNVERIFIED = f"{systems.VNEHR}/StructureDefinition/identifier-unverified"

# Weights of registering at 1, 2, 3, ... facilities (mean 1.69): most people have been to
# one facility, many to two or three (commune station, district centre, provincial
# hospital), a few with chronic illness or referrals to five or more.
REGISTRATIONS = (60.0, 23.0, 9.5, 4.5, 1.8, 0.7, 0.3, 0.2)

# Hard negatives, as shares of the groups drawn (a group is one person otherwise). About 5%
# of people end up in such groups.
TWINS = 0.006  # a twin pair (twins are ~1.5% of births in Vietnam, fewer among adults)
FAMILY = 0.012  # a household of 2-4: a couple with children, or an old parent and a child
NAMESAKES = 0.006  # 2-3 people with one of the commonest names, same year, same province
# Same-sex twins (most identical twins, and half the others).
TWINS_SAME_SEX = 0.65
# Twins often get names that sound alike (Lan and Lanh): the hardest case for matching.
TWINS_SIMILAR_NAMES = 0.35
SIMILAR_GIVEN = {
    "female": (
        ("Lan", "Lanh"), ("Hương", "Hường"), ("Thu", "Thư"), ("Vy", "Vi"), ("Ngọc", "Ngân"),
        ("Trâm", "Trang"), ("Hoa", "Hòa"),
    ),
    "male": (
        ("Phúc", "Phước"), ("Long", "Lân"), ("Khang", "Khanh"), ("Minh", "Mạnh"),
        ("Huy", "Hùng"), ("Tuấn", "Tú"), ("An", "Ân"),
    ),
}  # fmt: skip
# The commonest full names, for namesakes: classic ones for people born before 1990.
COMMON_NAMES = {
    ("male", False): (
        ("Nguyễn", "Văn", "Hùng"), ("Nguyễn", "Văn", "Dũng"), ("Nguyễn", "Văn", "Nam"),
        ("Trần", "Văn", "Hùng"), ("Nguyễn", "Văn", "Thắng"),
    ),
    ("female", False): (
        ("Nguyễn", "Thị", "Lan"), ("Nguyễn", "Thị", "Hương"), ("Nguyễn", "Thị", "Hoa"),
        ("Trần", "Thị", "Hương"), ("Nguyễn", "Thị", "Mai"),
    ),
    ("male", True): (
        ("Nguyễn", "Minh", "Anh"), ("Nguyễn", "Gia", "Huy"), ("Nguyễn", "Đức", "Anh"),
        ("Nguyễn", "Minh", "Khang"), ("Trần", "Minh", "Quân"),
    ),
    ("female", True): (
        ("Nguyễn", "Phương", "Anh"), ("Nguyễn", "Ngọc", "Anh"), ("Nguyễn", "Khánh", "Linh"),
        ("Nguyễn", "Bảo", "Ngọc"), ("Trần", "Ngọc", "Anh"),
    ),
}  # fmt: skip
# Namesakes in the same ward, not only the same province.
NAMESAKES_SAME_WARD = 0.3

# People who ever had a CMND: born by 2001 (14 before the CCCD came in), most of them.
CMND_BORN_BY = 2001
CMND_HELD = 0.85

# Where the first registration happens: usually a provincial (or children's) hospital, the
# central referral hospital, the district health centre or a private hospital.
FIRST_FACILITY = {"hospital": 60, "referral": 15, "centre": 15, "private": 10}
# Where later ones happen: the commune station and district centre most often.
# "elsewhere" is any facility of the country: near work, while travelling, a relative's.
LATER_FACILITY = {
    "station": 33, "centre": 24, "hospital": 17, "referral": 7, "infectious": 3, "private": 10,
    "elsewhere": 6,
}  # fmt: skip
# A later registration at a facility the person already has a record at (they forgot or
# lost their record number): a duplicate within one facility.
SAME_FACILITY = 0.03

# Error rates of later registrations; the first one's are multiplied by FIRST_SCALE.
FIRST_SCALE = 0.2
# No CCCD on the record, by facility level: commune stations register from the BHYT card or
# by word of mouth, hospitals scan the chip. First registrations: FIRST_NO_CCCD.
NO_CCCD = {"commune": 0.40, "district": 0.15, "provincial": 0.05, "central": 0.03}
FIRST_NO_CCCD = 0.03
NO_CCCD_CHILD = 0.20  # added for children under 14, whose parents rarely bring the number
# Of the records without a CCCD, those carrying the old CMND instead (if the person had one).
CMND_INSTEAD = 0.30
# The CMND next to the CCCD on a record (copied from old papers); not an error, not labelled.
CMND_ALSO = 0.10
# A CCCD typed by hand and marked unverified (never a wrong one: typos are not generated,
# the number is read from the chip or the register), at commune and district level.
UNVERIFIED_CCCD = {"commune": 0.10, "district": 0.06, "provincial": 0.0, "central": 0.0}
# No BHYT card number although the person has a card: paid out of pocket, card forgotten.
NO_BHYT = 0.06
NO_BHYT_PRIVATE = 0.35
# Names typed without diacritics (old software, a keyboard without Vietnamese input).
NO_ACCENTS = {"commune": 0.25, "district": 0.15, "provincial": 0.07, "central": 0.05}
UPPERCASE = 0.08  # NGUYỄN THỊ LAN, as many hospital systems store names
TONE_PLACEMENT = 0.15  # old-style tone placement (Hoà, Thuỷ), where the name allows it
DECOMPOSED = 0.01  # Unicode NFD text from a legacy (VNI/TCVN3-converted) system
TYPO = 0.04  # one edit in the family, a middle or the given name
REORDERED = 0.015  # family and given names swapped, or the middle name put with the family
SHORT_NAME = 0.02  # middle name(s) dropped: Nguyễn Lan
NICKNAME = 0.003  # the name used at home (Tí, Bống, Út) in place of the given name
DAY_MONTH_SWAP = 0.02  # 05/03 read as 03/05; only possible when the day is 12 or less
YEAR_ONLY = 0.02  # only the year of birth, as for many people born before 1975
YEAR_ONLY_ELDERLY = 0.06  # ... at 60 and over
# A new mobile number from this registration on (per later registration).
PHONE_CHANGE = 0.06
# Moved to another province at some registration after the first (per person with two or
# more): new ward, street and BHYT card province from then on.
MOVED = 0.05

NICKNAMES_CHILD = ("Bin", "Bi", "Su", "Bống", "Cún", "Mít", "Tí", "Tèo", "Na", "Bé")
NICKNAMES_ADULT = ("Út", "Hai", "Ba", "Tư", "Tí", "Bé")

# Labels of the variants, in the order they are joined with "+".
VARIANTS = (
    "clean", "twin", "family-member", "common-name", "no-cccd", "cmnd-only", "unverified-cccd",
    "no-bhyt", "year-only", "day-month-swap", "nickname", "short-name", "typo",
    "reordered-name", "tone-placement", "uppercase", "no-accents", "decomposed", "moved",
    "phone-changed", "same-facility",
)  # fmt: skip
_ORDER = {v: i for i, v in enumerate(VARIANTS)}

# CCCD serials: a bijection of the person number onto 6 digits that gives the two people of
# each pair (2k, 2k+1) consecutive serials, as twins registered together get them.
_PAIR_MULTIPLIER = 7919  # coprime with 500,000
_CMND_MULTIPLIER = 7919  # coprime with 10^7
MAX_PEOPLE = 1_000_000


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One facility's Patient record, with the ground truth of who it is."""

    person: int  # ground truth: index of the real person (same int = same human)
    facility_code: str  # 5-digit code of the registering facility
    variant: str  # what was done to it: "clean", or labels of VARIANTS joined with "+"
    patient: Resource  # the Patient as that facility sends it (its own id and record number)


@dataclass(slots=True)
class _Truth:
    """A real person as their own papers say, with what their household shares."""

    person: Person
    base: Resource  # the Patient of `patient()`, the source of ethnicity, cards, contact
    group: str | None  # "twin", "family-member", "common-name" or None
    cccd: str
    cmnd: str | None
    phone: str | None
    line: str
    contact: Resource | None


@dataclass(slots=True)
class _Place:
    province: Province
    ward: Ward
    home: str  # former province code, as BHYT cards carry it
    line: str
    care: Care


def source_records(
    people: int, *, seed: int = 1, registrations: tuple[float, ...] = REGISTRATIONS
) -> Iterator[SourceRecord]:
    """The registrations of `people` people, person after person.

    `registrations` weighs having 1, 2, 3, ... records. Facilities and their ids are those of
    the demo population with the same seed (`vnehr demo --seed`), so the records' assigners
    and managing organizations resolve against its registry.
    """
    if not 0 <= people <= MAX_PEOPLE:
        raise ValueError(f"people must be between 0 and {MAX_PEOPLE} (unique CCCD serials)")
    if not registrations or min(registrations) < 0 or sum(registrations) <= 0:
        raise ValueError("registrations must be non-negative weights, not all zero")
    return _stream(people, seed, registrations)  # arguments checked now, not at first next()


def _stream(people: int, seed: int, registrations: tuple[float, ...]) -> Iterator[SourceRecord]:
    net = network(seed)
    counts = tuple(range(1, len(registrations) + 1))
    cumulative = tuple(sum(registrations[: i + 1]) for i in range(len(registrations)))
    offset = random.Random(f"vnehr.demo:{seed}:duplicates:serials").randrange(500_000)
    numbers: dict[str, int] = {}  # the last record number given by each facility
    index = group = 0
    while index < people:
        # One random stream per group: person i is the same whatever comes after.
        rng = random.Random(f"vnehr.demo:{seed}:duplicates:{group}")
        for truth in _group(rng, net, index, people - index, offset):
            k = rng.choices(counts, cum_weights=cumulative)[0]
            yield from _registrations(rng, net, truth, k, numbers)
            index += 1
        group += 1


def truth_pairs(records: Sequence[SourceRecord]) -> set[tuple[int, int]]:
    """Every pair (i, j), i < j, of positions in `records` that belong to the same person:
    the links a perfect index makes."""
    by_person: dict[int, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        by_person[record.person].append(i)
    return {pair for positions in by_person.values() for pair in combinations(positions, 2)}


# People and households


def _group(rng: random.Random, net: Network, first: int, room: int, offset: int) -> list[_Truth]:
    """The next people: one, or a group of hard negatives if there is room for it."""
    roll = rng.random()
    if roll < TWINS and room >= 2 + first % 2:
        # Twins take an aligned pair of numbers so that their CCCD serials are consecutive.
        lead = [_single(rng, net, first, offset)] if first % 2 else []
        return lead + _twins(rng, net, first + len(lead), offset)
    roll -= TWINS
    if roll < FAMILY and room >= 4:
        return _family(rng, net, first, offset)
    roll -= FAMILY
    if roll < NAMESAKES and room >= 3:
        return _namesakes(rng, net, first, offset)
    return [_single(rng, net, first, offset)]


def _single(rng: random.Random, net: Network, number: int, offset: int) -> _Truth:
    return _truth(rng, net, make_person(rng, number), None, offset)


def _truth(
    rng: random.Random, net: Network, person: Person, group: str | None, offset: int
) -> _Truth:
    """Draw the person's Patient with the demo generator and keep what the records share."""
    chart = Chart(rng, person, net.care(person.province, person.ward))
    base = patient(chart, offset)
    cmnd = None
    if person.birth_date.year <= CMND_BORN_BY and rng.random() < CMND_HELD:
        # Two digits for the issuing province (the old scheme, not modelled) and 7 serial.
        serial = (person.index * _CMND_MULTIPLIER + offset) % 10_000_000
        cmnd = f"{rng.randint(1, 38):02d}{serial:07d}"
    phone = base["telecom"][0]["value"] if "telecom" in base else None
    line = base["address"][0]["line"][0]
    contact = base["contact"][0] if "contact" in base else None
    return _Truth(person, base, group, _cccd(person, offset), cmnd, phone, line, contact)


def _cccd(person: Person, offset: int) -> str:
    """The CCCD of identifiers.cccd, with serials consecutive within each pair of numbers."""
    birth = person.birth_date
    century = (birth.year // 100 - 19) * 2 + (1 if person.sex == "female" else 0)
    pair = (person.index // 2 * _PAIR_MULTIPLIER + offset) % 500_000
    serial = pair * 2 + person.index % 2
    return f"0{person.birthplace.code}{century}{birth.year % 100:02d}{serial:06d}"


def _twins(rng: random.Random, net: Network, first: int, offset: int) -> list[_Truth]:
    """Two people born the same day to the same mother, living together, one phone."""
    a = make_person(rng, first)
    sex = a.sex if rng.random() < TWINS_SAME_SEX else ("male" if a.sex == "female" else "female")
    southern = geography().by_code(a.birthplace.into).southern_names
    *middles, given = a.name.given
    if sex == a.sex and rng.random() < TWINS_SIMILAR_NAMES:
        names = rng.choice(SIMILAR_GIVEN[sex])
        if set(names) & set(middles):  # no Nguyễn Lan Lan
            middles = ["Văn" if sex == "male" else "Thị"]
        a = dataclasses.replace(a, name=VietName(a.name.family, (*middles, names[0])))
        b_name = VietName(a.name.family, (*middles, names[1]))
    else:
        b_name = a.name
        while b_name.given[-1] == given:
            b_name = person_name(
                rng, sex, a.birth_date.year, southern=southern, family=a.name.family
            )
    b = dataclasses.replace(a, index=first + 1, id=new_uuid(rng), sex=sex, name=b_name)
    one, two = _truth(rng, net, a, "twin", offset), _truth(rng, net, b, "twin", offset)
    two.line = one.line
    phone = one.phone or two.phone or mobile_phone(rng)
    if a.age >= 15:
        one.phone = two.phone = phone
    two.contact = one.contact
    return [one, two]


def _family(rng: random.Random, net: Network, first: int, offset: int) -> list[_Truth]:
    """A household at one address with one phone: a couple and their children (who take
    the father's family name), or an old parent and their adult child."""
    geo = geography()
    province = geo.pick_province(rng)
    home = rng.choices(province.former, [f.population for f in province.former])[0]
    ward = rng.choice(province.wards)
    southern = province.southern_names
    members: list[tuple[str, date, str | None]] = []  # sex, birth date, family name
    mother: int | None = None
    if rng.random() < 0.7:
        husband = _birthday(rng, TODAY.year - rng.randint(23, 68))
        wife = _birthday(rng, min(husband.year + rng.randint(0, 7), TODAY.year - 19))
        father_family = family_name(rng, southern=southern)
        members += [("male", husband, father_family), ("female", wife, None)]
        mother = 1
        for _ in range(rng.choice((0, 1, 2, 2))):
            birth = _birthday(rng, wife.year + rng.randint(20, 38))
            if birth < TODAY:
                members.append((rng.choice(("male", "female")), birth, father_family))
    else:
        parent = _birthday(rng, TODAY.year - rng.randint(62, 90))
        child = _birthday(rng, parent.year + rng.randint(22, 38))
        sex = rng.choice(("male", "female"))
        family = family_name(rng, southern=southern)
        members += [(sex, parent, family), (rng.choice(("male", "female")), child, None)]
        if sex == "male":
            members[1] = (members[1][0], child, family)
        else:
            mother = 0
    household_line = street_line(rng, province, ward)
    household_phone = mobile_phone(rng)
    out: list[_Truth] = []
    for i, (sex, birth, surname) in enumerate(members):
        birthplace = home if rng.random() < 0.85 else geo.pick_former(rng)
        if birth >= MERGER:
            birthplace = FormerProvince(province.code, province.name, province.code, 0.0)
        name = person_name(rng, sex, birth.year, southern=southern, family=surname)
        person = Person(
            first + i, new_uuid(rng), sex, birth, name, province, ward, home, birthplace
        )
        truth = _truth(rng, net, person, "family-member", offset)
        truth.line = household_line
        if person.age >= 15 and (i == 0 or rng.random() < 0.5):
            truth.phone = household_phone
        out.append(truth)
    if mother is not None:
        mum = out[mother]
        for truth in out:
            if truth.contact is not None and truth is not mum:
                truth.contact = dict(truth.contact, name=mum.person.name.human_name())
                truth.contact["telecom"] = [
                    {"system": "phone", "value": mum.phone or household_phone, "use": "mobile"}
                ]
    return out


def _namesakes(rng: random.Random, net: Network, first: int, offset: int) -> list[_Truth]:
    """Two or three people with one of the commonest names, born the same year (on
    different days) in the same province, otherwise unrelated."""
    geo = geography()
    lead = make_person(rng, first)
    year = lead.birth_date.year
    family, middle, given = rng.choice(COMMON_NAMES[(lead.sex, year >= 1990)])
    name = VietName(family, (middle, given))
    people = [dataclasses.replace(lead, name=name)]
    days = {lead.birth_date}
    for number in range(first + 1, first + rng.choice((2, 3))):
        birth = _birthday(rng, year)
        while birth in days or birth >= TODAY:
            birth = _birthday(rng, year)
        days.add(birth)
        province = lead.province
        ward = lead.ward if rng.random() < NAMESAKES_SAME_WARD else rng.choice(province.wards)
        home = rng.choices(province.former, [f.population for f in province.former])[0]
        birthplace = home if rng.random() < 0.85 else geo.pick_former(rng)
        if birth >= MERGER:
            birthplace = FormerProvince(province.code, province.name, province.code, 0.0)
        people.append(
            Person(number, new_uuid(rng), lead.sex, birth, name, province, ward, home, birthplace)
        )
    return [_truth(rng, net, p, "common-name", offset) for p in people]


def _birthday(rng: random.Random, year: int) -> date:
    return date(year, 1, 1) + timedelta(days=rng.randrange(365))


# Registrations


def _registrations(
    rng: random.Random, net: Network, truth: _Truth, count: int, numbers: dict[str, int]
) -> Iterator[SourceRecord]:
    person = truth.person
    place = _Place(
        person.province,
        person.ward,
        person.home.code,
        truth.line,
        net.care(person.province, person.ward),
    )
    moved_at = rng.randint(1, count - 1) if count > 1 and rng.random() < MOVED else None
    phone = truth.phone
    used: list[Facility] = []
    for k in range(count):
        labels: list[str] = [truth.group] if truth.group else []
        if k == moved_at:
            place = _move(rng, net, place)
        if moved_at is not None and k >= moved_at:
            labels.append("moved")
        if k and phone is not None and rng.random() < PHONE_CHANGE:
            phone = mobile_phone(rng)
        if phone != truth.phone:
            labels.append("phone-changed")
        facility, again = _facility(rng, net, place.care, person, used, first=k == 0)
        if again:
            labels.append("same-facility")
        used.append(facility)
        last = numbers.get(facility.code)
        if last is None:  # facilities numbered patients for years before: not from 1
            last = int(facility.code) * 7919 % 900_000 + 1000
        numbers[facility.code] = last + 1
        resource = _patient(rng, truth, facility, last + 1, place, phone, k == 0, labels)
        labels.sort(key=_ORDER.__getitem__)
        yield SourceRecord(person.index, facility.code, "+".join(labels) or "clean", resource)


def _move(rng: random.Random, net: Network, place: _Place) -> _Place:
    geo = geography()
    province = place.province
    while province.code == place.province.code:
        province = geo.pick_province(rng)
    ward = rng.choice(province.wards)
    home = rng.choices(province.former, [f.population for f in province.former])[0]
    line = street_line(rng, province, ward)
    return _Place(province, ward, home.code, line, net.care(province, ward))


def _facility(
    rng: random.Random,
    net: Network,
    care: Care,
    person: Person,
    used: list[Facility],
    *,
    first: bool,
) -> tuple[Facility, bool]:
    """Where this registration happens, and whether the person already had a record there."""
    if used and rng.random() < SAME_FACILITY:
        return rng.choice(used), True
    child = person.age < 16
    hospital = care.children if child and rng.random() < 0.5 else care.hospital
    places = {
        "station": care.station,
        "centre": care.centre,
        "hospital": hospital,
        "referral": care.referral,
        "infectious": care.infectious,
        "private": care.private,
        "elsewhere": rng.choice(net.facilities),
    }
    weights = FIRST_FACILITY if first else LATER_FACILITY
    codes = {f.code for f in used}
    options = [(f, w) for key, w in weights.items() if (f := places[key]) and f.code not in codes]
    if not options:
        return rng.choice(used), True
    return rng.choices([f for f, _ in options], [w for _, w in options])[0], False


def _patient(
    rng: random.Random,
    truth: _Truth,
    facility: Facility,
    number: int,
    place: _Place,
    phone: str | None,
    first: bool,
    labels: list[str],
) -> Resource:
    """The Patient as this facility records this person, appending the variants to `labels`."""
    person, base = truth.person, truth.base
    level = facility.level
    scale = FIRST_SCALE if first else 1.0

    def chance(rate: float) -> bool:
        return rng.random() < rate * scale

    identifiers: list[Resource] = []
    no_cccd = FIRST_NO_CCCD if first else NO_CCCD[level]
    if person.age < 14:
        no_cccd += NO_CCCD_CHILD * scale
    if rng.random() < no_cccd:
        if truth.cmnd and rng.random() < CMND_INSTEAD:
            identifiers.append(_cmnd(truth.cmnd))
            labels.append("cmnd-only")
        else:
            labels.append("no-cccd")
    else:
        card = identifier_entry(
            "official",
            "NI",
            "National unique individual identifier",
            "Căn cước công dân",
            systems.CCCD,
            truth.cccd,
        )
        if chance(UNVERIFIED_CCCD[level]):
            card["extension"] = [{"url": IDENTIFIER_UNVERIFIED, "valueBoolean": True}]
            labels.append("unverified-cccd")
        identifiers.append(card)
        if truth.cmnd and rng.random() < CMND_ALSO:
            identifiers.append(_cmnd(truth.cmnd))
    bhyt = next((i for i in base["identifier"] if i["system"] == systems.BHYT), None)
    if bhyt is not None:
        if rng.random() < (NO_BHYT_PRIVATE if facility.private else NO_BHYT * scale):
            labels.append("no-bhyt")
        else:
            value = bhyt["value"]  # group, level, province, then the lifelong BHXH number
            bhyt = dict(bhyt, value=value[:3] + place.home + value[5:])
            identifiers.append(bhyt)
    internal = identifier_entry(
        "secondary",
        "PI",
        "Patient internal identifier",
        "Mã bệnh nhân",
        systems.PATIENT_INTERNAL_ID,
        f"BN{number:08d}",
    )
    internal["assigner"] = organization_ref(facility)
    identifiers.append(internal)

    birth = person.birth_date
    birth_date = birth.isoformat()
    if chance(YEAR_ONLY_ELDERLY if person.age >= 60 else YEAR_ONLY):
        birth_date = str(birth.year)
        labels.append("year-only")
    elif birth.day <= 12 and birth.day != birth.month and chance(DAY_MONTH_SWAP):
        birth_date = date(birth.year, birth.day, birth.month).isoformat()
        labels.append("day-month-swap")

    name = _name(rng, person, chance, labels)
    addr = address(place.line, place.province, place.ward)
    contact = truth.contact
    text: list[Callable[[str], str]] = []
    name_text: list[Callable[[str], str]] = []
    if chance(UPPERCASE):
        name_text.append(str.upper)
        labels.append("uppercase")
    if chance(NO_ACCENTS[level]):
        text.append(strip_accents)
        labels.append("no-accents")
    else:
        if _OLD_TONE.search(f"{name['text']} {addr['text']}") and chance(TONE_PLACEMENT):
            text.append(old_tone_style)
            labels.append("tone-placement")
        if chance(DECOMPOSED):
            text.append(decompose)
            labels.append("decomposed")
    if text or name_text:
        _retext_name(name, name_text + text)
        _retext_address(addr, text)
        if contact is not None and text:
            contact = dict(contact, name=dict(contact["name"]))
            _retext_name(contact["name"], text)

    resource: Resource = {
        "resourceType": "Patient",
        "id": new_uuid(rng),
        "extension": base["extension"],
        "identifier": identifiers,
        "active": True,
        "name": [name],
    }
    if phone is not None:
        resource["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    resource["gender"] = person.sex
    resource["birthDate"] = birth_date
    resource["address"] = [addr]
    if "maritalStatus" in base:
        resource["maritalStatus"] = base["maritalStatus"]
    if contact is not None:
        resource["contact"] = [contact]
    resource["communication"] = base["communication"]
    resource["managingOrganization"] = organization_ref(facility)
    # Parts above are shared with the person's other records: copy, so that no two records
    # share anything mutable (orjson: a fraction of the cost of copy.deepcopy).
    copied: Resource = orjson.loads(orjson.dumps(resource))
    return copied


def _name(
    rng: random.Random, person: Person, chance: Callable[[float], bool], labels: list[str]
) -> Resource:
    """The HumanName as typed: maybe a nickname or no middle name, a typo, names reordered."""
    family, *middles, given = person.name.family, *person.name.given
    if chance(NICKNAME):
        given = rng.choice(NICKNAMES_CHILD if person.age < 16 else NICKNAMES_ADULT)
        middles = [] if rng.random() < 0.5 else middles
        labels.append("nickname")
    elif chance(SHORT_NAME):
        middles = middles[:1] if len(middles) > 1 and rng.random() < 0.5 else []
        labels.append("short-name")
    parts = [family, *middles, given]
    if chance(TYPO):
        at = rng.choices(
            range(len(parts)), [1.0] + [1.0 / max(1, len(middles))] * len(middles) + [2.0]
        )[0]
        parts[at] = typo(rng, parts[at])
        labels.append("typo")
    family, *middles, given = parts
    if chance(REORDERED):
        labels.append("reordered-name")
        if middles and rng.random() < 0.5:  # the middle name entered with the family name
            return _human_name(" ".join([family, *middles]), [given])
        return _human_name(given, [family, *middles])  # family and given fields swapped
    return _human_name(family, [*middles, given])


def _human_name(family: str, given: list[str]) -> Resource:
    return {"use": "official", "text": " ".join([family, *given]), "family": family, "given": given}


def _retext_name(name: Resource, fns: list[Callable[[str], str]]) -> None:
    for fn in fns:
        for key in ("text", "family"):
            if key in name:
                name[key] = fn(name[key])
        name["given"] = [fn(g) for g in name.get("given", [])]


def _retext_address(addr: Resource, fns: list[Callable[[str], str]]) -> None:
    for fn in fns:
        addr["text"] = fn(addr["text"])
        addr["line"] = [fn(line) for line in addr["line"]]
        addr["city"] = fn(addr["city"])
        addr["state"] = fn(addr["state"])
        for part in addr["extension"][0]["extension"]:
            concept = part["valueCodeableConcept"]
            if "text" in concept:
                concept["text"] = fn(concept["text"])


def _cmnd(value: str) -> Resource:
    """The old identity card: superseded by the CCCD, hence use `old`."""
    return identifier_entry("old", "CZ", "Citizenship Card", "Chứng minh nhân dân", CMND, value)


# Text errors


@lru_cache(maxsize=1 << 16)
def strip_accents(text: str) -> str:
    """Vietnamese without diacritics, as typed on a plain keyboard: Nguyễn Đức -> Nguyen Duc."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def decompose(text: str) -> str:
    """The same letters as combining sequences (Unicode NFD)."""
    return unicodedata.normalize("NFD", text)


# New-style tone placement puts the mark on the first vowel of a final oa, oe, uy (Hòa,
# Thủy); the old style, still common, on the second (Hoà, Thuỷ).
_TONE_MARKS = "\u0300\u0301\u0309\u0303\u0323"
_OLD_STYLE = {
    unicodedata.normalize("NFC", a + tone) + b: a + unicodedata.normalize("NFC", b + tone)
    for first, second in (("o", "a"), ("o", "e"), ("u", "y"))
    for a, b in ((first, second), (first.upper(), second), (first.upper(), second.upper()))
    for tone in _TONE_MARKS
}
_OLD_TONE = re.compile("(" + "|".join(_OLD_STYLE) + r")\b")


def old_tone_style(text: str) -> str:
    """Hòa -> Hoà, Thủy -> Thuỷ: the same name with the tone mark where older usage puts it."""
    return _OLD_TONE.sub(lambda m: _OLD_STYLE[m.group(1)], text)


# A letter with a diacritic slip: another tone or hat of the same base vowel, đ/d.
_LETTER_FAMILIES = (
    "aàáảãạăằắẳẵặâầấẩẫậ", "eèéẻẽẹêềếểễệ", "iìíỉĩị", "oòóỏõọôồốổỗộơờớởỡợ", "uùúủũụưừứửữự",
    "yỳýỷỹỵ", "dđ",
)  # fmt: skip
_FAMILY_OF = {c: f for f in _LETTER_FAMILIES for c in f}
# Spellings that sound alike in some dialect, or are confused when typing.
_CONFUSIONS = (
    ("tr", "ch"), ("ch", "tr"), ("s", "x"), ("x", "s"), ("gi", "d"), ("d", "gi"), ("r", "d"),
    ("l", "n"), ("n", "l"), ("y", "i"), ("i", "y"), ("ng", "n"), ("nh", "n"),
)  # fmt: skip


def typo(rng: random.Random, word: str) -> str:
    """One typing error in `word`: a diacritic slip, a sound-alike spelling, a letter
    dropped, doubled or two letters swapped. Always different from `word`."""
    for _ in range(20):
        out = _edit(rng, word)
        if out != word and out.strip():
            return out
    return word + word[-1]


def _edit(rng: random.Random, word: str) -> str:
    kind = rng.choices(("diacritic", "confusion", "drop", "double", "swap"), (4, 2, 2, 1, 1))[0]
    lower = word.lower()
    if kind == "diacritic":
        spots = [i for i, c in enumerate(lower) if c in _FAMILY_OF]
        if spots:
            i = rng.choice(spots)
            other = rng.choice([c for c in _FAMILY_OF[lower[i]] if c != lower[i]])
            return word[:i] + (other.upper() if word[i].isupper() else other) + word[i + 1 :]
        kind = "confusion"
    if kind == "confusion":
        found = [(i, a, b) for a, b in _CONFUSIONS for i in _finds(lower, a)]
        if found:
            i, a, b = rng.choice(found)
            b = b.capitalize() if word[i].isupper() else b
            return word[:i] + b + word[i + len(a) :]
        kind = "drop"
    i = rng.randrange(len(word))
    if kind == "drop" and len(word) > 2:
        out = word[:i] + word[i + 1 :]
        return out[0].upper() + out[1:] if word[0].isupper() else out
    if kind == "swap" and len(word) > 2:
        i = rng.randrange(len(word) - 1)
        out = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        return out[0].upper() + out[1:].lower() if word[0].isupper() else out
    return word[: i + 1] + word[i].lower() + word[i + 1 :]


def _finds(text: str, part: str) -> list[int]:
    return [m.start() for m in re.finditer(re.escape(part), text)]
