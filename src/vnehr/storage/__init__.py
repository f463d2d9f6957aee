"""Storage: one protocol (base.Store), SQLite and PostgreSQL backends, one compliance suite."""

from __future__ import annotations

from vnehr.settings import Settings
from vnehr.storage.base import Indexer, Store


def open_store(settings: Settings, indexer: Indexer, *, migrate: bool = True) -> Store:
    """The backend the database URL names, with its schema brought up to date."""
    url = settings.database_url
    store: Store
    if url.startswith("sqlite:"):
        from vnehr.storage.sqlite import SqliteStore, sqlite_path

        store = SqliteStore(
            sqlite_path(url),
            indexer,
            synchronous=settings.sqlite_synchronous,
            cache_mb=settings.sqlite_cache_mb,
        )
    else:
        from vnehr.storage.postgres import PostgresStore

        store = PostgresStore(url, indexer, pool_size=settings.pool_size)
    if migrate:
        store.migrate()
    return store
