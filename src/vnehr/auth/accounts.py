"""Accounts of people who sign in: practitioners, citizens and operators (auth_accounts).

A practitioner works at a facility (an Organization) and is a Practitioner resource
(`fhir_user`); a citizen's username is their CCCD, their `fhir_user` a Patient with that
CCCD and `person` the MPI's golden Person; an operator runs the platform (codes, clients).

Passwords are argon2id hashes (passwords.py). After `max_attempts` consecutive failures
(wrong password, missing or wrong TOTP code) the account is locked for `lockout_seconds`;
while locked even the right password fails, and the lock ends by itself. Per-account
lock-out lets whoever knows a username lock its owner out for a while, and tells them the
account exists: the price of stopping a guesser, which the login page softens by saying the
same thing for every failure.

TOTP (RFC 6238, 30-second steps, one step of drift allowed) is optional per account. The
`totp_secret` column holds `pending:<base32>` between `begin_totp` and `confirm_totp`, then
`<base32>:<step>`, where step is the last time step a code was accepted for: a code is
refused if its step is not later, so a code seen over someone's shoulder cannot be used
again. The secret is stored as it is (an authenticator app needs the same secret):
whoever reads the database can compute codes, but still needs the password.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp
from argon2 import PasswordHasher

from vnehr.auth.passwords import (
    DEFAULT_HASHER,
    check_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from vnehr.identity.identifiers import cccd_facts
from vnehr.storage.base import Store, WriteTransaction

KINDS = ("practitioner", "citizen", "operator")
REASONS = ("unknown", "password", "locked", "totp-required", "totp", "disabled")
ISSUER = "vnehr"
PENDING = "pending:"

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,63}$")
_FHIR_USER = re.compile(r"^(Patient|Practitioner|PractitionerRole|Person)/[A-Za-z0-9.-]{1,64}$")
_NUMBER = re.compile(r"^[\d\s.-]+$")
_COLUMNS = (
    "account_id, kind, username, name, fhir_user, facility, person, totp_secret, disabled, "
    "password_hash, failed, locked_until"
)


class AccountError(ValueError):
    """An account that cannot be created or changed; the message says why."""


class LoginFailed(Exception):
    """A refused sign-in. `reason` is one of REASONS, for the security events; the login
    page shows one message for all but "totp-required" and "locked"."""

    def __init__(self, reason: str, account_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.account_id = account_id


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    kind: str  # practitioner | citizen | operator
    username: str
    name: str | None
    fhir_user: str | None  # "Practitioner/123", "Patient/abc"
    facility: str | None  # Organization id
    person: str | None  # the MPI's Person id
    totp_enabled: bool
    disabled: bool


def normalise_username(username: str) -> str:
    """Usernames are compared without case; a CCCD typed with spaces or dots loses them."""
    name = username.strip().lower()
    return re.sub(r"[\s.-]", "", name) if _NUMBER.match(name) else name


class Accounts:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.time,
        *,
        max_attempts: int = 5,
        lockout_seconds: int = 900,
        hasher: PasswordHasher = DEFAULT_HASHER,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_attempts = max_attempts
        self.lockout_seconds = lockout_seconds
        self.hasher = hasher

    # -- creating and reading ------------------------------------------------------------

    def create(
        self,
        kind: str,
        username: str,
        *,
        password: str | None = None,
        name: str | None = None,
        fhir_user: str | None = None,
        facility: str | None = None,
        person: str | None = None,
    ) -> Account:
        username = normalise_username(username)
        _check_new(kind, username, fhir_user, facility)
        password_hash = None
        if password is not None:
            password_hash = self._new_hash(password, username)
        account_id = str(uuid.uuid4())
        with self.store.transaction() as txn:
            txn.lock(f"auth-username:{username}")
            if txn.rows("SELECT 1 FROM auth_accounts WHERE username = ?", (username,)):
                raise AccountError(f"the username {username!r} is taken")
            txn.run(
                "INSERT INTO auth_accounts (account_id, kind, username, name, password_hash, "
                "fhir_user, facility, person, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    account_id,
                    kind,
                    username,
                    name,
                    password_hash,
                    fhir_user,
                    facility,
                    person,
                    int(self.clock()),
                ),
            )
        account = self.get(account_id)
        assert account is not None
        return account

    def get(self, account_id: str) -> Account | None:
        rows = self.store.rows(
            f"SELECT {_COLUMNS} FROM auth_accounts WHERE account_id = ?", (account_id,)
        )
        return _account(rows[0]) if rows else None

    def by_username(self, username: str) -> Account | None:
        row = self._row(normalise_username(username))
        return _account(row) if row else None

    def citizen_for_cccd(self, cccd: str) -> Account | None:
        account = self.by_username(cccd)
        return account if account and account.kind == "citizen" else None

    def all(self, kind: str | None = None) -> list[Account]:
        where, args = ("WHERE kind = ?", (kind,)) if kind else ("", ())
        rows = self.store.rows(
            f"SELECT {_COLUMNS} FROM auth_accounts {where} ORDER BY kind, username", args
        )
        return [_account(r) for r in rows]

    # -- changing ------------------------------------------------------------------------

    def set_password(self, account_id: str, password: str) -> None:
        """A new password (policy checked); it also lifts a lock-out."""
        account = self._existing(account_id)
        password_hash = self._new_hash(password, account.username)
        with self.store.transaction() as txn:
            txn.run(
                "UPDATE auth_accounts SET password_hash = ?, failed = 0, locked_until = 0 "
                "WHERE account_id = ?",
                (password_hash, account_id),
            )

    def disable(self, account_id: str) -> bool:
        return self._set_disabled(account_id, True)

    def enable(self, account_id: str) -> bool:
        return self._set_disabled(account_id, False)

    def save_citizen(
        self,
        txn: WriteTransaction,
        cccd: str,
        password_hash: str,
        fhir_user: str | None,
        person: str | None,
    ) -> str:
        """Create the citizen account of `cccd`, or give the existing one a new password,
        links and no lock-out, inside the caller's transaction (activation.py). An account
        an operator disabled is enabled again: issuing a code is the decision to let the
        citizen in. Returns the account id."""
        username = normalise_username(cccd)
        txn.lock(f"auth-username:{username}")
        found = txn.rows(
            "SELECT account_id, kind FROM auth_accounts WHERE username = ?", (username,)
        )
        if found and found[0][1] != "citizen":
            raise AccountError(f"the username {username!r} is not a citizen's")
        if found:
            account_id = str(found[0][0])
            txn.run(
                "UPDATE auth_accounts SET password_hash = ?, fhir_user = COALESCE(?, fhir_user), "
                "person = COALESCE(?, person), failed = 0, locked_until = 0, disabled = 0 "
                "WHERE account_id = ?",
                (password_hash, fhir_user, person, account_id),
            )
            return account_id
        account_id = str(uuid.uuid4())
        txn.run(
            "INSERT INTO auth_accounts (account_id, kind, username, password_hash, fhir_user, "
            "person, created) VALUES (?, 'citizen', ?, ?, ?, ?, ?)",
            (account_id, username, password_hash, fhir_user, person, int(self.clock())),
        )
        return account_id

    # -- signing in ----------------------------------------------------------------------

    def authenticate(self, username: str, password: str, totp_code: str | None = None) -> Account:
        """The account whose password (and TOTP code, when enabled) these are; LoginFailed
        otherwise."""
        row = self._row(normalise_username(username))
        if row is None:
            verify_password(None, password, self.hasher)  # the time a real check takes
            raise LoginFailed("unknown")
        account = _account(row)
        password_hash, locked_until = row[9], int(row[11])
        if locked_until > self.clock():
            raise LoginFailed("locked", account.account_id)
        if not verify_password(password_hash, password, self.hasher):
            self._failed(account.account_id)
            raise LoginFailed("password", account.account_id)
        if account.disabled:
            raise LoginFailed("disabled", account.account_id)
        step = None
        if account.totp_enabled:
            secret, _, last = str(row[7]).partition(":")
            if not totp_code or not totp_code.strip():
                # Counted: the answer tells a guesser the password was right.
                self._failed(account.account_id)
                raise LoginFailed("totp-required", account.account_id)
            step = self._totp_step(secret, totp_code)
            if step is None or step <= int(last or 0):
                self._failed(account.account_id)
                raise LoginFailed("totp", account.account_id)
        self._succeeded(account, row[7], step, password, password_hash)
        return account

    def _failed(self, account_id: str) -> None:
        with self.store.transaction() as txn:
            txn.lock(f"auth-account:{account_id}")
            found = txn.rows("SELECT failed FROM auth_accounts WHERE account_id = ?", (account_id,))
            failed = int(found[0][0]) + 1 if found else 1
            if failed >= self.max_attempts:
                # Counting starts again when the lock ends: another full set of attempts.
                until = int(self.clock()) + self.lockout_seconds
                txn.run(
                    "UPDATE auth_accounts SET failed = 0, locked_until = ? WHERE account_id = ?",
                    (until, account_id),
                )
            else:
                txn.run(
                    "UPDATE auth_accounts SET failed = ? WHERE account_id = ?",
                    (failed, account_id),
                )

    def _succeeded(
        self,
        account: Account,
        totp_secret: str | None,
        step: int | None,
        password: str,
        password_hash: str,
    ) -> None:
        with self.store.transaction() as txn:
            txn.lock(f"auth-account:{account.account_id}")
            txn.run(
                "UPDATE auth_accounts SET failed = 0, locked_until = 0 WHERE account_id = ?",
                (account.account_id,),
            )
            if step is not None and totp_secret:
                secret = totp_secret.partition(":")[0]
                txn.run(
                    "UPDATE auth_accounts SET totp_secret = ? WHERE account_id = ?",
                    (f"{secret}:{step}", account.account_id),
                )
            if needs_rehash(password_hash, self.hasher):
                txn.run(
                    "UPDATE auth_accounts SET password_hash = ? WHERE account_id = ?",
                    (hash_password(password, self.hasher), account.account_id),
                )

    # -- TOTP ----------------------------------------------------------------------------

    def begin_totp(self, account_id: str) -> tuple[str, str]:
        """A new TOTP secret, pending until `confirm_totp`: (base32 secret, otpauth:// URI
        for an authenticator app). Refused when TOTP is already on: turning it off is an
        operator's `reset_totp`, not something a stolen session may do."""
        account = self._existing(account_id)
        if account.totp_enabled:
            raise AccountError("TOTP is already enabled for this account")
        secret = pyotp.random_base32()
        with self.store.transaction() as txn:
            txn.run(
                "UPDATE auth_accounts SET totp_secret = ? WHERE account_id = ?",
                (PENDING + secret, account_id),
            )
        uri = pyotp.TOTP(secret).provisioning_uri(name=account.username, issuer_name=ISSUER)
        return secret, uri

    def confirm_totp(self, account_id: str, code: str) -> bool:
        """Enable the pending secret if `code` is right for it now."""
        found = self.store.rows(
            "SELECT totp_secret FROM auth_accounts WHERE account_id = ?", (account_id,)
        )
        stored = found[0][0] if found else None
        if not stored or not str(stored).startswith(PENDING):
            return False
        secret = str(stored)[len(PENDING) :]
        step = self._totp_step(secret, code)
        if step is None:
            return False
        with self.store.transaction() as txn:
            txn.run(
                "UPDATE auth_accounts SET totp_secret = ? WHERE account_id = ? AND totp_secret = ?",
                (f"{secret}:{step}", account_id, stored),
            )
        return True

    def reset_totp(self, account_id: str) -> bool:
        """Turn TOTP off (a lost phone); the owner may enrol again."""
        return self._update(account_id, "totp_secret = NULL", ())

    def _totp_step(self, secret: str, code: str) -> int | None:
        code = re.sub(r"\s", "", code)
        if not code.isdigit():
            return None
        try:
            return pyotp.TOTP(secret).verify_and_get_timecode(
                code, for_time=self.clock(), valid_window=1
            )
        except pyotp.exceptions.OTPVerificationError:
            return None

    # -- the rest ------------------------------------------------------------------------

    def _new_hash(self, password: str, username: str) -> str:
        problem = check_password(password, username=username)
        if problem:
            raise AccountError(problem)
        return hash_password(password, self.hasher)

    def _row(self, username: str) -> Any:
        rows = self.store.rows(
            f"SELECT {_COLUMNS} FROM auth_accounts WHERE username = ?", (username,)
        )
        return rows[0] if rows else None

    def _existing(self, account_id: str) -> Account:
        account = self.get(account_id)
        if account is None:
            raise AccountError(f"no account {account_id!r}")
        return account

    def _set_disabled(self, account_id: str, disabled: bool) -> bool:
        return self._update(account_id, "disabled = ?", (int(disabled),))

    def _update(self, account_id: str, assignment: str, args: tuple[Any, ...]) -> bool:
        with self.store.transaction() as txn:
            found = txn.rows("SELECT 1 FROM auth_accounts WHERE account_id = ?", (account_id,))
            txn.run(
                f"UPDATE auth_accounts SET {assignment} WHERE account_id = ?", (*args, account_id)
            )
        return bool(found)


def _check_new(kind: str, username: str, fhir_user: str | None, facility: str | None) -> None:
    if kind not in KINDS:
        raise AccountError(f"kind must be one of {', '.join(KINDS)}")
    if not _USERNAME.match(username):
        raise AccountError(
            "a username has 3 to 64 letters, digits, '.', '_', '@' or '-' and starts with a "
            "letter or digit"
        )
    if fhir_user is not None and not _FHIR_USER.match(fhir_user):
        raise AccountError(f"fhir_user {fhir_user!r} must be a reference like Practitioner/123")
    if kind == "practitioner":
        if not facility:
            raise AccountError("a practitioner account needs a facility (Organization id)")
        if not fhir_user or not fhir_user.startswith(("Practitioner/", "PractitionerRole/")):
            raise AccountError("a practitioner account needs fhir_user Practitioner/<id>")
    if kind == "citizen":
        if cccd_facts(username) is None:
            raise AccountError("a citizen's username is their CCCD: this is not a valid one")
        if fhir_user and not fhir_user.startswith("Patient/"):
            raise AccountError("a citizen's fhir_user is Patient/<id>")


def _account(row: Any) -> Account:
    secret = row[7]
    return Account(
        account_id=str(row[0]),
        kind=row[1],
        username=row[2],
        name=row[3],
        fhir_user=row[4],
        facility=row[5],
        person=row[6],
        totp_enabled=bool(secret) and not str(secret).startswith(PENDING),
        disabled=bool(row[8]),
    )
