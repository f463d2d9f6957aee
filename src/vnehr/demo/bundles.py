"""The population as FHIR transaction Bundles: the facility registry first, then citizens."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

from vnehr.demo.facilities import network
from vnehr.demo.identifiers import new_uuid
from vnehr.demo.record import record
from vnehr.demo.registry import organization, practitioner, practitioner_role

Resource = dict[str, Any]

BUNDLE_SIZE = 100


def facilities(seed: int) -> list[Resource]:
    """Organization resources for every facility, parents before the stations under them."""
    return [organization(f) for f in network(seed).facilities]


def registry(seed: int) -> list[list[Resource]]:
    """The facility registry in units that stay together: an Organization, or a
    Practitioner with the PractitionerRole placing them at their facility."""
    net = network(seed)
    units: list[list[Resource]] = [[organization(f)] for f in net.facilities]
    for f in net.facilities:
        units.extend([practitioner(c), practitioner_role(c, f)] for c in f.staff)
    return units


def population(patients: int, seed: int, *, bundle_size: int = BUNDLE_SIZE) -> Iterator[Resource]:
    """Transaction Bundles of about `bundle_size` resources each: first the facilities,
    doctors and their roles, then `patients` citizens, each citizen whole in one Bundle.

    Same (patients, seed), same output, byte for byte; a larger `patients` with the same
    seed repeats the smaller population and adds to it.
    """
    offset = random.Random(f"vnehr.demo:{seed}:serials").randrange(1_000_000)
    net = network(seed)
    bundle_ids = random.Random(f"vnehr.demo:{seed}:bundles")
    citizens = (record(i, seed, net, offset) for i in range(patients))
    for entries in _pack(chain(registry(seed), citizens), bundle_size):
        yield transaction(new_uuid(bundle_ids), entries)


def _pack(units: Iterable[list[Resource]], size: int) -> Iterator[list[Resource]]:
    """Fill bundles with whole units; a unit larger than `size` gets a bundle of its own."""
    pending: list[Resource] = []
    for unit in units:
        if pending and len(pending) + len(unit) > size:
            yield pending
            pending = []
        pending.extend(unit)
    if pending:
        yield pending


def transaction(bundle_id: str, resources: list[Resource]) -> Resource:
    """A transaction of PUTs to client-chosen ids: loading the same population twice
    updates the same resources rather than duplicating them.

    fullUrls are `urn:uuid:` + the id, so references within a citizen's record resolve
    inside the Bundle; the registry is referred to as `Organization/<id>`.
    """
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }
