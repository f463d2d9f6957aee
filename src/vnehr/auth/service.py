"""The token endpoint and its companions: grants, introspection (RFC 7662), revocation
(RFC 7009), refresh-token rotation; what the HTTP layer (endpoints.py) calls.

Grants: `client_credentials` (SMART Backend Services, private_key_jwt clients only),
`authorization_code` (PKCE S256, single use: a second use revokes what the first gave),
`refresh_token` (rotated on every use; presenting a used one revokes its whole family, the
sign that it was stolen). Every outcome is a security event.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from vnehr.auth.assertions import ClientAuthenticator, ClientAuthError
from vnehr.auth.clients import Client, ClientRegistry
from vnehr.auth.events import SecurityEvents
from vnehr.auth.keys import SigningKeys
from vnehr.auth.scopes import ScopeError, Scopes, narrow
from vnehr.auth.tokens import InvalidToken, Principal, Tokens
from vnehr.storage.base import Store, WriteTransaction

CODE_LIFETIME = 60  # seconds an authorization code may wait to be exchanged
_VERIFIER_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class OAuthError(Exception):
    """An OAuth error response (RFC 6749 5.2): `error` code, description, HTTP status."""

    def __init__(
        self, error: str, description: str, status: int = 400, reason: str | None = None
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.reason = reason or error
        self.client_id: str | None = None

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True, slots=True)
class Urls:
    """Where things are, from the FHIR base URL (the issuer): auth endpoints sit at the
    origin's /auth/..."""

    fhir_base: str

    @property
    def origin(self) -> str:
        base = self.fhir_base.rstrip("/")
        return base[: -len("/fhir")] if base.endswith("/fhir") else base

    @property
    def issuer(self) -> str:
        return self.fhir_base.rstrip("/")

    def endpoint(self, name: str) -> str:
        return f"{self.origin}/auth/{name}"


def token_hash(token: str) -> str:
    """Codes and refresh tokens are kept only as hashes: a copy of the database does not
    give anyone a working token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Authorization:
    """What an authorization code carries from the consent page to the token endpoint."""

    client_id: str
    account_id: str
    redirect_uri: str
    scopes: Scopes
    challenge: str
    fhir_user: str | None = None
    facility: str | None = None
    patient: str | None = None
    encounter: str | None = None
    nonce: str | None = None
    name: str | None = None


class TokenService:
    def __init__(
        self,
        store: Store,
        keys: SigningKeys,
        *,
        token_lifetime: int,
        refresh_lifetime: int,
        clock: Callable[[], float] = time.time,
        authenticator: ClientAuthenticator | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.clients = ClientRegistry(store, clock)
        self.events = SecurityEvents(store, clock)
        self.authenticator = authenticator or ClientAuthenticator(store, self.clients, clock=clock)
        self.refresh_lifetime = refresh_lifetime
        self.tokens = Tokens(keys, lifetime=token_lifetime, revoked=self._revoked, clock=clock)

    # -- the token endpoint
    def token(
        self, form: Mapping[str, str], headers: Mapping[str, str], urls: Urls, address: str
    ) -> dict[str, Any]:
        grant_type = form.get("grant_type", "")
        client: Client | None = None
        try:
            client = self._client(form, headers, urls, address)
            if grant_type == "client_credentials":
                answer = self._client_credentials(form, client, urls)
            elif grant_type == "authorization_code":
                answer = self._authorization_code(form, client, urls)
            elif grant_type == "refresh_token":
                answer = self._refresh(form, client, urls)
            else:
                raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r}")
        except OAuthError as exc:
            self.events.record(
                "token",
                "failure",
                client_id=client.client_id if client else exc.client_id or form.get("client_id"),
                facility=client.facility if client else None,
                address=address,
                grant_type=grant_type,
                reason=exc.reason,
            )
            raise
        self.events.record(
            "token",
            "success",
            client_id=client.client_id,
            account_id=answer.get("_account"),
            facility=client.facility,
            address=address,
            grant_type=grant_type,
            scope=answer.get("scope"),
        )
        answer.pop("_account", None)
        return answer

    def _client(
        self, form: Mapping[str, str], headers: Mapping[str, str], urls: Urls, address: str
    ) -> Client:
        try:
            return self.authenticator.authenticate(form, headers, urls.endpoint("token"))
        except ClientAuthError as exc:
            error = OAuthError("invalid_client", str(exc), 401, exc.reason)
            error.client_id = exc.client_id  # the client it claimed to be, for the event
            raise error from None

    def _recorded_client(
        self,
        kind: str,
        form: Mapping[str, str],
        headers: Mapping[str, str],
        urls: Urls,
        address: str,
    ) -> Client:
        """The calling client; a failed authentication is a security event (a secret
        guessed here must leave the same trace as at the token endpoint)."""
        try:
            return self._client(form, headers, urls, address)
        except OAuthError as exc:
            self.events.record(
                kind,
                "failure",
                client_id=exc.client_id or form.get("client_id"),
                address=address,
                reason=exc.reason,
            )
            raise

    def _client_credentials(
        self, form: Mapping[str, str], client: Client, urls: Urls
    ) -> dict[str, Any]:
        if client.kind != "backend":
            raise OAuthError("unauthorized_client", "client_credentials is for backend services")
        granted = self._granted(form.get("scope"), client)
        if any(s.context != "system" for s in granted.clinical):
            raise OAuthError("invalid_scope", "A backend service may ask for system/ scopes only")
        principal = self.tokens.new_principal(
            client_id=client.client_id,
            subject=client.client_id,
            scopes=granted,
            facility=client.facility,
            kind="system",
        )
        return self._answer(principal, urls)

    def _granted(self, scope: str | None, client: Client) -> Scopes:
        if not scope or not scope.strip():
            raise OAuthError("invalid_scope", "scope is required")
        try:
            requested = Scopes.parse(scope)
        except ScopeError as exc:
            raise OAuthError("invalid_scope", str(exc)) from None
        granted = narrow(requested, client.scopes)
        if not granted.clinical and not (granted.plain - {"openid", "fhirUser", "profile"}):
            raise OAuthError(
                "invalid_scope", "None of the requested scopes may be granted to this client"
            )
        return granted

    def _answer(
        self, principal: Principal, urls: Urls, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "access_token": self.tokens.issue(principal, urls.issuer),
            "token_type": "Bearer",
            "expires_in": principal.expires - int(self.clock()),
            "scope": principal.scopes.text(),
        }
        if principal.patient:
            answer["patient"] = principal.patient
        if principal.encounter:
            answer["encounter"] = principal.encounter
        if principal.fhir_user and principal.kind == "user":
            answer["_account"] = principal.subject
        return {**answer, **(extra or {})}

    # -- authorization codes
    def new_code(self, authorization: Authorization) -> str:
        code = secrets.token_urlsafe(32)
        context = {
            "fhir_user": authorization.fhir_user,
            "facility": authorization.facility,
            "patient": authorization.patient,
            "encounter": authorization.encounter,
            "nonce": authorization.nonce,
            "name": authorization.name,
        }
        with self.store.transaction() as txn:
            txn.run(
                "INSERT INTO auth_codes (code_hash, client_id, account_id, redirect_uri, scope, "
                "challenge, context, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token_hash(code),
                    authorization.client_id,
                    authorization.account_id,
                    authorization.redirect_uri,
                    authorization.scopes.text(),
                    authorization.challenge,
                    json.dumps(context),
                    int(self.clock()) + CODE_LIFETIME,
                ),
            )
        return code

    def _authorization_code(
        self, form: Mapping[str, str], client: Client, urls: Urls
    ) -> dict[str, Any]:
        code = form.get("code", "")
        verifier = form.get("code_verifier", "")
        hashed = token_hash(code)
        now = int(self.clock())
        with self.store.transaction() as txn:
            rows = txn.rows(
                "SELECT client_id, account_id, redirect_uri, scope, challenge, context, "
                "expires, used FROM auth_codes WHERE code_hash = ?",
                (hashed,),
            )
            if not rows:
                raise OAuthError("invalid_grant", "Unknown authorization code", reason="code")
            client_id, account_id, redirect_uri, scope, challenge, context, expires, used = rows[0]
            if used is not None:
                # RFC 6749 4.1.2: a code used twice revokes what the first use gave (in this
                # transaction, which commits: the error is raised after it).
                self._revoke_family(txn, "code:" + hashed, now)
            else:
                txn.run("UPDATE auth_codes SET used = ? WHERE code_hash = ?", (now, hashed))
        if used is not None:
            raise OAuthError(
                "invalid_grant", "The authorization code was used before", reason="code-reuse"
            )
        if client_id != client.client_id:
            raise OAuthError(
                "invalid_grant", "The code was issued to another client", reason="client"
            )
        if expires <= now:
            raise OAuthError(
                "invalid_grant", "The authorization code has expired", reason="expired"
            )
        if form.get("redirect_uri") != redirect_uri:
            raise OAuthError(
                "invalid_grant",
                "redirect_uri differs from the authorization request",
                reason="redirect",
            )
        if not (43 <= len(verifier) <= 128) or not set(verifier) <= _VERIFIER_CHARS:
            raise OAuthError(
                "invalid_grant", "code_verifier is missing or malformed", reason="pkce"
            )
        if not secrets.compare_digest(create_s256_code_challenge(verifier), challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match", reason="pkce")
        ctx = json.loads(context)
        scopes = Scopes.parse(scope)
        principal = self._user(client, account_id, scopes, ctx)
        extra: dict[str, Any] = {}
        if "openid" in scopes and ("fhirUser" in scopes or "profile" in scopes):
            extra["id_token"] = self._id_token(principal, ctx, urls)
        if "offline_access" in scopes or "online_access" in scopes:
            extra["refresh_token"] = self._new_refresh(
                principal, "code:" + hashed, now + self.refresh_lifetime
            )
        answer = self._answer(principal, urls, extra)
        answer["_account"] = account_id
        self._remember_access(principal, "code:" + hashed)
        return answer

    def _user(
        self, client: Client, account_id: str, scopes: Scopes, ctx: dict[str, Any]
    ) -> Principal:
        """A signed-in account's principal, with the context its grant recorded."""
        return self.tokens.new_principal(
            client_id=client.client_id,
            subject=account_id,
            scopes=scopes,
            facility=ctx.get("facility"),
            fhir_user=ctx.get("fhir_user"),
            patient=ctx.get("patient"),
            encounter=ctx.get("encounter"),
            kind="user",
        )

    def _id_token(self, principal: Principal, ctx: dict[str, Any], urls: Urls) -> str:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": urls.issuer,
            "sub": principal.subject,
            "aud": principal.client_id,
            "iat": now,
            "exp": principal.expires,
        }
        if principal.fhir_user:
            claims["fhirUser"] = principal.fhir_user
        if ctx.get("nonce"):
            claims["nonce"] = ctx["nonce"]
        if ctx.get("name") and "profile" in principal.scopes:
            claims["name"] = ctx["name"]
        return self.tokens.sign(claims)

    # -- refresh tokens
    def _new_refresh(self, principal: Principal, family: str, expires: int) -> str:
        token = secrets.token_urlsafe(32)
        context = {
            "facility": principal.facility,
            "fhir_user": principal.fhir_user,
            "patient": principal.patient,
            "encounter": principal.encounter,
        }
        with self.store.transaction() as txn:
            txn.run(
                "INSERT INTO auth_refresh (token_hash, family, client_id, account_id, scope, "
                "context, expires) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    token_hash(token),
                    family,
                    principal.client_id,
                    principal.subject,
                    principal.scopes.text(),
                    json.dumps(context),
                    expires,
                ),
            )
        return token

    def _remember_access(self, principal: Principal, family: str) -> None:
        """Access tokens of a family are revoked with it (on reuse of a code or refresh
        token): keep their ids with the family."""
        with self.store.transaction() as txn:
            txn.run(
                "INSERT INTO auth_refresh (token_hash, family, client_id, account_id, scope, "
                "context, expires, used) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    "access:" + principal.token_id,
                    family,
                    principal.client_id,
                    principal.subject,
                    "",
                    json.dumps({"access": principal.token_id}),
                    principal.expires,
                    principal.expires,
                ),
            )

    def _refresh(self, form: Mapping[str, str], client: Client, urls: Urls) -> dict[str, Any]:
        presented = form.get("refresh_token", "")
        hashed = token_hash(presented)
        now = int(self.clock())
        with self.store.transaction() as txn:
            rows = txn.rows(
                "SELECT family, client_id, account_id, scope, context, expires, used, revoked "
                "FROM auth_refresh WHERE token_hash = ?",
                (hashed,),
            )
            if not rows:
                raise OAuthError("invalid_grant", "Unknown refresh token", reason="refresh")
            family, client_id, account_id, scope, context, expires, used, revoked = rows[0]
            if client_id != client.client_id:
                raise OAuthError(
                    "invalid_grant", "The refresh token belongs to another client", reason="client"
                )
            if revoked is not None:
                raise OAuthError("invalid_grant", "The refresh token was revoked", reason="revoked")
            if expires <= now:
                raise OAuthError("invalid_grant", "The refresh token has expired", reason="expired")
            disabled = self.account_disabled(txn, account_id)
            if used is not None or disabled:
                self._revoke_family(txn, family, now)  # committed; the error follows
            else:
                # RFC 6749 6: a refused refresh leaves the token as it was, so check the
                # scope before spending it.
                scopes = self._narrowed_scope(form.get("scope"), Scopes.parse(scope))
                txn.run("UPDATE auth_refresh SET used = ? WHERE token_hash = ?", (now, hashed))
        if disabled:
            raise OAuthError("invalid_grant", "The account is disabled", reason="account-disabled")
        if used is not None:
            raise OAuthError(
                "invalid_grant",
                "The refresh token was used before: every token of this grant is revoked",
                reason="refresh-reuse",
            )
        ctx = json.loads(context)
        principal = self._user(client, account_id, scopes, ctx)
        extra = {"refresh_token": self._new_refresh(principal, family, expires)}
        self._remember_access(principal, family)
        answer = self._answer(principal, urls, extra)
        answer["_account"] = account_id
        return answer

    def _narrowed_scope(self, asked_text: str | None, original: Scopes) -> Scopes:
        if not asked_text:
            return original
        try:
            asked = Scopes.parse(asked_text)
        except ScopeError as exc:
            raise OAuthError("invalid_scope", str(exc)) from None
        granted_texts = {s.text for s in original.clinical} | set(original.plain)
        asked_texts = {s.text for s in asked.clinical} | set(asked.plain)
        if not asked_texts <= granted_texts:
            raise OAuthError(
                "invalid_scope",
                "A refresh may narrow the scopes, never widen them",
                reason="scope-escalation",
            )
        return asked

    @staticmethod
    def account_disabled(txn: WriteTransaction, account_id: str) -> bool:
        """Whether the account a grant belongs to was disabled (or removed) since."""
        rows = txn.rows("SELECT disabled FROM auth_accounts WHERE account_id = ?", (account_id,))
        return not rows or bool(rows[0][0])

    def _revoke_family(self, txn: WriteTransaction, family: str, now: int) -> None:
        rows = txn.rows(
            "SELECT context, expires FROM auth_refresh WHERE family = ? AND revoked IS NULL",
            (family,),
        )
        for context, expires in rows:
            access = json.loads(context).get("access")
            if access and expires > now:
                txn.run(
                    "INSERT INTO auth_revoked (jti, expires) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (access, expires),
                )
        txn.run(
            "UPDATE auth_refresh SET revoked = ? WHERE family = ? AND revoked IS NULL",
            (now, family),
        )
        self.tokens.forget_revocations()

    def _revoked(self) -> set[str]:
        now = int(self.clock())
        return {
            r[0] for r in self.store.rows("SELECT jti FROM auth_revoked WHERE expires > ?", (now,))
        }

    # -- introspection and revocation
    def introspect(
        self, form: Mapping[str, str], headers: Mapping[str, str], urls: Urls, address: str
    ) -> dict[str, Any]:
        """RFC 7662, for authenticated clients (resource servers, the client itself)."""
        client = self._recorded_client("introspect", form, headers, urls, address)
        if client.public:
            raise OAuthError("invalid_client", "Introspection needs an authenticated client", 401)
        token = form.get("token", "")
        try:
            principal = self.tokens.verify(token, urls.issuer)
        except InvalidToken:
            return self._introspect_refresh(token, client)
        claims = dict(principal.claims)
        claims.pop("kind", None)
        return {"active": True, "token_type": "Bearer", **claims}

    def _introspect_refresh(self, token: str, client: Client) -> dict[str, Any]:
        rows = self.store.rows(
            "SELECT client_id, account_id, scope, expires, used, revoked FROM auth_refresh "
            "WHERE token_hash = ?",
            (token_hash(token),),
        )
        if not rows:
            return {"active": False}
        client_id, account_id, scope, expires, used, revoked = rows[0]
        now = int(self.clock())
        if client_id != client.client_id or used or revoked or expires <= now or not scope:
            return {"active": False}
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": client_id,
            "sub": account_id,
            "scope": scope,
            "exp": expires,
        }

    def revoke(
        self, form: Mapping[str, str], headers: Mapping[str, str], urls: Urls, address: str
    ) -> None:
        """RFC 7009: revoke an access or refresh token of the calling client; an unknown
        token is not an error (the client's goal, a dead token, is reached)."""
        client = self._recorded_client("revoke", form, headers, urls, address)
        token = form.get("token", "")
        now = int(self.clock())
        try:
            principal = self.tokens.verify(token, urls.issuer)
        except InvalidToken:
            principal = None
        owner: str | None = None
        with self.store.transaction() as txn:
            if principal is not None:
                owner = principal.client_id
                if owner == client.client_id:
                    txn.run(
                        "INSERT INTO auth_revoked (jti, expires) VALUES (?, ?) "
                        "ON CONFLICT DO NOTHING",
                        (principal.token_id, principal.expires),
                    )
            else:
                rows = txn.rows(
                    "SELECT family, client_id FROM auth_refresh WHERE token_hash = ?",
                    (token_hash(token),),
                )
                if rows:
                    owner = rows[0][1]
                    if owner == client.client_id:
                        self._revoke_family(txn, rows[0][0], now)
        if owner is not None and owner != client.client_id:
            # RFC 7009 2.1: a client may revoke only its own tokens.
            self.events.record(
                "revoke",
                "failure",
                client_id=client.client_id,
                facility=client.facility,
                address=address,
                reason="client",
            )
            raise OAuthError("unauthorized_client", "This token was not issued to this client")
        self.tokens.forget_revocations()
        self.events.record(
            "revoke",
            "success",
            client_id=client.client_id,
            facility=client.facility,
            address=address,
        )
