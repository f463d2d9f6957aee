"""Accounts on a real database: creation rules, sign-in, lock-out, TOTP (vnehr.auth.accounts)."""

from __future__ import annotations

import pyotp
import pytest
from argon2 import PasswordHasher

from vnehr.app import Server
from vnehr.auth.accounts import Account, AccountError, Accounts, LoginFailed

# Cheap argon2 parameters: these tests hash and verify dozens of times.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "hoa sen nở giữa hè"
START = 1_750_000_000.0  # 2025-06-15


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(server: Server, clock: Clock) -> Accounts:
    return Accounts(server.store, clock, hasher=FAST)


def dr_hoa(accounts: Accounts, password: str = PASSWORD) -> Account:
    """BS. Phạm Thị Hoa: an internist at Bạch Mai hospital."""
    return accounts.create(
        "practitioner",
        "bs.hoa",
        password=password,
        name="BS. Phạm Thị Hoa",
        fhir_user="Practitioner/pham-thi-hoa",
        facility="bv-bach-mai",
    )


def reason(accounts: Accounts, username: str, password: str, code: str | None = None) -> str:
    with pytest.raises(LoginFailed) as failed:
        accounts.authenticate(username, password, code)
    return failed.value.reason


def test_it_creates_a_practitioner_account_at_a_facility(accounts: Accounts) -> None:
    hoa = dr_hoa(accounts)
    assert hoa == accounts.get(hoa.account_id) == accounts.by_username("BS.Hoa")
    assert (hoa.kind, hoa.username, hoa.facility) == ("practitioner", "bs.hoa", "bv-bach-mai")
    assert hoa.fhir_user == "Practitioner/pham-thi-hoa"
    assert not hoa.totp_enabled and not hoa.disabled


@pytest.mark.parametrize(
    ("kind", "username", "extra", "message"),
    [
        ("practitioner", "bs.lan", {"fhir_user": "Practitioner/1"}, "needs a facility"),
        ("practitioner", "bs.lan", {"facility": "bv-1"}, "needs fhir_user"),
        ("practitioner", "bs.lan", {"facility": "bv-1", "fhir_user": "Patient/1"}, "fhir_user"),
        ("citizen", "991185012345", {}, "not a valid"),
        ("citizen", "001185012345", {"fhir_user": "Practitioner/1"}, "Patient/<id>"),
        ("operator", "x", {}, "3 to 64"),
        ("operator", "admin root", {}, "3 to 64"),
        ("operator", "admin", {"fhir_user": "javascript:alert(1)"}, "a reference"),
        ("nurse", "y.ta.mai", {}, "kind must be one of"),
    ],
)
def test_it_refuses_accounts_that_break_the_rules(
    accounts: Accounts, kind: str, username: str, extra: dict[str, str], message: str
) -> None:
    with pytest.raises(AccountError, match=message):
        accounts.create(kind, username, **extra)
    assert accounts.all() == []


def test_usernames_are_unique_whatever_their_case(accounts: Accounts) -> None:
    dr_hoa(accounts)
    with pytest.raises(AccountError, match=r"'bs\.hoa' is taken"):
        accounts.create("operator", "  BS.HOA ", password=PASSWORD)
    assert [a.username for a in accounts.all()] == ["bs.hoa"]


def test_it_refuses_a_weak_password_and_creates_nothing(accounts: Accounts) -> None:
    with pytest.raises(AccountError, match="at least 10 characters"):
        dr_hoa(accounts, password="hoa123")
    with pytest.raises(AccountError, match="username"):
        dr_hoa(accounts, password="I am bs.hoa at Bach Mai")
    assert accounts.by_username("bs.hoa") is None


def test_the_password_is_kept_only_as_an_argon2_hash(server: Server, accounts: Accounts) -> None:
    dr_hoa(accounts)
    rows = server.store.rows("SELECT * FROM auth_accounts")
    assert PASSWORD not in repr(rows)
    assert any(str(value).startswith("$argon2id$") for value in rows[0])


def test_it_signs_in_with_the_right_password(accounts: Accounts) -> None:
    hoa = dr_hoa(accounts)
    assert accounts.authenticate("bs.hoa", PASSWORD) == hoa
    assert accounts.authenticate(" BS.Hoa ", PASSWORD) == hoa


def test_an_unknown_username_and_a_wrong_password_fail_with_their_reason(
    accounts: Accounts,
) -> None:
    dr_hoa(accounts)
    assert reason(accounts, "bs.khong.co", PASSWORD) == "unknown"
    assert reason(accounts, "bs.hoa", PASSWORD.upper()) == "password"
    assert reason(accounts, "bs.hoa", "") == "password"


def test_it_locks_the_account_after_five_wrong_passwords(accounts: Accounts) -> None:
    dr_hoa(accounts)
    for _ in range(5):
        assert reason(accounts, "bs.hoa", "wrong password") == "password"
    assert reason(accounts, "bs.hoa", PASSWORD) == "locked"  # even the right one


def test_the_lock_ends_by_itself_after_the_lockout_time(accounts: Accounts, clock: Clock) -> None:
    hoa = dr_hoa(accounts)
    for _ in range(5):
        reason(accounts, "bs.hoa", "wrong password")
    clock.advance(899)
    assert reason(accounts, "bs.hoa", PASSWORD) == "locked"
    clock.advance(1)
    assert accounts.authenticate("bs.hoa", PASSWORD) == hoa
    # A fresh set of attempts after the lock.
    for _ in range(4):
        reason(accounts, "bs.hoa", "wrong password")
    assert accounts.authenticate("bs.hoa", PASSWORD) == hoa


def test_a_success_starts_the_count_of_failures_again(accounts: Accounts) -> None:
    hoa = dr_hoa(accounts)
    for _ in range(4):
        reason(accounts, "bs.hoa", "wrong password")
    accounts.authenticate("bs.hoa", PASSWORD)
    for _ in range(4):
        reason(accounts, "bs.hoa", "wrong password")
    assert accounts.authenticate("bs.hoa", PASSWORD) == hoa


def test_the_attempts_and_lockout_are_configurable(server: Server, clock: Clock) -> None:
    strict = Accounts(server.store, clock, max_attempts=2, lockout_seconds=60, hasher=FAST)
    dr_hoa(strict)
    reason(strict, "bs.hoa", "wrong password")
    reason(strict, "bs.hoa", "wrong password")
    assert reason(strict, "bs.hoa", PASSWORD) == "locked"
    clock.advance(60)
    strict.authenticate("bs.hoa", PASSWORD)


def test_a_disabled_account_cannot_sign_in_and_can_be_enabled_again(accounts: Accounts) -> None:
    hoa = dr_hoa(accounts)
    assert accounts.disable(hoa.account_id)
    assert accounts.get(hoa.account_id).disabled  # type: ignore[union-attr]
    assert reason(accounts, "bs.hoa", PASSWORD) == "disabled"
    assert reason(accounts, "bs.hoa", "wrong password") == "password"  # no hint to a guesser
    accounts.enable(hoa.account_id)
    accounts.authenticate("bs.hoa", PASSWORD)
    assert not accounts.disable("no-such-account")


def test_a_new_password_replaces_the_old_and_lifts_the_lock(accounts: Accounts) -> None:
    hoa = dr_hoa(accounts)
    for _ in range(5):
        reason(accounts, "bs.hoa", "wrong password")
    accounts.set_password(hoa.account_id, "một mật khẩu mới toanh")
    assert accounts.authenticate("bs.hoa", "một mật khẩu mới toanh") == hoa
    assert reason(accounts, "bs.hoa", PASSWORD) == "password"
    with pytest.raises(AccountError, match="only digits"):
        accounts.set_password(hoa.account_id, "0912345678")


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(
    server: Server, accounts: Accounts, clock: Clock
) -> None:
    dr_hoa(accounts)
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    Accounts(server.store, clock, hasher=stronger).authenticate("bs.hoa", PASSWORD)
    (stored,) = server.store.rows("SELECT password_hash FROM auth_accounts")[0]
    assert "m=2048,t=2,p=1" in stored
    accounts.authenticate("bs.hoa", PASSWORD)  # still the same password


def enrol(accounts: Accounts, account: Account, clock: Clock) -> pyotp.TOTP:
    secret, uri = accounts.begin_totp(account.account_id)
    assert uri.startswith("otpauth://totp/vnehr:bs.hoa?secret=")
    assert "issuer=vnehr" in uri
    totp = pyotp.TOTP(secret)
    assert not accounts.confirm_totp(
        account.account_id, "000000" if totp.at(clock()) != "000000" else "111111"
    )
    assert not accounts.get(account.account_id).totp_enabled  # type: ignore[union-attr]
    assert accounts.confirm_totp(account.account_id, totp.at(clock()))
    assert accounts.get(account.account_id).totp_enabled  # type: ignore[union-attr]
    return totp


def test_totp_is_pending_until_a_right_code_confirms_it(accounts: Accounts, clock: Clock) -> None:
    hoa = dr_hoa(accounts)
    accounts.begin_totp(hoa.account_id)
    assert accounts.authenticate("bs.hoa", PASSWORD) == hoa  # pending: not asked yet
    enrol(accounts, hoa, clock)
    with pytest.raises(AccountError, match="already enabled"):
        accounts.begin_totp(hoa.account_id)


def test_with_totp_on_a_missing_code_is_required_and_a_wrong_one_refused(
    accounts: Accounts, clock: Clock
) -> None:
    hoa = dr_hoa(accounts)
    totp = enrol(accounts, hoa, clock)
    clock.advance(60)
    assert reason(accounts, "bs.hoa", PASSWORD) == "totp-required"
    assert reason(accounts, "bs.hoa", PASSWORD, "  ") == "totp-required"
    wrong = totp.at(clock() + 3600)
    assert reason(accounts, "bs.hoa", PASSWORD, wrong) == "totp"
    assert reason(accounts, "bs.hoa", PASSWORD, "12ab56") == "totp"
    assert accounts.authenticate("bs.hoa", PASSWORD, totp.at(clock())).account_id == hoa.account_id
    clock.advance(30)
    assert reason(accounts, "bs.hoa", "wrong password", totp.at(clock())) == "password"


def test_a_totp_code_from_the_previous_step_is_accepted(accounts: Accounts, clock: Clock) -> None:
    hoa = dr_hoa(accounts)
    totp = enrol(accounts, hoa, clock)
    clock.advance(90)
    assert (
        accounts.authenticate("bs.hoa", PASSWORD, totp.at(clock() - 30)).account_id
        == hoa.account_id
    )


def test_a_totp_code_cannot_be_used_twice(accounts: Accounts, clock: Clock) -> None:
    hoa = dr_hoa(accounts)
    totp = enrol(accounts, hoa, clock)
    assert reason(accounts, "bs.hoa", PASSWORD, totp.at(clock())) == "totp"  # the enrolment's
    clock.advance(30)
    code = totp.at(clock())
    assert accounts.authenticate("bs.hoa", PASSWORD, code).account_id == hoa.account_id
    assert reason(accounts, "bs.hoa", PASSWORD, code) == "totp"
    clock.advance(30)
    assert accounts.authenticate("bs.hoa", PASSWORD, totp.at(clock())).account_id == hoa.account_id


def test_missing_and_wrong_totp_codes_count_towards_the_lock(
    accounts: Accounts, clock: Clock
) -> None:
    hoa = dr_hoa(accounts)
    totp = enrol(accounts, hoa, clock)
    clock.advance(30)
    for _ in range(3):
        reason(accounts, "bs.hoa", PASSWORD)
    for _ in range(2):
        reason(accounts, "bs.hoa", PASSWORD, "000000" if totp.at(clock()) != "000000" else "1")
    assert reason(accounts, "bs.hoa", PASSWORD, totp.at(clock())) == "locked"


def test_an_operator_can_reset_totp_after_a_lost_phone(accounts: Accounts, clock: Clock) -> None:
    hoa = dr_hoa(accounts)
    enrol(accounts, hoa, clock)
    assert accounts.reset_totp(hoa.account_id)
    assert accounts.authenticate("bs.hoa", PASSWORD) == hoa
    accounts.begin_totp(hoa.account_id)


def test_a_citizen_is_found_by_their_cccd_typed_with_spaces(accounts: Accounts) -> None:
    lan = accounts.create("citizen", "001185012345", password=PASSWORD, fhir_user="Patient/lan")
    accounts.create("operator", "admin", password=PASSWORD)
    assert accounts.citizen_for_cccd("001 185 012 345") == lan
    assert accounts.citizen_for_cccd("admin") is None
    assert accounts.authenticate("001.185.012.345", PASSWORD) == lan
    assert [a.username for a in accounts.all("citizen")] == ["001185012345"]
