"""One person's chart while it is written: the person, their care network, their resources."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from vnehr.demo.facilities import Care
from vnehr.demo.identifiers import new_uuid
from vnehr.demo.names import VietName
from vnehr.demo.places import FormerProvince, Province, Ward

Resource = dict[str, Any]

# The population is seen as of this day: ages are computed against it and nothing happens
# on or after it. Fixed, so that output never depends on the clock.
TODAY = date(2026, 1, 1)
# Clinical history is generated for the three years before TODAY.
HISTORY_START = date(2023, 1, 1)


@dataclass(frozen=True)
class Person:
    index: int
    id: str
    sex: str  # FHIR administrative gender: male | female
    birth_date: date
    name: VietName
    province: Province
    ward: Ward
    home: FormerProvince  # the former province the person lives in
    birthplace: FormerProvince  # where the birth was registered

    @property
    def age(self) -> int:
        return age_on(self.birth_date, TODAY)

    def age_at(self, day: date) -> int:
        return age_on(self.birth_date, day)


@dataclass
class Chart:
    rng: random.Random
    person: Person
    care: Care
    resources: list[Resource] = field(default_factory=list)

    def new_id(self) -> str:
        return new_uuid(self.rng)

    def add(self, resource: Resource) -> Resource:
        self.resources.append(resource)
        return resource

    def subject(self) -> Resource:
        return {"reference": f"urn:uuid:{self.person.id}"}

    def history_day(self, *, after: date | None = None, months: tuple[int, ...] = ()) -> date:
        """A random day in the history window, after birth (and `after`), before TODAY."""
        start = max(HISTORY_START, self.person.birth_date + timedelta(days=1))
        if after is not None:
            start = max(start, after)
        span = (TODAY - start).days
        if span <= 1:
            return TODAY - timedelta(days=1)
        for _ in range(6 if months else 1):
            day = start + timedelta(days=self.rng.randrange(span))
            if not months or day.month in months:
                return day
        return day


def local(resource: Resource) -> Resource:
    """A reference to a resource of the same bundle, by its fullUrl."""
    return {"reference": f"urn:uuid:{resource['id']}"}


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def instant(day: date, minutes: int) -> str:
    """A dateTime in Vietnam time (UTC+07:00, no daylight saving) `minutes` after midnight."""
    day = day + timedelta(days=minutes // 1440)
    minutes %= 1440
    return f"{day.isoformat()}T{minutes // 60:02d}:{minutes % 60:02d}:00+07:00"
