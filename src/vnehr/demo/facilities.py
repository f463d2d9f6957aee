"""Health facilities at every level (tuyến) and their doctors, and the care each ward uses."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cache

from vnehr.demo.identifiers import new_uuid
from vnehr.demo.names import VietName, person_name
from vnehr.demo.places import Province, Ward, geography, street_line

LEVELS = {
    "central": "Tuyến trung ương",
    "provincial": "Tuyến tỉnh",
    "district": "Tuyến huyện",
    "commune": "Tuyến xã",
}
# Real central (MoH) hospitals, in the first ward listed for their province unless placed
# otherwise below; their codes here are synthetic.
WARD_OF = {"Bệnh viện Đa khoa Trung ương Quảng Nam": "Phường Tam Kỳ"}
CENTRAL = (
    ("01", "Bệnh viện Bạch Mai", "general", "north"),
    ("01", "Bệnh viện Nhi Trung ương", "pediatric", "north"),
    ("01", "Bệnh viện Bệnh Nhiệt đới Trung ương", "infectious", "north"),
    ("01", "Bệnh viện Phổi Trung ương", "lung", "north"),
    ("01", "Bệnh viện K", "oncology", "north"),
    ("19", "Bệnh viện Trung ương Thái Nguyên", "general", "north"),
    ("46", "Bệnh viện Trung ương Huế", "general", "central"),
    ("48", "Bệnh viện Đa khoa Trung ương Quảng Nam", "general", "central"),
    ("79", "Bệnh viện Chợ Rẫy", "general", "south"),
    ("79", "Bệnh viện Thống Nhất", "general", "south"),
    ("92", "Bệnh viện Đa khoa Trung ương Cần Thơ", "general", "south"),
)
# Invented private facilities: a private hospital counts as provincial level, a clinic as district.
PRIVATE = (
    ("01", "Bệnh viện Đa khoa tư nhân An Việt", "general"),
    ("01", "Phòng khám Đa khoa Thành Công", "clinic"),
    ("79", "Bệnh viện Đa khoa tư nhân Sài Gòn Xanh", "general"),
    ("79", "Phòng khám Đa khoa Phước An", "clinic"),
    ("48", "Bệnh viện Đa khoa tư nhân Sông Hàn", "general"),
    ("92", "Phòng khám Đa khoa Tây Đô", "clinic"),
)
# SNOMED CT specialty (code, display) and the Vietnamese department name, by facility kind.
SPECIALTIES = {
    "general": (
        ("394802001", "General medicine", "Nội khoa"),
        ("394579002", "Cardiology", "Tim mạch"),
        ("394583002", "Endocrinology", "Nội tiết"),
    ),
    "pediatric": (("394537008", "Pediatric specialty", "Nhi khoa"),),
    "infectious": (("394807007", "Infectious diseases", "Truyền nhiễm"),),
    "lung": (("418112009", "Pulmonary medicine", "Hô hấp"),),
    "oncology": (("394592004", "Clinical oncology", "Ung bướu"),),
    "primary": (("394814009", "General practice", "Đa khoa"),),
}
STAFF = {"central": 3, "provincial": 2, "district": 2, "commune": 1}


@dataclass(frozen=True)
class Clinician:
    id: str
    role_id: str
    name: VietName
    sex: str
    employee_number: str
    specialty: tuple[str, str, str]


@dataclass(frozen=True)
class Facility:
    id: str
    code: str  # mã cơ sở KCB: 2-digit province code + 3-digit serial
    name: str
    level: str
    private: bool
    kind: str
    province: Province
    ward: Ward
    line: str
    parent: Facility | None
    staff: tuple[Clinician, ...]

    def clinician(self, rng: random.Random) -> Clinician:
        return self.staff[rng.randrange(len(self.staff))]


@dataclass(frozen=True)
class Care:
    """The facilities one ward's residents use, from the commune station up to the centre."""

    station: Facility
    centre: Facility  # district-level health centre (trung tâm y tế khu vực)
    hospital: Facility  # provincial general hospital
    children: Facility  # provincial obstetrics-paediatrics hospital, or the general one
    referral: Facility  # central general hospital of the region
    infectious: Facility  # central hospital for tropical diseases, or the referral one
    private: Facility | None


@dataclass(frozen=True)
class Network:
    facilities: tuple[Facility, ...]
    _care: dict[tuple[str, str], Care] = field(default_factory=dict)

    def care(self, province: Province, ward: Ward) -> Care:
        return self._care[(province.code, ward.name)]


@cache
def network(seed: int) -> Network:
    """Every facility with its staff; the same seed gives the same ids, names and codes."""
    rng = random.Random(f"vnehr.demo:{seed}:network")
    geo = geography()
    serial: dict[str, int] = {}
    out: list[Facility] = []

    def add(
        province: Province,
        ward: Ward,
        name: str,
        level: str,
        kind: str,
        *,
        private: bool = False,
        parent: Facility | None = None,
    ) -> Facility:
        serial[province.code] = serial.get(province.code, 0) + 1
        code = f"{province.code}{serial[province.code]:03d}"
        specialties = SPECIALTIES.get(kind, SPECIALTIES["primary"])
        staff = tuple(
            _clinician(rng, province, f"NV{code}{k + 1:03d}", specialties[k % len(specialties)])
            for k in range(2 if private else STAFF[level])
        )
        line = street_line(rng, province, ward)
        facility = Facility(
            new_uuid(rng), code, name, level, private, kind, province, ward, line, parent, staff
        )
        out.append(facility)
        return facility

    central: dict[tuple[str, str], Facility] = {}
    for code, name, kind, region in CENTRAL:
        province = geo.by_code(code)
        ward = next((w for w in province.wards if w.name == WARD_OF.get(name)), province.wards[0])
        facility = add(province, ward, name, "central", kind)
        central.setdefault((region, kind), facility)
    hospitals: dict[str, tuple[Facility, Facility]] = {}
    for p in geo.provinces:
        label = f"Thành phố {p.short_name}" if p.is_city else f"tỉnh {p.short_name}"
        general = add(p, p.wards[0], f"Bệnh viện Đa khoa {label}", "provincial", "general")
        children = general
        if p.is_city:
            children = add(p, p.wards[0], f"Bệnh viện Sản - Nhi {label}", "provincial", "pediatric")
        hospitals[p.code] = (general, children)
    centres: dict[tuple[str, int], Facility] = {}
    for p in geo.provinces:
        for i, area in enumerate(p.areas):
            ward = next(w for w in p.wards if w.area == i)
            centres[(p.code, i)] = add(
                p, ward, f"Trung tâm Y tế khu vực {area}", "district", "primary"
            )
    stations: dict[tuple[str, str], Facility] = {}
    for p in geo.provinces:
        for ward in p.wards:
            stations[(p.code, ward.name)] = add(
                p,
                ward,
                f"Trạm Y tế {ward.name}",
                "commune",
                "primary",
                parent=centres[(p.code, ward.area)],
            )
    private: dict[str, Facility] = {}
    for code, name, kind in PRIVATE:
        p = geo.by_code(code)
        level = "provincial" if kind == "general" else "district"
        facility = add(
            p, p.wards[1], name, level, "general" if kind == "general" else "primary", private=True
        )
        private.setdefault(code, facility)
    net = Network(tuple(out))
    for p in geo.provinces:
        region = "north" if p.region == "north" or p.code in ("38", "40", "42") else p.region
        referral = central[(region, "general")]
        for ward in p.wards:
            net._care[(p.code, ward.name)] = Care(
                station=stations[(p.code, ward.name)],
                centre=centres[(p.code, ward.area)],
                hospital=hospitals[p.code][0],
                children=hospitals[p.code][1],
                referral=referral,
                infectious=central.get((region, "infectious"), referral),
                private=private.get(p.code),
            )
    return net


def _clinician(
    rng: random.Random, province: Province, number: str, specialty: tuple[str, str, str]
) -> Clinician:
    sex = "female" if rng.random() < 0.55 else "male"
    name = person_name(rng, sex, rng.randint(1965, 1997), southern=province.southern_names)
    return Clinician(new_uuid(rng), new_uuid(rng), name, sex, number, specialty)
