"""Write the demo population as NDJSON (ids assigned, references resolved) for `vnehr load`.

.venv/bin/python -m bench.make_ndjson --patients 10000 --out /tmp/demo.ndjson
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.harness import flatten
from vnehr.demo import population
from vnehr.fhir import json as fhir_json


def write_ndjson(patients: int, seed: int, out: Path) -> int:
    n = 0
    with out.open("wb") as f:
        for resource in flatten(population(patients=patients, seed=seed)):
            f.write(fhir_json.dumps(resource) + b"\n")
            n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    n = write_ndjson(args.patients, args.seed, args.out)
    print(f"wrote {n} resources to {args.out}")


if __name__ == "__main__":
    main()
