"""A killed process (SIGKILL in the middle of a transaction or a `vnehr load`) leaves a
consistent store: every resource whole, with its versions and index rows, or absent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.people import CCCD, lan
from vnehr.app import create_server
from vnehr.search.query import strict_query
from vnehr.search.registry import default_registry
from vnehr.settings import Settings

MID_TRANSACTION = r"""
import sys, time
from vnehr.app import create_server
from vnehr.settings import Settings
from tests.people import lan
server = create_server(Settings(database_url=sys.argv[1], dev=True))
with server.store.transaction() as txn:
    for i in range(300):
        txn.write("Patient", f"t{i}", lan(f"0011859{i:05d}"), "POST", None)
    txn.flush()  # rows are in the database, uncommitted
    print("in-transaction", flush=True)
    time.sleep(60)
"""


def _env() -> dict[str, str]:
    root = Path(__file__).resolve().parents[2]
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'src'}"}


def _ids_by_cccd(url: str, value: str) -> list[str]:
    server = create_server(Settings(database_url=url, dev=True))
    try:
        criteria = strict_query(default_registry(), "Patient", [("identifier", f"{CCCD}|{value}")])
        return server.store.search_ids(criteria, 5)
    finally:
        server.close()


def test_sigkill_in_the_middle_of_a_transaction_leaves_nothing(database_url: str) -> None:
    server = create_server(Settings(database_url=database_url, dev=True))
    with server.store.transaction() as txn:
        txn.write("Patient", "before", lan("001185000777"), "POST", None)
    server.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", MID_TRANSACTION, database_url],
        stdout=subprocess.PIPE,
        env=_env(),
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "in-transaction", line
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    server = create_server(Settings(database_url=database_url, dev=True))
    try:
        assert server.store.count("Patient") == 1
        assert server.store.read("Patient", "before").version == 1
        page = server.store.history("Patient", None, since=None, at=None, count=10, cursor=None)
        assert [v.res_id for v in page.versions] == ["before"]
    finally:
        server.close()
    assert _ids_by_cccd(database_url, "001185900001") == []
    assert _ids_by_cccd(database_url, "001185000777") == ["before"]


def test_sigkill_during_load_keeps_only_whole_batches(database_url: str, tmp_path: Path) -> None:
    data = tmp_path / "patients.ndjson"
    with data.open("w") as f:
        for i in range(40_000):
            f.write(json.dumps({**lan(f"0790{i:08d}"), "id": f"l{i}"}, ensure_ascii=False) + "\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vnehr.cli",
            "load",
            str(data),
            "--database",
            database_url,
            "--batch",
            "500",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    server = create_server(Settings(database_url=database_url, dev=True))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.store.count("Patient") < 1500:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        loaded = server.store.count("Patient")
        assert 1500 <= loaded < 40_000, loaded
        assert loaded % 500 == 0, loaded
        last = loaded - 1
        assert server.store.read("Patient", f"l{last}").version == 1
    finally:
        server.close()
    assert _ids_by_cccd(database_url, f"0790{last:08d}") == [f"l{last}"]
    assert _ids_by_cccd(database_url, f"0790{loaded:08d}") == []
    # Its worker processes do not outlive it.
    deadline = time.monotonic() + 10
    while _processes_mentioning(str(data)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_mentioning(str(data)) == []


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue  # gone meanwhile
    return found
