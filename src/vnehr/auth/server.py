"""The authorization server as one object: keys, tokens, clients, accounts, VNeID.

`AuthorizationServer.from_settings` is where production mode refuses to start without a
signing key or a way to sign in; development mode makes a throwaway key and says so.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vnehr.auth.accounts import Account, AccountError, Accounts
from vnehr.auth.activation import Activation
from vnehr.auth.keys import KeyFileError, SigningKeys
from vnehr.auth.service import TokenService, Urls
from vnehr.settings import Settings, SettingsError
from vnehr.storage.base import Store

if TYPE_CHECKING:
    from vnehr.auth.vneid import VneidClient
    from vnehr.interactions.exchange import FhirRequest

log = logging.getLogger("vnehr.auth")


def check_serving(settings: Settings) -> None:
    """Production mode serves only with signing keys and a way to sign in."""
    if settings.dev:
        return
    if not settings.auth_keys:
        raise SettingsError(
            "Refusing to start: no signing key. Make one with `vnehr auth keys rotate "
            "--file /etc/vnehr/keys.json` and set VNEHR_AUTH_KEYS to that file "
            "(or run in development mode, --dev, on synthetic data only)."
        )
    if not settings.login_methods:
        raise SettingsError("Refusing to start: VNEHR_AUTH_LOGIN is empty, so no one could sign in")


def signing_keys(settings: Settings) -> SigningKeys:
    """The configured keys; without any (development mode, or the CLI, which serves nothing)
    a throwaway key, so that nothing signed here outlives the process."""
    if settings.auth_keys:
        try:
            return SigningKeys.load(settings.auth_keys)
        except KeyFileError as exc:
            raise SettingsError(f"VNEHR_AUTH_KEYS: {exc}") from None
    if settings.dev:
        log.warning("Development mode: signing tokens with a throwaway key (VNEHR_AUTH_KEYS unset)")
    return _throwaway()


@functools.cache
def _throwaway() -> SigningKeys:
    # One per process: making an RSA key takes a tenth of a second, and a process that
    # opens many servers on the same data (the CLI, tests) should not pay it each time.
    return SigningKeys.generate()


class AuthorizationServer:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        keys: SigningKeys,
        *,
        clock: Callable[[], float] = time.time,
        find_patients: Callable[[str], list[str]] | None = None,
        person_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.keys = keys
        self.clock = clock
        self.service = TokenService(
            store,
            keys,
            token_lifetime=settings.auth_token_lifetime,
            refresh_lifetime=settings.auth_refresh_lifetime,
            clock=clock,
        )
        self.accounts: Accounts = Accounts(
            store,
            clock,
            max_attempts=settings.auth_max_attempts,
            lockout_seconds=settings.auth_lockout_seconds,
        )
        self.activation: Activation = Activation(
            store,
            self.accounts,
            clock,
            code_lifetime=settings.activation_code_lifetime,
            max_attempts=settings.auth_max_attempts,
            find_patients=find_patients,
            person_of=person_of,
        )
        self._vneid: dict[str, VneidClient] = {}
        self._find_patients = find_patients
        self._person_of = person_of

    @classmethod
    def from_settings(cls, settings: Settings, store: Store, **kwargs: Any) -> AuthorizationServer:
        return cls(settings, store, signing_keys(settings), **kwargs)

    def citizen_from_vneid(self, cccd: str, name: str | None) -> Account:
        """The citizen account of a CCCD that VNeID vouched for, opened on first sign-in
        (VNeID identified the person: no security code is needed) and linked to the
        Patient carrying that CCCD and its Person in the master patient index."""
        found = self.accounts.citizen_for_cccd(cccd)
        if found is not None:
            if found.disabled:
                raise AccountError("This account is disabled")
            return found
        patients = self._find_patients(cccd) if self._find_patients else []
        patient = patients[0] if patients else None
        person = self._person_of(patient) if patient and self._person_of else None
        return self.accounts.create(
            "citizen",
            cccd,
            name=name,
            fhir_user=f"Patient/{patient}" if patient else None,
            person=person,
        )

    def denied(self, request: FhirRequest, why: str) -> None:
        """A FHIR request its token does not allow (Context.denied)."""
        principal = request.principal
        if principal is None:
            return
        self.service.events.record(
            "request",
            "failure",
            client_id=principal.client_id,
            account_id=principal.subject,
            facility=principal.facility,
            reason="forbidden",
            method=request.method,
            path=request.path,
            why=why,
        )

    @property
    def tokens(self) -> Any:
        return self.service.tokens

    def urls(self, fhir_base: str) -> Urls:
        """The server's URLs: the configured base URL, else the request's."""
        return Urls(self.settings.base_url.rstrip("/") or fhir_base)

    def vneid(self, urls: Urls) -> VneidClient | None:
        """The VNeID client, when VNeID sign-in is on (one per public origin)."""
        if "vneid" not in self.settings.login_methods:
            return None
        client = self._vneid.get(urls.origin)
        if client is None:
            from vnehr.auth.vneid import VneidClient, VneidConfig

            config = VneidConfig(
                issuer=self.settings.vneid_issuer,
                client_id=self.settings.vneid_client_id,
                client_secret=self.settings.vneid_client_secret,
                redirect_uri=urls.endpoint("vneid/callback"),
                cccd_claim=self.settings.vneid_cccd_claim,
            )
            client = self._vneid[urls.origin] = VneidClient(config, clock=self.clock)
        return client
