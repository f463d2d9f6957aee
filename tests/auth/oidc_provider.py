"""A small real OpenID Connect provider on loopback, standing in for VNeID in the tests.

It serves discovery, a JWKS, `/authorize` (which signs the configured citizen in at once and
redirects back with a code) and `/token` (client_secret_basic, single-use codes, the redirect
URI and the PKCE S256 verifier all checked). `misbehave(kind)` makes it answer the next sign-ins
the way a broken or hostile IdP would; see MISBEHAVIOURS.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

CLIENT_ID = "vnehr-test"
CLIENT_SECRET = "s3cret-for-the-tests-only"
REDIRECT_URI = "https://ehr.example.vn/auth/vneid/callback"
PREFIX = "/vneid"  # the issuer is http://127.0.0.1:{port}/vneid

MISBEHAVIOURS = frozenset(
    {
        "wrong-issuer",  # iss is another issuer
        "wrong-audience",  # aud is another client
        "several-audiences",  # aud lists vnehr and another client, with no azp
        "expired",  # exp two minutes ago
        "issued-in-future",  # iat ten minutes ahead
        "unsigned",  # alg: none
        "hs256-public-key",  # HS256 with the IdP's public key (PEM) as the HMAC secret
        "unknown-key",  # signed by a key the JWKS does not hold, under its own kid
        "forged-kid",  # signed by another key, under the IdP's kid
        "tampered",  # a valid token whose payload was then changed
        "wrong-nonce",
        "no-cccd",
        "invalid-cccd",  # twelve digits, but no such province
        "oauth-error",  # the token endpoint answers invalid_grant
        "no-id-token",  # a token response without an id_token
        "rotated-key",  # a new key with a new kid signs; the JWKS holds only it
    }
)


@dataclass
class _Grant:
    redirect_uri: str
    nonce: str | None
    code_challenge: str
    user: tuple[str | None, str]


@functools.cache
def _key(name: str) -> RSAKey:
    """RSA keys are slow to make; each is made once a session (test keys, never secret)."""
    return RSAKey.generate_key(2048, parameters={"kid": name, "use": "sig", "alg": "RS256"})


@functools.cache
def _ec_key(name: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": name, "use": "sig", "alg": "ES256"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class OidcProvider:
    """The provider; `start()` it, `stop()` it. Tokens are dated by the real clock."""

    def __init__(self) -> None:
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        self.redirect_uri = REDIRECT_URI
        self.requests: Counter[str] = Counter()  # path -> number of requests
        self.algorithm = "RS256"  # or ES256
        self._kinds: set[str] = set()
        self._user: tuple[str | None, str] = ("001185012345", "Nguyễn Thị Lan")
        self._signing_key = _key("vneid-1")
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.port = self._server.server_address[1]
        self.issuer = f"http://127.0.0.1:{self.port}{PREFIX}"
        # A short poll interval: stopping waits for the poll, and each test stops one.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> OidcProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port; stopping twice is harmless."""
        if not self._thread.is_alive():
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # -- configuring it per test -----------------------------------------------------------

    def set_user(self, cccd: str | None, name: str) -> None:
        """The citizen who signs in at /authorize (cccd None: the claim is left out)."""
        self._user = (cccd, name)

    def misbehave(self, kind: str) -> None:
        if kind not in MISBEHAVIOURS:
            raise ValueError(f"unknown misbehaviour {kind!r}")
        if kind == "rotated-key":
            self.rotate_key()
        else:
            self._kinds.add(kind)

    def behave(self) -> None:
        self._kinds.clear()

    def rotate_key(self) -> None:
        """Sign with a new key under a new kid, and publish only it."""
        self._signing_key = _key("vneid-2")

    # -- the browser -----------------------------------------------------------------------

    def authorize(self, url: str) -> tuple[str, str]:
        """GET the authorization URL as a browser would; (code, state) from the redirect."""
        response = httpx.get(url, follow_redirects=False)
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(self.redirect_uri + "?"), location
        query = parse_qs(urlsplit(location).query)
        return query["code"][0], query["state"][0]

    # -- the endpoints ---------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    def jwks(self) -> dict[str, Any]:
        keys: list[RSAKey | ECKey] = [self._signing_key, _ec_key("vneid-ec-1")]
        return {"keys": [key.as_dict(private=False) for key in keys]}

    def authorize_request(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {}, {"error": "unauthorized_client"}
        if query.get("redirect_uri") != self.redirect_uri:
            return 400, {}, {"error": "invalid_request", "error_description": "redirect_uri"}
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 400, {}, {"error": "invalid_request", "error_description": "PKCE S256"}
        if "openid" not in query.get("scope", "").split():
            return 400, {}, {"error": "invalid_scope"}
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._grants[code] = _Grant(
                query["redirect_uri"], query.get("nonce"), query["code_challenge"], self._user
            )
        location = f"{self.redirect_uri}?" + urlencode({"code": code, "state": query["state"]})
        return 302, {"Location": location}, None

    def token_request(
        self, authorization: str | None, form: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        if not self._client_authenticated(authorization):
            return 401, {"WWW-Authenticate": "Basic"}, {"error": "invalid_client"}
        if "oauth-error" in self._kinds:
            return 400, {}, {"error": "invalid_grant", "error_description": "the code expired"}
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)
        if grant is None or form.get("grant_type") != "authorization_code":
            return 400, {}, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {}, {"error": "invalid_grant", "error_description": "redirect_uri"}
        verifier = form.get("code_verifier", "")
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        if not hmac.compare_digest(challenge, grant.code_challenge):
            return 400, {}, {"error": "invalid_grant", "error_description": "PKCE"}
        body: dict[str, Any] = {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 300,
        }
        if "no-id-token" not in self._kinds:
            body["id_token"] = self.id_token(grant)
        return 200, {"Cache-Control": "no-store"}, body

    def _client_authenticated(self, authorization: str | None) -> bool:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        # RFC 6749 §2.3.1: both halves are form-urlencoded before the Basic encoding.
        return unquote(user) == self.client_id and hmac.compare_digest(
            unquote(password), self.client_secret
        )

    # -- ID tokens -------------------------------------------------------------------------

    def claims(self, grant: _Grant) -> dict[str, Any]:
        now = int(time.time())
        cccd, name = grant.user
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": f"vneid-{cccd or 'anonymous'}",
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "nonce": grant.nonce,
            "name": name,
            "cccd": cccd,
        }
        kinds = self._kinds
        if "wrong-issuer" in kinds:
            claims["iss"] = "https://sso.dichvucong.example.vn"
        if "wrong-audience" in kinds:
            claims["aud"] = "another-hospital"
        if "several-audiences" in kinds:
            claims["aud"] = [self.client_id, "another-hospital"]
        if "expired" in kinds:
            claims["iat"], claims["exp"] = now - 600, now - 120
        if "issued-in-future" in kinds:
            claims["iat"], claims["exp"] = now + 600, now + 900
        if "wrong-nonce" in kinds:
            claims["nonce"] = "a-nonce-from-another-sign-in"
        if "invalid-cccd" in kinds:
            claims["cccd"] = "999185012345"
        if "no-cccd" in kinds or cccd is None:
            del claims["cccd"]
        return claims

    def id_token(self, grant: _Grant) -> str:
        claims = self.claims(grant)
        kinds = self._kinds
        key = self._signing_key
        if "unsigned" in kinds:
            return self._compact({"alg": "none", "typ": "JWT"}, claims, lambda _: b"")
        if "hs256-public-key" in kinds:
            secret = key.as_pem(private=False)
            header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
            return self._compact(header, claims, lambda s: hmac.digest(secret, s, "sha256"))
        if "unknown-key" in kinds:
            key = _key("foreign")
        if "forged-kid" in kinds:
            key = _key("foreign")
            header = {"alg": "RS256", "typ": "JWT", "kid": self._signing_key.kid}
            return jwt.encode(header, claims, key, algorithms=["RS256"])
        if self.algorithm == "ES256":
            ec = _ec_key("vneid-ec-1")
            return jwt.encode({"alg": "ES256", "kid": ec.kid}, claims, ec, algorithms=["ES256"])
        token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key, algorithms=["RS256"])
        if "tampered" in kinds:
            signed_header, _, signature = token.split(".")
            claims["cccd"] = "079214000123"  # someone else's CCCD
            payload = _b64(json.dumps(claims).encode())
            token = f"{signed_header}.{payload}.{signature}"
        return token

    @staticmethod
    def _compact(header: dict[str, Any], claims: dict[str, Any], sign: Any) -> str:
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def _handler(provider: OidcProvider) -> type[BaseHTTPRequestHandler]:
    prefix = PREFIX

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path.removeprefix(prefix)
            provider.requests[path] += 1
            if path == "/.well-known/openid-configuration":
                self._answer(200, {}, provider.discovery())
            elif path == "/jwks":
                self._answer(200, {}, provider.jwks())
            elif path == "/authorize":
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                self._answer(*provider.authorize_request(query))
            else:
                self._answer(404, {}, {"error": "not_found"})

        def do_POST(self) -> None:
            path = urlsplit(self.path).path.removeprefix(prefix)
            provider.requests[path] += 1
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if path == "/token":
                self._answer(*provider.token_request(self.headers.get("Authorization"), form))
            else:
                self._answer(404, {}, {"error": "not_found"})

        def _answer(self, status: int, headers: dict[str, str], body: Any) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows failures, not every request

    return Handler
