"""Identifiers: deterministic UUIDs, CCCD numbers, BHYT card numbers, mobile phone numbers."""

from __future__ import annotations

import random
import uuid
from datetime import date

# The merger took effect on this day; births registered from then on carry the code of
# one of the 34 new provincial units (all of which reuse a former code).
MERGER = date(2025, 7, 1)

# Mobile prefixes in use since the 2018 renumbering (Viettel, Vinaphone, MobiFone,
# Vietnamobile, Gmobile), weighted roughly by market share.
MOBILE_PREFIXES = (
    ("032", 5), ("033", 5), ("034", 5), ("035", 5), ("036", 5), ("037", 5), ("038", 5),
    ("039", 5), ("086", 4), ("096", 6), ("097", 6), ("098", 6),
    ("081", 2), ("082", 2), ("083", 2), ("084", 2), ("085", 2), ("088", 2), ("091", 4),
    ("094", 4),
    ("070", 2), ("076", 1), ("077", 1), ("078", 1), ("079", 1), ("089", 2), ("090", 4),
    ("093", 3),
    ("052", 1), ("056", 1), ("058", 1), ("092", 1), ("059", 1), ("099", 1),
)  # fmt: skip
_PREFIXES = tuple(p for p, _ in MOBILE_PREFIXES)
_PREFIX_WEIGHTS = tuple(w for _, w in MOBILE_PREFIXES)

# BHYT beneficiary groups (mã đối tượng) and their benefit level (mức hưởng):
# 1 = 100%, 2 = 100% with a ceiling on high-tech services, 3 = 95%, 4 = 80%.
BHYT_BENEFIT = {
    "TE": 1,  # children under 6
    "CC": 1,  # people with meritorious service to the revolution
    "HN": 2,  # members of poor households
    "BT": 2,  # social protection beneficiaries (incl. people over 80 on a social pension)
    "HT": 3,  # retirees
    "CN": 3,  # members of near-poor households
    "DN": 4,  # employees of enterprises
    "HC": 4,  # civil servants
    "HS": 4,  # pupils
    "SV": 4,  # students
    "GD": 4,  # household (family) scheme
}
# Serial numbers: index x a coprime multiplier, so every index < 10^6 (CCCD) or 10^8 (BHXH)
# gets a distinct serial without any global state, in any order of generation.
_CCCD_MULTIPLIER = 7919
_BHXH_MULTIPLIER = 104729


def new_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng`: reproducible, unlike uuid4()."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def cccd(birth_province: str, sex: str, birth: date, index: int, offset: int) -> str:
    """A 12-digit CCCD (personal identification) number.

    Three digits for the province where the birth was registered, one digit for sex and
    century (0/1 male/female born 1900-1999, 2/3 born 2000-2099), two for the year of
    birth, six serial digits.
    """
    century = (birth.year // 100 - 19) * 2 + (1 if sex == "female" else 0)
    serial = (index * _CCCD_MULTIPLIER + offset) % 1_000_000
    return f"0{birth_province}{century}{birth.year % 100:02d}{serial:06d}"


def bhxh_number(province: str, index: int, offset: int) -> str:
    """A 10-digit social insurance number (mã số BHXH): province code and 8 serial digits."""
    return f"{province}{(index * _BHXH_MULTIPLIER + offset * 101) % 100_000_000:08d}"


def bhyt_group(rng: random.Random, age: int) -> str | None:
    """The beneficiary group for someone of this age; None for the ~7% without cover."""
    if age < 6:
        return "TE"
    if age < 18:
        return "HS"
    roll = rng.random()
    if roll < 0.07:
        return None
    if age >= 80:
        return "BT" if roll < 0.6 else "HT"
    if age >= 60:
        return rng.choices(("HT", "GD", "CC", "HN", "CN"), (45, 40, 4, 6, 5))[0]
    if age < 23 and roll < 0.5:
        return "SV"
    return rng.choices(("DN", "HC", "GD", "HN", "CN", "BT"), (38, 12, 38, 5, 5, 2))[0]


def bhyt_number(group: str, province: str, bhxh: str) -> str:
    """The 15-character BHYT card number: group, benefit level, province, BHXH number."""
    return f"{group}{BHYT_BENEFIT[group]}{province}{bhxh}"


def mobile_phone(rng: random.Random) -> str:
    """A Vietnamese mobile number in E.164 form: +84, the prefix without its 0, 7 digits."""
    prefix = rng.choices(_PREFIXES, _PREFIX_WEIGHTS)[0]
    return f"+84{prefix[1:]}{rng.randrange(10_000_000):07d}"
