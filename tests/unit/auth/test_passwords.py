"""Password hashing (argon2id) and the password policy (vnehr.auth.passwords)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from vnehr.auth.passwords import (
    DEFAULT_HASHER,
    MAX_LENGTH,
    check_password,
    hash_password,
    needs_rehash,
    password_rule,
    verify_password,
)

# Cheap parameters: the policy is the same, only the cost differs.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_a_password_is_hashed_with_argon2id_at_the_default_cost_and_verifies() -> None:
    hashed = hash_password("hoa sen nở giữa hè")
    assert hashed.startswith("$argon2id$")
    assert "m=65536,t=3,p=4" in hashed
    assert "hoa sen" not in hashed
    assert verify_password(hashed, "hoa sen nở giữa hè")
    assert not needs_rehash(hashed)


def test_two_hashes_of_the_same_password_differ() -> None:
    assert hash_password("mật khẩu dài", FAST) != hash_password("mật khẩu dài", FAST)


def test_a_wrong_password_does_not_verify() -> None:
    hashed = hash_password("correct horse battery", FAST)
    assert not verify_password(hashed, "correct horse batterY", FAST)


def test_no_hash_verifies_nothing_not_even_the_dummy_password() -> None:
    assert not verify_password(None, "vnehr: no such account", FAST)
    assert not verify_password(None, "", FAST)


def test_a_garbled_hash_does_not_verify_and_needs_rehash() -> None:
    assert not verify_password("$argon2id$nonsense", "anything at all", FAST)
    assert needs_rehash("not a hash", FAST)


def test_a_hash_made_with_other_parameters_needs_rehash() -> None:
    hashed = hash_password("a long enough password", FAST)
    assert needs_rehash(hashed, DEFAULT_HASHER)
    assert not needs_rehash(hashed, FAST)


def test_an_overlong_password_never_verifies() -> None:
    long = "x" * (MAX_LENGTH + 1)
    assert not verify_password(hash_password(long, FAST), long, FAST)
    assert password_rule(long) == "long"


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("ngắn quá", "short"),
        ("123456789", "short"),
        ("0912345678", "digits"),
        (" 19850312 1985 ", "digits"),
        ("tôi là 001185012345", "username"),
        ("BS.Lan.BachMai 2024", "username"),
    ],
)
def test_it_refuses_short_numeric_and_username_passwords(password: str, rule: str) -> None:
    assert password_rule(password, username=_username(password)) == rule
    assert check_password(password, username=_username(password))


def _username(password: str) -> str:
    return "bs.lan.bachmai" if "BachMai" in password else "001185012345"


def test_it_accepts_a_long_passphrase_and_says_nothing() -> None:
    assert check_password("hoa sen nở giữa hè", username="001185012345") is None
    assert password_rule("Tr4nV4nĐức!", username="duc") is None  # too short a name to matter


def test_its_messages_are_english_sentences() -> None:
    assert check_password("short") == "The password must have at least 10 characters."
    assert check_password("0123456789") == (
        "The password must not be only digits (such as a date or a phone number)."
    )
