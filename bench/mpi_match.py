"""`Patient/$match` latency over HTTP against an indexed store (p50/p95/p99, one client).

    .venv/bin/python -m bench.make_duplicates --people 60000 --seed 2 --out /tmp/mpi/d100k
    .venv/bin/vnehr load /tmp/mpi/d100k/organizations.ndjson /tmp/mpi/d100k/patients.ndjson \\
        --database sqlite:////tmp/mpi/m100k.db
    .venv/bin/python -m bench.mpi_match --database sqlite:////tmp/mpi/m100k.db \\
        --source /tmp/mpi/d100k/patients.ndjson --samples 300

The queries are stored source records as another facility would send them: identifiers
dropped (the hard case: no deterministic rule applies), names written without accents, a
random half with the birth year only. Each answer is checked to contain the record the
query came from.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from typing import Any

import httpx

from bench.harness import machine, running_server
from vnehr.fhir import json as fhir_json
from vnehr.fhir.text import fold


def queries(path: str, k: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """(stored id, the Patient to match) for `k` random lines of the source NDJSON."""
    with open(path, "rb") as f:
        lines = f.readlines()
    rng = random.Random(seed)
    out = []
    for line in rng.sample(lines, k):
        source = fhir_json.loads(line)
        patient: dict[str, Any] = {"resourceType": "Patient"}
        names = source.get("name") or []
        if names:
            name = names[0]
            patient["name"] = [
                {
                    k: (fold(v) if isinstance(v, str) else [fold(g) for g in v])
                    for k, v in name.items()
                    if k in ("family", "given", "text")
                }
            ]
        for element in ("gender", "telecom", "address"):
            if element in source:
                patient[element] = source[element]
        if "birthDate" in source:
            birth = source["birthDate"]
            patient["birthDate"] = birth[:4] if rng.random() < 0.5 else birth
        out.append((source["id"], patient))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", required=True, help="an indexed store's URL")
    parser.add_argument("--source", required=True, help="the patients.ndjson it was loaded from")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cases = queries(args.source, args.samples, args.seed)
    with running_server(args.database) as (base, _pid), httpx.Client(timeout=60) as client:
        total = client.get(f"{base}/Patient", params={"_summary": "count"}).json()["total"]
        for _, patient in cases[:20]:  # warm-up
            client.post(f"{base}/Patient/$match", json=patient)
        times, found, certain = [], 0, 0
        for stored_id, patient in cases:
            body = {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "resource", "resource": patient},
                    {"name": "count", "valueInteger": 10},
                ],
            }
            start = time.perf_counter()
            r = client.post(f"{base}/Patient/$match", json=body)
            times.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200, r.text
            entries = r.json().get("entry", [])
            ids = [e["resource"]["id"] for e in entries]
            found += stored_id in ids
            grades = [e["search"]["extension"][0]["valueCode"] for e in entries]
            certain += "certain" in grades
    times.sort()

    def pct(p: float) -> float:
        return times[max(0, min(len(times), math.ceil(p / 100 * len(times))) - 1)]  # nearest rank

    print(f"machine: {machine()}")
    print(f"store: {total} Patients; {len(cases)} $match queries (no identifiers, no accents)")
    print(
        f"$match p50 {pct(50):.2f} ms, p95 {pct(95):.2f} ms, p99 {pct(99):.2f} ms, "
        f"max {times[-1]:.2f} ms"
    )
    print(
        f"the query's own record among the matches: {found}/{len(cases)}; "
        f"answers with a certain match: {certain}"
    )


if __name__ == "__main__":
    main()
