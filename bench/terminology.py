"""The terminology service on a 100,000-concept code system: load time, then `$expand` with
a 3-letter text filter, `$validate-code` and `$translate` over HTTP (p50/p95/p99, one client).

    .venv/bin/python -m bench.terminology --backend sqlite --concepts 100000 --samples 300
    .venv/bin/python -m bench.terminology --backend postgresql --concepts 100000 --samples 300

The code system is synthetic but shaped like LOINC and ICD-10 together: a four-level
hierarchy (groups of 10 under 1,000 headings under 100 chapters), Vietnamese displays of three
to six words drawn from a lab and diagnosis vocabulary, an English designation and two
properties per concept; a ConceptMap maps every concept to a code of a second system. The
load (`vnehr.terminology.loading.load_code_system`, what `vnehr terminology load` runs) is
timed in-process, the ConceptMap through `PUT ConceptMap/[id]`.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx

from bench.harness import fresh_database, machine, running_server
from vnehr.app import create_server
from vnehr.fhir.text import fold
from vnehr.settings import Settings
from vnehr.storage.base import Store
from vnehr.terminology.loading import Loaded, load_code_system
from vnehr.terminology.model import CodeSystemContent, Concept

URL = "http://bench.vnehr.org/CodeSystem/big"
TARGET = "http://bench.vnehr.org/CodeSystem/target"
_VOCABULARY = (
    "huyết sắc tố hồng cầu bạch cầu tiểu cầu đường máu glucose cholesterol "
    "triglycerid men gan thận creatinin ure acid uric điện giải natri kali clo canxi "
    "protein albumin bilirubin toàn phần trực tiếp gián tiếp viêm phổi gan cấp tính "
    "mạn tính nhiễm trùng sốt xuất huyết dengue lao phổi tăng huyết áp đái tháo "
    "đường suy tim nhồi máu cơ tim đột quỵ hen phế quản dạ dày tá tràng ung thư vú "
    "cổ tử cung tuyến giáp nước tiểu huyết thanh huyết tương máu toàn phần định "
    "lượng định tính kháng thể kháng nguyên miễn dịch vi khuẩn virus nấm ký sinh "
    "trùng siêu âm chụp cắt lớp cộng hưởng từ "
)
WORDS = tuple(_VOCABULARY.split())


def concepts(n: int, seed: int) -> Iterator[Concept]:
    rnd = random.Random(seed)
    for i in range(n):
        words = rnd.sample(WORDS, rnd.randint(3, 6))
        display = " ".join(words).capitalize()
        code = f"B{i:06d}"
        parent = None
        if i >= 100:  # chapters 0..99, headings 100..1099, then groups and codes
            parent = f"B{(i - 100) // 10:06d}" if i < 1100 else f"B{100 + (i - 1100) % 1000:06d}"
        yield Concept(
            code=code,
            display=display,
            designations=[{"language": "en", "value": f"Concept {i} " + fold(words[0])}],
            properties=[
                {"code": "group", "valueCode": f"G{i % 50}"},
                {"code": "unit", "valueString": rnd.choice(("mmol/L", "g/L", "U/L", "%"))},
            ],
            parents=[parent] if parent else [],
        )


def load_big(store: Store, n: int, seed: int) -> Loaded:
    """The benchmark's code system, loaded as `vnehr terminology load` loads one."""
    header = {
        "resourceType": "CodeSystem",
        "id": "big",
        "url": URL,
        "version": "1",
        "name": "Big",
        "status": "active",
        "content": "complete",
        "caseSensitive": True,
    }
    return load_code_system(store, CodeSystemContent(header, concepts(n, seed)))


def pct(times: list[float], p: float) -> float:
    return times[max(0, min(len(times), math.ceil(p / 100 * len(times))) - 1)]


def timed(client: httpx.Client, method: str, url: str, **kw: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    r = client.request(method, url, **kw)
    ms = (time.perf_counter() - start) * 1000
    assert r.status_code == 200, r.text[:500]
    return ms, r.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--concepts", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    with fresh_database(args.backend) as url:
        server = create_server(Settings(database_url=url, dev=True, mpi=False))
        start = time.perf_counter()
        loaded = load_big(server.store, args.concepts, args.seed)
        load_s = time.perf_counter() - start
        server.close()
        cmap = {
            "resourceType": "ConceptMap",
            "id": "big-map",
            "url": f"{URL}-map",
            "status": "active",
            "group": [
                {
                    "source": URL,
                    "target": TARGET,
                    "element": [
                        {
                            "code": f"B{i:06d}",
                            "target": [{"code": f"T{i:06d}", "equivalence": "equivalent"}],
                        }
                        for i in range(args.concepts)
                    ],
                }
            ],
        }
        vs = {
            "resourceType": "ValueSet",
            "id": "big-all",
            "url": f"{URL}-all",
            "status": "active",
            "compose": {"include": [{"system": URL}]},
        }
        vs_isa = {
            "resourceType": "ValueSet",
            "id": "big-isa",
            "url": f"{URL}-isa",
            "status": "active",
            "compose": {
                "include": [
                    {
                        "system": URL,
                        "filter": [{"property": "concept", "op": "is-a", "value": "B000003"}],
                    }
                ]
            },
        }
        with running_server(url) as (base, _pid), httpx.Client(timeout=120) as client:
            start = time.perf_counter()
            r = client.put(f"{base}/ConceptMap/big-map", json=cmap)
            map_s = time.perf_counter() - start
            assert r.status_code in (200, 201), r.text[:300]
            for res in (vs, vs_isa):
                assert client.put(f"{base}/ValueSet/{res['id']}", json=res).status_code in (
                    200,
                    201,
                )
            prefixes = [fold(w)[:3] for w in WORDS if len(fold(w)) >= 3]
            codes = [f"B{rnd.randrange(args.concepts):06d}" for _ in range(args.samples)]
            kinds: dict[str, list[float]] = {
                k: []
                for k in (
                    "expand filter (3 letters, count=20)",
                    "expand is-a (count=20)",
                    "ValueSet/$validate-code",
                    "CodeSystem/$validate-code",
                    "$translate",
                )
            }
            totals: list[int] = []
            for round_ in range(args.samples + 20):
                prefix = rnd.choice(prefixes)
                code = codes[round_ % len(codes)]
                calls = [
                    (
                        "GET",
                        f"{base}/ValueSet/big-all/$expand",
                        {"params": {"filter": prefix, "count": "20"}},
                    ),
                    ("GET", f"{base}/ValueSet/big-isa/$expand", {"params": {"count": "20"}}),
                    (
                        "GET",
                        f"{base}/ValueSet/$validate-code",
                        {"params": {"url": f"{URL}-isa", "system": URL, "code": code}},
                    ),
                    (
                        "GET",
                        f"{base}/CodeSystem/$validate-code",
                        {"params": {"url": URL, "code": code}},
                    ),
                    (
                        "GET",
                        f"{base}/ConceptMap/$translate",
                        {"params": {"system": URL, "code": code}},
                    ),
                ]
                for (method, target, kw), kind in zip(calls, kinds, strict=True):
                    ms, body = timed(client, method, target, **kw)
                    if round_ >= 20:  # 20 untimed rounds first
                        kinds[kind].append(ms)
                        if kind.startswith("expand filter"):
                            # No total: more than 1,000 matches (counted up to a cap).
                            totals.append(body["expansion"].get("total", -1))
    print(f"machine: {machine()}")
    print(
        f"backend {args.backend}: {loaded.concepts} concepts loaded in {load_s:.1f} s "
        f"({loaded.concepts / load_s:,.0f} concepts/s); ConceptMap of {args.concepts} "
        f"elements PUT in {map_s:.1f} s"
    )
    counted = sorted(t for t in totals if t >= 0)
    print(
        f"3-letter filters: {len(totals) - len(counted)} of {len(totals)} matched more than"
        " 1,000 concepts (total left out); the others matched"
        f" {counted[len(counted) // 2] if counted else 0} (median)"
    )
    for kind, times in kinds.items():
        times.sort()
        print(
            f"{kind:<40} p50 {pct(times, 50):6.2f} ms  p95 {pct(times, 95):6.2f} ms  "
            f"p99 {pct(times, 99):6.2f} ms  (n={len(times)})"
        )


if __name__ == "__main__":
    main()
