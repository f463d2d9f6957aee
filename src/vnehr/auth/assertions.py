"""Client authentication at the token endpoint: private_key_jwt assertions, client secrets.

SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html): the
client signs a JWT (RS384 or ES384) with `iss` = `sub` = its client_id, `aud` = the token
endpoint, `exp` at most five minutes ahead and a `jti` it never reuses; the server checks it
with the client's registered JWK Set (or the one at its jwks_uri) and remembers each `jti`
until the assertion expires, so that a captured assertion cannot be replayed.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx
from joserfc import jwk, jws, jwt
from joserfc.errors import JoseError

from vnehr.auth.clients import ASSERTION_ALGORITHMS, Client, ClientRegistry
from vnehr.storage.base import Store

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_LIFETIME = 300  # seconds: SMART's limit on a client assertion's exp - now
JWKS_CACHE_SECONDS = 300


class ClientAuthError(Exception):
    """The client could not be authenticated (OAuth `invalid_client`); `reason` is a short
    code for the security log, the message is safe to return."""

    def __init__(self, message: str, reason: str, client_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.client_id = client_id


@dataclass(frozen=True, slots=True)
class _Fetched:
    keys: jwk.KeySet
    at: float


class RemoteKeys:
    """JWK Sets fetched from clients' jwks_uri, cached for five minutes."""

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self._cache: dict[str, _Fetched] = {}
        self._lock = threading.Lock()
        self._transport = transport

    def get(self, uri: str, *, refresh: bool = False) -> jwk.KeySet:
        now = time.monotonic()
        cached = self._cache.get(uri)
        if cached and not refresh and now - cached.at < JWKS_CACHE_SECONDS:
            return cached.keys
        try:
            with httpx.Client(timeout=5.0, transport=self._transport) as http:
                response = http.get(uri, headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = jwk.KeySet.import_key_set(response.json())
        except Exception as exc:  # network, HTTP status, JSON or key errors alike
            raise ClientAuthError(
                "The client's jwks_uri could not be read", "jwks-unreachable"
            ) from exc
        with self._lock:
            self._cache[uri] = _Fetched(keys, now)
        return keys


class ClientAuthenticator:
    def __init__(
        self,
        store: Store,
        clients: ClientRegistry,
        *,
        clock: Callable[[], float] = time.time,
        remote: RemoteKeys | None = None,
    ) -> None:
        self.store = store
        self.clients = clients
        self.clock = clock
        self.remote = remote or RemoteKeys()
        self._purged = 0.0

    def authenticate(
        self, form: Mapping[str, str], headers: Mapping[str, str], token_endpoint: str
    ) -> Client:
        """The client calling the token (or introspection, revocation) endpoint."""
        basic = _basic_credentials(headers.get("authorization"))
        assertion_type = form.get("client_assertion_type")
        if assertion_type is not None or "client_assertion" in form:
            if assertion_type != ASSERTION_TYPE:
                raise ClientAuthError(
                    f"client_assertion_type must be {ASSERTION_TYPE}", "assertion-type"
                )
            return self._assertion(form.get("client_assertion", ""), token_endpoint)
        if basic is not None:
            client_id, secret = basic
            return self._secret(client_id, secret, "client_secret_basic")
        client_id = form.get("client_id", "")
        if "client_secret" in form:
            return self._secret(client_id, form["client_secret"], "client_secret_post")
        client = self._client(client_id)
        if not client.public:
            raise ClientAuthError(
                "This client must authenticate", "no-credentials", client.client_id
            )
        return client

    def _client(self, client_id: str) -> Client:
        client = self.clients.get(client_id) if client_id else None
        if client is None:
            raise ClientAuthError("Unknown client", "unknown-client", client_id or None)
        if client.disabled:
            raise ClientAuthError("This client is disabled", "disabled", client_id)
        return client

    def _secret(self, client_id: str, secret: str, method: str) -> Client:
        client = self._client(client_id)
        if client.auth_method != method or not client.check_secret(secret):
            raise ClientAuthError("Client authentication failed", "secret", client_id)
        return client

    def _assertion(self, assertion: str, token_endpoint: str) -> Client:
        try:
            unverified = jws.extract_compact(assertion.encode())
            claims = json.loads(unverified.payload or b"")
            header = unverified.protected
        except (JoseError, ValueError, TypeError, binascii.Error):
            raise ClientAuthError("client_assertion is not a JWT", "malformed") from None
        if not isinstance(claims, dict):
            raise ClientAuthError("client_assertion is not a JWT", "malformed")
        client_id = claims.get("iss")
        if not isinstance(client_id, str) or claims.get("sub") != client_id:
            raise ClientAuthError("The assertion's iss and sub must be the client_id", "iss-sub")
        client = self._client(client_id)
        if client.auth_method != "private_key_jwt":
            raise ClientAuthError(
                "This client does not authenticate with private_key_jwt", "method", client_id
            )
        if header.get("alg") not in ASSERTION_ALGORITHMS:
            raise ClientAuthError(
                "The assertion must be signed with RS384 or ES384", "algorithm", client_id
            )
        verified = self._verify(assertion, client)
        self._check_claims(verified, client_id, token_endpoint)
        self._remember(client_id, str(verified["jti"]), int(verified["exp"]))
        return client

    def _verify(self, assertion: str, client: Client) -> dict[str, Any]:
        def attempt(keys: jwk.KeySet) -> dict[str, Any]:
            token = jwt.decode(assertion, keys, algorithms=list(ASSERTION_ALGORITHMS))
            return token.claims

        try:
            if client.jwks is not None:
                return attempt(jwk.KeySet.import_key_set(client.jwks))  # type: ignore[arg-type]
            assert client.jwks_uri is not None
            try:
                return attempt(self.remote.get(client.jwks_uri))
            except JoseError:  # the client may have rotated its keys since we fetched them
                return attempt(self.remote.get(client.jwks_uri, refresh=True))
        except (JoseError, ValueError, TypeError):
            raise ClientAuthError(
                "The assertion's signature does not verify with the client's keys",
                "signature",
                client.client_id,
            ) from None

    def _check_claims(self, claims: dict[str, Any], client_id: str, endpoint: str) -> None:
        now = int(self.clock())
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if endpoint not in audiences:
            raise ClientAuthError(
                f"The assertion's aud must be the token endpoint {endpoint}", "audience", client_id
            )
        exp = claims.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise ClientAuthError("The assertion needs an exp", "exp", client_id)
        if exp <= now:
            raise ClientAuthError("The assertion has expired", "expired", client_id)
        if exp - now > MAX_LIFETIME:
            raise ClientAuthError(
                "The assertion's exp is more than five minutes ahead", "lifetime", client_id
            )
        nbf = claims.get("nbf")
        if isinstance(nbf, int) and nbf > now + 60:
            raise ClientAuthError("The assertion is not valid yet", "not-before", client_id)
        iat = claims.get("iat")
        if isinstance(iat, int) and iat > now + 60:
            raise ClientAuthError("The assertion was issued in the future", "iat", client_id)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise ClientAuthError("The assertion needs a jti", "jti", client_id)

    def _remember(self, client_id: str, jti: str, exp: int) -> None:
        now = int(self.clock())
        with self.store.transaction() as txn:
            if now - self._purged > 60:
                txn.run("DELETE FROM auth_jti WHERE expires < ?", (now,))
                self._purged = now
            fresh = txn.rows(
                "INSERT INTO auth_jti (client_id, jti, expires) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING jti",
                (client_id, jti, exp),
            )
        if not fresh:
            raise ClientAuthError("This client assertion has been used before", "replay", client_id)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ClientAuthError("The Basic credentials are malformed", "malformed") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise ClientAuthError("The Basic credentials are malformed", "malformed")
    # RFC 6749 2.3.1: both parts are form-urlencoded before being joined.
    return unquote(client_id), unquote(secret)
