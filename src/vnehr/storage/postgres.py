"""PostgreSQL backend: a connection pool, row locks for versioned writes, advisory locks for
conditional create, COPY for index rows."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from vnehr.errors import Conflict, StoreUnavailable
from vnehr.storage.base import Indexer
from vnehr.storage.schema import INDEX_TABLES, POSTGRES_MIGRATIONS
from vnehr.storage.sql_store import SqlStore, SqlTransaction

# From this many rows on, a COPY beats a pipelined executemany (measured: about even at 2-16).
_COPY_THRESHOLD = 2


def _lock_hash(key: str) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def postgres_conninfo(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1] if url.startswith("postgres://") else url


class PostgresStore(SqlStore):
    dialect = "postgresql"
    lock_rows = " FOR UPDATE"
    fence = " OFFSET 0"
    index_counts = False

    def __init__(self, url: str, indexer: Indexer, *, pool_size: int = 8) -> None:
        super().__init__(indexer)
        self.url = postgres_conninfo(url)
        try:
            self.pool = ConnectionPool(
                self.url,
                min_size=1,
                max_size=max(2, pool_size),
                open=True,
                timeout=30,
                kwargs={"autocommit": True},
            )
            self.pool.wait(timeout=30)
        except (psycopg.OperationalError, Exception) as exc:
            raise StoreUnavailable(f"Cannot connect to PostgreSQL: {exc}") from None
        self._statistics = _Statistics(self.pool)

    def refresh_statistics(self, tables: Sequence[str]) -> None:
        """Gather the planner's statistics of `tables` now (after a bulk load into them)."""
        with self.pool.connection() as conn:
            row = conn.execute("SHOW autovacuum").fetchone()
            verb = "VACUUM (ANALYZE)" if row is not None and row[0] == "off" else "ANALYZE"
            conn.execute(f"{verb} {', '.join(tables)}")

    def sql(self, statement: str) -> str:
        cached = self._sql_cache.get(statement)
        if cached is None:
            cached = statement.replace("?", "%s")
            self._sql_cache[statement] = cached
        return cached

    def content_param(self, content: bytes | None) -> Any:
        return None if content is None else content.decode()

    def content_bytes(self, value: Any) -> bytes | None:
        return None if value is None else value.encode()

    def executemany(self, conn: Any, statement: str, rows: list[Any]) -> None:
        with conn.cursor() as cur:
            cur.executemany(statement, rows)

    def write_rows(
        self, conn: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if len(rows) < _COPY_THRESHOLD:
            super().write_rows(conn, table, columns, rows)
            return
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def _allocate_keys(self, conn: Any, n: int) -> list[int]:
        rows = conn.execute(
            "SELECT nextval(pg_get_serial_sequence('resources', 'rkey')) "
            "FROM generate_series(1, %s)",
            (n,),
        ).fetchall()
        return sorted((int(r[0]) for r in rows), reverse=True)

    def _select_current(self, conn: Any, res_type: str, res_id: str) -> Any:
        row = conn.execute(
            "SELECT rkey, version, deleted FROM resources "
            "WHERE res_type = %s AND res_id = %s FOR UPDATE",
            (res_type, res_id),
        ).fetchone()
        if row is None:
            # Another transaction may be creating the same id (create-on-update): wait for it
            # on a lock of that id so the second writer sees the first one's row.
            self._lock_key(conn, f"id:{res_type}/{res_id}")
            row = conn.execute(
                "SELECT rkey, version, deleted FROM resources "
                "WHERE res_type = %s AND res_id = %s FOR UPDATE",
                (res_type, res_id),
            ).fetchone()
        return row

    def _lock_keys(self, conn: Any, keys: list[str]) -> None:
        hashes = [_lock_hash(k) for k in keys]
        conn.execute("SELECT pg_advisory_xact_lock(h) FROM unnest(%s::bigint[]) AS h", (hashes,))

    def _lock_key(self, conn: Any, key: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_hash(key),))

    def _create_sp(self, conn: Any, res_type: str, code: str) -> int:
        # On its own autocommitted connection, so the id survives a rolled-back transaction.
        with self.pool.connection() as own:
            own.execute(
                "INSERT INTO search_params (res_type, code) VALUES (%s, %s) "
                "ON CONFLICT (res_type, code) DO NOTHING",
                (res_type, code),
            )
            row = own.execute(
                "SELECT sp FROM search_params WHERE res_type = %s AND code = %s", (res_type, code)
            ).fetchone()
        assert row is not None
        return int(row[0])

    @contextmanager
    def reader(self) -> Iterator[Any]:
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        try:
            with self.pool.connection() as conn, conn.transaction():
                txn = SqlTransaction(self, conn)
                yield txn
                txn.flush()
            self._statistics.wrote(txn.written)
        except (
            psycopg.errors.SerializationFailure,
            psycopg.errors.DeadlockDetected,
            psycopg.errors.UniqueViolation,
        ):
            # Another transaction won a race for the same rows: nothing was written; retry.
            raise Conflict("A concurrent write conflicted with this one; retry it") from None
        except psycopg.OperationalError:
            raise StoreUnavailable("PostgreSQL is unavailable; try again later") from None

    def migrate(self) -> list[str]:
        applied = []
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(7230917)")  # one migrator at a time
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
            for name, statements in POSTGRES_MIGRATIONS:
                if name in done:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
                applied.append(name)
        return applied

    def database_size(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            assert row is not None
            return int(row[0])

    def close(self) -> None:
        self._statistics.wait()
        self.pool.close()


class _Statistics:
    """Keeps the planner's statistics fresh as data grows, whether or not autovacuum runs.

    Measured: with autovacuum off and no statistics, PostgreSQL looked up the 500 ids of a
    load batch by scanning every resource of the type (22 ms at 125,000 resources, growing
    with the table). Like autovacuum's analyze, ANALYZE runs (on its own thread and
    connection) once the rows written since the last one pass 20% of the store, at least 5,000.
    Where autovacuum is off, it is `VACUUM (ANALYZE)`: besides the statistics, the
    visibility map lets a search read the covering indexes alone (index-only scans; the
    population-wide count of docs/benchmarks.md reads no table rows).
    """

    TABLES = "resources, resource_versions, " + ", ".join(INDEX_TABLES)

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.total = 0
        with pool.connection() as conn:  # the store's size as of the last statistics
            row = conn.execute(
                "SELECT reltuples FROM pg_class WHERE relname = 'resource_versions'"
            ).fetchone()
            self.total = max(0, int(row[0])) if row is not None else 0
        self.since = 0
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def wrote(self, n: int) -> None:
        with self.lock:
            self.total += n
            self.since += n
            if self.since < max(5_000, self.total // 5):
                return
            if self.thread is not None and self.thread.is_alive():
                return
            self.since = 0
            self.thread = threading.Thread(target=self._analyze, name="vnehr-analyze", daemon=True)
            self.thread.start()

    def _analyze(self) -> None:
        try:
            with self.pool.connection() as conn:
                row = conn.execute("SHOW autovacuum").fetchone()
                vacuum = row is not None and row[0] == "off"
                if vacuum:  # not the versions: index-only scans do not read them
                    tables = self.TABLES.replace(" resource_versions,", "")
                    conn.execute(f"VACUUM (ANALYZE) {tables}")
                    conn.execute("ANALYZE resource_versions")
                else:
                    conn.execute(f"ANALYZE {self.TABLES}")
        except psycopg.Error:
            pass  # statistics are an optimisation: the next round tries again

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join(timeout=60)
