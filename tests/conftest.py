"""Shared fixtures: a store on each real backend (SQLite file, PostgreSQL), servers and clients.

PostgreSQL comes from VNEHR_TEST_POSTGRES_URL. Without it the PostgreSQL variants are
skipped, except under CI=true, where they must run (and fail if the database is unreachable).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from vnehr.app import Server, create_app, create_server
from vnehr.settings import Settings
from vnehr.storage.schema import (
    ACCESS_TABLES,
    AUDIT_TABLES,
    AUTH_TABLES,
    INDEX_TABLES,
    MPI_TABLES,
    TERMINOLOGY_TABLES,
)

PG_URL = os.environ.get("VNEHR_TEST_POSTGRES_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgresql"]


def _pg_admin_url() -> str:
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI=true but VNEHR_TEST_POSTGRES_URL is not set: PostgreSQL tests must run")
        pytest.skip("VNEHR_TEST_POSTGRES_URL is not set")
    return PG_URL


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    admin = _pg_admin_url()
    name = f"vnehr_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {admin} is unreachable: {exc}")
    base, _, _ = admin.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('resources')").fetchone()
        if exists and exists[0]:
            tables = ", ".join(
                (
                    "resources",
                    "resource_versions",
                    *INDEX_TABLES,
                    *MPI_TABLES,
                    *TERMINOLOGY_TABLES,
                    *AUTH_TABLES,
                    *ACCESS_TABLES,
                    *AUDIT_TABLES,
                )
            )
            conn.execute(f"TRUNCATE {tables} RESTART IDENTITY")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vnehr.db'}"
    url: str = request.getfixturevalue("pg_database")
    _truncate(url)
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, dev=True)


@pytest.fixture
def server(settings: Settings) -> Iterator[Server]:
    srv = create_server(settings)
    yield srv
    srv.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """An HTTP client talking to the ASGI app in-process."""
    with TestClient(create_app(settings), base_url="http://testserver") as c:
        yield c


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """A production-mode app (tokens required) on a clean database of each backend."""
    from tests.smart import open_client, secure_settings

    yield from open_client(secure_settings(database_url, tmp_path))


@pytest.fixture
def people(api: TestClient) -> dict[str, str]:
    """Lan (a citizen with an account), another patient, an Observation each, BS Đức
    (tests/smart.py seed_people)."""
    from tests.smart import seed_people

    return seed_people(api)
