"""What the audit trail costs a request, in process (Starlette's TestClient, no network).

    .venv/bin/python -m bench.audit --backend sqlite
    .venv/bin/python -m bench.audit --backend postgresql

Two production-mode apps on the same database, one with the audit trail (VNEHR_AUDIT on, the
default) and one without, each called with the same national service's bearer token, take
turns in blocks of 100 requests after a warm-up: `GET Patient/{id}` of a random Patient (a
read: its record is queued and written by the trail's thread), `GET Observation?subject=`
(a search returning the patient's Observations: queued, one record per patient found) and
`POST Observation` (a write: its record is inserted in the write's own transaction). Only the
request is timed; the trail's thread flushes every `audit_flush_ms` (200) while the requests
run, so what it takes from the requests (the GIL, SQLite's write lane) is in the figures.
Target (issue 7): the audit trail adds under 1 ms p95 to a request.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from bench.auth import client_keys, patient, quantile, row, timed
from bench.harness import fresh_database, machine
from vnehr.app import create_app
from vnehr.auth.assertions import ASSERTION_TYPE
from vnehr.auth.keys import SigningKeys
from vnehr.settings import Settings

BASE = "http://bench.vnehr.vn"
BLOCK = 100
SCOPE = "system/*.cruds vnehr/national"


def observation(patient_id: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": "2026-03-05T08:30:00+07:00",
        "valueQuantity": {
            "value": value,
            "unit": "%",
            "system": "http://unitsofmeasure.org",
            "code": "%",
        },
    }


def national_token(client: TestClient) -> str:
    """A national service (every record, vnehr.policy): the requests measured are answered
    in full, whatever the access policy, with one RS384 client assertion."""
    from bench.auth import assertion

    server = client.app.state.server  # type: ignore[attr-defined]
    public, key = client_keys()
    registered, _ = server.auth.service.clients.register(
        "National bench service",
        kind="backend",
        auth_method="private_key_jwt",
        scopes=SCOPE,
        facility=None,
        jwks=public,
        client_id="national-bench",
    )
    answer = client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "scope": SCOPE,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(registered.client_id, key),
        },
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--observations", type=int, default=3, help="per patient")
    parser.add_argument("--requests", type=int, default=3000, help="per kind and mode")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    results: dict[str, dict[str, list[float]]] = {}
    with fresh_database(args.backend) as url, tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.json"
        SigningKeys.generate().save(keys)
        audited = Settings(database_url=url, dev=False, auth_keys=str(keys))
        unaudited = audited.with_(audit=False)
        with (
            TestClient(create_app(audited), base_url=BASE) as on,
            TestClient(create_app(unaudited), base_url=BASE) as off,
        ):
            headers = {"Authorization": f"Bearer {national_token(on)}"}
            ids = []
            for i in range(args.patients):
                created = off.post("/fhir/Patient", json=patient(i), headers=headers)
                assert created.status_code == 201, created.text
                ids.append(created.json()["id"])
                for j in range(args.observations):
                    obs = observation(ids[-1], 6.0 + j / 10)
                    assert (
                        off.post("/fhir/Observation", json=obs, headers=headers).status_code == 201
                    )

            def read(client: TestClient, target: str) -> None:
                r = client.get(f"/fhir/Patient/{target}", headers=headers)
                assert r.status_code == 200, r.text

            def search(client: TestClient, target: str) -> None:
                r = client.get(
                    "/fhir/Observation", params={"subject": f"Patient/{target}"}, headers=headers
                )
                assert r.status_code == 200 and len(r.json()["entry"]) >= 1, r.text

            def write(client: TestClient, target: str) -> None:
                r = client.post("/fhir/Observation", json=observation(target, 7.1), headers=headers)
                assert r.status_code == 201, r.text

            kinds: dict[str, Callable[[TestClient, str], None]] = {
                "GET Patient/{id} (read)": read,
                "GET Observation?subject= (search)": search,
                "POST Observation (create)": write,
            }
            for what, call in kinds.items():
                targets = [rng.choice(ids) for _ in range(args.requests)]
                for target in targets[:300]:  # warm-up, both apps
                    call(on, target)
                    call(off, target)
                with_audit: list[float] = []
                without: list[float] = []
                for start in range(0, len(targets), BLOCK):
                    block = targets[start : start + BLOCK]
                    with_audit += [timed(partial(call, on, t)) for t in block]
                    without += [timed(partial(call, off, t)) for t in block]
                results[what] = {"on": with_audit, "off": without}

            server = on.app.state.server  # type: ignore[attr-defined]
            server.audit.flush()
            (count,) = server.store.rows("SELECT COUNT(*) FROM audit_events")[0]

    print(f"machine: {machine()}")
    print(
        f"backend: {args.backend}; {args.patients} Patients, {args.observations} Observations "
        f"each; {args.requests} requests per kind and mode; times in ms\n"
    )
    print("| what | n | p50 | p95 | p99 |")
    print("| --- | --- | --- | --- | --- |")
    for what, runs in results.items():
        print(row(f"{what}, audit on", runs["on"]))
        print(row(f"{what}, audit off", runs["off"]))
    print()
    for what, runs in results.items():
        p50 = quantile(runs["on"], 0.5) - quantile(runs["off"], 0.5)
        p95 = quantile(runs["on"], 0.95) - quantile(runs["off"], 0.95)
        print(f"{what}: the audit trail adds {p50:.3f} ms at p50, {p95:.3f} ms at p95")
    print(f"\naudit records written: {count}")


if __name__ == "__main__":
    main()
