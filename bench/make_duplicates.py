"""Write duplicate registrations with their ground truth, to evaluate the master patient index.

.venv/bin/python -m bench.make_duplicates --people 60000 --seed 1 --out /tmp/dups

Writes, in DIR:
- `organizations.ndjson`: the facility registry of the same seed (load it first: the
  Patients' record-number assigners and managing organizations refer to it);
- `patients.ndjson`: one source Patient per line, as the facilities send them;
- `truth.csv`: `record_id,person,facility_code,variant`, one row per Patient (record_id is
  the Patient id; rows with the same `person` are the same human).

Prints the number of records, people and true pairs, and the count of each variant label
(a record with several labels counts under each).
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from pathlib import Path

from vnehr.demo import facilities
from vnehr.demo.duplicates import VARIANTS, source_records
from vnehr.fhir import json as fhir_json


def write(people: int, seed: int, out: Path) -> tuple[int, int, Counter[str]]:
    """Write the three files; return (records, true pairs, records per variant label)."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "organizations.ndjson").open("wb") as f:
        for organization in facilities(seed):
            f.write(fhir_json.dumps(organization) + b"\n")
    labels: Counter[str] = Counter()
    per_person: Counter[int] = Counter()
    records = 0
    with (
        (out / "patients.ndjson").open("wb") as ndjson,
        (out / "truth.csv").open("w", newline="", encoding="utf-8") as truth,
    ):
        rows = csv.writer(truth)
        rows.writerow(("record_id", "person", "facility_code", "variant"))
        for record in source_records(people, seed=seed):
            ndjson.write(fhir_json.dumps(record.patient) + b"\n")
            rows.writerow(
                (record.patient["id"], record.person, record.facility_code, record.variant)
            )
            labels.update(record.variant.split("+"))
            per_person[record.person] += 1
            records += 1
    pairs = sum(k * (k - 1) // 2 for k in per_person.values())
    return records, pairs, labels


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--people", type=int, default=60000, help="real people [60000]")
    parser.add_argument("--seed", type=int, default=1, help="random seed [1]")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args()
    started = time.perf_counter()
    records, pairs, labels = write(args.people, args.seed, args.out)
    elapsed = time.perf_counter() - started
    print(
        f"wrote {records} records of {args.people} people "
        f"({records / max(1, args.people):.2f} per person, {pairs} true pairs) "
        f"to {args.out} in {elapsed:.1f} s"
    )
    for variant in sorted(VARIANTS, key=lambda v: -labels[v]):
        print(f"  {variant:<16} {labels[variant]:>9}  {labels[variant] / max(1, records):6.2%}")


if __name__ == "__main__":
    main()
