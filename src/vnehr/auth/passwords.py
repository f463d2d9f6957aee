"""Passwords: argon2id hashing (RFC 9106) and the password policy accounts must meet.

Hashes are PHC strings (`$argon2id$v=19$m=65536,t=3,p=4$...`) that carry their own
parameters, so raising the cost later only needs `needs_rehash` at the next login. The
policy is the one the Ministry's guidance asks of citizen accounts: long enough to resist
guessing (length matters more than character classes, NIST SP 800-63B), not a number (a
birth date, a phone number) and not the username, which for citizens is their CCCD.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
# argon2 would hash a megabyte, slowly: a bound keeps a login request cheap to refuse.
MAX_LENGTH = 256

# argon2-cffi's defaults: RFC 9106's second recommended profile (t=3, 64 MiB, p=4), about
# 50-120 ms per hash.
DEFAULT_HASHER = PasswordHasher()

_dummy_hashes: dict[tuple[int, int, int], str] = {}


def hash_password(password: str, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    return hasher.hash(password)


def verify_password(
    password_hash: str | None, password: str, hasher: PasswordHasher = DEFAULT_HASHER
) -> bool:
    """Whether `password` is the one hashed; False for no hash or a hash that cannot be read.

    With no hash (an unknown user, an account without a password) it still spends one
    verification, so that the answer takes as long as for a real account.
    """
    if len(password) > MAX_LENGTH:
        return False
    try:
        hasher.verify(password_hash or dummy_hash(hasher), password)
    except (VerificationError, InvalidHashError):
        return False
    return password_hash is not None


def needs_rehash(password_hash: str, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """Whether the hash was made with other parameters than `hasher`'s (rehash at login)."""
    try:
        return hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def dummy_hash(hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    """A hash with `hasher`'s parameters of a password nobody knows, made once."""
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hasher.hash("vnehr: no such account")
    return _dummy_hashes[key]


def check_password(password: str, *, username: str | None = None) -> str | None:
    """Why `password` may not be used (a message in English), None when it may."""
    rule = password_rule(password, username=username)
    return None if rule is None else RULE_MESSAGES[rule]


RULE_MESSAGES = {
    "short": f"The password must have at least {MIN_LENGTH} characters.",
    "long": f"The password must have at most {MAX_LENGTH} characters.",
    "digits": "The password must not be only digits (such as a date or a phone number).",
    "username": "The password must not contain the username or the CCCD number.",
}


def password_rule(password: str, *, username: str | None = None) -> str | None:
    """The rule `password` breaks (a key of RULE_MESSAGES), None when it breaks none; the
    pages translate the rule, not the English message."""
    if len(password) < MIN_LENGTH:
        return "short"
    if len(password) > MAX_LENGTH:
        return "long"
    if re.sub(r"[\s./-]", "", password).isdigit():  # 12/03/1985, 0912 345 678
        return "digits"
    if username:
        name = username.strip().casefold()
        # A short username could occur by chance in a good password; four characters is
        # already more than any chance match worth refusing.
        if len(name) >= 4 and name in password.casefold():
            return "username"
    return None
