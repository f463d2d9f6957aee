"""`$expand` evaluation without HTTP on a 100,000-concept code system (the one of
bench/terminology.py): an `is-a` value set and a 3-letter text filter for the 40 most common
prefixes, first page of 20 — to compare SQL shapes as ratios in one run.

    .venv/bin/python -m bench.terminology_in_process --database sqlite:////tmp/tx.db
    .venv/bin/python -m bench.terminology_in_process --database postgresql://postgres@127.0.0.1:5432/tx

The database is filled on the first run (a fresh one: create the PostgreSQL database first).
"""

from __future__ import annotations

import argparse
import time

from bench.harness import machine
from bench.terminology import URL, WORDS, load_big
from vnehr.app import create_server
from vnehr.fhir.text import fold
from vnehr.settings import Settings
from vnehr.terminology.expansion import Options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", required=True)
    parser.add_argument("--concepts", type=int, default=100_000)
    args = parser.parse_args()
    server = create_server(Settings(database_url=args.database, dev=True, mpi=False))
    try:
        if not server.store.rows("SELECT 1 FROM tx_systems WHERE url = ?", [URL]):
            load_big(server.store, args.concepts, 1)
        service = server.router.ctx.terminology
        assert service is not None
        whole = {
            "resourceType": "ValueSet",
            "url": "all",
            "compose": {"include": [{"system": URL}]},
        }
        isa = {
            "resourceType": "ValueSet",
            "url": "isa",
            "compose": {
                "include": [
                    {
                        "system": URL,
                        "filter": [{"property": "concept", "op": "is-a", "value": "B000003"}],
                    }
                ]
            },
        }
        prefixes = sorted({fold(w)[:3] for w in WORDS if len(fold(w)) >= 3})[:40]
        print(f"machine: {machine()}")
        for name, vs, text in (("is-a", isa, False), ("text filter", whole, True)):
            times = []
            for prefix in prefixes:
                with service.session() as session:
                    start = time.perf_counter()
                    session.evaluator(Options(text=prefix if text else None)).expand(vs, 0, 20)
                    times.append((time.perf_counter() - start) * 1000)
            times.sort()
            print(
                f"{name:<12} p50 {times[len(times) // 2]:.2f} ms  "
                f"p95 {times[int(len(times) * 0.95)]:.2f} ms  max {times[-1]:.2f} ms"
            )
    finally:
        server.close()


if __name__ == "__main__":
    main()
