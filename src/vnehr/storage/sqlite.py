"""SQLite backend: WAL, one write lane (`BEGIN IMMEDIATE` behind a lock), per-thread readers."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from vnehr.errors import StoreUnavailable
from vnehr.storage.base import Indexer
from vnehr.storage.schema import SQLITE_MIGRATIONS
from vnehr.storage.sql_store import SqlStore, SqlTransaction

WAL_CHECKPOINT_PAGES = 10_000


def sqlite_path(url: str) -> Path:
    """`sqlite:///./data/vnehr.db` -> ./data/vnehr.db; `sqlite:////abs/x.db` -> /abs/x.db."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL: {url}")
    return Path(url[len("sqlite:///") :])


class SqliteStore(SqlStore):
    dialect = "sqlite"
    absent_is_final = True

    def __init__(
        self,
        path: Path | str,
        indexer: Indexer,
        *,
        synchronous: str = "NORMAL",
        cache_mb: int = 64,
    ) -> None:
        super().__init__(indexer)
        self.cache_mb = cache_mb
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.synchronous = synchronous.upper()
        self._write_lock = threading.Lock()
        self._writer = self._connect(readonly=False)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._next_key: int | None = None

    def _connect(self, *, readonly: bool) -> sqlite3.Connection:
        if readonly:
            conn = sqlite3.connect(
                f"file:{self.path}?mode=ro",
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                timeout=30,
            )
            conn.execute("PRAGMA query_only = ON")
        else:
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            # Checkpoint every ~40 MB of WAL rather than SQLite's 4 MB: under
            # synchronous=NORMAL each checkpoint syncs, and a larger one copies a hot index
            # page once for many commits (ingest +25%, docs/benchmarks.md). The WAL file
            # is cut back to 64 MB after a checkpoint.
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            conn.execute(f"PRAGMA journal_size_limit = {64 * 1024 * 1024}")
            conn.execute(f"PRAGMA cache_size = -{self.cache_mb * 1024}")
        conn.execute("PRAGMA busy_timeout = 30000")
        if readonly:
            conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA temp_store = MEMORY")
        return conn

    # -- dialect hooks
    def boolean(self, value: bool) -> Any:
        return 1 if value else 0

    def executemany(self, conn: Any, statement: str, rows: list[Any]) -> None:
        conn.executemany(statement, rows)

    def indexed_by(self, index: str) -> str:
        # Probes of one resource's rows must use the rkey index: without statistics the
        # planner may prefer the value index and scan every row of a common value.
        return f" INDEXED BY {index}"

    def unindexed(self, expr: str) -> str:
        return f"+{expr}"

    def _allocate_keys(self, conn: Any, n: int) -> list[int]:
        # Inside the write lane nobody else inserts: count up from the highest key, read
        # afresh at the start of every transaction (another process may have written).
        if self._next_key is None:
            row = conn.execute("SELECT COALESCE(MAX(rkey), 0) FROM resources").fetchone()
            self._next_key = int(row[0]) + 1
        first = self._next_key
        self._next_key = first + n
        return list(range(first + n - 1, first - 1, -1))

    def _select_current(self, conn: Any, res_type: str, res_id: str) -> Any:
        # The write lane already serialises writers: no row lock needed.
        return conn.execute(
            "SELECT rkey, version, deleted FROM resources WHERE res_type = ? AND res_id = ?",
            (res_type, res_id),
        ).fetchone()

    def refresh_statistics(self, tables: Sequence[str]) -> None:
        """No statistics on SQLite: its statements are written to plan well without them."""

    def _lock_key(self, conn: Any, key: str) -> None:
        return None  # one writer at a time already

    def _create_sp(self, conn: Any, res_type: str, code: str) -> int:
        conn.execute(
            "INSERT OR IGNORE INTO search_params (res_type, code) VALUES (?, ?)", (res_type, code)
        )
        row = conn.execute(
            "SELECT sp FROM search_params WHERE res_type = ? AND code = ?", (res_type, code)
        ).fetchone()
        return int(row[0])

    # -- connections
    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(readonly=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        yield conn

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"The database is busy: {exc}") from None
            self._next_key = None
            txn = SqlTransaction(self, conn)
            try:
                yield txn
                txn.flush()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                # sp ids created in the rolled-back transaction are gone too.
                self._sp_cache.clear()
                raise

    def migrate(self) -> list[str]:
        with self._write_lock:
            conn = self._writer
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            applied = []
            for name, statements in SQLITE_MIGRATIONS:
                if name in done:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (?)", (name,))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                applied.append(name)
            return applied

    def database_size(self) -> int:
        files = [self.path, Path(f"{self.path}-wal")]
        return sum(f.stat().st_size for f in files if f.exists())

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()
        with self._write_lock:
            # Leave a small WAL; if another process holds the database, its checkpoints will do.
            with suppress(sqlite3.Error):
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._writer.close()
