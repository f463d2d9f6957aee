"""Run every HL7 terminology ecosystem case (general suites) against a fresh vnehr and report.

    python -m tests.conformance.tx_ecosystem_report [--write-known-failures] [--strict-order]
        [--modes flat,...] [--filter TEXT] [--quiet]

Prints pass/total per suite and overall, and for each failure one line: the case and the
first difference (JSON path, expected, actual) or the HTTP problem. --write-known-failures
rewrites data/tx-ecosystem/known-failures.txt with the failures (not with --filter or --modes).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from tests.conformance import tx_ecosystem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-known-failures", action="store_true")
    parser.add_argument(
        "--strict-order", action="store_true", help="arrays in order, as the Java runner"
    )
    parser.add_argument(
        "--modes",
        default=",".join(sorted(tx_ecosystem.MODES)),
        help="runner modes, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--filter", default="", help="only the cases whose id contains this")
    parser.add_argument("--quiet", action="store_true", help="no line per failure")
    args = parser.parse_args(argv)
    modes = frozenset(m for m in args.modes.split(",") if m)
    if args.write_known_failures and (args.filter or modes != tx_ecosystem.MODES):
        parser.error("--write-known-failures needs every case in the default modes")

    cases = [c for c in tx_ecosystem.load_cases(modes) if args.filter in c.id]
    known = tx_ecosystem.load_known_failures()
    start = time.monotonic()
    passed: Counter[str] = Counter()
    total: Counter[str] = Counter()
    failed: list[str] = []
    for case, outcome in tx_ecosystem.run_all(cases, modes=modes, strict_order=args.strict_order):
        total[case.suite] += 1
        if outcome.passed:
            passed[case.suite] += 1
        else:
            failed.append(case.id)
            if not args.quiet:
                print(f"FAIL {case.id}: {outcome.reason}")
    elapsed = time.monotonic() - start

    print()
    width = max((len(s) for s in total), default=5)
    for suite in total:
        print(f"{suite:<{width}}  {passed[suite]:>4}/{total[suite]:<4}")
    n_pass, n_total = sum(passed.values()), sum(total.values())
    print(
        f"{'overall':<{width}}  {n_pass:>4}/{n_total:<4}  ({elapsed:.1f} s, modes {sorted(modes)})"
    )
    newly_passing = sorted(known - set(failed) & {c.id for c in cases})
    newly_failing = sorted(set(failed) - known)
    for label, names in (
        ("known failures now pass", newly_passing),
        ("failures are not in the known list", newly_failing),
    ):
        if names:
            more = f" and {len(names) - 20} more" if len(names) > 20 else ""
            print(f"{len(names)} {label}: {', '.join(names[:20])}{more}")
    if args.write_known_failures:
        tx_ecosystem.write_known_failures(failed)
        print(f"wrote {len(failed)} names to {tx_ecosystem.KNOWN_FAILURES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
