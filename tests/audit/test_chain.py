"""The trail is append-only and hash-chained: the database refuses changes to sealed records,
and `vnehr audit verify` finds the first broken link when someone gets round that."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from tests.people import hba1c, lan
from vnehr.app import Server, create_server
from vnehr.audit.chain import link_hash
from vnehr.cli import main
from vnehr.interactions.exchange import FhirRequest
from vnehr.settings import Settings
from vnehr.storage.schema import AUDIT_COLUMNS
from vnehr.storage.sqlite import sqlite_path

Run = Callable[..., list[Any]]


def fill(url: str, patients: int = 3) -> None:
    """Some records: patients created, each read once."""
    server = create_server(Settings(database_url=url, dev=True))
    try:
        for i in range(patients):
            created = server.router.handle(
                FhirRequest("POST", "Patient", resource=lan(f"00118500{i:04d}"))
            )
            pid = created.headers["Location"].split("/Patient/")[1].split("/")[0]
            assert server.router.handle(FhirRequest("GET", f"Patient/{pid}")).status == 200
    finally:
        server.close()


def verify(url: str) -> Result:
    return CliRunner().invoke(main, ["audit", "verify", "--database", url])


@contextmanager
def intruder(url: str) -> Iterator[Run]:
    """A raw connection with the owner's rights, who turns the audit triggers off."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
        for trigger in ("audit_events_no_delete", "audit_events_sealed", "audit_head_forward"):
            conn.execute(f"DROP TRIGGER {trigger}")

        def run_sqlite(sql: str, args: Sequence[Any] = ()) -> list[Any]:
            return conn.execute(sql, args).fetchall()

        try:
            yield run_sqlite
        finally:
            conn.close()
        return
    pg = psycopg.connect(url, autocommit=True)
    for table in ("audit_events", "audit_head"):
        pg.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")

    def run_pg(sql: str, args: Sequence[Any] = ()) -> list[Any]:
        cur = pg.execute(sql.replace("?", "%s"), args)
        return cur.fetchall() if cur.description else []

    try:
        yield run_pg
    finally:
        for table in ("audit_events", "audit_head"):
            pg.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        pg.close()


@contextmanager
def raw(url: str) -> Iterator[Run]:
    """A raw connection, triggers left as they are."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
        try:
            yield lambda sql, args=(): conn.execute(sql, args).fetchall()
        finally:
            conn.close()
        return
    with psycopg.connect(url, autocommit=True) as pg:

        def run_pg(sql: str, args: Sequence[Any] = ()) -> list[Any]:
            cur = pg.execute(sql.replace("?", "%s"), args)
            return cur.fetchall() if cur.description else []

        yield run_pg


def test_an_untouched_trail_verifies(database_url: str) -> None:
    fill(database_url)
    result = verify(database_url)
    assert result.exit_code == 0, result.output
    # 3 creates, 3 reads, and the Person the patient index made is in each create's record
    assert result.output.startswith("6 records, chain intact\n")
    assert "head " in result.output


def test_an_empty_trail_verifies(database_url: str) -> None:
    result = verify(database_url)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("0 records, chain intact")


def test_a_changed_record_breaks_the_chain_at_that_record(database_url: str) -> None:
    fill(database_url)
    assert verify(database_url).exit_code == 0
    with intruder(database_url) as run:
        run("UPDATE audit_events SET content = replace(content, 'Patient/', 'P/') WHERE seq = 3")
    result = verify(database_url)
    assert result.exit_code == 1
    assert "chain broken at record 3: its content does not match its hash" in result.output
    assert "records 1 to 2 are intact" in result.output


def test_a_changed_column_breaks_the_chain_too(database_url: str) -> None:
    """Hiding a record from a citizen's log by changing its patient is a change like any."""
    fill(database_url)
    assert verify(database_url).exit_code == 0
    with intruder(database_url) as run:
        run("UPDATE audit_events SET patient = 'someone-else' WHERE seq = 2")
    result = verify(database_url)
    assert result.exit_code == 1
    assert "chain broken at record 2" in result.output


def test_a_record_rehashed_after_a_change_breaks_the_next_link(database_url: str) -> None:
    fill(database_url)
    assert verify(database_url).exit_code == 0
    columns = ", ".join(AUDIT_COLUMNS)
    with intruder(database_url) as run:
        run("UPDATE audit_events SET facility = 'org-z' WHERE seq = 3")
        (row,) = run(f"SELECT prev_hash, {columns} FROM audit_events WHERE seq = 3")
        run("UPDATE audit_events SET hash = ? WHERE seq = 3", [link_hash(row[0], 3, row[1:])])
    result = verify(database_url)
    assert result.exit_code == 1
    assert "chain broken at record 4: its previous hash is not the hash of record 3" in (
        result.output
    )


def test_a_removed_record_breaks_the_chain_where_it_was(database_url: str) -> None:
    fill(database_url)
    assert verify(database_url).exit_code == 0
    with intruder(database_url) as run:
        run("DELETE FROM audit_events WHERE seq = 2")
    result = verify(database_url)
    assert result.exit_code == 1
    assert "chain broken at record 2: record 2 is missing (the next is 3)" in result.output


def test_reordered_records_break_the_chain(database_url: str) -> None:
    fill(database_url)
    assert verify(database_url).exit_code == 0
    with intruder(database_url) as run:
        run("UPDATE audit_events SET seq = -1 WHERE seq = 2")
        run("UPDATE audit_events SET seq = 2 WHERE seq = 3")
        run("UPDATE audit_events SET seq = 3 WHERE seq = -1")
    result = verify(database_url)
    assert result.exit_code == 1
    assert "chain broken at record 2: its previous hash" in result.output


def test_a_removed_last_record_is_missed_by_the_chain_head(database_url: str) -> None:
    fill(database_url)
    assert verify(database_url).exit_code == 0
    with intruder(database_url) as run:
        run("DELETE FROM audit_events WHERE seq = 6")
    result = verify(database_url)
    assert result.exit_code == 1
    assert "chain broken at record 6: record 6 is missing (the chain head is 6)" in result.output


def test_the_database_refuses_to_change_or_remove_sealed_records(database_url: str) -> None:
    fill(database_url)
    assert verify(database_url).exit_code == 0
    error = sqlite3.DatabaseError if database_url.startswith("sqlite:") else psycopg.Error
    with raw(database_url) as run:
        for statement in (
            "UPDATE audit_events SET content = '{}' WHERE seq = 1",
            "UPDATE audit_events SET seq = 99 WHERE seq = 1",
            "UPDATE audit_events SET hash = NULL WHERE seq = 1",
            "DELETE FROM audit_events WHERE seq = 1",
            "UPDATE audit_head SET seq = 1",
            "DELETE FROM audit_head",
        ):
            with pytest.raises(error, match=r"append-only|only moves forward|cannot be deleted"):
                run(statement)
    assert verify(database_url).exit_code == 0


def test_concurrent_writers_and_sealers_never_fork_the_chain(database_url: str) -> None:
    """Two servers on one database (two sealers), several threads each."""
    servers = [create_server(Settings(database_url=database_url, dev=True)) for _ in range(2)]
    failures: list[BaseException] = []

    def work(server: Server, n: int) -> None:
        try:
            for i in range(15):
                created = server.router.handle(
                    FhirRequest("POST", "Observation", resource=hba1c(f"Patient/p{n}-{i}"))
                )
                assert created.status == 201, created.resource
                assert server.router.handle(FhirRequest("GET", "Observation")).status == 200
                if i % 5 == 0:
                    assert server.audit is not None
                    server.audit.flush()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(servers[n % 2], n)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for server in servers:
        server.close()
    assert failures == []
    result = verify(database_url)
    assert result.exit_code == 0, result.output
    with raw(database_url) as run:
        (counts,) = run("SELECT COUNT(*), COUNT(seq), MIN(seq), MAX(seq) FROM audit_events")
    total = counts[0]
    assert total >= 6 * 15 * 2  # a create and at least one search record each
    assert tuple(counts) == (total, total, 1, total)
    assert result.output.startswith(f"{total} records, chain intact")


def test_a_backlog_is_written_in_several_transactions_and_stays_one_chain(
    database_url: str,
) -> None:
    server = create_server(Settings(database_url=database_url, dev=True, audit_flush_ms=600_000))
    try:
        created = server.router.handle(FhirRequest("POST", "Patient", resource=lan()))
        pid = created.headers["Location"].split("/Patient/")[1].split("/")[0]
        for _ in range(150):  # more than one transaction's worth of queued records
            assert server.router.handle(FhirRequest("GET", f"Patient/{pid}")).status == 200
    finally:
        server.close()  # writes the queue
    result = verify(database_url)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("151 records, chain intact\n")
