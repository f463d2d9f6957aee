"""Activation: the one-time security code every citizen receives to open their account.

The Ministry's rule is that every citizen has an account, opened with a security code
issued by an operator (at a commune health station, a hospital desk) and sent by SMS to the
phone on record or printed and handed over. A code is 10 characters from an alphabet with
no 0/O or 1/I (32 symbols: 50 bits), shown grouped as `7KQ4-M9XT-2H`; it is stored only as an
argon2 hash (a short code needs a slow hash: a fast one would fall to a search of all codes
once the table leaked). A code expires after `code_lifetime` (7 days), serves once, and dies
after `max_attempts` wrong tries; issuing a new code for a CCCD ends the earlier ones.

Activating creates the citizen's account (username: the CCCD), or, for an existing one,
sets the new password, lifts any lock-out and re-enables it: losing the password is
solved by a new code. Its `fhir_user` is a Patient with that CCCD, `person` that Patient's
MPI Person. Independently of codes, `rate_limit` failures per CCCD per `rate_window`
(10 an hour) stop further tries.

Every attempt is a security event (kind "activation", detail: the CCCD and the reason);
the rate limit counts those events. The code itself is never logged nor kept.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NoReturn

from argon2 import PasswordHasher

from vnehr.auth.accounts import Account, Accounts
from vnehr.auth.events import SecurityEvents
from vnehr.auth.outbox import Outbox
from vnehr.auth.passwords import (
    RULE_MESSAGES,
    hash_password,
    password_rule,
    verify_password,
)
from vnehr.identity.identifiers import CCCD, cccd_facts, normalise_value
from vnehr.storage.base import Store

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 10
CHANNELS = ("sms", "print")
REASONS = ("unknown", "expired", "used", "attempts", "code", "password", "rate-limited")
ISSUE_REASONS = ("cccd", "channel", "recipient")
VIETNAM = timezone(timedelta(hours=7))

# Shown to whoever typed the CCCD and code: "unknown" and "code" read the same, so the
# page does not tell a stranger which CCCDs have been issued a code.
MESSAGES = {
    "unknown": "The CCCD number or the security code is not right.",
    "code": "The CCCD number or the security code is not right.",
    "expired": "This security code has expired: ask for a new one.",
    "used": "This security code has been used already: sign in, or ask for a new one.",
    "attempts": "This security code was tried wrongly too many times: ask for a new one.",
    "rate-limited": "Too many attempts for this CCCD number: try again in an hour.",
    "password": "The password cannot be used.",
}


class ActivationError(ValueError):
    """A refused activation (`reason` in REASONS) or issue (ISSUE_REASONS); the message is
    safe to show. For reason "password", `rule` is the password rule broken (passwords.py)."""

    def __init__(self, reason: str, message: str | None = None, rule: str | None = None) -> None:
        super().__init__(message or MESSAGES.get(reason, reason))
        self.reason = reason
        self.rule = rule


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code_id: str
    cccd: str
    channel: str  # sms | print
    recipient: str | None
    expires: int
    code: str | None  # for print only: the caller prints it; an SMS carries it instead


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_code(code: str) -> str:
    """What the citizen typed, as the code was hashed: upper case, without the dashes and
    spaces (they may type it grouped or not)."""
    raw = "".join(c for c in code.upper() if c.isalnum())
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}" if len(raw) == CODE_LENGTH else raw


class Activation:
    def __init__(
        self,
        store: Store,
        accounts: Accounts,
        clock: Callable[[], float] = time.time,
        *,
        code_lifetime: int = 7 * 86400,
        max_attempts: int = 5,
        rate_limit: int = 10,
        rate_window: int = 3600,
        find_patients: Callable[[str], list[str]] | None = None,
        person_of: Callable[[str], str | None] | None = None,
        hasher: PasswordHasher | None = None,
        events: SecurityEvents | None = None,
    ) -> None:
        self.store = store
        self.accounts = accounts
        self.clock = clock
        self.code_lifetime = code_lifetime
        self.max_attempts = max_attempts
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.find_patients = find_patients
        self.person_of = person_of
        self.hasher = hasher or accounts.hasher
        self.events = events or SecurityEvents(store, clock)
        self.outbox = Outbox(store, clock)

    def issue(
        self, cccd: str, *, issued_by: str, channel: str, recipient: str | None = None
    ) -> IssuedCode:
        """A new code for `cccd`, ending its earlier ones. sms: the outbox gets the message
        for `recipient` (a phone number); print: the code is returned for printing and the
        outbox only records that it was printed."""
        valid = _valid_cccd(cccd)
        if valid is None:
            raise ActivationError("cccd", "This is not a valid CCCD number.")
        cccd = valid
        if channel not in CHANNELS:
            raise ActivationError("channel", f"channel must be one of {', '.join(CHANNELS)}")
        if channel == "sms":
            phone = (recipient or "").replace(" ", "")
            if not phone.lstrip("+").isdigit() or not 9 <= len(phone.lstrip("+")) <= 15:
                raise ActivationError("recipient", "An SMS needs a phone number as recipient.")
            recipient = phone
        else:
            recipient = None
        code = new_code()
        now = int(self.clock())
        expires = now + self.code_lifetime
        code_id = str(uuid.uuid4())
        code_hash = hash_password(code, self.hasher)
        with self.store.transaction() as txn:
            txn.lock(f"auth-activation:{cccd}")
            # Earlier codes end now: whoever holds one (a lost letter, an old SMS) cannot
            # use it once a new one is out.
            txn.run(
                "UPDATE auth_activation SET expires = ? "
                "WHERE username = ? AND used IS NULL AND expires > ?",
                (now - 1, cccd, now - 1),
            )
            txn.run(
                "INSERT INTO auth_activation (code_id, username, code_hash, expires, "
                "issued_by, created) VALUES (?, ?, ?, ?, ?, ?)",
                (code_id, cccd, code_hash, expires, issued_by, now),
            )
            if channel == "sms":
                self.outbox.add_in(txn, "sms", recipient, _sms(code, expires))
            else:
                body = f"Security code for CCCD {_masked(cccd)} printed by {issued_by}"
                self.outbox.add_in(txn, "print", None, body, sent=True)
        self.events.record(
            "activation-issue", "success", cccd=cccd, channel=channel, issued_by=issued_by
        )
        return IssuedCode(
            code_id, cccd, channel, recipient, expires, code if channel == "print" else None
        )

    def activate(
        self, cccd: str, code: str, password: str, *, address: str | None = None
    ) -> Account:
        """Open (or reopen) the citizen account of `cccd` with `code`, setting `password`."""
        valid = _valid_cccd(cccd)
        if valid is None:
            self._refuse("unknown", normalise_value(CCCD, cccd.strip())[:20], address)
        cccd = valid
        now = int(self.clock())
        if self._recent_failures(cccd, now) >= self.rate_limit:
            self._refuse("rate-limited", cccd, address)
        row = self._current_code(cccd, now)
        if row is None:
            verify_password(None, code, self.hasher)  # the time a real check takes
            self._refuse("unknown", cccd, address)
        code_id, code_hash, expires, used, attempts = row
        right = verify_password(code_hash, normalise_code(code), self.hasher)
        # Why a code cannot be used is told only to whoever holds it: anyone else learns
        # nothing about this CCCD.
        if used is not None:
            self._refuse("used" if right else "code", cccd, address)
        if expires <= now:
            self._refuse("expired" if right else "code", cccd, address)
        if attempts >= self.max_attempts:
            self._refuse("attempts" if right else "code", cccd, address)
        if not right:
            with self.store.transaction() as txn:
                txn.run(
                    "UPDATE auth_activation SET attempts = attempts + 1 WHERE code_id = ?",
                    (code_id,),
                )
            self._refuse("code", cccd, address)
        rule = password_rule(password, username=cccd)
        if rule is not None:
            raise ActivationError("password", RULE_MESSAGES[rule], rule)
        patient = self._patient(cccd)
        person = self.person_of(patient) if patient and self.person_of else None
        password_hash = hash_password(password, self.hasher)
        with self.store.transaction() as txn:
            txn.lock(f"auth-activation:{cccd}")
            # Two tries with the right code at once: only the first one opens the account.
            fresh = txn.rows("SELECT used FROM auth_activation WHERE code_id = ?", (code_id,))
            if fresh[0][0] is not None:
                raise ActivationError("used")
            txn.run("UPDATE auth_activation SET used = ? WHERE code_id = ?", (now, code_id))
            account_id = self.accounts.save_citizen(
                txn, cccd, password_hash, f"Patient/{patient}" if patient else None, person
            )
        self.events.record(
            "activation", "success", account_id=account_id, address=address, cccd=cccd
        )
        account = self.accounts.get(account_id)
        assert account is not None
        return account

    def _current_code(self, cccd: str, now: int) -> tuple[str, str, int, int | None, int] | None:
        """The code that decides: the live one, or else the latest (to say why it is not)."""
        rows = self.store.rows(
            "SELECT code_id, code_hash, expires, used, attempts FROM auth_activation "
            "WHERE username = ? ORDER BY CASE WHEN used IS NULL AND expires > ? THEN 0 "
            "ELSE 1 END, created DESC, expires DESC LIMIT 1",
            (cccd, now),
        )
        if not rows:
            return None
        r = rows[0]
        return str(r[0]), str(r[1]), int(r[2]), None if r[3] is None else int(r[3]), int(r[4])

    def _recent_failures(self, cccd: str, now: int) -> int:
        # The events' detail is JSON text beginning with the CCCD (see _refuse); a CCCD is
        # digits only, so it needs no escaping in the LIKE pattern. Refusals for the limit
        # itself are not counted: the limit would otherwise never end for a persistent
        # guesser, nor for the citizen.
        rows = self.store.rows(
            "SELECT COUNT(*) FROM auth_events WHERE kind = 'activation' "
            "AND outcome = 'failure' AND at > ? AND detail LIKE ? AND detail NOT LIKE ?",
            (now - self.rate_window, f'{{"cccd": "{cccd}", %', '%"reason": "rate-limited"%'),
        )
        return int(rows[0][0])

    def _refuse(self, reason: str, cccd: str, address: str | None) -> NoReturn:
        self.events.record("activation", "failure", address=address, cccd=cccd, reason=reason)
        raise ActivationError(reason)

    def _patient(self, cccd: str) -> str | None:
        found = self.find_patients(cccd) if self.find_patients else []
        return found[0] if found else None


def patients_with_cccd(store: Store, registry: Any) -> Callable[[str], list[str]]:
    """`find_patients` for `Activation`: the ids of the Patients carrying this CCCD."""
    from vnehr.search.query import strict_query

    def find(cccd: str) -> list[str]:
        query = strict_query(registry, "Patient", [("identifier", f"{CCCD}|{cccd}")])
        return store.search_ids(query, 10)

    return find


def person_of_patient(store: Store, identity: Any) -> Callable[[str], str | None]:
    """`person_of` for `Activation`: the MPI Person of a Patient (identity: PatientIndex)."""

    def person(patient_id: str) -> str | None:
        found: str | None = identity.person_of(store.rows, patient_id)
        return found

    return person


def _valid_cccd(cccd: str) -> str | None:
    value = normalise_value(CCCD, cccd.strip())
    return value if cccd_facts(value) is not None else None


def _masked(cccd: str) -> str:
    return "*" * (len(cccd) - 4) + cccd[-4:]


def _sms(code: str, expires: int) -> str:
    # Without diacritics: an SMS in GSM-7 holds 160 characters, in UCS-2 only 70.
    until = datetime.fromtimestamp(expires, UTC).astimezone(VIETNAM).strftime("%d/%m/%Y")
    return (
        f"Ma bao mat vnehr cua ban: {code} (het han {until}). Dung ma nay de kich hoat tai "
        "khoan ho so suc khoe. Khong chia se ma nay voi bat ky ai."
    )
