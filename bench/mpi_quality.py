"""Quality and speed of the master patient index's matching on labelled duplicates.

.venv/bin/python -m bench.mpi_quality --people 60000 --seed 1

The duplicate registrations of `vnehr.demo.duplicates` (ground truth kept) arrive in a
shuffled order and are linked one at a time as `identity/index.PatientIndex` links them:
blocking keys find earlier records, `compare` grades them, a *certain* match joins the best
matching person, anything else starts a new person, and every *probable* person is one
review-queue item. The same functions as the server (record_from_patient, blocking_keys,
compare, the packaged rules file); the database is left out so that a million records can
be matched in one process ("batch matching").

Reported: the pair confusion matrix of the automatic links (pairs of records put in the same
person vs. pairs of the same human), precision and recall, false merges (persons holding two
humans), the review-queue size and how many of its items are true, records per second, and
the records left unlinked by variant (what the misses are made of).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter, defaultdict
from math import comb
from pathlib import Path

from vnehr.demo.duplicates import source_records
from vnehr.identity.features import record_from_patient
from vnehr.identity.index import BLOCK_CAP
from vnehr.identity.matching.blocking import blocking_keys
from vnehr.identity.matching.rules import load_rules
from vnehr.identity.matching.score import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=60000, help="real people [60000]")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--order-seed", type=int, default=7, help="arrival order shuffle")
    parser.add_argument("--rules", type=Path, default=None, help="a rules file [packaged]")
    args = parser.parse_args()
    rules = load_rules(args.rules)

    start = time.perf_counter()
    sources = list(source_records(args.people, seed=args.seed))
    generated = time.perf_counter() - start
    truth = [s.person for s in sources]
    variants = [s.variant for s in sources]
    n = len(sources)
    order = list(range(n))
    random.Random(args.order_seed).shuffle(order)

    start = time.perf_counter()
    features = [record_from_patient(s.patient) for s in sources]
    del sources
    featured = time.perf_counter() - start

    start = time.perf_counter()
    blocks: dict[str, list[int]] = defaultdict(list)
    cluster_of = [-1] * n
    clusters = 0
    review: list[tuple[int, int]] = []  # (record, person) waiting for review
    compared = 0
    for i in order:
        record = features[i]
        keys = blocking_keys(record, rules)
        seen: set[int] = set()
        for key in keys:
            block = blocks.get(key)
            if block is not None and len(block) <= BLOCK_CAP:
                seen.update(block)
        best: dict[int, tuple[float, str]] = {}
        for j in seen:
            result = compare(record, features[j], rules)
            compared += 1
            c = cluster_of[j]
            if c not in best or result.score > best[c][0]:
                best[c] = (result.score, result.grade)
        certain = [(s, c) for c, (s, g) in best.items() if g == "certain"]
        if certain:
            cluster_of[i] = max(certain)[1]
        else:
            cluster_of[i] = clusters
            clusters += 1
        review += [(i, c) for c, (_, g) in best.items() if c != cluster_of[i] and g == "probable"]
        review += [(i, c) for s, c in certain if c != cluster_of[i]]
        for key in keys:
            blocks[key].append(i)
    matched = time.perf_counter() - start

    # Pairs: predicted = same person (cluster); true = same human.
    by_cluster: dict[int, Counter[int]] = defaultdict(Counter)
    for i in range(n):
        by_cluster[cluster_of[i]][truth[i]] += 1
    humans = Counter(truth)
    true_pairs = sum(comb(k, 2) for k in humans.values())
    predicted = sum(comb(sum(c.values()), 2) for c in by_cluster.values())
    tp = sum(comb(k, 2) for c in by_cluster.values() for k in c.values())
    fp, fn = predicted - tp, true_pairs - tp
    tn = comb(n, 2) - tp - fp - fn
    false_merges = sum(1 for c in by_cluster.values() if len(c) > 1)
    # A record is split off when it is not in its human's largest cluster.
    home: dict[int, int] = {}
    sizes: dict[int, Counter[int]] = defaultdict(Counter)
    for i in range(n):
        sizes[truth[i]][cluster_of[i]] += 1
    for human, counts in sizes.items():
        home[human] = counts.most_common(1)[0][0]
    split = Counter()
    for i in range(n):
        if cluster_of[i] != home[truth[i]]:
            split.update(variants[i].split("+"))
    review_true = sum(1 for i, c in review if home[truth[i]] == c or truth[i] in by_cluster[c])

    precision = tp / predicted if predicted else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    print(f"data: {args.people} people, {n} source records, {true_pairs} true pairs")
    print(f"rules: {rules.source}")
    print(f"generate {generated:.1f} s; features {featured:.1f} s ({n / featured:,.0f}/s)")
    print(
        f"matching: {matched:.1f} s, {n / matched:,.0f} records/s, "
        f"{compared:,} comparisons ({compared / n:.1f} per record)"
    )
    print("pair confusion matrix of the automatic links:")
    print("| | same human | different humans |")
    print("| --- | --- | --- |")
    print(f"| linked | {tp:,} (TP) | {fp:,} (FP) |")
    print(f"| not linked | {fn:,} (FN) | {tn:,} (TN) |")
    print(f"precision {precision:.5f}, recall {recall:.5f}")
    print(
        f"persons {clusters:,} for {len(humans):,} humans; "
        f"persons holding 2+ humans: {false_merges}"
    )
    print(
        f"review queue: {len(review):,} items ({len(review) / n:.2%} of records), "
        f"{review_true:,} of them true matches"
    )
    print("records split off their human, by variant label:")
    for label, k in split.most_common():
        print(f"  {label:<18} {k:>7,}")


if __name__ == "__main__":
    main()
