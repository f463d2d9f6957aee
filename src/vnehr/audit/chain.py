"""The hash chain over the audit trail: sealing records into it, and verifying it.

A write's records are inserted unsealed (no position, no hash), inside the write's own
transaction. The sealer takes the chain head (`audit_head`, one row: the last position and
its hash; locked FOR UPDATE on PostgreSQL, SQLite has one writer), gives the unsealed records
it can see positions in insertion order and hashes them one after the other, then appends
the queued records already sealed:

    hash(n) = sha256(hash(n-1) + "\\n" + JSON [n, id, recorded, kind, ..., content])

A record inserted by a transaction that rolls back is never seen, so the chain has no gaps;
two sealers wait for each other on the head, so it never forks. Once sealed, a record cannot
change or go away in the database (triggers, storage/schema.py `_audit_migration`), and if
someone with the power to drop the triggers changes it anyway, `verify` finds the first
position where the chain no longer holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from vnehr.policy.persons import Rows
from vnehr.storage.base import WriteTransaction
from vnehr.storage.schema import AUDIT_COLUMNS

GENESIS = "0" * 64
_COLUMNS = ", ".join(AUDIT_COLUMNS)


def link_hash(previous: str, seq: int, values: Sequence[Any]) -> str:
    """The hash of the record at position `seq` with these column values (AUDIT_COLUMNS)."""
    canonical = orjson.dumps([seq, *values])
    return hashlib.sha256(previous.encode() + b"\n" + canonical).hexdigest()


def seal(
    txn: WriteTransaction, dialect: str, new: Sequence[Sequence[Any]] = (), limit: int = 5_000
) -> int:
    """In this transaction: give at most `limit` unsealed records their chain positions and
    hashes, then append `new` records (AUDIT_COLUMNS values) already sealed (cheaper than
    inserting them unsealed and sealing them after); returns how many unsealed records it
    sealed (`limit`: there may be more)."""
    txn.run(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ?) ON CONFLICT (id) DO NOTHING",
        [GENESIS],
    )
    lock = " FOR UPDATE" if dialect == "postgresql" else ""
    head = txn.rows(f"SELECT seq, hash FROM audit_head WHERE id = 1{lock}")
    seq, previous = int(head[0][0]), str(head[0][1])
    start = seq
    rows = txn.rows(
        f"SELECT entry, {_COLUMNS} FROM audit_events WHERE seq IS NULL ORDER BY entry LIMIT ?",
        [limit],
    )
    updates = []
    for row in rows:
        seq += 1
        digest = link_hash(previous, seq, row[1:])
        updates.append((seq, previous, digest, row[0]))
        previous = digest
    txn.run_many(
        "UPDATE audit_events SET seq = ?, prev_hash = ?, hash = ? WHERE entry = ?", updates
    )
    sealed = []
    for values in new:
        seq += 1
        digest = link_hash(previous, seq, values)
        sealed.append((*values, seq, previous, digest))
        previous = digest
    if sealed:
        txn.write_rows("audit_events", (*AUDIT_COLUMNS, "seq", "prev_hash", "hash"), sealed)
    if seq != start:
        txn.run("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", [seq, previous])
    return len(rows)


@dataclass(frozen=True, slots=True)
class Verdict:
    records: int  # sealed records checked
    unsealed: int  # records not yet in the chain
    head: str  # the hash of the last record: keep it elsewhere to detect a rewritten chain
    broken_at: int | None = None  # the first position where the chain does not hold
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify(source: Rows, chunk: int = 5_000) -> Verdict:
    """Check every sealed record, in chain order, up to the head as it is now."""
    unsealed = int(source.rows("SELECT COUNT(*) FROM audit_events WHERE seq IS NULL")[0][0])
    head = source.rows("SELECT seq, hash FROM audit_head WHERE id = 1")
    if not head:
        sealed = source.rows("SELECT MIN(seq) FROM audit_events WHERE seq IS NOT NULL")[0][0]
        if sealed is not None:
            return Verdict(0, unsealed, GENESIS, int(sealed), "the chain head (audit_head) is gone")
        return Verdict(0, unsealed, GENESIS)
    head_seq, head_hash = int(head[0][0]), str(head[0][1])
    expected, previous = 1, GENESIS

    def broken(at: int, problem: str) -> Verdict:
        return Verdict(expected - 1, unsealed, head_hash, at, problem)

    while expected <= head_seq:
        rows = source.rows(
            f"SELECT seq, {_COLUMNS}, prev_hash, hash FROM audit_events "
            "WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
            [expected, head_seq, chunk],
        )
        if not rows:
            break
        for row in rows:
            seq = int(row[0])
            if seq != expected:
                return broken(expected, f"record {expected} is missing (the next is {seq})")
            if row[-2] != previous:
                return broken(
                    seq,
                    f"its previous hash is not the hash of record {seq - 1}: a record was "
                    "removed, inserted or moved here",
                )
            if link_hash(previous, seq, row[1:-2]) != row[-1]:
                return broken(seq, "its content does not match its hash: changed after sealing")
            previous = row[-1]
            expected += 1
    if expected <= head_seq:
        return broken(expected, f"record {expected} is missing (the chain head is {head_seq})")
    if previous != head_hash:
        return broken(head_seq, "the last record's hash is not the chain head's")
    return Verdict(head_seq, unsealed, head_hash)
