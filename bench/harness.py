"""Benchmark harness: fresh databases, a real `vnehr serve` subprocess, RSS and size readings."""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get(
    "VNEHR_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()}, "
        f"Python {platform.python_version()}"
    )


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """A new empty database URL on `backend` (sqlite or postgresql), removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="vnehr-bench-") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    name = f"vnehr_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn runs the app in-process)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def running_server(database_url: str, *extra_env: tuple[str, str]) -> Iterator[tuple[str, int]]:
    """`vnehr serve --dev` on a free port; yields (base URL, pid)."""
    port = free_port()
    env = {**os.environ, "VNEHR_DEV": "1", **dict(extra_env)}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "vnehr"),
            "serve",
            "--dev",
            "--port",
            str(port),
            "--database",
            database_url,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("vnehr serve did not start")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def database_size(database_url: str) -> int:
    if database_url.startswith("sqlite:///"):
        path = Path(database_url[len("sqlite:///") :])
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        assert row is not None
        return int(row[0])


def median(values: list[float]) -> float:
    return statistics.median(values)


def flatten(bundles: Any) -> Iterator[dict[str, Any]]:
    """Resources of transaction Bundles with ids assigned and urn:uuid references resolved."""
    from vnehr.fhir.ids import new_id

    for bundle in bundles:
        ids: dict[str, str] = {}
        entries = bundle.get("entry", [])
        for entry in entries:
            res = entry["resource"]
            url = entry.get("request", {}).get("url", "")
            rid = url.split("/", 1)[1].split("?")[0] if "/" in url else (res.get("id") or new_id())
            res["id"] = rid
            if entry.get("fullUrl"):
                ids[entry["fullUrl"]] = f"{res['resourceType']}/{rid}"
        for entry in entries:
            res = entry["resource"]
            _resolve(res, ids)
            yield res


def _resolve(node: Any, ids: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in ids:
                node[key] = ids[value]
            else:
                _resolve(value, ids)
    elif isinstance(node, list):
        for value in node:
            _resolve(value, ids)
