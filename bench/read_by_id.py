"""Read-by-id latency over HTTP at a large store: p50/p99 of GET [type]/[id], one client.

Loads N resources with `vnehr load` (demo population, NDJSON) into a fresh database unless
--database names an existing one, then reads random ids.

    .venv/bin/python -m bench.read_by_id --backend sqlite --patients 100000 --reads 20000
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.harness import fresh_database, machine, rss_mib, running_server
from bench.make_ndjson import write_ndjson


def sample_ids(url: str, k: int, seed: int) -> list[tuple[str, str]]:
    """`k` random (type, id) pairs of stored resources, straight from the resources table."""
    sql = "SELECT res_type, res_id FROM resources WHERE rkey = ?"
    if url.startswith("sqlite:///"):
        conn: Any = sqlite3.connect(url[len("sqlite:///") :])
    else:
        conn = psycopg.connect(url)
        sql = sql.replace("?", "%s")
    try:
        top = conn.execute("SELECT MAX(rkey), COUNT(*) FROM resources").fetchone()
        print(f"store holds {top[1]} resources")
        rng = random.Random(seed)
        out: list[tuple[str, str]] = []
        while len(out) < k:
            row = conn.execute(sql, (rng.randint(1, top[0]),)).fetchone()
            if row is not None:
                out.append((row[0], row[1]))
        return out
    finally:
        conn.close()


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
