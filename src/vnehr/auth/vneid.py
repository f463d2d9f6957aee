"""VNeID sign-in: vnehr as an OpenID Connect relying party of the national e-identity.

The authorization-code flow (https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth)
with PKCE S256 (RFC 7636), state and nonce; the client authenticates to the token endpoint with
`client_secret_basic`. The ID token is checked as OpenID Connect Core §3.1.3.7 says, and the
citizen is named by the CCCD (12-digit personal identification number) in a configurable claim.
Endpoints come from discovery and keys from the IdP's JWKS, both cached; an unknown `kid` makes
the JWKS be fetched again (the IdP rotated its key), at most once a minute so that a stream of
forged tokens cannot make vnehr hammer the IdP.

Every failure is a `VneidError` whose `reason` is a short code and whose message is safe to show
and log: it never holds a token, a code, a verifier or the client secret. See docs/vneid.md.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jws, jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import ECKey, Key, RSAKey, import_key

from vnehr.identity.identifiers import cccd_facts

# Asymmetric only: `none` and HS* would let anyone holding the (public) JWKS forge a token.
ALGORITHMS = ("RS256", "RS384", "ES256", "ES384")
LEEWAY = 30  # seconds of clock skew tolerated on exp, iat and nbf
JWKS_REFETCH_INTERVAL = 60.0  # at least this long between two JWKS fetches for an unknown kid
CACHE_MAX_AGE = 3600.0  # discovery and JWKS are fetched again after an hour anyway
_CCCD = re.compile(r"[0-9]{12}")
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class VneidError(Exception):
    """A VNeID sign-in that failed closed.

    `reason` is one of: config, unreachable, discovery, state, idp-error, token-response,
    algorithm, signature, issuer, audience, expired, not-yet-valid, nonce, claim. `error` is
    the OAuth error code when the IdP refused (reason idp-error).
    """

    def __init__(self, reason: str, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.error = error


@dataclass(frozen=True, slots=True)
class VneidConfig:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str  # vnehr's callback, e.g. https://ehr.example.vn/auth/vneid/callback
    cccd_claim: str = "cccd"
    scope: str = "openid"
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class VneidIdentity:
    cccd: str
    subject: str  # the IdP's sub
    name: str | None
    claims: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VneidStart:
    url: str  # where to redirect the browser
    state: str
    nonce: str
    code_verifier: str  # kept by the caller (signed, or server-side) until the callback


@dataclass(frozen=True, slots=True)
class _Endpoints:
    authorization: str
    token: str
    jwks: str


class VneidClient:
    """The relying party: builds the authorization URL, redeems the code, checks the ID token."""

    def __init__(
        self,
        config: VneidConfig,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        _require_secure(config.issuer, "issuer")
        self.config = config
        self.clock = clock
        self._http = httpx.Client(transport=transport, timeout=config.timeout)
        self._lock = threading.Lock()
        self._endpoints: _Endpoints | None = None
        self._endpoints_at = float("-inf")
        self._keys: tuple[Key, ...] = ()
        self._keys_at = float("-inf")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VneidClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the flow --------------------------------------------------------------------------

    def start(self) -> VneidStart:
        """Where to send the browser, and the three secrets to keep until the callback."""
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        code_verifier = generate_token(64)  # RFC 7636 §4.1: 43-128 unreserved characters
        scopes = self.config.scope.split()
        if "openid" not in scopes:
            scopes.insert(0, "openid")
        url = prepare_grant_uri(
            self._discovered().authorization,
            self.config.client_id,
            "code",
            redirect_uri=self.config.redirect_uri,
            scope=" ".join(scopes),
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(code_verifier),
            code_challenge_method="S256",
        )
        return VneidStart(url=url, state=state, nonce=nonce, code_verifier=code_verifier)

    def finish(
        self, *, code: str, state: str, expected_state: str, nonce: str, code_verifier: str
    ) -> VneidIdentity:
        """The callback: check state, redeem the code at the token endpoint, check the ID token."""
        if not expected_state or not hmac.compare_digest(state.encode(), expected_state.encode()):
            raise VneidError("state", "The sign-in response does not match the request (state)")
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=self.config.redirect_uri,
            code_verifier=code_verifier,
        )
        auth = ClientAuth(self.config.client_id, self.config.client_secret, "client_secret_basic")
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        url, headers, body = auth.prepare("POST", self._discovered().token, headers, body)
        try:
            response = self._http.post(url, content=body, headers=headers)
        except httpx.HTTPError:
            raise VneidError("unreachable", "VNeID's token endpoint is unreachable") from None
        return self.verify_id_token(_id_token_of(response), nonce)

    def verify_id_token(self, id_token: str, nonce: str) -> VneidIdentity:
        """The citizen an ID token names, after OpenID Connect Core §3.1.3.7's checks."""
        try:
            header = jws.extract_compact(id_token.encode()).headers()
        except (JoseError, ValueError, TypeError):
            raise VneidError("signature", "The ID token is not a signed JWT") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise VneidError("algorithm", f"The ID token's algorithm is not accepted ({alg!r:.20})")
        key = self._key_for(header.get("kid"), str(alg))
        try:
            claims = jwt.decode(id_token, key, algorithms=[str(alg)]).claims
        except (JoseError, ValueError, TypeError):
            raise VneidError("signature", "The ID token's signature is not valid") from None
        self._check_claims(claims, nonce)
        cccd = claims.get(self.config.cccd_claim)
        if not isinstance(cccd, str) or not _CCCD.fullmatch(cccd) or cccd_facts(cccd) is None:
            raise VneidError(
                "claim", f"The ID token has no valid CCCD in claim {self.config.cccd_claim!r}"
            )
        name = claims.get("name")
        return VneidIdentity(
            cccd=cccd,
            subject=str(claims["sub"]),
            name=name if isinstance(name, str) and name else None,
            claims=claims,
        )

    # -- checks ----------------------------------------------------------------------------

    def _check_claims(self, claims: dict[str, Any], nonce: str) -> None:
        registry = jwt.JWTClaimsRegistry(
            now=int(self.clock()),
            leeway=LEEWAY,
            iss={"essential": True, "value": self.config.issuer},
            aud={"essential": True, "value": self.config.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise VneidError("expired", "The ID token has expired") from None
        except MissingClaimError as exc:
            missing = exc.claim.split(",")
            reason = next((_CLAIM_REASONS[c] for c in ("iss", "aud") if c in missing), "claim")
            raise VneidError(reason, f"The ID token lacks claims {exc.claim!r}") from None
        except ClaimError as exc:
            reason = _CLAIM_REASONS.get(exc.claim, "claim")
            raise VneidError(reason, f"The ID token's {exc.claim!r} claim is not valid") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.config.client_id:
            raise VneidError("audience", "The ID token was issued to another party (azp)")
        sent = claims.get("nonce")
        if not (
            nonce and isinstance(sent, str) and hmac.compare_digest(sent.encode(), nonce.encode())
        ):
            raise VneidError("nonce", "The ID token does not answer this sign-in (nonce)")

    def _key_for(self, kid: object, alg: str) -> Key:
        """The IdP key for a token header; fetch the JWKS again once for an unknown kid."""
        endpoints = self._discovered()
        keys = _matching(self._signing_keys(endpoints), kid, alg)
        if not keys:
            with self._lock:
                if self.clock() - self._keys_at >= JWKS_REFETCH_INTERVAL:
                    self._keys = self._fetch_keys(endpoints.jwks)
                    self._keys_at = self.clock()
                keys = _matching(self._keys, kid, alg)
        if len(keys) != 1:
            raise VneidError("signature", "The ID token is signed by a key VNeID does not publish")
        return keys[0]

    # -- discovery and keys ----------------------------------------------------------------

    def _discovered(self) -> _Endpoints:
        with self._lock:
            if self._endpoints is None or self.clock() - self._endpoints_at > CACHE_MAX_AGE:
                self._endpoints = self._discover()
                self._endpoints_at = self.clock()
            return self._endpoints

    def _signing_keys(self, endpoints: _Endpoints) -> tuple[Key, ...]:
        with self._lock:
            if self.clock() - self._keys_at > CACHE_MAX_AGE:
                self._keys = self._fetch_keys(endpoints.jwks)
                self._keys_at = self.clock()
            return self._keys

    def _discover(self) -> _Endpoints:
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._get_json(url, "discovery document")
        if document.get("issuer") != self.config.issuer:
            raise VneidError("issuer", "VNeID's discovery document names another issuer")
        values = {}
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(field)
            if not isinstance(value, str) or not value:
                raise VneidError("discovery", f"VNeID's discovery document has no {field}")
            _require_secure(value, field)
            values[field] = value
        return _Endpoints(
            values["authorization_endpoint"], values["token_endpoint"], values["jwks_uri"]
        )

    def _fetch_keys(self, url: str) -> tuple[Key, ...]:
        keys = self._get_json(url, "key set").get("keys")
        if not isinstance(keys, list):
            raise VneidError("discovery", "VNeID's key set is not a JWK Set")
        return tuple(key for key in map(_signing_key, keys) if key is not None)

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError:
            raise VneidError("unreachable", f"VNeID's {what} is unreachable ({url})") from None
        if response.status_code != 200:
            raise VneidError(
                "unreachable", f"VNeID's {what} answered HTTP {response.status_code} ({url})"
            )
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise VneidError("discovery", f"VNeID's {what} is not a JSON object ({url})")
        return document


_CLAIM_REASONS = {
    "iss": "issuer",
    "aud": "audience",
    "exp": "expired",
    "iat": "not-yet-valid",
    "nbf": "not-yet-valid",
}


def _id_token_of(response: httpx.Response) -> str:
    """The ID token from a token endpoint response (RFC 6749 §5, OpenID Connect Core §3.1.3.3)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        reason = "unreachable" if response.status_code >= 500 else "token-response"
        raise VneidError(reason, f"VNeID's token endpoint answered HTTP {response.status_code}")
    if response.status_code != 200 or "error" in body:
        error = body.get("error")
        code = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else "unknown"
        raise VneidError("idp-error", f"VNeID refused the sign-in ({code})", error=code)
    token_type = body.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise VneidError("token-response", "VNeID's token response is not a Bearer token")
    id_token = body.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise VneidError("token-response", "VNeID's token response has no ID token")
    return id_token


def _signing_key(data: object) -> Key | None:
    """A JWKS entry usable to verify signatures; None for encryption, symmetric or bad keys."""
    if not isinstance(data, dict) or data.get("use", "sig") != "sig":
        return None
    if data.get("kty") not in ("RSA", "EC"):
        return None
    try:
        key = import_key(data)
    except (JoseError, ValueError, TypeError):
        return None
    return None if key.is_private else key


def _matching(keys: tuple[Key, ...], kid: object, alg: str) -> list[Key]:
    kind = RSAKey if alg.startswith("RS") else ECKey
    return [
        key
        for key in keys
        if isinstance(key, kind)
        and (kid is None or key.kid == kid)
        and (key.alg is None or key.alg == alg)
    ]


def _require_secure(url: str, what: str) -> None:
    """HTTPS, except on loopback (development and the tests' identity provider)."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return
    raise VneidError("config", f"VNeID's {what} must be an https URL ({url})")
