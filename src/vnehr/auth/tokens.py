"""Access tokens: signed JWTs (RFC 9068 profile) issued by vnehr and checked on every request.

A token names the client, the subject (an account or, for backend services, the client),
its facility, the granted scopes and the SMART launch context (patient, encounter). Checking
one is a signature check against the cached keys, the standard claims, and a look in the
revocation list (refreshed from the database at most once a second), so that it adds well
under a millisecond to a request.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from vnehr.auth.keys import ALGORITHM, SigningKeys
from vnehr.auth.scopes import ScopeError, Scopes

Clock = Callable[[], float]


class InvalidToken(Exception):
    """The bearer token cannot be trusted; the message says why (for the log and the
    WWW-Authenticate header, never anything secret)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as an access token says."""

    client_id: str
    subject: str  # the account id, or the client id for a backend service
    scopes: Scopes
    token_id: str
    expires: int
    facility: str | None = None  # the Organization id of the client's or user's facility
    fhir_user: str | None = None  # Practitioner/..., Patient/..., RelatedPerson/...
    patient: str | None = None  # the launch context
    encounter: str | None = None
    kind: str = "user"  # system (backend service) | user (an account signed in)
    claims: dict[str, Any] = field(default_factory=dict, compare=False)


def claims_of(principal: Principal, issuer: str, audience: str, now: int) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": principal.subject,
        "client_id": principal.client_id,
        "scope": principal.scopes.text(),
        "jti": principal.token_id,
        "iat": now,
        "nbf": now,
        "exp": principal.expires,
        "kind": principal.kind,
    }
    for name, value in (
        ("facility", principal.facility),
        ("fhirUser", principal.fhir_user),
        ("patient", principal.patient),
        ("encounter", principal.encounter),
    ):
        if value:
            claims[name] = value
    return claims


class Tokens:
    """Issues and checks access tokens with the server's keys."""

    def __init__(
        self,
        keys: SigningKeys,
        *,
        lifetime: int,
        revoked: Callable[[], set[str]],
        clock: Clock = time.time,
    ) -> None:
        self.keys = keys
        self.lifetime = lifetime
        self.clock = clock
        self._key_set = keys.key_set()
        self._load_revoked = revoked
        self._revoked: set[str] = set()
        self._revoked_at = float("-inf")
        self._lock = threading.Lock()

    def new_principal(self, **values: Any) -> Principal:
        return Principal(
            token_id=secrets.token_urlsafe(16),
            expires=int(self.clock()) + self.lifetime,
            **values,
        )

    def issue(self, principal: Principal, issuer: str) -> str:
        """An access token for the FHIR server at `issuer`, which is also its audience
        (vnehr is its own resource server)."""
        header = {"alg": ALGORITHM, "kid": self.keys.kid, "typ": "at+jwt"}
        claims = claims_of(principal, issuer, issuer, int(self.clock()))
        return jwt.encode(header, claims, self.keys.current, algorithms=[ALGORITHM])

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        """Any other JWT the server signs (ID tokens, the login pages' state)."""
        header = {"alg": ALGORITHM, "kid": self.keys.kid, "typ": typ}
        return jwt.encode(header, claims, self.keys.current, algorithms=[ALGORITHM])

    def open(
        self, token: str, typ: str, issuer: str, audience: str | None = None
    ) -> dict[str, Any]:
        """The claims of a JWT this server signed with header `typ`, checked: signature,
        issuer, audience (when given), expiry and not-before."""
        try:
            decoded = jwt.decode(token, self._key_set, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(f"The token is not a valid signed JWT ({_reason(exc)})") from None
        if decoded.header.get("typ") != typ:
            raise InvalidToken(f"The token is not a {typ} token")
        claims = decoded.claims
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": issuer},
            "exp": {"essential": True},
        }
        if audience is not None:
            options["aud"] = {"essential": True, "value": audience}
        try:
            jwt.JWTClaimsRegistry(now=int(self.clock()), leeway=0, **options).validate(claims)
        except JoseError as exc:
            raise InvalidToken(f"The token is not valid here ({_reason(exc)})") from None
        return claims

    def verify(self, token: str, issuer: str) -> Principal:
        """The principal of an access token issued by and for the server at `issuer`."""
        claims = self.open(token, "at+jwt", issuer, issuer)
        jti = claims.get("jti")
        if not isinstance(jti, str) or jti in self.revoked():
            raise InvalidToken("The token has been revoked")
        try:
            scopes = Scopes.parse(str(claims.get("scope", "")))
        except ScopeError:
            raise InvalidToken("The token's scope is malformed") from None
        return Principal(
            client_id=str(claims.get("client_id", "")),
            subject=str(claims.get("sub", "")),
            scopes=scopes,
            token_id=jti,
            expires=int(claims["exp"]),
            facility=claims.get("facility"),
            fhir_user=claims.get("fhirUser"),
            patient=claims.get("patient"),
            encounter=claims.get("encounter"),
            kind=str(claims.get("kind", "user")),
            claims=claims,
        )

    def revoked(self) -> set[str]:
        now = time.monotonic()
        if now - self._revoked_at > 1.0:
            with self._lock:
                if now - self._revoked_at > 1.0:
                    self._revoked = self._load_revoked()
                    self._revoked_at = now
        return self._revoked

    def forget_revocations(self) -> None:
        """Re-read the revocation list on the next check (after this process revoked)."""
        self._revoked_at = float("-inf")


def _reason(exc: Exception) -> str:
    return getattr(exc, "error", None) or type(exc).__name__
