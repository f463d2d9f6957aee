"""Settings from the environment: typed, validated, secrets from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnehr.settings import Settings, SettingsError


def test_defaults_are_sqlite_and_not_dev() -> None:
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///./data/vnehr.db"
    assert s.dev is False


def test_values_are_converted_and_checked() -> None:
    s = Settings.from_env({"VNEHR_DEV": "1", "VNEHR_PORT": "9000"})
    assert s.dev is True and s.port == 9000
    with pytest.raises(SettingsError, match="VNEHR_PORT"):
        Settings.from_env({"VNEHR_PORT": "eighty"})
    with pytest.raises(SettingsError, match="VNEHR_DEV"):
        Settings.from_env({"VNEHR_DEV": "maybe"})
    with pytest.raises(SettingsError, match="VNEHR_DATABASE_URL"):
        Settings.from_env({"VNEHR_DATABASE_URL": "mysql://x"})
    assert Settings.from_env({"VNEHR_SQLITE_CACHE_MB": "512"}).sqlite_cache_mb == 512
    with pytest.raises(SettingsError, match="VNEHR_SQLITE_CACHE_MB"):
        Settings.from_env({"VNEHR_SQLITE_CACHE_MB": "4"})


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "db"
    secret.write_text("postgresql://vnehr:s3cret@db/vnehr\n")
    s = Settings.from_env({"VNEHR_DATABASE_URL_FILE": str(secret)})
    assert s.database_url == "postgresql://vnehr:s3cret@db/vnehr"


def test_the_error_message_never_shows_a_password() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"VNEHR_DATABASE_URL": "oracle://admin:hunter2@db"})
    assert "hunter2" not in str(info.value)
