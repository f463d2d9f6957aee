"""Ingest benchmark: POST demo transaction Bundles (~100 resources) over HTTP, one client,
sequentially, validation on, search indexes written. Prints resources/s (median of runs),
server RSS at idle and under load, and database bytes per resource.

    .venv/bin/python -m bench.ingest_transactions --backend sqlite --patients 2000 --runs 3
"""

from __future__ import annotations

import argparse
import threading
import time

import httpx

from bench.harness import database_size, fresh_database, machine, median, rss_mib, running_server
from vnehr.demo import population
from vnehr.fhir import json as fhir_json


def run_once(backend: str, bodies: list[bytes], n_resources: int) -> dict[str, float]:
    with fresh_database(backend) as url, running_server(url) as (base, pid):
        idle = rss_mib(pid)
        peak = [idle]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak.append(rss_mib(pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        headers = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
        with httpx.Client(timeout=120) as client:
            start = time.perf_counter()
            for body in bodies:
                r = client.post(base, content=body, headers=headers)
                if r.status_code != 200:
                    raise RuntimeError(f"transaction failed: {r.status_code} {r.text[:500]}")
            elapsed = time.perf_counter() - start
        done.set()
        sampler.join()
        size = database_size(url)
    return {
        "rate": n_resources / elapsed,
        "seconds": elapsed,
        "rss_idle": idle,
        "rss_peak": max(peak),
        "bytes_per_resource": size / n_resources,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bundles = list(population(patients=args.patients, seed=args.seed))
    n = sum(len(b.get("entry", [])) for b in bundles)
    bodies = [fhir_json.dumps(b) for b in bundles]
    results = [run_once(args.backend, bodies, n) for _ in range(args.runs)]
    print(f"machine: {machine()}")
    print(
        f"data: {args.patients} patients, {len(bodies)} bundles, {n} resources "
        f"({n / len(bodies):.0f} per bundle)"
    )
    for i, r in enumerate(results, 1):
        print(f"run {i}: {r['rate']:.0f} resources/s ({r['seconds']:.1f} s)")
    print(
        f"{args.backend}: median {median([r['rate'] for r in results]):.0f} resources/s; "
        f"RSS idle {median([r['rss_idle'] for r in results]):.0f} MiB, "
        f"under load (peak) {median([r['rss_peak'] for r in results]):.0f} MiB; "
        f"database {median([r['bytes_per_resource'] for r in results]):.0f} bytes/resource"
    )


if __name__ == "__main__":
    main()
