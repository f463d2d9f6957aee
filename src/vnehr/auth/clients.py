"""Registered OAuth clients: hospital systems (SMART Backend Services) and apps.

A client belongs to a facility (an Organization in the facility registry). Backend services
authenticate with `private_key_jwt` (their JWK Set registered, or a jwks_uri); apps are
public (`none`: PKCE alone) or confidential (`client_secret_basic`/`client_secret_post`,
or `private_key_jwt`). `scopes` is the most a client may be granted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc import jwk

from vnehr.auth.scopes import ScopeError, Scopes
from vnehr.storage.base import Store

AUTH_METHODS = ("private_key_jwt", "client_secret_basic", "client_secret_post", "none")
KINDS = ("backend", "app")
ASSERTION_ALGORITHMS = ("RS384", "ES384")


class ClientError(ValueError):
    """A client registration that cannot be accepted; the message says which field."""


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str
    facility: str | None
    kind: str
    auth_method: str
    secret_hash: str | None
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    redirect_uris: tuple[str, ...]
    scopes: Scopes
    disabled: bool = False

    @property
    def public(self) -> bool:
        return self.auth_method == "none"

    def check_secret(self, secret: str) -> bool:
        if self.secret_hash is None:
            return False
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))

    def description(self) -> dict[str, Any]:
        """The registration as the admin API and CLI show it (no secret)."""
        return {
            "client_id": self.client_id,
            "client_name": self.name,
            "facility": self.facility,
            "kind": self.kind,
            "token_endpoint_auth_method": self.auth_method,
            "jwks": self.jwks,
            "jwks_uri": self.jwks_uri,
            "redirect_uris": list(self.redirect_uris),
            "scope": self.scopes.text(),
            "disabled": self.disabled,
        }


def hash_secret(secret: str) -> str:
    # Client secrets are 256-bit random strings: a fast hash is enough (no dictionary to
    # guess from); passwords, which people choose, use argon2 (accounts.py).
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_jwks(jwks: Any) -> dict[str, Any]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ClientError("jwks must be a JWK Set with at least one key")
    for item in jwks["keys"]:
        if not isinstance(item, dict) or item.get("kty") not in ("RSA", "EC"):
            raise ClientError("jwks keys must be RSA or EC public keys")
        try:
            key = jwk.import_key(item)
        except Exception as exc:  # joserfc raises several kinds for a bad key
            raise ClientError(f"jwks holds a key that cannot be read: {exc}") from None
        if key.is_private:
            raise ClientError("jwks must hold public keys only: never send a private key")
    return jwks


# Schemes a browser would run or read locally instead of handing the code to an app (OAuth
# 2.0 Security BCP 4.1): never a redirect target. Native apps' own schemes are fine.
_UNSAFE_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob"})


def _check_redirect(uri: str) -> str:
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        raise ClientError(f"redirect_uri {uri!r} is not a URL") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise ClientError(f"redirect_uri {uri!r} must be absolute")
    if scheme in _UNSAFE_SCHEMES:
        raise ClientError(f"redirect_uri {uri!r}: the {scheme}: scheme cannot receive a code")
    if parts.fragment or (scheme in ("http", "https") and not parts.netloc):
        raise ClientError(f"redirect_uri {uri!r} must be absolute and have no fragment")
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if scheme == "http" and not loopback:
        raise ClientError(f"redirect_uri {uri!r} must use https (http only on loopback)")
    return uri


class ClientRegistry:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def register(
        self,
        name: str,
        *,
        kind: str,
        auth_method: str,
        scopes: str,
        facility: str | None = None,
        jwks: dict[str, Any] | None = None,
        jwks_uri: str | None = None,
        redirect_uris: Sequence[str] = (),
        client_id: str | None = None,
    ) -> tuple[Client, str | None]:
        """Register a client; returns it and, for a client_secret_* client, its secret
        (shown once, stored hashed)."""
        if kind not in KINDS:
            raise ClientError(f"kind must be one of {', '.join(KINDS)}")
        if auth_method not in AUTH_METHODS:
            raise ClientError(
                f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}"
            )
        if not name.strip():
            raise ClientError("client_name is required")
        try:
            granted = Scopes.parse(scopes)
        except ScopeError as exc:
            raise ClientError(str(exc)) from None
        if kind == "backend":
            if auth_method != "private_key_jwt":
                raise ClientError("a backend service authenticates with private_key_jwt")
            if any(s.context != "system" for s in granted.clinical):
                raise ClientError("a backend service may only have system/ scopes")
        elif any(s.context == "system" for s in granted.clinical):
            raise ClientError("system/ scopes are for backend services only")
        if auth_method == "private_key_jwt":
            if (jwks is None) == (jwks_uri is None):
                raise ClientError("private_key_jwt needs exactly one of jwks and jwks_uri")
            if jwks is not None:
                jwks = _check_jwks(jwks)
            if jwks_uri is not None and urlsplit(jwks_uri).scheme not in ("https", "http"):
                raise ClientError("jwks_uri must be an http(s) URL")
        uris = tuple(_check_redirect(u) for u in redirect_uris)
        if kind == "app" and not uris:
            raise ClientError("an app needs at least one redirect_uri")
        secret = secrets.token_urlsafe(32) if auth_method.startswith("client_secret") else None
        client = Client(
            client_id=client_id or secrets.token_urlsafe(16),
            name=name.strip(),
            facility=facility,
            kind=kind,
            auth_method=auth_method,
            secret_hash=hash_secret(secret) if secret else None,
            jwks=jwks,
            jwks_uri=jwks_uri,
            redirect_uris=uris,
            scopes=granted,
        )
        with self.store.transaction() as txn:
            if txn.rows("SELECT 1 FROM auth_clients WHERE client_id = ?", (client.client_id,)):
                raise ClientError(f"client_id {client.client_id!r} is taken")
            txn.run(
                "INSERT INTO auth_clients (client_id, name, facility, kind, auth_method, "
                "secret_hash, jwks, jwks_uri, redirect_uris, scopes, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    client.client_id,
                    client.name,
                    facility,
                    kind,
                    auth_method,
                    client.secret_hash,
                    json.dumps(jwks) if jwks else None,
                    jwks_uri,
                    json.dumps(list(uris)),
                    granted.text(),
                    int(self.clock()),
                ),
            )
        return client, secret

    def get(self, client_id: str) -> Client | None:
        rows = self.store.rows(
            "SELECT client_id, name, facility, kind, auth_method, secret_hash, jwks, "
            "jwks_uri, redirect_uris, scopes, disabled FROM auth_clients WHERE client_id = ?",
            (client_id,),
        )
        return _client(rows[0]) if rows else None

    def all(self) -> list[Client]:
        rows = self.store.rows(
            "SELECT client_id, name, facility, kind, auth_method, secret_hash, jwks, "
            "jwks_uri, redirect_uris, scopes, disabled FROM auth_clients ORDER BY created, "
            "client_id"
        )
        return [_client(r) for r in rows]

    def set_disabled(self, client_id: str, disabled: bool) -> bool:
        with self.store.transaction() as txn:
            found = txn.rows("SELECT 1 FROM auth_clients WHERE client_id = ?", (client_id,))
            txn.run(
                "UPDATE auth_clients SET disabled = ? WHERE client_id = ?",
                (int(disabled), client_id),
            )
        return bool(found)


def _client(row: Any) -> Client:
    return Client(
        client_id=row[0],
        name=row[1],
        facility=row[2],
        kind=row[3],
        auth_method=row[4],
        secret_hash=row[5],
        jwks=json.loads(row[6]) if row[6] else None,
        jwks_uri=row[7],
        redirect_uris=tuple(json.loads(row[8])),
        scopes=Scopes.parse(row[9]),
        disabled=bool(row[10]),
    )
