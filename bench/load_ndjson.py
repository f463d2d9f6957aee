"""`vnehr load` NDJSON benchmark: resources/s of the CLI, validation on, indexes written.

.venv/bin/python -m bench.load_ndjson --backend sqlite --patients 5000 --runs 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import database_size, fresh_database, machine, median
from bench.make_ndjson import write_ndjson


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    vnehr = str(Path(sys.executable).parent / "vnehr")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "demo.ndjson"
        n = write_ndjson(args.patients, args.seed, data)
        rates, sizes = [], []
        for _ in range(args.runs):
            with fresh_database(args.backend) as url:
                subprocess.run(
                    [vnehr, "migrate", "--database", url], check=True, stdout=subprocess.DEVNULL
                )
                start = time.perf_counter()
                subprocess.run(
                    [vnehr, "load", str(data), "--database", url, "--batch", str(args.batch)],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                elapsed = time.perf_counter() - start
                rates.append(n / elapsed)
                sizes.append(database_size(url) / n)
    print(f"machine: {machine()}")
    print(f"data: {args.patients} patients, {n} resources")
    for i, rate in enumerate(rates, 1):
        print(f"run {i}: {rate:.0f} resources/s")
    print(
        f"{args.backend}: vnehr load median {median(rates):.0f} resources/s "
        f"(process start included); database {median(sizes):.0f} bytes/resource"
    )


if __name__ == "__main__":
    main()
