"""VNeID sign-in against a real OpenID Connect provider on loopback: it works, and fails closed."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.auth.oidc_provider import OidcProvider
from vnehr.auth.vneid import (
    JWKS_REFETCH_INTERVAL,
    VneidClient,
    VneidConfig,
    VneidError,
    VneidIdentity,
)


class Clock:
    """vnehr's clock, which the tests move; the provider dates its tokens by the real one."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def config_for(provider: OidcProvider) -> VneidConfig:
    return VneidConfig(
        issuer=provider.issuer,
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        redirect_uri=provider.redirect_uri,
        timeout=2.0,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def vneid(oidc_provider: OidcProvider, clock: Clock) -> Iterator[VneidClient]:
    with VneidClient(config_for(oidc_provider), clock=clock) as client:
        yield client


def sign_in(vneid: VneidClient, provider: OidcProvider) -> VneidIdentity:
    start = vneid.start()
    code, state = provider.authorize(start.url)
    return vneid.finish(
        code=code,
        state=state,
        expected_state=start.state,
        nonce=start.nonce,
        code_verifier=start.code_verifier,
    )


def refusal(vneid: VneidClient, provider: OidcProvider) -> VneidError:
    """The error a sign-in fails with; its message must give away nothing secret."""
    with pytest.raises(VneidError) as caught:
        sign_in(vneid, provider)
    assert provider.client_secret not in str(caught.value)
    assert "eyJ" not in str(caught.value)  # no JWT (every JOSE header starts so)
    return caught.value


# -- it works ------------------------------------------------------------------------------


def test_it_signs_a_citizen_in_by_their_cccd(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    identity = sign_in(vneid, oidc_provider)
    assert identity.cccd == "001185012345"
    assert identity.name == "Nguyễn Thị Lan"
    assert identity.subject == "vneid-001185012345"
    assert identity.claims["iss"] == oidc_provider.issuer


def test_it_reads_the_cccd_from_the_configured_claim(
    oidc_provider: OidcProvider, clock: Clock
) -> None:
    config = replace(config_for(oidc_provider), cccd_claim="sub")
    oidc_provider.set_user("079214000123", "Trần Văn Đức")
    with VneidClient(config, clock=clock) as vneid, pytest.raises(VneidError) as caught:
        sign_in(vneid, oidc_provider)  # sub is "vneid-079214000123", not a CCCD
    assert caught.value.reason == "claim"


def test_the_start_url_asks_for_a_code_with_pkce_state_and_nonce(vneid: VneidClient) -> None:
    start = vneid.start()
    query = {k: v[0] for k, v in parse_qs(urlsplit(start.url).query).items()}
    assert query["response_type"] == "code"
    assert query["scope"] == "openid"
    assert query["state"] == start.state
    assert query["nonce"] == start.nonce
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == create_s256_code_challenge(start.code_verifier)
    assert start.code_verifier not in start.url
    assert "client_secret" not in query


def test_each_start_has_its_own_state_nonce_and_verifier(vneid: VneidClient) -> None:
    first, second = vneid.start(), vneid.start()
    assert first.state != second.state
    assert first.nonce != second.nonce
    assert first.code_verifier != second.code_verifier


def test_it_accepts_an_es256_signed_id_token(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    oidc_provider.algorithm = "ES256"
    assert sign_in(vneid, oidc_provider).cccd == "001185012345"


def test_it_fetches_discovery_and_keys_once_for_many_sign_ins(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    for _ in range(3):
        sign_in(vneid, oidc_provider)
    assert oidc_provider.requests["/.well-known/openid-configuration"] == 1
    assert oidc_provider.requests["/jwks"] == 1
    assert oidc_provider.requests["/token"] == 3


# -- key rotation ----------------------------------------------------------------------------


def test_it_picks_up_a_rotated_key_by_fetching_the_key_set_again(
    vneid: VneidClient, oidc_provider: OidcProvider, clock: Clock
) -> None:
    sign_in(vneid, oidc_provider)
    oidc_provider.misbehave("rotated-key")
    clock.advance(JWKS_REFETCH_INTERVAL + 1)
    assert sign_in(vneid, oidc_provider).cccd == "001185012345"
    assert oidc_provider.requests["/jwks"] == 2


def test_unknown_keys_make_it_fetch_the_key_set_at_most_once_a_minute(
    vneid: VneidClient, oidc_provider: OidcProvider, clock: Clock
) -> None:
    sign_in(vneid, oidc_provider)
    oidc_provider.misbehave("unknown-key")
    assert refusal(vneid, oidc_provider).reason == "signature"
    assert refusal(vneid, oidc_provider).reason == "signature"
    assert oidc_provider.requests["/jwks"] == 1
    clock.advance(JWKS_REFETCH_INTERVAL + 1)
    assert refusal(vneid, oidc_provider).reason == "signature"
    assert oidc_provider.requests["/jwks"] == 2


# -- the ID token fails closed ---------------------------------------------------------------


def test_it_refuses_an_id_token_from_another_issuer(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    oidc_provider.misbehave("wrong-issuer")
    assert refusal(vneid, oidc_provider).reason == "issuer"


def test_it_refuses_an_id_token_for_another_client(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    oidc_provider.misbehave("wrong-audience")
    assert refusal(vneid, oidc_provider).reason == "audience"


def test_it_refuses_several_audiences_without_azp(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    oidc_provider.misbehave("several-audiences")
    assert refusal(vneid, oidc_provider).reason == "audience"


def test_it_refuses_an_expired_id_token(vneid: VneidClient, oidc_provider: OidcProvider) -> None:
    oidc_provider.misbehave("expired")
    assert refusal(vneid, oidc_provider).reason == "expired"


def test_it_refuses_an_id_token_that_expired_by_its_own_clock(
    vneid: VneidClient, oidc_provider: OidcProvider, clock: Clock
) -> None:
    clock.advance(400)  # the provider's tokens live 300 s; the leeway is 30 s
    assert refusal(vneid, oidc_provider).reason == "expired"


def test_it_refuses_an_id_token_issued_in_the_future(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    oidc_provider.misbehave("issued-in-future")
    assert refusal(vneid, oidc_provider).reason == "not-yet-valid"


def test_it_refuses_an_unsigned_id_token(vneid: VneidClient, oidc_provider: OidcProvider) -> None:
    oidc_provider.misbehave("unsigned")
    assert refusal(vneid, oidc_provider).reason == "algorithm"


def test_it_refuses_an_hs256_token_keyed_with_the_public_key(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    oidc_provider.misbehave("hs256-public-key")
    assert refusal(vneid, oidc_provider).reason == "algorithm"


def test_it_refuses_an_id_token_signed_by_an_unknown_key(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    oidc_provider.misbehave("unknown-key")
    assert refusal(vneid, oidc_provider).reason == "signature"


def test_it_refuses_another_key_posing_under_the_idps_kid(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    oidc_provider.misbehave("forged-kid")
    assert refusal(vneid, oidc_provider).reason == "signature"


def test_it_refuses_a_tampered_payload(vneid: VneidClient, oidc_provider: OidcProvider) -> None:
    oidc_provider.misbehave("tampered")
    assert refusal(vneid, oidc_provider).reason == "signature"


def test_it_refuses_an_id_token_from_another_sign_in(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    oidc_provider.misbehave("wrong-nonce")
    assert refusal(vneid, oidc_provider).reason == "nonce"


def test_it_refuses_an_id_token_without_a_cccd(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    oidc_provider.misbehave("no-cccd")
    assert refusal(vneid, oidc_provider).reason == "claim"


def test_it_refuses_a_cccd_with_no_such_province(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    oidc_provider.misbehave("invalid-cccd")
    assert refusal(vneid, oidc_provider).reason == "claim"


@pytest.mark.parametrize("cccd", ["00118501234", "001 185 012 345", "００１１８５０１２３４５"])
def test_it_refuses_a_cccd_that_is_not_twelve_digits(
    vneid: VneidClient, oidc_provider: OidcProvider, cccd: str
) -> None:
    oidc_provider.set_user(cccd, "Nguyễn Thị Lan")
    assert refusal(vneid, oidc_provider).reason == "claim"


def test_verify_id_token_refuses_what_is_not_a_jwt(vneid: VneidClient) -> None:
    with pytest.raises(VneidError) as caught:
        vneid.verify_id_token("not-a-jwt", nonce="n")
    assert caught.value.reason == "signature"


# -- the flow fails closed -------------------------------------------------------------------


def test_it_refuses_a_callback_whose_state_does_not_match(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    start = vneid.start()
    code, _ = oidc_provider.authorize(start.url)
    with pytest.raises(VneidError) as caught:
        vneid.finish(
            code=code,
            state="a-state-from-an-attacker",
            expected_state=start.state,
            nonce=start.nonce,
            code_verifier=start.code_verifier,
        )
    assert caught.value.reason == "state"
    assert oidc_provider.requests["/token"] == 0  # the code was never redeemed


def test_a_code_cannot_be_redeemed_without_its_verifier(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    start = vneid.start()
    code, state = oidc_provider.authorize(start.url)
    with pytest.raises(VneidError) as caught:
        vneid.finish(
            code=code,
            state=state,
            expected_state=start.state,
            nonce=start.nonce,
            code_verifier=vneid.start().code_verifier,
        )
    assert (caught.value.reason, caught.value.error) == ("idp-error", "invalid_grant")


def test_it_reports_the_idps_oauth_error(vneid: VneidClient, oidc_provider: OidcProvider) -> None:
    oidc_provider.misbehave("oauth-error")
    error = refusal(vneid, oidc_provider)
    assert (error.reason, error.error) == ("idp-error", "invalid_grant")
    assert "invalid_grant" in str(error)


def test_it_reports_a_wrong_client_secret_without_showing_it(
    oidc_provider: OidcProvider, clock: Clock
) -> None:
    config = replace(config_for(oidc_provider), client_secret="not-the-secret")
    with VneidClient(config, clock=clock) as vneid:
        error = refusal(vneid, oidc_provider)
    assert (error.reason, error.error) == ("idp-error", "invalid_client")
    assert "not-the-secret" not in str(error)


def test_it_refuses_a_token_response_without_an_id_token(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    oidc_provider.misbehave("no-id-token")
    assert refusal(vneid, oidc_provider).reason == "token-response"


def test_it_refuses_a_discovery_document_naming_another_issuer(
    oidc_provider: OidcProvider, clock: Clock
) -> None:
    config = replace(config_for(oidc_provider), issuer=oidc_provider.issuer + "/")
    with VneidClient(config, clock=clock) as vneid, pytest.raises(VneidError) as caught:
        vneid.start()
    assert caught.value.reason == "issuer"


def test_it_reports_an_unreachable_idp(clock: Clock) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = VneidConfig(
        issuer=f"http://127.0.0.1:{port}/vneid",
        client_id="vnehr",
        client_secret="secret",
        redirect_uri="https://ehr.example.vn/auth/vneid/callback",
        timeout=1.0,
    )
    with VneidClient(config, clock=clock) as vneid, pytest.raises(VneidError) as caught:
        vneid.start()
    assert caught.value.reason == "unreachable"


def test_it_reports_an_idp_gone_before_the_callback(
    vneid: VneidClient, oidc_provider: OidcProvider
) -> None:
    start = vneid.start()
    code, state = oidc_provider.authorize(start.url)
    oidc_provider.stop()
    with pytest.raises(VneidError) as caught:
        vneid.finish(
            code=code,
            state=state,
            expected_state=start.state,
            nonce=start.nonce,
            code_verifier=start.code_verifier,
        )
    assert caught.value.reason == "unreachable"


def test_it_will_not_talk_to_an_idp_over_plain_http() -> None:
    config = VneidConfig(
        issuer="http://vneid.example.vn",
        client_id="vnehr",
        client_secret="secret",
        redirect_uri="https://ehr.example.vn/auth/vneid/callback",
    )
    with pytest.raises(VneidError) as caught:
        VneidClient(config)
    assert caught.value.reason == "config"
