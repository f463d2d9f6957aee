"""Ingest through the router without HTTP: demo transaction Bundles, one after another, into
a fresh store. Isolates the FHIR core and storage from the HTTP layer; used to compare
variants of the write path as ratios in one run.

    .venv/bin/python -m bench.ingest_in_process --backend sqlite --patients 1500 --runs 3
"""

from __future__ import annotations

import argparse
import time

from bench.harness import fresh_database, machine, median
from vnehr.app import create_server
from vnehr.demo import population
from vnehr.fhir import json as fhir_json
from vnehr.interactions.exchange import FhirRequest
from vnehr.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--patients", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bundles = list(population(patients=args.patients, seed=1))
    n = sum(len(b.get("entry", [])) for b in bundles)
    bodies = [fhir_json.dumps(b) for b in bundles]
    rates = []
    for _ in range(args.runs):
        with fresh_database(args.backend) as url:
            server = create_server(Settings(database_url=url, dev=True))
            start = time.perf_counter()
            for body in bodies:
                request = FhirRequest(
                    "POST",
                    "",
                    body=body,
                    base_url="http://x/fhir",
                    headers={"prefer": "return=minimal"},
                )
                response = server.router.handle(request)
                if response.status != 200:
                    raise RuntimeError(f"transaction failed: {response.resource}")
            rates.append(n / (time.perf_counter() - start))
            server.close()
    print(f"machine: {machine()}")
    print(f"data: {args.patients} patients, {n} resources in {len(bodies)} bundles")
    print(
        f"{args.backend}: runs {', '.join(f'{r:.0f}' for r in rates)}; "
        f"median {median(rates):.0f} resources/s"
    )


if __name__ == "__main__":
    main()
