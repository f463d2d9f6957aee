"""Security events: every login, token issue and refusal, kept in order in auth_events.

Each event is written in its own transaction, so that a refusal is recorded even though
the request that caused it fails, and logged to `vnehr.security`. The audit trail
(vnehr.audit) gets the same event as an AuditEvent, in the same transaction.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vnehr.storage.base import Store, WriteTransaction

log = logging.getLogger("vnehr.security")


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    event: int
    at: int
    kind: str  # token, login, activation, introspect, revoke, request, ...
    outcome: str  # success | failure
    client_id: str | None
    account_id: str | None
    facility: str | None
    address: str | None
    detail: dict[str, Any]


class SecurityEvents:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        # Told of each event inside the transaction that records it: the audit trail.
        self.audit: Callable[[WriteTransaction, SecurityEvent], None] | None = None

    def record(
        self,
        kind: str,
        outcome: str,
        *,
        client_id: str | None = None,
        account_id: str | None = None,
        facility: str | None = None,
        address: str | None = None,
        **detail: Any,
    ) -> None:
        level = logging.INFO if outcome == "success" else logging.WARNING
        log.log(
            level, "%s %s client=%s account=%s %s", kind, outcome, client_id, account_id, detail
        )
        at = int(self.clock())
        with self.store.transaction() as txn:
            rows = txn.rows(
                "INSERT INTO auth_events (at, kind, outcome, client_id, account_id, facility, "
                "address, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING event",
                (
                    at,
                    kind,
                    outcome,
                    client_id,
                    account_id,
                    facility,
                    address,
                    json.dumps(detail, ensure_ascii=False, default=str),
                ),
            )
            if self.audit is not None:
                event = SecurityEvent(
                    int(rows[0][0]),
                    at,
                    kind,
                    outcome,
                    client_id,
                    account_id,
                    facility,
                    address,
                    detail,
                )
                self.audit(txn, event)

    def recent(self, kind: str | None = None, limit: int = 100) -> list[SecurityEvent]:
        where, args = ("WHERE kind = ?", [kind]) if kind else ("", [])
        rows = self.store.rows(
            "SELECT event, at, kind, outcome, client_id, account_id, facility, address, detail "
            f"FROM auth_events {where} ORDER BY event DESC LIMIT ?",
            [*args, limit],
        )
        return [
            SecurityEvent(
                event=row[0],
                at=row[1],
                kind=row[2],
                outcome=row[3],
                client_id=row[4],
                account_id=row[5],
                facility=row[6],
                address=row[7],
                detail=json.loads(row[8] or "{}"),
            )
            for row in rows
        ]
