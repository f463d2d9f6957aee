"""Time vnehr.fhir.validation.validate on typical resources; optionally over a whole package.

    .venv/bin/python bench/validation_speed.py
    .venv/bin/python bench/validation_speed.py --demo
    .venv/bin/python bench/validation_speed.py --package path/to/hl7.fhir.r4.examples-4.0.1.tgz

Prints microseconds per resource (best of several rounds, after a warm-up that loads the
definition tables and compiles the invariants). The Patient and Observation figures validate
one resource again and again, so that everything in it is remembered after the first call
(src/vnehr/fhir/validation/memo.py): they are the cost of a resource seen before.

`--demo` times the realistic mix the server ingests: the first 5,000 entry resources of the
demo population (`population(patients=300, seed=1)`: Observations, Immunizations,
MedicationRequests, Encounters, ...), validated one after the other; each of the 7 rounds takes
a new population (seed 1, 2, ...) so that no round validates values seen in an earlier one
except the ones that repeat in real data (codes, systems). It prints the median round in µs of
CPU time per resource (process time, so that other processes on a shared machine count less;
the range of the rounds shows the noise that remains) and the wall-clock median.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tarfile
import time
from pathlib import Path
from typing import Any

from vnehr.fhir.validation import has_errors, validate

# Nguyễn Thị Lan: an adult patient as a Vietnamese hospital would register her.
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "nguyen-thi-lan",
    "meta": {"versionId": "1", "lastUpdated": "2024-03-01T08:30:00+07:00"},
    "identifier": [
        {
            "use": "official",
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}
                ]
            },
            "system": "http://moh.gov.vn/fhir/sid/cccd",
            "value": "001185012345",
        },
        {"system": "http://moh.gov.vn/fhir/sid/bhyt", "value": "DN4010123456789"},
    ],
    "active": True,
    "name": [
        {"use": "official", "text": "Nguyễn Thị Lan", "family": "Nguyễn", "given": ["Thị", "Lan"]}
    ],
    "telecom": [{"system": "phone", "value": "0912345678", "use": "mobile"}],
    "gender": "female",
    "birthDate": "1985-04-12",
    "address": [
        {
            "use": "home",
            "line": ["12 Phố Huế"],
            "district": "Hai Bà Trưng",
            "city": "Hà Nội",
            "country": "VN",
        }
    ],
    "managingOrganization": {"reference": "Organization/bv-bach-mai"},
}

# Her fasting glucose, as a laboratory system would send it.
OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "glucose-1",
    "meta": {"versionId": "1", "lastUpdated": "2024-03-01T09:10:00+07:00"},
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory",
                }
            ]
        }
    ],
    "code": {
        "coding": [{"system": "http://loinc.org", "code": "1558-6", "display": "Fasting glucose"}]
    },
    "subject": {"reference": "Patient/nguyen-thi-lan"},
    "effectiveDateTime": "2024-03-01T07:45:00+07:00",
    "issued": "2024-03-01T09:10:00+07:00",
    "valueQuantity": {
        "value": 7.8,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    },
    "referenceRange": [
        {
            "low": {
                "value": 3.9,
                "unit": "mmol/L",
                "system": "http://unitsofmeasure.org",
                "code": "mmol/L",
            },
            "high": {
                "value": 5.6,
                "unit": "mmol/L",
                "system": "http://unitsofmeasure.org",
                "code": "mmol/L",
            },
        }
    ],
}


def per_call_us(resource: dict[str, Any], rounds: int = 5, n: int = 2000) -> float:
    """Best-of-`rounds` mean time of one validate() call, in microseconds."""
    validate(resource)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            validate(resource)
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def demo_resources(seed: int = 1, count: int = 5000) -> list[dict[str, Any]]:
    """The first `count` entry resources of `population(patients=300, seed=seed)`."""
    from vnehr.demo import population

    out = [
        entry["resource"]
        for bundle in population(patients=300, seed=seed)
        for entry in bundle.get("entry", [])
    ]
    return out[:count]


def demo_round(resources: list[dict[str, Any]]) -> tuple[float, float, int]:
    """Validate each resource once: (CPU µs, wall µs per resource, resources with errors)."""
    results = []
    wall, cpu = time.perf_counter(), time.process_time()
    for r in resources:
        results.append(validate(r))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    rejected = sum(has_errors(issues) for issues in results)
    return cpu / len(resources) * 1e6, wall / len(resources) * 1e6, rejected


def demo(count: int, rounds: int) -> None:
    # Each round validates a population not seen before (seeds 1, 2, ...), as a server
    # ingests new patients: the values that repeat in real data (codes, systems, units,
    # Codings) are remembered from one resource to the next (memo.py) as they would be in
    # production, but ids, dates, names and references are new every time. A warm-up round
    # (seed 1000) fills the caches first, as the first requests to a server would.
    demo_round(demo_resources(1000, count))
    cpu, wall, rejected = [], [], 0
    for seed in range(1, rounds + 1):
        resources = demo_resources(seed, count)
        gc.collect()  # the new population's objects are old now: collections scan them less
        c, w, bad = demo_round(resources)
        cpu.append(c)
        wall.append(w)
        rejected += bad
    print(
        f"demo population, {count} resources per round, {rounds} rounds (seeds 1-{rounds}, "
        f"{rejected} resources with errors): median {statistics.median(cpu):.1f} µs of CPU "
        f"per resource (rounds {min(cpu):.1f} to {max(cpu):.1f}; wall clock median "
        f"{statistics.median(wall):.1f} µs)"
    )


def package_resources(tgz: Path) -> list[dict[str, Any]]:
    out = []
    with tarfile.open(tgz) as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if (
                member.isfile()
                and name.endswith(".json")
                and name not in ("package.json", "ig-r4.json")
            ):
                f = tar.extractfile(member)
                if f is not None:
                    data = json.load(f)
                    if isinstance(data, dict) and "resourceType" in data:
                        out.append(data)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, help="also time every resource of this package")
    parser.add_argument(
        "--demo", action="store_true", help="time the first resources of the demo population"
    )
    parser.add_argument("--count", type=int, default=5000, help="demo resources (5000)")
    parser.add_argument("--rounds", type=int, default=7, help="demo rounds (7)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    assert not has_errors(validate(PATIENT)), validate(PATIENT)
    assert not has_errors(validate(OBSERVATION)), validate(OBSERVATION)
    print(
        f"first call (loads tables, compiles invariants): {(time.perf_counter() - t0) * 1e3:.0f} ms"
    )
    for label, resource in (("Patient", PATIENT), ("Observation", OBSERVATION)):
        print(f"{label:12} {per_call_us(resource):7.1f} µs per resource")
    if args.demo:
        demo(args.count, args.rounds)
    if args.package:
        resources = package_resources(args.package)
        times, rejected = [], 0
        for r in resources:
            t0 = time.perf_counter()
            rejected += has_errors(validate(r))
            times.append(time.perf_counter() - t0)
        times.sort()
        print(
            f"{len(resources)} package resources in {sum(times):.2f} s: median "
            f"{times[len(times) // 2] * 1e6:.0f} µs, 90th percentile "
            f"{times[len(times) * 9 // 10] * 1e6:.0f} µs; {rejected} with errors"
        )


if __name__ == "__main__":
    main()
