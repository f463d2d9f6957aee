"""Citizens' security codes on a real database: issue, activate, expiry, single use, attempts,
the rate limit, the outbox (vnehr.auth.activation)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.people import duc, lan
from tests.unit.auth.test_accounts import FAST, Clock
from vnehr.app import Server
from vnehr.auth.accounts import Accounts, LoginFailed
from vnehr.auth.activation import (
    ALPHABET,
    Activation,
    ActivationError,
    IssuedCode,
    patients_with_cccd,
    person_of_patient,
)
from vnehr.auth.outbox import Outbox
from vnehr.interactions.exchange import FhirRequest

LAN = "001185012345"  # Nguyễn Thị Lan's CCCD (tests/people.py)
PASSWORD = "hoa sen nở giữa hè"
DAY = 86400


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(server: Server, clock: Clock) -> Accounts:
    return Accounts(server.store, clock, hasher=FAST)


@pytest.fixture
def activation(server: Server, accounts: Accounts, clock: Clock) -> Activation:
    assert server.identity is not None
    return Activation(
        server.store,
        accounts,
        clock,
        find_patients=patients_with_cccd(server.store, server.router.ctx.registry),
        person_of=person_of_patient(server.store, server.identity),
    )


def printed(activation: Activation, cccd: str = LAN) -> str:
    issued = activation.issue(cccd, issued_by="tram-y-te-phuc-xa", channel="print")
    assert issued.code is not None
    return issued.code


def refusal(activation: Activation, code: str, cccd: str = LAN, password: str = PASSWORD) -> str:
    with pytest.raises(ActivationError) as refused:
        activation.activate(cccd, code, password)
    return refused.value.reason


def create(server: Server, resource: dict[str, Any]) -> str:
    response = server.router.handle(
        FhirRequest("POST", resource["resourceType"], resource=resource)
    )
    assert response.status == 201, response.resource
    location = {k.lower(): v for k, v in response.headers.items()}["location"]
    return str(location.split("/")[-3])  # .../Patient/<id>/_history/1


def test_a_code_has_ten_unambiguous_characters_grouped_for_reading(
    activation: Activation,
) -> None:
    codes = [printed(activation) for _ in range(20)]
    for code in codes:
        assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{2}", code)
        assert not set(code.replace("-", "")) - set(ALPHABET)
        assert not set(code) & set("01OI")
    assert len(set(codes)) == 20


def test_it_refuses_to_issue_a_code_for_an_invalid_cccd_or_without_a_phone(
    activation: Activation,
) -> None:
    with pytest.raises(ActivationError, match="not a valid CCCD") as refused:
        activation.issue("991185012345", issued_by="op", channel="print")
    assert refused.value.reason == "cccd"
    with pytest.raises(ActivationError, match="phone number"):
        activation.issue(LAN, issued_by="op", channel="sms", recipient=None)
    with pytest.raises(ActivationError, match="phone number"):
        activation.issue(LAN, issued_by="op", channel="sms", recipient="call Lan")
    with pytest.raises(ActivationError, match="channel"):
        activation.issue(LAN, issued_by="op", channel="email", recipient="lan@example.vn")


def test_an_sms_code_goes_to_the_outbox_and_is_not_returned(
    server: Server, activation: Activation, clock: Clock
) -> None:
    issued = activation.issue(LAN, issued_by="bv-bach-mai", channel="sms", recipient="0912 345 678")
    assert issued == IssuedCode(
        issued.code_id, LAN, "sms", "0912345678", int(clock()) + 7 * DAY, None
    )
    (message,) = Outbox(server.store).pending()
    assert (message.channel, message.recipient, message.sent) == ("sms", "0912345678", None)
    assert "het han 22/06/2025" in message.body  # 7 days, Vietnam time
    code = re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{2}", message.body)
    assert code is not None
    assert activation.activate(LAN, code.group(), PASSWORD).username == LAN


def test_a_printed_code_is_returned_and_the_outbox_only_records_the_printing(
    server: Server, activation: Activation
) -> None:
    code = printed(activation)
    outbox = Outbox(server.store)
    assert outbox.pending() == []
    (message,) = outbox.all()
    assert (message.channel, message.recipient) == ("print", None)
    assert message.sent is not None
    assert "********2345" in message.body and "tram-y-te-phuc-xa" in message.body
    assert code not in message.body


def test_the_plain_code_is_nowhere_in_the_database(server: Server, activation: Activation) -> None:
    code = printed(activation)
    refusal(activation, "AAAA-BBBB-CC")
    activation.activate(LAN, code, PASSWORD)
    tables = ("auth_activation", "auth_outbox", "auth_events", "auth_accounts")
    dump = repr([server.store.rows(f"SELECT * FROM {table}") for table in tables])
    assert LAN in dump  # the scan does see the tables' contents
    assert code not in dump and code.replace("-", "") not in dump
    (stored,) = server.store.rows("SELECT code_hash FROM auth_activation")[0]
    assert stored.startswith("$argon2id$")


def test_activation_opens_the_citizen_account_linked_to_her_patient_and_person(
    server: Server, activation: Activation, accounts: Accounts
) -> None:
    patient = create(server, lan())
    create(server, duc())
    code = printed(activation)
    account = activation.activate(" 001 185 012 345 ", code, PASSWORD)
    assert (account.kind, account.username) == ("citizen", LAN)
    assert account.fhir_user == f"Patient/{patient}"
    assert server.identity is not None
    assert account.person == server.identity.person_of(server.store.rows, patient)
    assert account.person is not None
    assert accounts.authenticate(LAN, PASSWORD) == account


def test_a_citizen_without_a_patient_record_gets_an_account_without_links(
    activation: Activation,
) -> None:
    account = activation.activate(LAN, printed(activation), PASSWORD)
    assert (account.fhir_user, account.person) == (None, None)


def test_a_code_typed_in_lower_case_without_dashes_is_accepted(activation: Activation) -> None:
    code = printed(activation)
    assert activation.activate(LAN, f" {code.replace('-', '').lower()} ", PASSWORD).username == LAN


def test_a_code_serves_only_once(activation: Activation) -> None:
    code = printed(activation)
    activation.activate(LAN, code, PASSWORD)
    assert refusal(activation, code, password="một mật khẩu khác hẳn") == "used"


def test_an_expired_code_is_refused(activation: Activation, clock: Clock) -> None:
    code = printed(activation)
    clock.advance(7 * DAY)
    assert refusal(activation, code) == "expired"


def test_a_code_still_works_on_its_last_second(activation: Activation, clock: Clock) -> None:
    code = printed(activation)
    clock.advance(7 * DAY - 1)
    activation.activate(LAN, code, PASSWORD)


def test_a_code_dies_after_five_wrong_tries(activation: Activation) -> None:
    code = printed(activation)
    for _ in range(5):
        assert refusal(activation, "AAAA-BBBB-CC") == "code"
    assert refusal(activation, code) == "attempts"  # the right code, too late
    assert refusal(activation, "AAAA-BBBB-CC") == "code"


def test_a_new_code_ends_the_earlier_one(activation: Activation) -> None:
    old = printed(activation)
    new = printed(activation)
    assert refusal(activation, old) == "code"
    activation.activate(LAN, new, PASSWORD)


def test_unknown_cccds_and_wrong_codes_read_the_same(activation: Activation) -> None:
    printed(activation)
    with pytest.raises(ActivationError) as wrong_code:
        activation.activate(LAN, "AAAA-BBBB-CC", PASSWORD)
    with pytest.raises(ActivationError) as no_code:
        activation.activate("079214000123", "AAAA-BBBB-CC", PASSWORD)
    with pytest.raises(ActivationError) as invalid:
        activation.activate("12345", "AAAA-BBBB-CC", PASSWORD)
    assert (no_code.value.reason, wrong_code.value.reason) == ("unknown", "code")
    assert str(wrong_code.value) == str(no_code.value) == str(invalid.value)


def test_a_weak_password_is_refused_without_spending_the_code(activation: Activation) -> None:
    code = printed(activation)
    with pytest.raises(ActivationError, match="only digits") as refused:
        activation.activate(LAN, code, "0912345678")
    assert (refused.value.reason, refused.value.rule) == ("password", "digits")
    assert refusal(activation, code, password=f"cccd {LAN} là mật khẩu") == "password"
    activation.activate(LAN, code, PASSWORD)


def test_failures_per_cccd_are_limited_across_codes(activation: Activation, clock: Clock) -> None:
    for _ in range(2):
        printed(activation)
        for _ in range(5):
            refusal(activation, "AAAA-BBBB-CC")
    code = printed(activation)  # a fresh code, but ten failures in the hour
    assert refusal(activation, code) == "rate-limited"
    assert refusal(activation, code, cccd="079214000123") == "unknown"  # another CCCD
    clock.advance(3600)
    activation.activate(LAN, code, PASSWORD)


def test_reactivation_sets_a_new_password_and_lifts_lock_and_disable(
    activation: Activation, accounts: Accounts
) -> None:
    first = activation.activate(LAN, printed(activation), PASSWORD)
    for _ in range(5):
        with pytest.raises(LoginFailed):
            accounts.authenticate(LAN, "wrong password")
    accounts.disable(first.account_id)
    again = activation.activate(LAN, printed(activation), "mật khẩu mới sau khi quên")
    assert again.account_id == first.account_id and not again.disabled
    assert accounts.authenticate(LAN, "mật khẩu mới sau khi quên") == again
    with pytest.raises(LoginFailed):
        accounts.authenticate(LAN, PASSWORD)


def test_every_attempt_is_a_security_event_without_the_code(
    server: Server, activation: Activation
) -> None:
    code = printed(activation)
    refusal(activation, "AAAA-BBBB-CC")
    account = activation.activate(LAN, code, PASSWORD)
    events = [
        (e.kind, e.outcome, e.detail.get("reason"), e.account_id)
        for e in reversed(activation.events.recent())
    ]
    assert events == [
        ("activation-issue", "success", None, None),
        ("activation", "failure", "code", None),
        ("activation", "success", None, account.account_id),
    ]
    assert code not in repr(activation.events.recent())
