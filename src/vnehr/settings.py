"""Typed settings, built once at start-up from `VNEHR_*` environment variables and passed down.

Every setting is documented in docs/settings.md (a test checks that none is missing).
Secrets may be given as `VNEHR_<NAME>_FILE` pointing to a file holding the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_DATABASE_URL = "sqlite:///./data/vnehr.db"


class SettingsError(ValueError):
    """A setting has a value vnehr cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What a vnehr server needs to know; nothing else is read from the environment."""

    database_url: str = DEFAULT_DATABASE_URL
    dev: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = ""  # public base of the FHIR endpoint; derived from the request when empty
    max_body_bytes: int = 32 * 1024 * 1024
    validate: bool = True
    sqlite_synchronous: str = "NORMAL"
    pool_size: int = 8
    default_page_size: int = 50
    max_page_size: int = 1000
    # The master patient index (docs/identity.md): every Patient write links the Patient to
    # a golden Person. Off (VNEHR_MPI=0) for a server that keeps one facility's records only.
    mpi: bool = True
    # The canonical URL of the national lab catalogue's CodeSystem (docs/terminology.md):
    # local codes are mapped to it, and its codes count as national ones.
    lab_catalogue_url: str = "https://fhir.moh.gov.vn/CodeSystem/lab-catalogue"
    # Local codes of Observations, ServiceRequests, DiagnosticReports and Conditions get the
    # national codings their facility's ConceptMap gives (docs/terminology.md).
    map_local_codes: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `VNEHR_*` variables (and `VNEHR_*_FILE`), then explicit overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = "VNEHR_" + f.name.upper()
            raw = env.get(key)
            if raw is None and key + "_FILE" in env:
                raw = Path(env[key + "_FILE"]).read_text().strip()
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(key, raw, type(getattr(cls(), f.name)))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).checked()

    def checked(self) -> Settings:
        if not (
            self.database_url.startswith("sqlite:")
            or self.database_url.startswith(("postgresql:", "postgres:"))
        ):
            raise SettingsError(
                f"VNEHR_DATABASE_URL must start with sqlite:/// or postgresql://, "
                f"got {self.database_url.split('@')[-1]!r}"
            )
        if self.sqlite_synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise SettingsError("VNEHR_SQLITE_SYNCHRONOUS must be OFF, NORMAL, FULL or EXTRA")
        if self.max_body_bytes < 1024:
            raise SettingsError("VNEHR_MAX_BODY_BYTES must be at least 1024")
        if not 1 <= self.default_page_size <= self.max_page_size:
            raise SettingsError("VNEHR_DEFAULT_PAGE_SIZE must be between 1 and max_page_size")
        return self

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes).checked()


def _convert(key: str, raw: str, kind: type) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{key} must be true or false, got {raw!r}")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{key} must be an integer, got {raw!r}") from None
    return raw
