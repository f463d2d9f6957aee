"""Read-by-id latency over HTTP at a large store: p50/p99 of GET [type]/[id], one client.

Loads N resources with `vnehr load` (demo population, NDJSON) into a fresh database unless
--database names an existing one, then reads random ids.

    .venv/bin/python -m bench.read_by_id --backend sqlite --patients 100000 --reads 20000
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import httpx

from bench.harness import fresh_database, machine, rss_mib, running_server
from bench.make_ndjson import write_ndjson
from vnehr.app import create_server
from vnehr.settings import Settings


def sample_ids(url: str, k: int, seed: int) -> list[tuple[str, str]]:
    server = create_server(Settings(database_url=url, dev=True))
    try:
        page = server.store.history(None, None, since=None, at=None, count=200_000, cursor=None)
        ids = [(v.res_type, v.res_id) for v in page.versions]
        total = server.store.count()
    finally:
        server.close()
    rng = random.Random(seed)
    print(f"store holds {total} resources")
    return [rng.choice(ids) for _ in range(k)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--database", default=None, help="an already loaded database URL")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    vnehr = str(Path(sys.executable).parent / "vnehr")
    holder = nullcontext(args.database) if args.database else fresh_database(args.backend)
    with holder as url:
        if not args.database:
            with tempfile.TemporaryDirectory() as tmp:
                data = Path(tmp) / "demo.ndjson"
                n = write_ndjson(args.patients, args.seed, data)
                print(f"loading {n} resources...")
                subprocess.run(
                    [vnehr, "load", str(data), "--database", url, "--batch", "5000"],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
        targets = sample_ids(url, args.reads, args.seed)
        with running_server(url) as (base, pid), httpx.Client(timeout=30) as client:
            for res_type, res_id in targets[:500]:  # warm-up
                client.get(f"{base}/{res_type}/{res_id}")
            latencies = []
            for res_type, res_id in targets:
                start = time.perf_counter()
                r = client.get(f"{base}/{res_type}/{res_id}")
                latencies.append((time.perf_counter() - start) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"read failed: {r.status_code}")
            rss = rss_mib(pid)
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]  # noqa: E731
    print(f"machine: {machine()}")
    print(
        f"{args.backend}: {len(latencies)} reads: p50 {q(0.5):.2f} ms, p90 {q(0.9):.2f} ms, "
        f"p99 {q(0.99):.2f} ms, max {latencies[-1]:.2f} ms; server RSS {rss:.0f} MiB"
    )


if __name__ == "__main__":
    main()
