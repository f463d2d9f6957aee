"""What the access policy (vnehr.policy) costs searches and reads, in process (Starlette's
TestClient, no network): the same requests by a hospital system, whose every query carries
the policy (compiled into its SQL), and by a national service, whose queries carry none, on
the same app and database, taking turns in blocks so that drift falls on both.

    .venv/bin/python -m bench.access --backend sqlite --patients 2000
    .venv/bin/python -m bench.access --backend postgresql --patients 2000

The demo population is loaded with `vnehr demo` (its Encounters give each facility its care
rules); the hospital is the facility with the most patients in its care, and the sampled
patients are among them, so both callers get the same answers to patient-level queries.
Target (issue #7): the policy costs at most 20% of a search or read.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from joserfc import jwk
from starlette.testclient import TestClient

from bench.auth import BASE, assertion, client_keys, quantile
from bench.harness import fresh_database, machine
from vnehr.app import create_app
from vnehr.auth.assertions import ASSERTION_TYPE
from vnehr.auth.keys import SigningKeys
from vnehr.fhir.instant import now_micros
from vnehr.settings import Settings

CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"
LOINC = "http://loinc.org"
BLOCK = 25


def token(client: TestClient, client_id: str, key: jwk.RSAKey, scope: str) -> dict[str, str]:
    answer = client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(client_id, key),
        },
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=300, help="requests per kind and caller")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with fresh_database(args.backend) as url, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "vnehr"),
                "demo",
                "--patients",
                str(args.patients),
                "--database",
                url,
            ],
            check=True,
            capture_output=True,
            # The demo's encounters span years: a ten-year care window gives the hospital
            # many patients in its care, as a busy hospital has.
            env={**os.environ, "VNEHR_ACCESS_CARE_WINDOW_DAYS": "3650"},
        )
        loaded = time.perf_counter() - started
        keys = Path(tmp) / "keys.json"
        SigningKeys.generate().save(keys)
        settings = Settings(
            database_url=url, dev=False, auth_keys=str(keys), access_care_window_days=3650
        )
        with TestClient(create_app(settings), base_url=BASE) as client:
            server = client.app.state.server  # type: ignore[attr-defined]
            store = server.store
            resources = store.count()
            now = now_micros()
            party, in_care = store.rows(
                "SELECT party, COUNT(DISTINCT patient_id) FROM access_rules WHERE effect = 'care' "
                "AND start <= ? AND until > ? GROUP BY party ORDER BY 2 DESC LIMIT 1",
                [now, now],
            )[0]
            facility = str(party).split("/", 1)[1]
            patients = [
                str(r[0])
                for r in store.rows(
                    "SELECT DISTINCT patient_id FROM access_rules WHERE party = ? "
                    "AND effect = 'care' AND start <= ? AND until > ? ORDER BY patient_id",
                    [party, now, now],
                )
            ]
            public, key = client_keys()
            clients = server.auth.service.clients
            clients.register(
                "HIS",
                kind="backend",
                auth_method="private_key_jwt",
                scopes="system/*.rs",
                facility=facility,
                jwks=public,
                client_id="his",
            )
            clients.register(
                "National",
                kind="backend",
                auth_method="private_key_jwt",
                scopes="system/*.rs vnehr/national",
                facility=None,
                jwks=public,
                client_id="national",
            )
            hospital = token(client, "his", key, "system/*.rs")
            national = token(client, "national", key, "system/*.rs vnehr/national")

            def sample() -> dict[str, str]:
                while True:
                    pid = rng.choice(patients)
                    obs = client.get(
                        f"/fhir/Observation?patient={pid}&_count=50", headers=national
                    ).json()
                    entries = obs.get("entry") or []
                    if not entries:
                        continue
                    p = client.get(f"/fhir/Patient/{pid}", headers=national).json()
                    cccd = next(
                        (i["value"] for i in p.get("identifier", []) if i.get("system") == CCCD),
                        None,
                    )
                    codes = [
                        c["code"]
                        for e in entries
                        for c in e["resource"].get("code", {}).get("coding", [])
                        if c.get("system") == LOINC
                    ]
                    if cccd and codes:
                        return {"patient": pid, "cccd": cccd, "loinc": rng.choice(codes)}

            samples = [sample() for _ in range(40)]
            kinds: dict[str, Callable[[dict[str, str]], str]] = {
                "read Patient/{id}": lambda s: f"/fhir/Patient/{s['patient']}",
                "Patient?identifier=CCCD": lambda s: f"/fhir/Patient?identifier={CCCD}|{s['cccd']}",
                "Observation?patient=": lambda s: f"/fhir/Observation?patient={s['patient']}",
                "Observation?patient=&code=": lambda s: (
                    f"/fhir/Observation?patient={s['patient']}&code={LOINC}|{s['loinc']}"
                ),
                "Observation?code=&_count=20": lambda s: (
                    f"/fhir/Observation?code={LOINC}|{s['loinc']}&_count=20"
                ),
                "Observation?code=&_summary=count": lambda s: (
                    f"/fhir/Observation?code={LOINC}|{s['loinc']}&_summary=count"
                ),
            }
            times: dict[tuple[str, str], list[float]] = {}
            for name, url_of in kinds.items():
                for s in samples[:5]:  # warm-up; and both see the patient-level answers
                    a = client.get(url_of(s), headers=hospital)
                    b = client.get(url_of(s), headers=national)
                    assert a.status_code == b.status_code == 200, (name, a.text, b.text)
                    if "patient" in name.lower() or "Patient" in name:
                        assert a.json().get("total") == b.json().get("total"), name
            for _ in range(0, args.samples, BLOCK):
                for name, url_of in kinds.items():
                    for who, headers in (("policy", hospital), ("none", national)):
                        bucket = times.setdefault((name, who), [])
                        for _ in range(BLOCK):
                            target = url_of(rng.choice(samples))
                            at = time.perf_counter()
                            r = client.get(target, headers=headers)
                            bucket.append((time.perf_counter() - at) * 1000)
                            assert r.status_code == 200, r.text
    print(f"machine: {machine()}")
    print(
        f"backend: {args.backend}; {args.patients} patients, {resources} resources "
        f"(loaded in {loaded:.0f} s); hospital {facility} with {in_care} patients in care; "
        "times in ms, in process\n"
    )
    print("| query | p50 policy | p50 none | p50 ratio | p95 policy | p95 none | p95 ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in kinds:
        a, b = times[(name, "policy")], times[(name, "none")]
        print(
            f"| {name} | {quantile(a, 0.5):.2f} | {quantile(b, 0.5):.2f} | "
            f"{quantile(a, 0.5) / quantile(b, 0.5):.2f} | {quantile(a, 0.95):.2f} | "
            f"{quantile(b, 0.95):.2f} | {quantile(a, 0.95) / quantile(b, 0.95):.2f} |"
        )


if __name__ == "__main__":
    main()
