"""The outbox the deployment's SMS gateway reads (vnehr.auth.outbox), on a real database."""

from __future__ import annotations

import pytest

from tests.unit.auth.test_accounts import Clock
from vnehr.app import Server
from vnehr.auth.outbox import Outbox


def test_pending_messages_come_oldest_first_until_marked_sent(server: Server) -> None:
    clock = Clock()
    box = Outbox(server.store, clock)
    box.add("sms", "0912345678", "Ma bao mat vnehr cua ban: 7KQ4-M9XT-2H")
    clock.advance(5)
    box.add("sms", "0987654321", "Ma bao mat vnehr cua ban: 2H7K-Q4M9-XT")
    first, second = box.pending()
    assert (first.recipient, first.created, first.sent) == ("0912345678", int(clock()) - 5, None)
    assert second.body.endswith("2H7K-Q4M9-XT")
    clock.advance(60)
    assert box.mark_sent(first.message)
    assert not box.mark_sent(first.message)  # already delivered
    assert not box.mark_sent(999_999)
    assert box.pending() == [second]
    delivered, waiting = box.all()
    assert (delivered.message, delivered.sent, waiting) == (first.message, int(clock()), second)


def test_a_printed_message_is_recorded_as_delivered(server: Server) -> None:
    box = Outbox(server.store)
    box.add("print", None, "Security code for CCCD ********2345 printed by op", sent=True)
    assert box.pending() == []
    (message,) = box.all()
    assert (message.channel, message.recipient) == ("print", None)
    assert message.sent is not None


def test_it_refuses_an_unknown_channel(server: Server) -> None:
    with pytest.raises(ValueError, match="channel"):
        Outbox(server.store).add("email", "lan@example.vn", "hello")
    assert Outbox(server.store).all() == []
