"""The leak suite's world, built once per test module and backend (SQLite file, PostgreSQL in
a database of its own, so that other modules' truncations cannot touch it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from tests.conftest import BACKENDS, _pg_admin_url
from tests.policy.world import World, build
from tests.smart import open_client, secure_settings
from vnehr.settings import Settings


@pytest.fixture(scope="module", params=BACKENDS)
def world_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("policy")
    if request.param == "sqlite":
        yield f"sqlite:///{tmp / 'vnehr.db'}", tmp
        return
    admin = _pg_admin_url()
    name = f"vnehr_policy_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}", tmp
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def world_settings(world_database: tuple[str, Path]) -> Settings:
    url, tmp = world_database
    return secure_settings(url, tmp)


@pytest.fixture(scope="module")
def api(world_settings: Settings) -> Iterator[TestClient]:
    yield from open_client(world_settings)


@pytest.fixture(scope="module")
def world(api: TestClient) -> World:
    return build(api)
