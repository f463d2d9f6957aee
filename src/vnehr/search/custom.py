"""Custom search parameters: the SearchParameter resources of a store are parameters of its server.

https://hl7.org/fhir/R4/searchparameter.html. A SearchParameter with status `active` is a
search parameter of the server; `draft`, `retired` and `unknown` ones are stored as any
resource and not used (updating one to `active` puts it in use, to `retired` takes it out).

- A write of an active SearchParameter (create, update, patch, in a transaction or batch
  too) is checked first: one that cannot be used (no code, an unknown type or base, an
  expression that is not FHIRPath or selects nothing on its base, a code or url that an
  R4 parameter or another SearchParameter already has) fails the write with a 400 naming the
  problem, and nothing is stored.
- Once the write commits, the parameter joins the server's registry (a delete, or a status
  other than active, removes it): resources written afterwards are indexed with it and
  searches can use it. Resources stored before it (and those written in the same
  transaction) have no rows for it until `vnehr reindex`.
- At start the server loads the stored SearchParameters, so custom parameters survive a
  restart. Other processes on the same database (`serve --workers N`, `vnehr load`) see a
  change within about a second: every process polls the SearchParameter history, at most
  once a second, when it starts a write transaction or a search.

The registry is the server's own (`create_server` builds a fresh one), so servers in one
process do not share custom parameters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from vnehr.errors import InvalidResource
from vnehr.search.compile.sql import Cursor
from vnehr.search.extract.composite import compile_composite
from vnehr.search.extract.extractor import CONVERTERS
from vnehr.search.extract.paths import PathCompiler, PathError
from vnehr.search.ir import Query
from vnehr.search.registry import ParamType, SearchParam, SearchParamRegistry, r4_registry
from vnehr.storage.base import (
    Current,
    HistoryPage,
    SearchPage,
    Store,
    StoredVersion,
    WriteTransaction,
)

if TYPE_CHECKING:
    from vnehr.storage.prepared import PreparedResource

log = logging.getLogger(__name__)

SEARCH_PARAMETER = "SearchParameter"
IN_USE = frozenset({"active"})  # SearchParameter.status values that put a parameter in use
POLL_SECONDS = 1.0  # how often a process looks for changes made by other processes
# How far back each poll looks again: a transaction that commits later than its timestamp
# (a long transaction, another host's clock) is still seen. Versions seen are skipped.
OVERLAP_MICROS = 300 * 1_000_000
_ABSTRACT = ("Resource", "DomainResource")


def in_use(resource: Mapping[str, Any]) -> bool:
    """Whether this SearchParameter is meant to be a search parameter of the server."""
    return resource.get("status") in IN_USE


@cache
def _r4() -> SearchParamRegistry:
    """The R4 parameters alone (never changed): which urls are built in."""
    return r4_registry()


def _url_in_use(stored: StoredVersion) -> str | None:
    """The url this SearchParameter version puts in use, if it is active."""
    if stored.deleted:
        return None
    resource = stored.resource()
    url = resource.get("url")
    return url if in_use(resource) and isinstance(url, str) else None


class CustomParameters:
    """Keeps a registry in step with the SearchParameter resources of a store."""

    def __init__(self, registry: SearchParamRegistry, store: Store) -> None:
        self.registry = registry
        self.store = store  # the store itself, not the TrackedStore around it
        self._compiler = PathCompiler(registry.choice_elements, registry.resource_types)
        self._lock = threading.RLock()  # the state below
        self._polling = threading.Lock()  # one poll at a time
        self._applied: dict[str, int] = {}  # SearchParameter id -> the last version applied
        self._urls: dict[str, str] = {}  # SearchParameter id -> the url it registered
        self._watermark: int | None = None  # the latest last_updated seen by a poll
        self._polled = 0.0  # time.monotonic() of the last poll

    # -- what is in use
    def urls(self) -> dict[str, str]:
        """The custom parameters in use: SearchParameter id -> url."""
        with self._lock:
            return dict(self._urls)

    def url_of(self, res_id: str) -> str | None:
        with self._lock:
            return self._urls.get(res_id)

    # -- checks
    def check(self, resource: Mapping[str, Any], res_id: str, leaving: Iterable[str] = ()) -> None:
        """Raise InvalidResource if this SearchParameter is active and cannot be used.

        `leaving`: urls the same transaction takes out of use (they are not conflicts).
        """
        if in_use(resource):
            self._param(resource, res_id, frozenset(leaving))

    def _param(self, resource: Mapping[str, Any], res_id: str, leaving: frozenset[str]) -> None:
        registry = self.registry
        scratch = SearchParamRegistry(
            resource_types=registry.resource_types, choice_elements=registry.choice_elements
        )
        param = scratch.add(resource)  # code, type, base, url, expression syntax
        if param.type not in CONVERTERS and param.type is not ParamType.COMPOSITE:
            raise InvalidResource(
                f"SearchParameter.type {param.type.value} is not supported for custom "
                "search parameters",
                ("SearchParameter.type",),
            )
        if _r4().by_url(param.url) is not None:
            raise InvalidResource(
                f"SearchParameter.url {param.url} is an R4 search parameter, which the server "
                "already has; give a custom parameter its own url",
                ("SearchParameter.url",),
            )
        with self._lock:
            mine = self._urls.get(res_id)
            for other_id, url in self._urls.items():
                if url == param.url and other_id != res_id and url not in leaving:
                    raise InvalidResource(
                        f"SearchParameter/{other_id} already defines {param.url}",
                        ("SearchParameter.url",),
                    )
            for base in param.base:
                self._check_base(scratch, param, base, mine, leaving)

    def _check_base(
        self,
        scratch: SearchParamRegistry,
        param: SearchParam,
        base: str,
        mine: str | None,
        leaving: frozenset[str],
    ) -> None:
        registry = self.registry
        if base not in registry.resource_types and base not in _ABSTRACT:
            raise InvalidResource(
                f"SearchParameter.base {base!r} is not a resource type", ("SearchParameter.base",)
            )
        existing = registry.get(base, param.code)
        if (
            existing is not None
            and existing.url != param.url
            and existing.url != mine
            and existing.url not in leaving
        ):
            raise InvalidResource(
                f"{base} already has a search parameter {param.code!r} ({existing.url})",
                ("SearchParameter.code",),
            )
        narrowed = scratch.get(base, param.code)
        expression = narrowed.expression if narrowed is not None else None
        if expression is None:
            raise InvalidResource(
                f"SearchParameter.expression has nothing that applies to {base}",
                ("SearchParameter.expression",),
            )
        if param.type is ParamType.COMPOSITE:
            self._check_composite(replace(param, expression=expression), base)
            return
        try:
            path = self._compiler.compile(expression, base)
        except PathError as exc:
            raise InvalidResource(
                f"SearchParameter.expression cannot be used on {base}: {exc}",
                ("SearchParameter.expression",),
            ) from None
        if not path.branches and not path.whole:
            raise InvalidResource(
                f"SearchParameter.expression {expression!r} selects nothing on {base}",
                ("SearchParameter.expression",),
            )

    def _check_composite(self, param: SearchParam, base: str) -> None:
        """A composite is usable when its components are known parameters and every
        expression compiles to Python (extract/composite.py)."""
        try:
            built = compile_composite(param, base, self.registry, self._compiler.compile)
        except PathError as exc:
            raise InvalidResource(
                f"SearchParameter cannot be used on {base}: {exc}", ("SearchParameter.component",)
            ) from None
        if not built.native:
            raise InvalidResource(
                f"SearchParameter components must be simple paths to be used on {base}",
                ("SearchParameter.component",),
            )

    # -- keeping the registry in step
    def apply(self, versions: Iterable[StoredVersion]) -> None:
        """Put committed SearchParameter versions into effect; versions seen before are skipped.

        Parameters leaving (deleted, no longer active, changed) go first, so that another
        one may take over their code or url in the same round.
        """
        with self._lock:
            latest: dict[str, StoredVersion] = {}
            for stored in versions:
                if stored.res_type != SEARCH_PARAMETER:
                    continue
                if self._applied.get(stored.res_id, 0) >= stored.version:
                    continue
                known = latest.get(stored.res_id)
                if known is None or known.version < stored.version:
                    latest[stored.res_id] = stored
            kept: dict[str, str] = {}  # id -> its url, registered before and again now
            for stored in latest.values():
                self._applied[stored.res_id] = stored.version
                old = self._urls.pop(stored.res_id, None)
                if old is not None and old == _url_in_use(stored):
                    kept[stored.res_id] = old  # replaced in place by `add` below
                elif old is not None and old not in self._urls.values():
                    self.registry.remove(old)
            for stored in sorted(latest.values(), key=lambda v: v.last_updated):
                if not stored.deleted:
                    self._put(stored, kept.get(stored.res_id))

    def _put(self, stored: StoredVersion, registered: str | None) -> None:
        resource = stored.resource()
        if not in_use(resource):
            return
        try:
            self._param(resource, stored.res_id, frozenset())
            param = self.registry.add(resource)
        except InvalidResource as exc:
            log.warning(
                "SearchParameter/%s (version %s) is not used: %s",
                stored.res_id,
                stored.version,
                exc.diagnostics,
            )
            if registered is not None:
                self.registry.remove(registered)
            return
        self._urls[stored.res_id] = param.url

    def refresh(self) -> None:
        """Apply the SearchParameter versions written since the last look (all, the first time)."""
        with self._lock:
            since = None if self._watermark is None else max(0, self._watermark - OVERLAP_MICROS)
        # Read without the lock: a write checking its SearchParameter must not wait on it.
        found = list(self._history(since))
        with self._lock:
            self.apply(found)
            self._watermark = max([self._watermark or 0, *(v.last_updated for v in found)])
            self._polled = time.monotonic()

    def poll(self) -> None:
        """`refresh`, at most once every POLL_SECONDS; never waits for another thread's poll."""
        if time.monotonic() - self._polled < POLL_SECONDS:
            return
        if not self._polling.acquire(blocking=False):
            return
        try:
            if time.monotonic() - self._polled >= POLL_SECONDS:
                self.refresh()
        finally:
            self._polling.release()

    def _history(self, since: int | None) -> Iterator[StoredVersion]:
        cursor = None
        while True:
            page = self.store.history(
                SEARCH_PARAMETER, None, since=since, at=None, count=500, cursor=cursor
            )
            yield from page.versions
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class TrackedTransaction:
    """A write transaction that checks the SearchParameters it writes and remembers them."""

    def __init__(
        self, txn: WriteTransaction, params: CustomParameters, watched: frozenset[str] = frozenset()
    ) -> None:
        self._txn = txn
        self._params = params
        self.written: list[StoredVersion] = []  # SearchParameter versions, in write order
        self._leaving: set[str] = set()
        self._watched = watched
        # The versions of `watched` types written, for the commit hooks.
        self.changed: list[StoredVersion] = []

    def __getattr__(self, name: str) -> Any:  # flush() and the like of the backend's txn
        return getattr(self._txn, name)

    def _before(self, res_id: str, resource: Mapping[str, Any] | None) -> None:
        if resource is not None:
            self._params.check(resource, res_id, self._leaving)
        old = self._params.url_of(res_id)
        if old is not None and (
            resource is None or not in_use(resource) or resource.get("url") != old
        ):
            self._leaving.add(old)

    def write(
        self,
        res_type: str,
        res_id: str,
        resource: dict[str, Any] | None,
        method: str,
        previous: Current | None,
    ) -> StoredVersion:
        if res_type != SEARCH_PARAMETER:
            stored = self._txn.write(res_type, res_id, resource, method, previous)
            if res_type in self._watched:
                self.changed.append(stored)
            return stored
        self._before(res_id, resource)
        stored = self._txn.write(res_type, res_id, resource, method, previous)
        self.written.append(stored)
        return stored

    def write_prepared(
        self,
        res_type: str,
        res_id: str,
        prepared: PreparedResource | None,
        method: str,
        previous: Current | None,
    ) -> StoredVersion:
        # Bulk loading: not checked here; one that cannot be used is logged when applied.
        stored = self._txn.write_prepared(res_type, res_id, prepared, method, previous)
        if res_type in self._watched:
            self.changed.append(stored)
        if res_type == SEARCH_PARAMETER:
            self.written.append(stored)
        return stored

    def current(self, res_type: str, res_id: str) -> Current | None:
        return self._txn.current(res_type, res_id)

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        self._txn.prefetch(keys)

    def lock(self, key: str, *more: str) -> None:
        self._txn.lock(key, *more)

    def rows(self, statement: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._txn.rows(statement, args)

    def run(self, statement: str, args: Sequence[Any] = ()) -> None:
        self._txn.run(statement, args)

    def run_many(self, statement: str, rows: list[Any]) -> None:
        self._txn.run_many(statement, rows)

    def write_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self._txn.write_rows(table, columns, rows)

    def read(self, res_type: str, res_id: str) -> StoredVersion:
        return self._txn.read(res_type, res_id)

    def vread(self, res_type: str, res_id: str, version: int) -> StoredVersion:
        return self._txn.vread(res_type, res_id, version)

    def search_ids(self, query: Query, limit: int) -> list[str]:
        return self._txn.search_ids(query, limit)


class CommitHook(Protocol):
    """Runs in a write transaction, before it commits, when it wrote resources of `types`
    (vnehr.identity: the master patient index follows Patient writes)."""

    types: frozenset[str]

    def before_commit(self, txn: TrackedTransaction, changed: list[StoredVersion]) -> None: ...


class TrackedStore:
    """A store whose SearchParameter writes keep the server's registry in step (see above)."""

    def __init__(
        self, store: Store, params: CustomParameters, hooks: Sequence[CommitHook] = ()
    ) -> None:
        self.inner = store
        self.params = params
        self.dialect = store.dialect
        self.indexer = store.indexer
        self.hooks = list(hooks)

    def __getattr__(self, name: str) -> Any:  # database_size() and the like of the backend
        return getattr(self.inner, name)

    @contextmanager
    def _transaction(self) -> Iterator[TrackedTransaction]:
        self.params.poll()
        watched = frozenset(t for hook in self.hooks for t in hook.types)
        with self.inner.transaction() as txn:
            tracked = TrackedTransaction(txn, self.params, watched)
            yield tracked
            # Before the commit, in the same transaction: what a hook writes commits or
            # rolls back with the writes that caused it.
            for hook in self.hooks:
                changed = [c for c in tracked.changed if c.res_type in hook.types]
                if changed:
                    hook.before_commit(tracked, changed)
        if tracked.written:  # committed
            self.params.apply(tracked.written)

    def transaction(self) -> AbstractContextManager[WriteTransaction]:
        return self._transaction()

    def search(
        self, query: Query, *, count: int, cursor: Cursor | None = None, total: bool = False
    ) -> SearchPage:
        self.params.poll()
        return self.inner.search(query, count=count, cursor=cursor, total=total)

    def search_ids(self, query: Query, limit: int) -> list[str]:
        return self.inner.search_ids(query, limit)

    def migrate(self) -> list[str]:
        return self.inner.migrate()

    def read(self, res_type: str, res_id: str) -> StoredVersion:
        return self.inner.read(res_type, res_id)

    def vread(self, res_type: str, res_id: str, version: int) -> StoredVersion:
        return self.inner.vread(res_type, res_id, version)

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
        return self.inner.history(res_type, res_id, since=since, at=at, count=count, cursor=cursor)

    def included(
        self,
        rkeys: Sequence[int],
        targets: Sequence[tuple[str, str]],
        includes: Sequence[tuple[str, str, str | None, bool]],
        limit: int,
    ) -> list[tuple[int, StoredVersion]]:
        return self.inner.included(rkeys, targets, includes, limit)

    def bulk_write(
        self, resources: Iterable[dict[str, Any]], *, batch: int = 1000
    ) -> Iterator[StoredVersion]:
        # Not checked (a bulk load); SearchParameters are applied once their batch commits.
        for stored in self.inner.bulk_write(resources, batch=batch):
            if stored.res_type == SEARCH_PARAMETER:
                self.params.apply([stored])
            yield stored

    def reindex(
        self, res_types: Sequence[str] = (), *, batch: int = 1000
    ) -> Iterator[dict[str, int]]:
        self.params.refresh()
        return self.inner.reindex(res_types, batch=batch)

    def container_types(self, res_type: str) -> list[str]:
        return self.inner.container_types(res_type)

    def rows(self, statement: str, args: Sequence[Any] = ()) -> list[Any]:
        return self.inner.rows(statement, args)

    def count(self, res_type: str | None = None) -> int:
        return self.inner.count(res_type)

    def refresh_statistics(self, tables: Sequence[str]) -> None:
        self.inner.refresh_statistics(tables)

    def close(self) -> None:
        self.inner.close()
