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
    # SQLite's page cache of the writing connection, in MiB. 256 against 64 gave ingest of
    # 35,000 resources no measurable gain over HTTP (docs/benchmarks.md); a large store
    # with many writers may differ.
    sqlite_cache_mb: int = 64
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
    # Authentication (docs/auth.md). The server's private signing keys, a JWK Set file
    # (`vnehr auth keys rotate` makes and rotates it); required outside development mode.
    auth_keys: str = ""
    auth_token_lifetime: int = 600  # access tokens, seconds
    auth_refresh_lifetime: int = 30 * 86400  # refresh tokens (offline_access), seconds
    # Ways to sign in at /auth/authorize: password (accounts), vneid (the VNeID federation).
    auth_login: str = "password"
    auth_max_attempts: int = 5  # wrong passwords or codes before a lock-out
    auth_lockout_seconds: int = 900
    activation_code_lifetime: int = 7 * 86400  # citizens' one-time security codes
    vneid_issuer: str = ""
    vneid_client_id: str = ""
    vneid_client_secret: str = ""  # a secret: give it as VNEHR_VNEID_CLIENT_SECRET_FILE
    vneid_cccd_claim: str = "cccd"
    # Access control (vnehr.policy, docs/access.md).
    access_sharing: str = "opt-out"  # opt-out: shared unless the citizen denies; opt-in
    access_care_window_days: int = 365  # an encounter opens a patient's record this long
    access_break_glass_minutes: int = 60
    access_labels: str = ""  # a YAML file of labelling rules (default: the built-in rules)
    access_sensitive: str = "HIV,PSY,ETH,SDV,SEX,STD"  # labels hidden from other facilities
    access_guardian_age: int = 18  # a parent's access to a child's record ends at this age
    public_health_min_count: int = 5  # counts below this are not given
    # The audit trail (vnehr.audit, docs/audit.md). Off only for benchmarks.
    audit: bool = True
    # Read events are queued and written by a background thread at most this long after
    # their response (writes are audited in their own transaction).
    audit_flush_ms: int = 200

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
        if not 8 <= self.sqlite_cache_mb <= 65536:
            raise SettingsError("VNEHR_SQLITE_CACHE_MB must be between 8 and 65536")
        if self.max_body_bytes < 1024:
            raise SettingsError("VNEHR_MAX_BODY_BYTES must be at least 1024")
        if not 1 <= self.default_page_size <= self.max_page_size:
            raise SettingsError("VNEHR_DEFAULT_PAGE_SIZE must be between 1 and max_page_size")
        if not 60 <= self.auth_token_lifetime <= 3600:
            raise SettingsError("VNEHR_AUTH_TOKEN_LIFETIME must be between 60 and 3600 seconds")
        if self.access_sharing not in ("opt-out", "opt-in"):
            raise SettingsError("VNEHR_ACCESS_SHARING must be opt-out or opt-in")
        if self.access_care_window_days < 1 or self.access_break_glass_minutes < 1:
            raise SettingsError(
                "VNEHR_ACCESS_CARE_WINDOW_DAYS and VNEHR_ACCESS_BREAK_GLASS_MINUTES must be "
                "at least 1"
            )
        if not 1 <= self.audit_flush_ms <= 600_000:
            raise SettingsError("VNEHR_AUDIT_FLUSH_MS must be between 1 and 600000")
        unknown = set(self.login_methods) - {"password", "vneid"}
        if unknown:
            raise SettingsError(
                f"VNEHR_AUTH_LOGIN takes password and vneid, not {', '.join(sorted(unknown))}"
            )
        if "vneid" in self.login_methods and not (
            self.vneid_issuer and self.vneid_client_id and self.vneid_client_secret
        ):
            raise SettingsError(
                "VNEHR_AUTH_LOGIN includes vneid: set VNEHR_VNEID_ISSUER, "
                "VNEHR_VNEID_CLIENT_ID and VNEHR_VNEID_CLIENT_SECRET(_FILE)"
            )
        return self

    @property
    def login_methods(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.auth_login.split(",") if m.strip())

    @property
    def sensitive_labels(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.access_sensitive.split(",") if c.strip())

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
