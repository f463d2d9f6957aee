"""The outbox: messages (SMS, print) vnehr asks the deployment to deliver, kept in auth_outbox.

vnehr sends no SMS itself: each deployment has its own gateway (a telecom's, the
province's). The gateway's adapter reads `pending()` (or `vnehr auth outbox`), delivers
each message and calls `mark_sent(message)`; what it has not marked stays pending and is
offered again. A message is written in the same transaction as what caused it (an
activation code), so neither exists without the other.

The body of an SMS holds the security code in clear: that is what delivering it means.
Deliver and mark sent promptly; the outbox is readable only by whoever can read the
database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vnehr.storage.base import Store, WriteTransaction

CHANNELS = ("sms", "print")


@dataclass(frozen=True, slots=True)
class Message:
    message: int
    channel: str
    recipient: str | None  # a phone number for sms; None for print
    body: str
    created: int
    sent: int | None


class Outbox:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def add(self, channel: str, recipient: str | None, body: str, *, sent: bool = False) -> None:
        with self.store.transaction() as txn:
            self.add_in(txn, channel, recipient, body, sent=sent)

    def add_in(
        self,
        txn: WriteTransaction,
        channel: str,
        recipient: str | None,
        body: str,
        *,
        sent: bool = False,
    ) -> None:
        """`add` inside the caller's transaction. `sent`: delivered already (printed at the
        counter), recorded for the trace only."""
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
        now = int(self.clock())
        txn.run(
            "INSERT INTO auth_outbox (channel, recipient, body, created, sent) "
            "VALUES (?, ?, ?, ?, ?)",
            (channel, recipient or "", body, now, now if sent else None),
        )

    def pending(self, limit: int = 100) -> list[Message]:
        """Messages not yet delivered, oldest first."""
        return self._select("WHERE sent IS NULL", limit)

    def all(self, limit: int = 100) -> list[Message]:
        """The latest messages, delivered or not, oldest first."""
        return list(reversed(self._select("", limit, newest_first=True)))

    def mark_sent(self, message: int) -> bool:
        """Record the delivery of `message`; False when there is no such pending message."""
        with self.store.transaction() as txn:
            found = txn.rows(
                "SELECT 1 FROM auth_outbox WHERE message = ? AND sent IS NULL", (message,)
            )
            txn.run(
                "UPDATE auth_outbox SET sent = ? WHERE message = ? AND sent IS NULL",
                (int(self.clock()), message),
            )
        return bool(found)

    def _select(self, where: str, limit: int, *, newest_first: bool = False) -> list[Message]:
        order = "DESC" if newest_first else ""
        rows = self.store.rows(
            "SELECT message, channel, recipient, body, created, sent FROM auth_outbox "
            f"{where} ORDER BY message {order} LIMIT ?",
            (limit,),
        )
        return [_message(row) for row in rows]


def _message(row: Any) -> Message:
    return Message(
        message=int(row[0]),
        channel=row[1],
        recipient=row[2] or None,
        body=row[3],
        created=int(row[4]),
        sent=None if row[5] is None else int(row[5]),
    )
