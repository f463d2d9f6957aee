"""The 34 provincial units of 2025, the 63 former provinces behind them, and addresses."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from vnehr.demo import systems

Resource = dict[str, Any]

STREETS = (
    "Lê Lợi", "Trần Hưng Đạo", "Nguyễn Huệ", "Hai Bà Trưng", "Lý Thường Kiệt", "Quang Trung",
    "Nguyễn Trãi", "Lê Duẩn", "Hùng Vương", "Phan Đình Phùng", "Nguyễn Du", "Trần Phú",
    "Điện Biên Phủ", "Võ Thị Sáu", "Lê Hồng Phong", "Nguyễn Thị Minh Khai", "Phan Chu Trinh",
    "Ngô Quyền", "Bà Triệu", "Lý Thái Tổ",
)  # fmt: skip
HAMLETS_SOUTH = ("Ấp Tân Hòa", "Ấp Bình Phú", "Ấp Long Thạnh", "Ấp Mỹ Lợi", "Ấp Phước Hòa")


@dataclass(frozen=True)
class FormerProvince:
    """A province before the 1 July 2025 merger; its code still starts older CCCD numbers."""

    code: str
    name: str
    into: str
    population: float


@dataclass(frozen=True)
class Ward:
    name: str
    area: int  # index of the area (former district) within the province

    @property
    def rural(self) -> bool:
        return self.name.startswith("Xã")


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    region: str  # north | central | south
    areas: tuple[str, ...]
    wards: tuple[Ward, ...]
    former: tuple[FormerProvince, ...]

    @property
    def short_name(self) -> str:
        return self.name.removeprefix("Thành phố ").removeprefix("Tỉnh ")

    @property
    def is_city(self) -> bool:
        return self.name.startswith("Thành phố")

    @property
    def population(self) -> float:
        return sum(f.population for f in self.former)

    @property
    def southern_names(self) -> bool:
        """Huỳnh for Hoàng and Võ for Vũ: the usage from Quảng Nam southwards."""
        return self.region == "south" or self.code >= "48"


@dataclass(frozen=True)
class Geography:
    provinces: tuple[Province, ...]
    former: tuple[FormerProvince, ...]
    weights: tuple[float, ...]  # cumulative population weights of `provinces`
    former_weights: tuple[float, ...]

    def by_code(self, code: str) -> Province:
        return next(p for p in self.provinces if p.code == code)

    def pick_province(self, rng: random.Random) -> Province:
        return rng.choices(self.provinces, cum_weights=self.weights)[0]

    def pick_former(self, rng: random.Random) -> FormerProvince:
        return rng.choices(self.former, cum_weights=self.former_weights)[0]


@cache
def geography() -> Geography:
    raw = json.loads(
        resources.files("vnehr.demo").joinpath("data/provinces.json").read_text("utf-8")
    )
    former = tuple(FormerProvince(**f) for f in raw["former"])
    provinces = tuple(
        Province(
            code=p["code"],
            name=p["name"],
            region=p["region"],
            areas=tuple(a["name"] for a in p["areas"]),
            wards=tuple(Ward(w, i) for i, a in enumerate(p["areas"]) for w in a["wards"]),
            former=tuple(f for f in former if f.into == p["code"]),
        )
        for p in raw["provinces"]
    )
    return Geography(
        provinces=provinces,
        former=former,
        weights=_cumulative([p.population for p in provinces]),
        former_weights=_cumulative([f.population for f in former]),
    )


def _cumulative(values: list[float]) -> tuple[float, ...]:
    total = 0.0
    out = []
    for v in values:
        total += v
        out.append(total)
    return tuple(out)


def street_line(rng: random.Random, province: Province, ward: Ward) -> str:
    if not ward.rural:
        return f"Số {rng.randint(1, 399)} {rng.choice(STREETS)}"
    if province.region == "south":
        return rng.choice(HAMLETS_SOUTH)
    return f"Thôn {rng.randint(1, 12)}"


def address(line: str, province: Province, ward: Ward, *, use: str = "home") -> Resource:
    """A post-2025 address: street, ward or commune (in `city`), province (in `state`).

    Districts were abolished on 1 July 2025, so `district` is left out. The province code
    is carried by the VN Core administrative-address extension.
    """
    return {
        "extension": [
            {
                "url": systems.ADMINISTRATIVE_ADDRESS,
                "extension": [
                    {
                        "url": "state",
                        "valueCodeableConcept": {
                            "coding": [
                                {
                                    "system": systems.ADMINISTRATIVE_UNITS,
                                    "code": province.code,
                                    "display": province.name,
                                }
                            ]
                        },
                    },
                    {"url": "ward", "valueCodeableConcept": {"text": ward.name}},
                ],
            }
        ],
        "use": use,
        "type": "physical",
        "text": f"{line}, {ward.name}, {province.name}",
        "line": [line],
        "city": ward.name,
        "state": province.name,
        "country": "VN",
    }
