"""Time search-index extraction per resource: a typical Patient and Observation, and R4 examples.

Run from the repository root:

    PYTHONPATH=src .venv/bin/python bench/bench_extract.py
    .venv/bin/python bench/bench_extract.py --demo [--patients 300] [--runs 7]
    .venv/bin/python bench/bench_extract.py --demo --dump rows.txt

The default mode prints microseconds per resource (best of 5 runs) and the row count of each.
`--demo` times the resources of the demo population (vnehr.demo.population, ~6,400 resources
for 300 patients) as the server sees them: references rewritten from `urn:uuid:` to
`Type/id`, decimals parsed as FhirDecimal, each resource parsed anew shortly before (as the
server parses and validates it right before). It prints the median and best µs/resource
over the runs, and the median per resource type. `--dump FILE` writes the rows of each demo
resource (repr, one resource per line) to compare the output of two versions of the code.
To time another version, put its source first: `PYTHONPATH=/elsewhere/src .venv/bin/python
bench/bench_extract.py --demo`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vnehr.fhir.json import dumps, loads
from vnehr.search.extract import Extractor, string
from vnehr.search.registry import default_registry

EXAMPLES = Path(__file__).resolve().parent.parent / "tests" / "unit" / "search" / "data"

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "nguyen-thi-lan",
    "meta": {
        "versionId": "1",
        "lastUpdated": "2024-03-05T10:00:00.000Z",
        "profile": ["http://fhir.moh.gov.vn/StructureDefinition/vn-core-patient"],
    },
    "identifier": [
        {
            "use": "official",
            "type": {"text": "Căn cước công dân"},
            "system": "http://fhir.moh.gov.vn/sid/cccd",
            "value": "001185012345",
        },
        {"system": "http://fhir.moh.gov.vn/sid/bhyt", "value": "DN4010123456789"},
    ],
    "active": True,
    "name": [
        {"use": "official", "text": "Nguyễn Thị Lan", "family": "Nguyễn", "given": ["Thị", "Lan"]}
    ],
    "telecom": [{"system": "phone", "value": "0912345678", "use": "mobile"}],
    "gender": "female",
    "birthDate": "1985-07-14",
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

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "hba1c-1",
    "meta": {"versionId": "1", "lastUpdated": "2024-03-05T10:00:00.000Z"},
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
        "coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}],
        "text": "HbA1c",
    },
    "subject": {"reference": "Patient/nguyen-thi-lan"},
    "encounter": {"reference": "Encounter/enc-1"},
    "effectiveDateTime": "2024-03-05T08:30:00+07:00",
    "issued": "2024-03-05T10:00:00+07:00",
    "performer": [{"reference": "Practitioner/bs-tran"}],
    "valueQuantity": {
        "value": 7.2,
        "unit": "%",
        "system": "http://unitsofmeasure.org",
        "code": "%",
    },
}


def per_resource(extractor: Extractor, resources: list[dict[str, Any]], rounds: int) -> float:
    """Best-of-5 microseconds per resource."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            for resource in resources:
                extractor.extract(resource)
        elapsed = time.perf_counter() - start
        best = min(best, elapsed / (rounds * len(resources)))
    return best * 1e6


def demo_resources(patients: int, seed: int = 1) -> list[dict[str, Any]]:
    """The demo population's resources, with references resolved as the server has them."""
    from vnehr.demo import population

    resources: list[dict[str, Any]] = []
    for bundle in population(patients=patients, seed=seed):
        urls = {
            e["fullUrl"]: e["request"]["url"]
            for e in bundle["entry"]
            if str(e.get("fullUrl", "")).startswith("urn:uuid:")
        }
        text = dumps(bundle).decode()
        for urn, url in urls.items():
            text = text.replace(f'"{urn}"', json.dumps(url))
        resolved = loads(text)  # FhirDecimal, as a request body is parsed
        resources.extend(e["resource"] for e in resolved["entry"])
    return resources


def demo(patients: int, runs: int, dump: str | None) -> None:
    resources = demo_resources(patients)
    extractor = Extractor(default_registry())
    extractor.compile_all()
    if dump:
        with open(dump, "w", encoding="utf-8") as out:
            for resource in resources:
                rows = extractor.extract(resource)
                out.write(
                    repr((resource["resourceType"], resource.get("id"), *_fields(rows))) + "\n"
                )
        print(f"rows of {len(resources)} resources written to {dump}")
    extract = extractor.extract
    for resource in resources:  # warm the caches as a running server has them
        extract(resource)
    # Each run extracts freshly parsed copies, as the server does: a resource is parsed (and
    # validated) just before its rows are extracted, so its strings have no hash computed yet
    # but it is in the CPU caches. Copies are made CHUNK at a time, outside the timing.
    blobs = [dumps(resource) for resource in resources]
    by_type: dict[str, list[bytes]] = defaultdict(list)
    for resource, blob in zip(resources, blobs, strict=True):
        by_type[resource["resourceType"]].append(blob)
    totals: list[float] = []
    type_times: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        totals.append(_timed(extract, blobs) / len(blobs) * 1e6)
        for name, group in by_type.items():
            type_times[name].append(_timed(extract, group) / len(group) * 1e6)
    rows = sum(extract(r).count() for r in resources) / len(resources)
    print(
        f"{len(resources)} demo resources ({patients} patients), {rows:.1f} rows on average: "
        f"median {statistics.median(totals):.1f} µs/resource, best {min(totals):.1f} "
        f"({runs} runs)"
    )
    counts: dict[str, int] = defaultdict(int)
    for resource in resources:
        counts[resource["resourceType"]] += extract(resource).count()
    for name, group in sorted(by_type.items(), key=lambda item: -len(item[1])):
        print(
            f"  {name:18} {len(group):5}  {statistics.median(type_times[name]):6.1f} µs"
            f"  {counts[name] / len(group):5.1f} rows"
        )


CHUNK = 32


def _timed(extract: Callable[[dict[str, Any]], Any], blobs: list[bytes]) -> float:
    """Seconds to extract the rows of `blobs`, each parsed shortly before."""
    clock = time.perf_counter
    elapsed = 0.0
    for i in range(0, len(blobs), CHUNK):
        batch = [loads(blob) for blob in blobs[i : i + CHUNK]]
        start = clock()
        for resource in batch:
            extract(resource)
        elapsed += clock() - start
    return elapsed


def _fields(rows: Any) -> tuple[Any, ...]:
    return (
        rows.tokens,
        rows.strings,
        rows.dates,
        rows.numbers,
        rows.quantities,
        rows.references,
        rows.uris,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo", action="store_true", help="time the demo population")
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--dump", help="with --demo: write the rows of each resource here")
    args = parser.parse_args()
    if args.demo:
        demo(args.patients, args.runs, args.dump)
        return
    extractor = Extractor(default_registry())
    stats = extractor.compile_all()
    print(
        f"expressions: {stats.native} native, {stats.fallback} fhirpathpy fallback, "
        f"{stats.failed} failed, {stats.skipped} not indexed (composite/special/columns)"
    )
    for name, resource in (("Patient", PATIENT), ("Observation", OBSERVATION)):
        rows = extractor.extract(resource).count()
        print(f"{name:12} {per_resource(extractor, [resource], 20_000):6.1f} µs  {rows} rows")
    # Every name and address part unseen, so that folding is never served from its cache.
    unseen = []
    for i in range(20_000):
        patient = json.loads(json.dumps(PATIENT))
        patient["name"][0] = {"family": f"Nguyễn{i}", "given": [f"Thị{i}", f"Lan{i}"]}
        patient["name"][0]["text"] = f"Nguyễn{i} Thị{i} Lan{i}"
        patient["address"][0]["line"] = [f"{i} Phố Huế"]
        patient["address"][0]["district"] = f"Hai Bà Trưng {i}"
        unseen.append(patient)
    best = float("inf")
    for _ in range(5):
        if hasattr(string, "clear_caches"):
            string.clear_caches()
        else:  # the code before 2x: an lru_cache
            string.folded.cache_clear()
        start = time.perf_counter()
        for patient in unseen:
            extractor.extract(patient)
        best = min(best, (time.perf_counter() - start) / len(unseen))
    print(f"{'Patient, unseen names':12} {best * 1e6:6.1f} µs")
    examples = [json.loads(p.read_text("utf-8")) for p in sorted(EXAMPLES.glob("*.json"))]
    if examples:
        micros = per_resource(extractor, examples, 200)
        rows = sum(extractor.extract(r).count() for r in examples) / len(examples)
        print(f"{len(examples)} R4 examples: {micros:6.1f} µs/resource, {rows:.0f} rows on average")


if __name__ == "__main__":
    main()
