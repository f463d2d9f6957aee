"""The SQL store shared by both backends: versioned resources plus search index rows.

Dialect specifics (connections, locking, placeholders, bulk copy) live in sqlite.py and
postgres.py; the statements here are written with `?` placeholders.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from vnehr.errors import Conflict, Gone, InvalidRequest, NotFound
from vnehr.fhir import json as fhir_json
from vnehr.fhir.ids import new_id
from vnehr.fhir.instant import format_instant, now_micros
from vnehr.search.compile.sql import Cursor as PageCursor
from vnehr.search.compile.sql import SqlCompiler, after_condition, order_by
from vnehr.search.ir import Query
from vnehr.storage.base import Current, HistoryPage, Indexer, SearchPage, StoredVersion
from vnehr.storage.prepared import PreparedResource, assemble, prepare, table_rows
from vnehr.storage.schema import INDEX_TABLES

_RESOURCE_COLUMNS = ("rkey", "res_type", "res_id", "version", "last_updated", "deleted")
_VERSION_COLUMNS = ("rkey", "version", "res_type", "last_updated", "deleted", "method", "content")


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...


class Clock:
    """Strictly increasing microsecond timestamps, so history has a total order."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            now = max(now_micros(), self._last + 1)
            self._last = now
            return now


def encode_cursor(version: StoredVersion, rkey: int) -> str:
    raw = f"{version.last_updated}:{rkey}:{version.version}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        a, b, c = (int(part) for part in raw.split(":"))
        if not all(-(2**63) <= n < 2**63 for n in (a, b, c)):
            raise ValueError
        return a, b, c
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(f"Invalid paging cursor {cursor!r}") from None


class SqlTransaction:
    """One write transaction on one connection.

    Rows are buffered and sent in batches (executemany, or COPY on PostgreSQL) when the
    transaction reads, searches or commits; integer keys of new resources are allocated
    in blocks, so a create costs no round trip of its own.
    """

    def __init__(self, store: SqlStore, conn: Any) -> None:
        self.store = store
        self.conn = conn
        self._known: dict[tuple[str, str], Current] = {}  # written or prefetched here
        self._absent: set[tuple[str, str]] = set()  # known not to exist (single-writer stores)
        self._inserts: dict[int, list[Any]] = {}  # rkey -> resources row, not yet sent
        self._updates: list[tuple[Any, ...]] = []
        self._versions: list[tuple[Any, ...]] = []
        self._index: dict[str, list[tuple[Any, ...]]] = {t: [] for t in INDEX_TABLES}
        self._stale: list[tuple[int]] = []
        self._keys: list[int] = []
        self.written = 0  # versions written, for statistics upkeep
        # rkeys written again while buffered: where their latest rows start, per table
        self._rewritten: dict[int, dict[str, int]] = {}
        # rkeys whose resource, version and index rows are not sent yet: their latest version
        self._unsent: dict[int, StoredVersion] = {}

    # -- reads inside the transaction see its own writes
    def read(self, res_type: str, res_id: str) -> StoredVersion:
        known = self._known.get((res_type, res_id))
        unsent = self._unsent.get(known.rkey) if known is not None else None
        if unsent is not None:
            # Written here and not sent yet: answered from memory, the rows left batched.
            if not unsent.deleted:
                return unsent
            self.flush()
        return self.store._read_on(self.conn, res_type, res_id)

    def vread(self, res_type: str, res_id: str, version: int) -> StoredVersion:
        self.flush()
        return self.store._vread_on(self.conn, res_type, res_id, version)

    def search_ids(self, query: Query, limit: int) -> list[str]:
        self.flush()
        page = self.store._search_on(self.conn, query, count=limit, cursor=None, total=False)
        return [v.res_id for v in page.versions]

    def current(self, res_type: str, res_id: str) -> Current | None:
        key = (res_type, res_id)
        known = self._known.get(key)
        if known is not None:
            return known
        if key in self._absent:
            return None
        row = self.store._select_current(self.conn, res_type, res_id)
        return None if row is None else Current(int(row[0]), int(row[1]), bool(row[2]))

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Look up (and lock) the current versions of many resources in few queries per type.

        Afterwards `current()` answers from memory: found ones are known, missing ones are
        known absent (on PostgreSQL after taking the same per-id locks `current()` takes, so a
        concurrent creator of the same id waits for us).
        """
        by_type: dict[str, list[str]] = {}
        for res_type, res_id in keys:
            if (res_type, res_id) not in self._known:
                by_type.setdefault(res_type, []).append(res_id)
        store = self.store
        if not store.absent_is_final and by_type:
            # The per-id locks of them all first, in one statement and a fixed order (so
            # concurrent lockers cannot deadlock): then one look per type is final, found
            # or not (a client-chosen id is usually new: a transaction of PUTs).
            store._lock_keys(
                self.conn,
                sorted({f"id:{t}/{i}" for t, ids in by_type.items() for i in ids}),
            )
        for res_type, ids in by_type.items():
            ids = sorted(set(ids))
            for start in range(0, len(ids), 500):
                missing = self._remember(res_type, ids[start : start + 500])
                self._absent.update((res_type, i) for i in missing)

    def _remember(self, res_type: str, ids: list[str]) -> list[str]:
        """Record the current versions of `ids` that exist; return the ones that do not."""
        found = set()
        for res_id, rkey, version, deleted in self.store._select_current_many(
            self.conn, res_type, ids
        ):
            self._known[(res_type, res_id)] = Current(int(rkey), int(version), bool(deleted))
            found.add(res_id)
        return [i for i in ids if i not in found]

    def lock(self, key: str, *more: str) -> None:
        if more:
            self.store._lock_keys(self.conn, [key, *more])
        else:
            self.store._lock_key(self.conn, key)

    # -- the tables of extensions (vnehr.identity), on the transaction's connection. They
    # do not see the resource and index rows still buffered (read() and search do): not
    # flushing here keeps those rows batched (measured: the index's many small statements
    # had the buffered rows sent a few at a time, 2.8 s of 12 for 5,000 Patients).
    def rows(self, statement: str, args: Sequence[Any] = ()) -> list[Any]:
        return list(self.conn.execute(self.store.sql(statement), args).fetchall())

    def run(self, statement: str, args: Sequence[Any] = ()) -> None:
        self.conn.execute(self.store.sql(statement), args)

    def run_many(self, statement: str, rows: list[Any]) -> None:
        if rows:
            self.store.executemany(self.conn, self.store.sql(statement), rows)

    def write_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Many rows into an extension table at once (COPY on PostgreSQL)."""
        if rows:
            self.store.write_rows(self.conn, table, columns, rows)

    def _new_key(self) -> int:
        if not self._keys:
            self._keys = self.store._allocate_keys(self.conn, 128)
        return self._keys.pop()

    def write(
        self,
        res_type: str,
        res_id: str,
        resource: dict[str, Any] | None,
        method: str,
        previous: Current | None,
    ) -> StoredVersion:
        if resource is None:
            return self.write_prepared(res_type, res_id, None, method, previous)
        resource["id"] = res_id  # index rows see the id the resource is stored under
        return self.write_prepared(
            res_type, res_id, prepare(resource, self.store.indexer), method, previous
        )

    def write_prepared(
        self,
        res_type: str,
        res_id: str,
        prepared: PreparedResource | None,
        method: str,
        previous: Current | None,
    ) -> StoredVersion:
        """Store the next version from a prepared resource (None: a deletion)."""
        store = self.store
        now = store.clock()
        version = previous.version + 1 if previous else 1
        content = (
            None if prepared is None else assemble(prepared, res_id, version, format_instant(now))
        )
        deleted = prepared is None
        flag = store.boolean(deleted)
        if previous is None:
            rkey = self._new_key()
            self._inserts[rkey] = [rkey, res_type, res_id, version, now, flag]
        else:
            rkey = previous.rkey
            pending = self._inserts.get(rkey)
            if pending is not None:
                pending[3:] = [version, now, flag]
            else:
                self._updates.append((version, now, flag, rkey))
                self._stale.append((rkey,))
        self._known[(res_type, res_id)] = Current(rkey, version, deleted)
        self._absent.discard((res_type, res_id))
        self.written += 1
        self._versions.append(
            (rkey, version, res_type, now, flag, method, store.content_param(content))
        )
        if rkey in self._unsent:
            # Written before in this transaction and its rows not yet sent: flush() drops
            # them (the rows before these offsets), or the index would hold both versions'.
            self._rewritten[rkey] = {table: len(rows) for table, rows in self._index.items()}
        if prepared is not None:
            self._add_index_rows(res_type, rkey, prepared.rows)
        written = StoredVersion(res_type, res_id, version, now, deleted, method, content)
        self._unsent[rkey] = written
        return written

    def _add_index_rows(
        self, res_type: str, rkey: int, rows: dict[str, list[tuple[Any, ...]]]
    ) -> None:
        store = self.store
        cache = store._sp_cache
        for table, values in rows.items():
            sps = [cache.get((res_type, row[0])) for row in values]
            if None in sps:
                sps = [
                    sp or store.sp_id_for_write(self.conn, res_type, row[0])
                    for sp, row in zip(sps, values, strict=True)
                ]
            self._index[table].extend(
                [(rkey, sp, *row[1:]) for sp, row in zip(sps, values, strict=True)]
            )

    def reindex(
        self, after: int, limit: int, res_types: Sequence[str] = ()
    ) -> tuple[dict[str, int], int | None]:
        """Recompute, with the store's indexer, the index rows of the first `limit` current
        resources (of `res_types`, or of every type) whose rkey is above `after`, keeping
        their versions; (resources done per type, the last rkey done or None if none was)."""
        store = self.store
        self.flush()
        where = "rkey > ? AND deleted = ?"
        args: list[Any] = [after, store.boolean(False)]
        if res_types:
            where += f" AND res_type IN ({', '.join('?' for _ in res_types)})"
            args += list(res_types)
        # Locked (PostgreSQL): a concurrent write of one of them waits, then replaces our rows.
        rkeys = [
            int(row[0])
            for row in self.conn.execute(
                store.sql(
                    f"SELECT rkey FROM resources WHERE {where} ORDER BY rkey LIMIT ?"
                    + store.lock_rows
                ),
                (*args, limit),
            ).fetchall()
        ]
        if not rkeys:
            return {}, None
        rows = []
        for start in range(0, len(rkeys), 500):
            chunk = rkeys[start : start + 500]
            rows += self.conn.execute(
                store.sql(
                    "SELECT r.rkey, r.res_type, v.content FROM resources r "
                    "JOIN resource_versions v ON v.rkey = r.rkey AND v.version = r.version "
                    f"WHERE r.rkey IN ({', '.join('?' for _ in chunk)})"
                ),
                chunk,
            ).fetchall()
        done: dict[str, int] = {}
        for rkey, res_type, content in rows:
            resource = fhir_json.loads(store.content_bytes(content) or b"{}")
            self._stale.append((int(rkey),))
            self._add_index_rows(res_type, int(rkey), table_rows(res_type, store.indexer(resource)))
            done[res_type] = done.get(res_type, 0) + 1
        self.flush()
        return done, rkeys[-1]

    def flush(self) -> None:
        store = self.store
        conn = self.conn
        if self._inserts:
            inserts, self._inserts = list(self._inserts.values()), {}
            store.write_rows(conn, "resources", _RESOURCE_COLUMNS, inserts)
        if self._updates:
            updates, self._updates = self._updates, []
            store.executemany(
                conn,
                store.sql(
                    "UPDATE resources SET version = ?, last_updated = ?, deleted = ? WHERE rkey = ?"
                ),
                updates,
            )
        if self._stale:
            # Deletes first: a resource written twice in one transaction keeps its latest rows.
            stale, self._stale = self._stale, []
            for table in INDEX_TABLES:
                store.executemany(conn, store.sql(f"DELETE FROM {table} WHERE rkey = ?"), stale)
        if self._versions:
            versions, self._versions = self._versions, []
            store.write_rows(conn, "resource_versions", _VERSION_COLUMNS, versions)
        self._unsent.clear()
        if self._rewritten:
            latest, self._rewritten = self._rewritten, {}
            for table, rows in self._index.items():
                self._index[table] = [
                    r for i, r in enumerate(rows) if r[0] not in latest or i >= latest[r[0]][table]
                ]
        for table, rows in self._index.items():
            if rows:
                self._index[table] = []
                store.write_rows(conn, table, ("rkey", "sp", *INDEX_TABLES[table]), rows)


class SqlStore:
    """Shared logic of the SQL backends; subclasses supply connections and locking."""

    dialect = "sql"
    placeholder = "?"

    def __init__(self, indexer: Indexer) -> None:
        self.indexer = indexer
        self.clock = Clock()
        self._sp_cache: dict[tuple[str, str], int] = {}
        self._sp_lock = threading.Lock()
        self._sql_cache: dict[str, str] = {}

    # -- dialect hooks
    def sql(self, statement: str) -> str:
        return statement

    def boolean(self, value: bool) -> Any:
        return value

    def content_param(self, content: bytes | None) -> Any:
        return content

    def content_bytes(self, value: Any) -> bytes | None:
        return value

    def executemany(self, conn: Any, statement: str, rows: list[Any]) -> None:
        raise NotImplementedError

    def write_rows(
        self, conn: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert many rows (PostgreSQL overrides this with COPY for large batches)."""
        marks = ", ".join("?" for _ in columns)
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        self.executemany(conn, self.sql(statement), list(rows))

    def _allocate_keys(self, conn: Any, n: int) -> list[int]:
        """`n` unused integer keys for new resources, highest first (popped from the end)."""
        raise NotImplementedError

    def _select_current(self, conn: Any, res_type: str, res_id: str) -> Any:
        raise NotImplementedError

    # True where one writer at a time holds the whole store (SQLite): a row found missing
    # stays missing until this transaction writes it.
    absent_is_final = False

    def _select_current_many(self, conn: Any, res_type: str, ids: list[str]) -> list[Any]:
        marks = ", ".join("?" for _ in ids)
        return list(
            conn.execute(
                self.sql(
                    "SELECT res_id, rkey, version, deleted FROM resources "
                    f"WHERE res_type = ? AND res_id IN ({marks}){self.lock_rows}"
                ),
                (res_type, *ids),
            ).fetchall()
        )

    lock_rows = ""

    def _lock_key(self, conn: Any, key: str) -> None:
        raise NotImplementedError

    def _lock_keys(self, conn: Any, keys: list[str]) -> None:
        for key in keys:
            self._lock_key(conn, key)

    def reader(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    # -- search-parameter ids
    def sp_id_for_write(self, conn: Any, res_type: str, code: str) -> int:
        key = (res_type, code)
        sp = self._sp_cache.get(key)
        if sp is None:
            sp = self._create_sp(conn, res_type, code)
            self._sp_cache[key] = sp
        return sp

    def _create_sp(self, conn: Any, res_type: str, code: str) -> int:
        raise NotImplementedError

    def sp_id_lookup(self, conn: Any) -> Callable[[str, str], int | None]:
        def lookup(res_type: str, code: str) -> int | None:
            key = (res_type, code)
            sp = self._sp_cache.get(key)
            if sp is None:
                row = conn.execute(
                    self.sql("SELECT sp FROM search_params WHERE res_type = ? AND code = ?"),
                    (res_type, code),
                ).fetchone()
                if row is None:
                    return None
                sp = int(row[0])
                self._sp_cache[key] = sp
            return sp

        return lookup

    # -- reads
    def _version(self, row: Any, res_type: str, res_id: str) -> StoredVersion:
        version, last_updated, deleted, method, content = row
        return StoredVersion(
            res_type,
            res_id,
            int(version),
            int(last_updated),
            bool(deleted),
            method,
            self.content_bytes(content),
        )

    def _read_on(self, conn: Any, res_type: str, res_id: str) -> StoredVersion:
        row = conn.execute(
            self.sql(
                "SELECT v.version, v.last_updated, v.deleted, v.method, v.content "
                "FROM resources r JOIN resource_versions v "
                "ON v.rkey = r.rkey AND v.version = r.version "
                "WHERE r.res_type = ? AND r.res_id = ?"
            ),
            (res_type, res_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"{res_type}/{res_id} is not known")
        found = self._version(row, res_type, res_id)
        if found.deleted:
            raise Gone(f"{res_type}/{res_id} was deleted (version {found.version})")
        return found

    def _vread_on(self, conn: Any, res_type: str, res_id: str, version: int) -> StoredVersion:
        row = conn.execute(
            self.sql(
                "SELECT v.version, v.last_updated, v.deleted, v.method, v.content "
                "FROM resources r JOIN resource_versions v ON v.rkey = r.rkey "
                "WHERE r.res_type = ? AND r.res_id = ? AND v.version = ?"
            ),
            (res_type, res_id, version),
        ).fetchone()
        if row is None:
            raise NotFound(f"{res_type}/{res_id} has no version {version}")
        found = self._version(row, res_type, res_id)
        if found.deleted:
            raise Gone(f"{res_type}/{res_id} version {version} is a deletion")
        return found

    def read(self, res_type: str, res_id: str) -> StoredVersion:
        with self.reader() as conn:
            return self._read_on(conn, res_type, res_id)

    def vread(self, res_type: str, res_id: str, version: int) -> StoredVersion:
        with self.reader() as conn:
            return self._vread_on(conn, res_type, res_id, version)

    # -- search (vnehr.search.compile turns the IR into SQL)
    def compiler(self, conn: Any) -> SqlCompiler:
        return SqlCompiler(
            self.sp_id_lookup(conn),
            false=self.boolean(False),
            indexed_by=self.indexed_by,
            unindexed=self.unindexed,
            count_rows=lambda sql, args: int(
                conn.execute(self.sql(f"SELECT COUNT(*) FROM ({sql}) n"), args).fetchone()[0]
            ),
            fence=self.fence,
            index_counts=self.index_counts,
        )

    def indexed_by(self, index: str) -> str:
        """A hint naming the index a correlated probe must use ("" where the planner knows)."""
        return ""

    fence = ""  # PostgreSQL: " OFFSET 0", which keeps a subquery from being flattened
    index_counts = True  # whether counting entries of a value index reads the index alone

    def unindexed(self, expr: str) -> str:
        """`expr`, written so that the planner does not use an index for it (SQLite: `+`)."""
        return expr

    def _search_on(
        self, conn: Any, query: Query, *, count: int, cursor: PageCursor | None, total: bool
    ) -> SearchPage:
        compiler = self.compiler(conn)
        base, args = self._base_where(compiler, query)
        total_found = None
        # `_count=0` is `_summary=count` (https://hl7.org/fhir/R4/search.html#count): no
        # entries, the number of matches.
        if total or count <= 0:
            counted = compiler.index_count(query)
            statement, count_args = counted or (
                f"SELECT COUNT(*) FROM resources r WHERE {base}",
                args,
            )
            row = conn.execute(self.sql(statement), count_args).fetchone()
            total_found = int(row[0])
        if count <= 0:
            return SearchPage([], [], None, False, total_found)
        types = query.res_types or self._all_types(conn)
        sorts = [compiler.sort_value(k, types, "r") for k in query.sort]
        descending = [k.descending for k in query.sort]
        where, where_args = base, list(args)
        backwards = cursor is not None and cursor.backwards
        if cursor is not None:
            cond, cond_args = after_condition(sorts, descending, cursor, "r.rkey")
            where += f" AND {cond}"
            where_args += cond_args
        order = order_by([e for e, _ in sorts], descending, "r.rkey", backwards)
        sort_select = "".join(f", {e} AS s{i}" for i, (e, _) in enumerate(sorts))
        sort_args = [a for _, expr_args in sorts for a in expr_args]
        order_args = [a for _, expr_args in sorts for a in (*expr_args, *expr_args)]
        # The page's keys first, the content of those rows only: sorting many matches
        # then moves keys and sort values, not every match's JSON.
        page_order = order_by(
            [f"p.s{i}" for i in range(len(sorts))], descending, "p.rkey", backwards
        )
        sort_columns = "".join(f", p.s{i}" for i in range(len(sorts)))
        rows = conn.execute(
            self.sql(
                "SELECT p.rkey, p.res_type, p.res_id, v.version, v.last_updated, v.deleted, "
                f"v.method, v.content{sort_columns} FROM (SELECT r.rkey, r.res_type, r.res_id, "
                f"r.version{sort_select} FROM resources r WHERE {where} ORDER BY {order} "
                "LIMIT ?) p JOIN resource_versions v ON v.rkey = p.rkey AND v.version = p.version "
                f"ORDER BY {page_order}"
            ),
            (*sort_args, *where_args, *order_args, count + 1),
        ).fetchall()
        more = len(rows) > count
        rows = rows[:count]
        if backwards:
            rows.reverse()
        versions = [self._version(row[3:8], row[1], row[2]) for row in rows]
        keys = [(*row[8:], int(row[0])) for row in rows]
        return SearchPage(versions, [int(row[0]) for row in rows], keys, more, total_found)

    def _base_where(self, compiler: SqlCompiler, query: Query) -> tuple[str, list[Any]]:
        where, where_args = (
            ("", []) if query.where is None else compiler.condition(query.where, "r")
        )
        parts = ["r.deleted = ?"]
        args: list[Any] = [self.boolean(False)]
        if len(query.res_types) == 1:
            parts.append(compiler.type_condition("r"))
            args.append(query.res_types[0])
        elif query.res_types:
            parts.append(f"r.res_type IN ({', '.join('?' for _ in query.res_types)})")
            args += list(query.res_types)
        if where:
            parts.append(where)
            args += where_args
        return " AND ".join(parts), args

    def rows(self, statement: str, args: Sequence[Any] = ()) -> list[Any]:
        """Rows of a read-only statement (`?` placeholders) on a reader connection."""
        with self.reader() as conn:
            return list(conn.execute(self.sql(statement), args).fetchall())

    def container_types(self, res_type: str) -> list[str]:
        """The resource types that have held a contained `res_type` (its `#Type._id` rows)."""
        with self.reader() as conn:
            rows = conn.execute(
                self.sql("SELECT DISTINCT res_type FROM search_params WHERE code = ?"),
                (f"#{res_type}._id",),
            ).fetchall()
        return sorted(row[0] for row in rows)

    def _all_types(self, conn: Any) -> list[str]:
        return [row[0] for row in conn.execute("SELECT DISTINCT res_type FROM search_params")]

    def search(
        self, query: Query, *, count: int, cursor: PageCursor | None = None, total: bool = False
    ) -> SearchPage:
        with self.reader() as conn:
            return self._search_on(conn, query, count=count, cursor=cursor, total=total)

    def search_ids(self, query: Query, limit: int) -> list[str]:
        page = self.search(query, count=limit)
        return [v.res_id for v in page.versions]

    def included(
        self,
        rkeys: Sequence[int],
        targets: Sequence[tuple[str, str]],
        includes: Sequence[tuple[str, str, str | None, bool]],
        limit: int,
    ) -> list[tuple[int, StoredVersion]]:
        """Resources that `_include`/`_revinclude` bring for a page.

        `includes` are (source type, param code, target type or None, reverse); forward
        ones follow references out of `rkeys`, reverse ones find resources of the source
        type whose parameter points at one of `targets` (type, id).
        """
        out: dict[int, StoredVersion] = {}
        select = (
            "SELECT DISTINCT t.rkey, t.res_type, t.res_id, v.version, v.last_updated, "
            "v.deleted, v.method, v.content FROM idx_reference x "
        )
        with self.reader() as conn:
            lookup = self.sp_id_lookup(conn)
            for source, code, target, reverse in includes:
                sp = lookup(source, code)
                if sp is None:
                    continue
                if not reverse:
                    if not rkeys:
                        continue
                    marks = ", ".join("?" for _ in rkeys)
                    sql = (
                        select + "JOIN resources t ON t.res_type = x.target_type "
                        "AND t.res_id = x.target_id JOIN resource_versions v "
                        "ON v.rkey = t.rkey AND v.version = t.version "
                        f"WHERE x.rkey IN ({marks}) AND x.sp = ? AND t.deleted = ?"
                    )
                    args: list[Any] = [*rkeys, sp, self.boolean(False)]
                    if target:
                        sql += " AND x.target_type = ?"
                        args.append(target)
                else:
                    wanted = [(t, i) for t, i in targets if target is None or t == target]
                    if not wanted:
                        continue
                    marks = ", ".join("?" for _ in wanted)
                    sql = (
                        select + "JOIN resources t ON t.rkey = x.rkey JOIN resource_versions v "
                        "ON v.rkey = t.rkey AND v.version = t.version "
                        f"WHERE x.target_id IN ({marks}) AND x.sp = ? AND t.res_type = ? "
                        "AND t.deleted = ?"
                    )
                    args = [*(i for _, i in wanted), sp, source, self.boolean(False)]
                    types = sorted({t for t, _ in wanted})
                    sql += f" AND x.target_type IN ({', '.join('?' for _ in types)})"
                    args += types
                sql += " ORDER BY t.rkey LIMIT ?"
                args.append(limit + 1)
                for row in conn.execute(self.sql(sql), args).fetchall():
                    out.setdefault(int(row[0]), self._version(row[3:8], row[1], row[2]))
                    if len(out) > limit:
                        break
        return list(out.items())

    def history(
        self,
        res_type: str | None,
        res_id: str | None,
        *,
        since: int | None,
        at: tuple[int, int] | None,
        count: int,
        cursor: str | None,
    ) -> HistoryPage:
        where: list[str] = []
        params: list[Any] = []
        with self.reader() as conn:
            if res_id is not None:
                assert res_type is not None
                row = conn.execute(
                    self.sql("SELECT rkey FROM resources WHERE res_type = ? AND res_id = ?"),
                    (res_type, res_id),
                ).fetchone()
                if row is None:
                    raise NotFound(f"{res_type}/{res_id} is not known")
                where.append("v.rkey = ?")
                params.append(row[0])
            elif res_type is not None:
                where.append("v.res_type = ?")
                params.append(res_type)
            if since is not None:
                where.append("v.last_updated >= ?")
                params.append(since)
            if at is not None:
                low, high = at
                where.append(
                    "v.last_updated <= ? AND NOT EXISTS (SELECT 1 FROM resource_versions n "
                    "WHERE n.rkey = v.rkey AND n.version = v.version + 1 AND n.last_updated < ?)"
                )
                params.extend((high, low))
            if cursor is not None:
                lu, rkey, version = decode_cursor(cursor)
                where.append(
                    "(v.last_updated < ? OR (v.last_updated = ? AND "
                    "(v.rkey < ? OR (v.rkey = ? AND v.version < ?))))"
                )
                params.extend((lu, lu, rkey, rkey, version))
            clause = " AND ".join(where) if where else "1 = 1"
            rows = conn.execute(
                self.sql(
                    "SELECT v.rkey, r.res_type, r.res_id, v.version, v.last_updated, v.deleted, "
                    "v.method, v.content FROM resource_versions v "
                    f"JOIN resources r ON r.rkey = v.rkey WHERE {clause} "
                    "ORDER BY v.last_updated DESC, v.rkey DESC, v.version DESC LIMIT ?"
                ),
                (*params, count + 1),
            ).fetchall()
        versions = [self._version(row[3:], row[1], row[2]) for row in rows[:count]]
        next_cursor = None
        if len(rows) > count:
            next_cursor = encode_cursor(versions[-1], int(rows[count - 1][0]))
        return HistoryPage(versions, next_cursor)

    def count(self, res_type: str | None = None) -> int:
        with self.reader() as conn:
            if res_type is None:
                row = conn.execute(
                    self.sql("SELECT COUNT(*) FROM resources WHERE deleted = ?"),
                    (self.boolean(False),),
                ).fetchone()
            else:
                row = conn.execute(
                    self.sql("SELECT COUNT(*) FROM resources WHERE res_type = ? AND deleted = ?"),
                    (res_type, self.boolean(False)),
                ).fetchone()
            return int(row[0])

    def transaction(self) -> AbstractContextManager[SqlTransaction]:
        raise NotImplementedError

    def reindex(
        self, res_types: Sequence[str] = (), *, batch: int = 1000
    ) -> Iterator[dict[str, int]]:
        """Recompute the index rows of every current resource (of `res_types`) with the
        indexer, in rkey order, one transaction of `batch` resources at a time; yields the
        resources done per type after each batch commits. New versions are not made."""
        after = 0
        while True:
            for attempt in range(3):
                try:
                    with self.transaction() as txn:
                        done, last = txn.reindex(after, batch, res_types)
                    break
                except Conflict:  # a deadlock with a concurrent writer: nothing was written
                    if attempt == 2:
                        raise
            if last is None:
                return
            after = last
            yield done

    def bulk_write(
        self, resources: Iterable[dict[str, Any]], *, batch: int = 1000
    ) -> Iterator[StoredVersion]:
        """Create or update each resource (by its id) in transactions of `batch` resources."""
        chunk: list[dict[str, Any]] = []
        for resource in resources:
            chunk.append(resource)
            if len(chunk) >= batch:
                yield from self._bulk_chunk(chunk)
                chunk = []
        if chunk:
            yield from self._bulk_chunk(chunk)

    def _bulk_chunk(self, chunk: list[dict[str, Any]]) -> list[StoredVersion]:
        out = []
        with self.transaction() as txn:
            for resource in chunk:
                res_type = resource["resourceType"]
                res_id = resource.get("id") or new_id()
                previous = txn.current(res_type, res_id)
                method = "PUT" if resource.get("id") else "POST"
                out.append(txn.write(res_type, res_id, resource, method, previous))
        return out
