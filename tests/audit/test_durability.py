"""Audit records survive the process: a write answered before a SIGKILL has its record (it is
written in the write's own transaction); a graceful stop writes the queued read records."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from click.testing import CliRunner

from tests.people import lan
from vnehr.app import create_server
from vnehr.cli import main
from vnehr.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(database_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`vnehr serve --dev` whose queued records would wait ten minutes to be written."""
    port = _port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
        "VNEHR_AUDIT_FLUSH_MS": "600000",
    }
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vnehr.cli",
            "serve",
            "--dev",
            "--port",
            str(port),
            "--database",
            database_url,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
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
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "vnehr serve did not start"
            time.sleep(0.1)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        log.close()


def kinds_about(database_url: str, patient: str) -> list[str]:
    server = create_server(Settings(database_url=database_url, dev=True))
    try:
        rows = server.store.rows(
            "SELECT kind FROM audit_events WHERE patient = ? ORDER BY recorded", [patient]
        )
    finally:
        server.close()
    return [row[0] for row in rows]


def test_a_write_answered_before_a_sigkill_keeps_its_audit_record(
    database_url: str, tmp_path: Path
) -> None:
    with serving(database_url, tmp_path) as (proc, base):
        created = httpx.post(f"{base}/Patient", json=lan(), timeout=30)
        assert created.status_code == 201, created.text
        patient = created.json()["id"]
        assert httpx.get(f"{base}/Patient/{patient}", timeout=30).status_code == 200
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # The create's record was in its transaction. The read's was queued, and with it gone:
    # the documented loss window of a killed process (docs/audit.md).
    assert kinds_about(database_url, patient) == ["create"]
    result = CliRunner().invoke(main, ["audit", "verify", "--database", database_url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 records, chain intact")


def test_a_graceful_stop_writes_the_queued_read_records(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path) as (proc, base):
        created = httpx.post(f"{base}/Patient", json=lan(), timeout=30)
        patient = created.json()["id"]
        for _ in range(3):
            assert httpx.get(f"{base}/Patient/{patient}", timeout=30).status_code == 200
        search = httpx.get(f"{base}/Patient", params={"_id": patient}, timeout=30)
        assert search.status_code == 200
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down (the app's lifespan closes the server), then dies of the
        # signal it caught, so that its exit status tells how it ended.
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    assert kinds_about(database_url, patient) == ["create", "read", "read", "read", "search-type"]
    result = CliRunner().invoke(main, ["audit", "verify", "--database", database_url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("5 records, chain intact\n")  # sealed on the way out
