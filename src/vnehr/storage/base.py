"""The storage protocol every backend implements (SQLite, PostgreSQL), checked by one suite."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from vnehr.fhir import json as fhir_json
from vnehr.search.compile.sql import Cursor
from vnehr.search.index_rows import IndexRows
from vnehr.search.ir import Query

if TYPE_CHECKING:
    from vnehr.storage.prepared import PreparedResource


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One version of a resource as stored: its JSON (meta included) or a deletion tombstone."""

    res_type: str
    res_id: str
    version: int
    last_updated: int  # epoch microseconds, UTC
    deleted: bool
    method: str  # POST | PUT | PATCH | DELETE: the interaction that made this version
    content: bytes | None  # JSON with meta.versionId/lastUpdated; None for a deletion

    def resource(self) -> dict[str, Any]:
        if self.content is None:
            raise ValueError(f"{self.res_type}/{self.res_id} version {self.version} is deleted")
        value = fhir_json.loads(self.content)
        assert isinstance(value, dict)
        return value


@dataclass(frozen=True, slots=True)
class Current:
    """The current state of a logical resource, as a write transaction sees it (locked)."""

    rkey: int
    version: int
    deleted: bool


@dataclass(frozen=True, slots=True)
class HistoryPage:
    versions: list[StoredVersion]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of search matches, in order, with what paging and `_include` need."""

    versions: list[StoredVersion]
    rkeys: list[int]
    keys: list[tuple[Any, ...]] | None  # per match: its sort values, then its rkey
    more: bool  # further matches follow in the direction asked
    total: int | None  # every match, when counted


# Turns a resource into its search index rows; supplied by the search package.
Indexer = Callable[[dict[str, Any]], IndexRows]


class WriteTransaction(Protocol):
    """Writes that commit together or not at all."""

    def current(self, res_type: str, res_id: str) -> Current | None:
        """The current version, locked against concurrent writers until commit."""
        ...

    def write(
        self,
        res_type: str,
        res_id: str,
        resource: dict[str, Any] | None,
        method: str,
        previous: Current | None,
    ) -> StoredVersion:
        """Store the next version (resource None = delete); sets meta; rewrites index rows."""
        ...

    def write_prepared(
        self,
        res_type: str,
        res_id: str,
        prepared: PreparedResource | None,
        method: str,
        previous: Current | None,
    ) -> StoredVersion:
        """`write` for a resource already serialised and indexed (storage/prepared.py)."""
        ...

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Look up (and lock) many current versions at once, ahead of writing them."""
        ...

    def lock(self, key: str, *more: str) -> None:
        """Serialise with every other transaction taking the same key (conditional create);
        several keys are taken in the order given, in one round trip."""
        ...

    def read(self, res_type: str, res_id: str) -> StoredVersion: ...

    # The tables of extensions (vnehr.identity), in this transaction; `?` placeholders.
    def rows(self, statement: str, args: Sequence[Any] = ()) -> list[Any]: ...

    def run(self, statement: str, args: Sequence[Any] = ()) -> None: ...

    def run_many(self, statement: str, rows: list[Any]) -> None: ...

    def write_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None: ...

    def vread(self, res_type: str, res_id: str, version: int) -> StoredVersion: ...

    def search_ids(self, query: Query, limit: int) -> list[str]:
        """Ids of current, non-deleted resources matching a search (its first `limit`)."""
        ...


class Store(Protocol):
    """A FHIR resource store: versioned JSON plus search index tables."""

    dialect: str
    indexer: Indexer  # the index rows of a resource, as the store writes them

    def migrate(self) -> list[str]:
        """Bring the schema to the current version; returns the migrations applied."""
        ...

    def read(self, res_type: str, res_id: str) -> StoredVersion:
        """The current version (raises NotFound, or Gone if the latest version is a deletion)."""
        ...

    def vread(self, res_type: str, res_id: str, version: int) -> StoredVersion: ...

    def history(
        self,
        res_type: str | None,
        res_id: str | None,
        *,
        since: int | None,
        at: tuple[int, int] | None,
        count: int,
        cursor: str | None,
    ) -> HistoryPage: ...

    def transaction(self) -> AbstractContextManager[WriteTransaction]: ...

    def search_ids(self, query: Query, limit: int) -> list[str]: ...

    def search(
        self, query: Query, *, count: int, cursor: Cursor | None = None, total: bool = False
    ) -> SearchPage:
        """A page of `count` matches in the query's order, after or before `cursor`."""
        ...

    def included(
        self,
        rkeys: Sequence[int],
        targets: Sequence[tuple[str, str]],
        includes: Sequence[tuple[str, str, str | None, bool]],
        limit: int,
    ) -> list[tuple[int, StoredVersion]]:
        """Resources that _include / _revinclude add to a page (at most `limit` + 1)."""
        ...

    def container_types(self, res_type: str) -> list[str]:
        """The resource types that have held a contained resource of `res_type`."""
        ...

    def bulk_write(
        self, resources: Iterable[dict[str, Any]], *, batch: int = 1000
    ) -> Iterator[StoredVersion]:
        """Create-or-update many resources in large transactions (bulk load)."""
        ...

    def reindex(
        self, res_types: Sequence[str] = (), *, batch: int = 1000
    ) -> Iterator[dict[str, int]]:
        """Recompute the index rows of every current resource (of `res_types`, or of every
        type) with the store's indexer, `batch` resources per transaction, keeping their
        versions; yields the resources done per type after each batch commits."""
        ...

    def count(self, res_type: str | None = None) -> int: ...

    def rows(self, statement: str, args: Sequence[Any] = ()) -> list[Any]:
        """Rows of a read-only statement on the tables of extensions (vnehr.identity)."""
        ...

    def refresh_statistics(self, tables: Sequence[str]) -> None:
        """Gather the planner's statistics of these tables now (after a bulk load)."""
        ...

    def close(self) -> None: ...
