"""Authentication costs, in process (Starlette's TestClient, no network): what checking a
bearer token adds to a FHIR read, `Tokens.verify` alone, and `/auth/token` for a backend
service (client_credentials, a fresh RS384 client assertion per request).

    .venv/bin/python -m bench.auth --backend sqlite
    .venv/bin/python -m bench.auth --backend postgresql

The read is `GET /fhir/Patient/{id}` of a random stored Patient, by a production-mode app
with a valid token and by a development-mode app without one, on the same database; the two
take turns in blocks of 100 so that the machine's drift falls on both. Assertions are made
before the timing starts; only the request is timed. Targets (issue): the token check adds
under 1 ms p95, `/auth/token` p95 under 20 ms.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from joserfc import jwk, jwt
from starlette.testclient import TestClient

from bench.harness import fresh_database, machine
from vnehr.app import create_app
from vnehr.auth.assertions import ASSERTION_TYPE
from vnehr.auth.keys import SigningKeys
from vnehr.settings import Settings

BASE = "http://bench.vnehr.vn"
BLOCK = 100


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def patient(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [
            {
                "system": "http://fhir.ehealth.gov.vn/core/sid/national_id",
                "value": f"0011850{i:05d}",
            }
        ],
        "name": [{"family": "Nguyễn", "given": ["Thị", f"Lan {i}"]}],
        "gender": "female",
        "birthDate": "1985-03-12",
    }


def client_keys() -> tuple[dict[str, Any], jwk.RSAKey]:
    key = jwk.RSAKey.generate_key(
        2048, parameters={"kid": "his-bench-1", "alg": "RS384"}, private=True
    )
    return {"keys": [key.as_dict(private=False, alg="RS384", use="sig")]}, key


def assertion(client_id: str, key: jwk.RSAKey) -> str:
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": BASE + "/auth/token",
        "exp": int(time.time()) + 280,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode({"alg": "RS384", "kid": key.kid, "typ": "JWT"}, claims, key, ["RS384"])


def row(what: str, values: list[float]) -> str:
    return (
        f"| {what} | {len(values)} | {quantile(values, 0.5):.3f} | {quantile(values, 0.95):.3f} "
        f"| {quantile(values, 0.99):.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=5000, help="reads per mode")
    parser.add_argument("--verifies", type=int, default=5000)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with fresh_database(args.backend) as url, tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.json"
        SigningKeys.generate().save(keys)
        production = Settings(database_url=url, dev=False, auth_keys=str(keys))
        development = Settings(database_url=url, dev=True)
        with (
            TestClient(create_app(production), base_url=BASE) as secure,
            TestClient(create_app(development), base_url=BASE) as open_,
        ):
            server = secure.app.state.server  # type: ignore[attr-defined]
            public, key = client_keys()
            client, _ = server.auth.service.clients.register(
                "HIS bench",
                kind="backend",
                auth_method="private_key_jwt",
                scopes="system/*.cruds",
                facility="org-bench",
                jwks=public,
                client_id="his-bench",
            )

            def token_request(signed: str) -> Any:
                return secure.post(
                    "/auth/token",
                    data={
                        "grant_type": "client_credentials",
                        "scope": "system/*.cruds",
                        "client_assertion_type": ASSERTION_TYPE,
                        "client_assertion": signed,
                    },
                )

            answer = token_request(assertion(client.client_id, key))
            assert answer.status_code == 200, answer.text
            token = answer.json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            ids = []
            for i in range(args.patients):
                created = open_.post("/fhir/Patient", json=patient(i))
                assert created.status_code == 201, created.text
                ids.append(created.json()["id"])
            targets = [rng.choice(ids) for _ in range(args.reads)]

            def read_secure(res_id: str) -> None:
                r = secure.get(f"/fhir/Patient/{res_id}", headers=headers)
                assert r.status_code == 200, r.text

            def read_open(res_id: str) -> None:
                r = open_.get(f"/fhir/Patient/{res_id}")
                assert r.status_code == 200, r.text

            for res_id in targets[:300]:  # warm-up, both apps
                read_secure(res_id)
                read_open(res_id)
            with_token: list[float] = []
            without: list[float] = []
            for start in range(0, len(targets), BLOCK):
                block = targets[start : start + BLOCK]
                with_token += [timed(partial(read_secure, r)) for r in block]
                without += [timed(partial(read_open, r)) for r in block]

            tokens = server.auth.tokens
            issuer = BASE + "/fhir"
            for _ in range(200):
                tokens.verify(token, issuer)
            verify = [timed(lambda: tokens.verify(token, issuer)) for _ in range(args.verifies)]

            signed = [assertion(client.client_id, key) for _ in range(args.tokens + 20)]
            for s in signed[:20]:  # warm-up
                assert token_request(s).status_code == 200
            issue: list[float] = []
            for s in signed[20:]:
                start_at = time.perf_counter()
                r = token_request(s)
                issue.append((time.perf_counter() - start_at) * 1000)
                assert r.status_code == 200, r.text

    print(f"machine: {machine()}")
    print(f"backend: {args.backend}; {args.patients} Patients; times in ms\n")
    print("| what | n | p50 | p95 | p99 |")
    print("| --- | --- | --- | --- | --- |")
    print(row("GET Patient/{id}, production mode, bearer token", with_token))
    print(row("GET Patient/{id}, development mode, no token", without))
    print(row("Tokens.verify alone", verify))
    print(row("POST /auth/token (client_credentials, RS384 assertion)", issue))
    p50 = quantile(with_token, 0.5) - quantile(without, 0.5)
    p95 = quantile(with_token, 0.95) - quantile(without, 0.95)
    ratio = quantile(with_token, 0.5) / quantile(without, 0.5)
    print(
        f"\ntoken check adds {p50:.3f} ms at p50 ({ratio:.2f}x), {p95:.3f} ms at p95 "
        f"(target < 1 ms p95); /auth/token p95 {quantile(issue, 0.95):.2f} ms (target < 20 ms)"
    )


if __name__ == "__main__":
    main()
