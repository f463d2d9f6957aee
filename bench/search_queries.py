"""Search latency over HTTP at a large store: p50/p95/p99 per query kind, one client, and plans.

Loads the demo population (NDJSON, `vnehr load`) into a fresh database unless --reuse names an
already loaded one (which is left as it is), draws query parameters from the stored data
(random Observations: their patient, that patient's CCCD and accent-free name, their LOINC
code; random Conditions: an ICD-10 code), then runs every query kind --samples times over HTTP
against `vnehr serve --dev` with one httpx client, kinds taking turns. Afterwards it prints the
plan (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL) of the statements the store
executes for one sample of each kind: they are captured from the store's own search code
(`strict_query`, then `SqlStore._search_on` / `included` on a recording connection), so the
plans are those of the real statements; with the in-process time of each statement.

    .venv/bin/python -m bench.search_queries --backend sqlite --patients 5800
    .venv/bin/python -m bench.search_queries --backend postgresql --reuse URL --samples 200
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.harness import fresh_database, machine, running_server
from bench.make_ndjson import write_ndjson

CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"


@dataclass(frozen=True)
class Sample:
    """Parameters of one round of queries, all taken from stored resources."""

    patient: str  # id of a patient that has observations
    cccd: str  # their national id
    family: str  # their family name, folded (no accents, lower case)
    given: str  # their last given name, folded
    loinc: str  # the LOINC code of one of their observations
    icd: str  # the ICD-10 code of a random Condition (any patient)
    fifty: tuple[str, ...]  # ids of 50 random patients


Pairs = list[tuple[str, str]]


@dataclass(frozen=True)
class Kind:
    name: str
    res_type: str
    pairs: Callable[[Sample], Pairs]
    target_ms: float | None  # p95 target; None: a reference point, no target


KINDS: list[Kind] = [
    Kind("Patient?identifier=CCCD", "Patient", lambda s: [("identifier", f"{CCCD}|{s.cccd}")], 10),
    Kind(
        "Patient?family=&given= (accent-free)",
        "Patient",
        lambda s: [("family", s.family), ("given", s.given)],
        10,
    ),
    Kind(
        "Observation?patient&code&_sort=-date&_count=1",
        "Observation",
        lambda s: [
            ("patient", f"Patient/{s.patient}"),
            ("code", f"{LOINC}|{s.loinc}"),
            ("_sort", "-date"),
            ("_count", "1"),
        ],
        10,
    ),
    Kind("Condition?patient", "Condition", lambda s: [("patient", f"Patient/{s.patient}")], 10),
    Kind(
        "Encounter?patient&date=ge2024-01-01",
        "Encounter",
        lambda s: [("patient", f"Patient/{s.patient}"), ("date", "ge2024-01-01")],
        10,
    ),
    Kind(
        "Observation?subject:Patient.identifier",
        "Observation",
        lambda s: [("subject:Patient.identifier", f"{CCCD}|{s.cccd}")],
        50,
    ),
    Kind(
        "Patient?_has:Condition:patient:code",
        "Patient",
        lambda s: [("_has:Condition:patient:code", f"{ICD10}|{s.icd}")],
        50,
    ),
    Kind(
        "Patient?identifier&_revinclude=Observation:patient",
        "Patient",
        lambda s: [("identifier", f"{CCCD}|{s.cccd}"), ("_revinclude", "Observation:patient")],
        50,
    ),
    Kind(
        "Observation?code&date=2025&_summary=count",
        "Observation",
        lambda s: [("code", f"{LOINC}|{s.loinc}"), ("date", "2025"), ("_summary", "count")],
        50,
    ),
    # The cost of a page of 50 Patients found by id (no search-index work): what any query
    # returning 50 resources pays for reading, serialising and sending them.
    Kind("Patient?_id=50 ids (reference)", "Patient", lambda s: [("_id", ",".join(s.fifty))], None),
]


# -- the store's data, read directly


def _connect(url: str) -> Any:
    if url.startswith("sqlite:///"):
        return sqlite3.connect(f"file:{url[len('sqlite:///') :]}?mode=ro", uri=True)
    return psycopg.connect(url)


def stored_ids(url: str, res_type: str) -> list[str]:
    conn = _connect(url)
    try:
        sql = "SELECT res_id FROM resources WHERE res_type = ?"
        if not url.startswith("sqlite:"):
            sql = sql.replace("?", "%s")
        # Sorted here: the same data gives the same samples on both backends.
        return sorted(row[0] for row in conn.execute(sql, (res_type,)).fetchall())
    finally:
        conn.close()


def resource_count(url: str) -> int:
    conn = _connect(url)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM resources").fetchone()[0])
    finally:
        conn.close()


def _code(resource: dict[str, Any], system: str) -> str | None:
    for coding in resource.get("code", {}).get("coding", []):
        if coding.get("system") == system and coding.get("code"):
            return str(coding["code"])
    return None


def draw_samples(
    url: str, read: Callable[[str, str], dict[str, Any]], k: int, seed: int
) -> list[Sample]:
    """`k` rounds of parameters: random Observations and Conditions (read with `read(type,
    id)`, over HTTP in main) and the Observations' patients."""
    from vnehr.fhir.text import fold

    rng = random.Random(seed)
    observations = stored_ids(url, "Observation")
    conditions = stored_ids(url, "Condition")
    patients = stored_ids(url, "Patient")
    out: list[Sample] = []
    while len(out) < k:
        obs = read("Observation", rng.choice(observations))
        cond = read("Condition", rng.choice(conditions))
        loinc, icd = _code(obs, LOINC), _code(cond, ICD10)
        ref = obs.get("subject", {}).get("reference", "")
        if not (loinc and icd and ref.startswith("Patient/")):
            continue
        patient = read("Patient", ref.split("/", 1)[1])
        cccd = next(
            (i["value"] for i in patient.get("identifier", []) if i.get("system") == CCCD), None
        )
        name = (patient.get("name") or [{}])[0]
        if not (cccd and name.get("family") and name.get("given")):
            continue
        out.append(
            Sample(
                patient=ref.split("/", 1)[1],
                cccd=cccd,
                family=fold(name["family"]),
                given=fold(name["given"][-1]),
                loinc=loinc,
                icd=icd,
                fifty=tuple(rng.sample(patients, 50)),
            )
        )
    return out


# -- over HTTP


def result_size(bundle: dict[str, Any]) -> int:
    """Entries (matches and included resources) in the page; the total if there are none."""
    if "entry" not in bundle and "total" in bundle:
        return int(bundle["total"])
    return len(bundle.get("entry", []))


def run_http(
    base: str, client: httpx.Client, samples: Sequence[Sample], warmup: int
) -> dict[str, tuple[list[float], list[int]]]:
    """Latency (ms) and result size of every kind for every sample; kinds take turns."""
    out: dict[str, tuple[list[float], list[int]]] = {k.name: ([], []) for k in KINDS}
    for s in samples[:warmup]:
        for kind in KINDS:
            client.get(f"{base}/{kind.res_type}", params=kind.pairs(s))
    for s in samples:
        for kind in KINDS:
            start = time.perf_counter()
            r = client.get(f"{base}/{kind.res_type}", params=kind.pairs(s))
            elapsed = (time.perf_counter() - start) * 1000
            if r.status_code != 200:
                raise RuntimeError(f"{kind.name}: {r.status_code} {r.text[:500]}")
            out[kind.name][0].append(elapsed)
            out[kind.name][1].append(result_size(r.json()))
    return out


def quantile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


# -- the statements the store runs, and their plans


class Recorder:
    """A connection that records the statements executed through it."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.calls: list[tuple[str, list[Any]]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self.calls.append((sql, list(params)))
        return self.conn.execute(sql, params)


def captured_statements(store: Any, res_type: str, pairs: Pairs) -> list[tuple[str, list[Any]]]:
    """The search (and _revinclude) statements the store executes for `pairs`, the compiler's
    row-count estimates included (search_params look-ups left out).

    Mirrors the search interaction: the query from `strict_query`, a page of `_count`
    (default 50) or only the count for `_summary=count`, then `included` for the page.
    """
    from vnehr.search.query import strict_query
    from vnehr.search.registry import default_registry

    params = dict(pairs)
    summary = params.get("_summary") == "count"
    count = 0 if summary else int(params.get("_count", 50))
    query = strict_query(default_registry(), res_type, pairs)
    with store.reader() as conn:
        recorder = Recorder(conn)
        page = store._search_on(recorder, query, count=count, cursor=None, total=summary)
        if "_revinclude" in params:
            source, code = params["_revinclude"].split(":", 1)
            targets = [(v.res_type, v.res_id) for v in page.versions]
            store.reader = lambda: nullcontext(recorder)  # included() opens its own reader
            try:
                store.included(page.rkeys, targets, [(source, code, None, True)], 1000)
            finally:
                del store.reader
    return [(sql, a) for sql, a in recorder.calls if "search_params" not in sql]


def plan_lines(store: Any, sql: str, args: list[Any]) -> list[str]:
    with store.reader() as conn:
        if store.dialect == "sqlite":
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
            depth: dict[int, int] = {0: -1}
            lines = []
            for node, parent, _, detail in rows:
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
            return lines
        return [row[0] for row in conn.execute("EXPLAIN " + sql, args).fetchall()]


def statement_ms(store: Any, sql: str, args: list[Any], runs: int = 15) -> float:
    times = []
    with store.reader() as conn:
        for _ in range(runs):
            start = time.perf_counter()
            conn.execute(sql, args).fetchall()
            times.append((time.perf_counter() - start) * 1000)
    return quantile(times, 0.5)


@contextmanager
def opened_store(url: str) -> Iterator[Any]:
    from vnehr.search.extract import Extractor
    from vnehr.search.registry import default_registry
    from vnehr.settings import Settings
    from vnehr.storage import open_store

    store = open_store(
        Settings(database_url=url), Extractor(default_registry()).extract, migrate=False
    )
    try:
        yield store
    finally:
        store.close()


def show_plans(
    url: str, samples: Sequence[Sample], results: dict[str, tuple[list[float], list[int]]]
) -> None:
    """Plans of each kind's statements, for the sample whose latency was nearest its p95."""
    with opened_store(url) as store:
        for kind in KINDS:
            times, sizes = results[kind.name]
            p95 = quantile(times, 0.95)
            i = min(range(len(times)), key=lambda j: abs(times[j] - p95))
            s = samples[i]
            print(
                f"\n### {kind.name} (sample at p95: {times[i]:.2f} ms over HTTP, "
                f"{sizes[i]} results): {kind.res_type}?{_query_text(kind.pairs(s))}"
            )
            for sql, args in captured_statements(store, kind.res_type, kind.pairs(s)):
                ms = statement_ms(store, sql, args)
                print(f"-- {ms:.2f} ms in process (median of 15 runs)")
                print(sql)
                print(f"-- args: {args}")
                for line in plan_lines(store, sql, args):
                    print("   " + line)


def _query_text(pairs: Pairs) -> str:
    return "&".join(f"{k}={v}" for k, v in pairs)


# -- main


def load(url: str, patients: int, seed: int) -> None:
    vnehr = str(Path(sys.executable).parent / "vnehr")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "demo.ndjson"
        n = write_ndjson(patients, seed, data)
        print(f"loading {n} resources ({patients} citizens)...", flush=True)
        start = time.perf_counter()
        subprocess.run(
            [vnehr, "load", str(data), "--database", url, "--batch", "5000"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(f"loaded in {time.perf_counter() - start:.0f} s", flush=True)


def report(backend: str, n: int, results: dict[str, tuple[list[float], list[int]]]) -> None:
    print(f"\nmachine: {machine()}")
    print(f"{backend}, {n} resources, {len(next(iter(results.values()))[0])} samples per kind\n")
    print("| query | p50 ms | p95 ms | p99 ms | max ms | results (median, max) | target p95 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for kind in KINDS:
        times, sizes = results[kind.name]
        p95 = quantile(times, 0.95)
        if kind.target_ms is None:
            verdict = "reference"
        else:
            verdict = f"< {kind.target_ms:.0f}: " + ("met" if p95 < kind.target_ms else "MISSED")
        print(
            f"| {kind.name} | {quantile(times, 0.5):.2f} | {p95:.2f} | "
            f"{quantile(times, 0.99):.2f} | {max(times):.2f} | "
            f"{quantile(sizes, 0.5):.0f}, {max(sizes)} | {verdict} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--patients", type=int, default=5800, help="citizens to generate")
    parser.add_argument("--reuse", default=None, help="an already loaded database URL")
    parser.add_argument("--samples", type=int, default=200, help="queries per kind")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-plans", action="store_true", help="skip the EXPLAIN output")
    args = parser.parse_args()
    holder = nullcontext(args.reuse) if args.reuse else fresh_database(args.backend)
    with holder as url:
        if not args.reuse:
            load(url, args.patients, args.seed)
        n = resource_count(url)
        with running_server(url) as (base, _), httpx.Client(timeout=120) as client:
            samples = draw_samples(
                url,
                lambda t, i: dict(client.get(f"{base}/{t}/{i}").json()),
                args.samples,
                args.seed,
            )
            results = run_http(base, client, samples, args.warmup)
        report(args.backend, n, results)
        if not args.no_plans:
            show_plans(url, samples, results)


if __name__ == "__main__":
    main()
