"""Vietnamese personal names: family name, middle name(s), given name, by sex and generation."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

# Family names with their share of the population in per cent (Lê Trung Hoa and later
# surveys). Hoàng/Huỳnh and Vũ/Võ are one name each, spelled by region.
FAMILY_NAMES = (
    ("Nguyễn", 38.0), ("Trần", 11.0), ("Lê", 9.5), ("Phạm", 7.0), ("Hoàng", 5.0),
    ("Phan", 4.5), ("Vũ", 3.9), ("Đặng", 2.1), ("Bùi", 2.0), ("Đỗ", 1.4), ("Hồ", 1.3),
    ("Ngô", 1.3), ("Dương", 1.0), ("Lý", 0.5), ("Đinh", 0.6), ("Trương", 0.6), ("Đoàn", 0.5),
    ("Lương", 0.4), ("Mai", 0.4), ("Trịnh", 0.4), ("Cao", 0.4), ("Hà", 0.4), ("Lâm", 0.4),
    ("Tạ", 0.3), ("Phùng", 0.3), ("Lưu", 0.3), ("Tô", 0.3), ("Kiều", 0.2), ("Châu", 0.2),
    ("Vương", 0.2), ("Quách", 0.2), ("Thái", 0.2), ("Tăng", 0.2), ("La", 0.2), ("Triệu", 0.2),
)  # fmt: skip
SOUTHERN_SPELLING = {"Hoàng": "Huỳnh", "Vũ": "Võ"}

# Văn and Thị were near-universal before the 1980s and are much rarer among the young.
MALE_MIDDLE = (
    "Hữu", "Đức", "Minh", "Quang", "Công", "Thành", "Xuân", "Đình", "Ngọc", "Quốc", "Thanh",
    "Hoàng", "Duy", "Trọng", "Anh", "Gia", "Bảo", "Tuấn", "Nhật", "Hải",
)  # fmt: skip
FEMALE_MIDDLE = (
    "Ngọc", "Thu", "Minh", "Thanh", "Kim", "Bảo", "Phương", "Hồng", "Thùy", "Mai", "Khánh",
    "Diệu", "Hải", "Quỳnh", "Thảo", "Hoài", "Mỹ", "Tuyết", "Bích", "Lan",
)  # fmt: skip
MALE_GIVEN_CLASSIC = (
    "Hùng", "Dũng", "Tuấn", "Hải", "Nam", "Long", "Thắng", "Cường", "Sơn", "Trung", "Bình",
    "Tùng", "Vinh", "Toàn", "Thịnh", "Tài", "Lộc", "Nghĩa", "Tiến", "Hưng", "Thành", "Quang",
    "Hòa", "Phúc", "Đức", "Tâm", "Hiếu", "Việt",
)  # fmt: skip
MALE_GIVEN_MODERN = (
    "Anh", "Minh", "Huy", "Khoa", "Quân", "Phong", "Khánh", "Đạt", "Bảo", "Khang", "Nhân",
    "Khôi", "Lâm", "An", "Phát", "Kiên", "Hiếu", "Duy", "Nam", "Trí", "Vũ", "Thiện",
)  # fmt: skip
FEMALE_GIVEN_CLASSIC = (
    "Lan", "Hương", "Hoa", "Mai", "Hằng", "Hà", "Nga", "Thủy", "Yến", "Nhung", "Phương",
    "Huyền", "Vân", "Oanh", "Dung", "Hạnh", "Loan", "Liên", "Hồng", "Xuân", "Tuyết", "Lý",
    "Bình", "Thúy",
)  # fmt: skip
FEMALE_GIVEN_MODERN = (
    "Linh", "Trang", "Thảo", "Ngọc", "Anh", "Chi", "Vy", "My", "Nhi", "Trâm", "Quyên", "Thư",
    "Uyên", "Hân", "An", "Ngân", "Giang", "Châu", "Tâm", "Diệp", "Hà", "Huyền",
)  # fmt: skip

_FAMILY = tuple(n for n, _ in FAMILY_NAMES)
_FAMILY_CUM: tuple[float, ...] = tuple(
    sum(w for _, w in FAMILY_NAMES[: i + 1]) for i in range(len(FAMILY_NAMES))
)


@dataclass(frozen=True)
class VietName:
    family: str
    given: tuple[str, ...]  # middle name(s) then the given name, in spoken order

    @property
    def text(self) -> str:
        return " ".join((self.family, *self.given))

    def human_name(self) -> dict[str, Any]:
        """FHIR HumanName: `family` is the family name, `given` the middle and given names."""
        return {
            "use": "official",
            "text": self.text,
            "family": self.family,
            "given": list(self.given),
        }


def family_name(rng: random.Random, *, southern: bool) -> str:
    name = rng.choices(_FAMILY, cum_weights=_FAMILY_CUM)[0]
    return SOUTHERN_SPELLING.get(name, name) if southern else name


def person_name(
    rng: random.Random, sex: str, birth_year: int, *, southern: bool, family: str | None = None
) -> VietName:
    """A name typical of someone of this sex born in this year."""
    family = family or family_name(rng, southern=southern)
    modern = rng.random() < min(0.9, max(0.1, (birth_year - 1960) / 45))
    male = sex == "male"
    if male:
        traditional = rng.random() < (0.25 if modern else 0.55)
        middles = ["Văn"] if traditional else [rng.choice(MALE_MIDDLE)]
        given = rng.choice(MALE_GIVEN_MODERN if modern else MALE_GIVEN_CLASSIC)
    else:
        traditional = rng.random() < (0.3 if modern else 0.7)
        middles = ["Thị"] if traditional else [rng.choice(FEMALE_MIDDLE)]
        given = rng.choice(FEMALE_GIVEN_MODERN if modern else FEMALE_GIVEN_CLASSIC)
    if birth_year >= 2000 and not traditional and rng.random() < 0.12:
        # Two middle names (Nguyễn Ngọc Bảo Trâm) became common with the 2000s generation.
        pool = MALE_MIDDLE if male else FEMALE_MIDDLE
        middles.append(rng.choice(pool))
    # No repeated name part (Minh Minh): drop repeats, falling back to Văn/Thị.
    middles = [m for i, m in enumerate(middles) if m != given and m not in middles[:i]]
    middles = middles or ["Văn" if male else "Thị"]
    return VietName(family, (*middles, given))
