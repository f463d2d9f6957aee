"""The master patient index in the database: it follows every Patient write (in the same
transaction), links the Patient to a golden Person, queues probable matches for review, and
lets an operator accept, reject, unlink, merge and unmerge. See docs/identity.md.

Tables (migration 0005): `mpi_records` (a Patient's match features and its Person),
`mpi_keys` (its blocking keys, hashed), `mpi_links` (every judged Patient-Person pair:
certain / probable / no-match, auto / manual), `mpi_events` (append-only history).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from vnehr.errors import Conflict, InvalidRequest, NotFound
from vnehr.fhir.ids import new_id
from vnehr.fhir.instant import now_micros
from vnehr.identity.features import MatchRecord, record_from_patient
from vnehr.identity.identifiers import BHYT, CCCD, CMND, VNEID, is_verified
from vnehr.identity.matching.blocking import blocking_keys
from vnehr.identity.matching.rules import Rules, load_rules
from vnehr.identity.matching.score import MatchResult, compare
from vnehr.search.index_hash import value_hash
from vnehr.storage.base import StoredVersion, WriteTransaction

MPI_CODES = "https://vnehr.org/fhir/CodeSystem/mpi"
GOLDEN_TAG = {"system": MPI_CODES, "code": "golden", "display": "Golden record of the MPI"}
# Blocking keys shared by more records than this are not used to find candidates: a key
# that common (a clinic's own phone number, say) tells nothing and would make matching slow.
BLOCK_CAP = 500
CANDIDATE_CAP = 2000
# Keys that identify one person: concurrent writers of the same key are serialised, so two
# hospitals registering the same CCCD at the same moment cannot create two Persons.
_IDENTITY_KEYS = ("cccd:", "cmnd:", "bhxh:")
RESULTS = ("certain", "probable", "no-match")
_KEYS_PER_STATEMENT = 200
# New Patients are matched in windows of this many: their blocking keys looked up together.
_WINDOW = 256
_ALONE = "no certain match: a Person of its own"


Rows = Callable[[str, Sequence[Any]], list[Any]]


def key_hash(key: str) -> int:
    """A blocking key's 64-bit lookup hash (the search indexes' hash, under "mpi")."""
    return value_hash("mpi", key)


@dataclass(frozen=True, slots=True)
class Candidate:
    patient_id: str
    person_id: str
    result: MatchResult


@dataclass(frozen=True, slots=True)
class Link:
    patient_id: str
    person_id: str
    result: str
    source: str
    score: float | None
    reason: str | None
    updated: int


def block_members(rows: Rows, hashes: Sequence[int]) -> dict[int, list[str]]:
    """The indexed Patients under each blocking-key hash, at most BLOCK_CAP + 1 per key (one
    more than the cap tells that the block is too big to use)."""
    members: dict[int, list[str]] = {}
    # One statement for many keys, each key's look limited: a huge block is skipped, not
    # read (the index runs on every Patient write, so round trips count).
    for start in range(0, len(hashes), _KEYS_PER_STATEMENT):
        chunk = hashes[start : start + _KEYS_PER_STATEMENT]
        blocks = " UNION ALL ".join(
            f"SELECT * FROM (SELECT hk, patient_id FROM mpi_keys WHERE hk = ? LIMIT ?) AS b{i}"
            for i in range(len(chunk))
        )
        args = [v for h in chunk for v in (h, BLOCK_CAP + 1)]
        for hk, patient_id in rows(blocks, args):
            members.setdefault(int(hk), []).append(str(patient_id))
    return members


def _wanted(
    hashes: Sequence[int],
    members: dict[int, list[str]],
    exclude: str,
    more: dict[int, list[str]] | None = None,
) -> list[str]:
    """The candidates of a record's sorted key hashes (the Patients under each in `members`
    and `more`), in key order, blocks over BLOCK_CAP skipped, as far as CANDIDATE_CAP."""
    wanted: dict[str, None] = {}
    for hk in hashes:
        ids = members.get(hk, [])
        if more and hk in more:
            ids = ids + more[hk]
        if len(ids) > BLOCK_CAP:
            continue
        wanted.update((i, None) for i in ids if i != exclude)
        if len(wanted) >= CANDIDATE_CAP:
            break
    return list(wanted)


def _features(rows: Rows, patient_ids: Sequence[str]) -> dict[str, tuple[str, MatchRecord]]:
    """(Person, match record) of indexed Patients."""
    found: dict[str, tuple[str, MatchRecord]] = {}
    for start in range(0, len(patient_ids), 500):
        chunk = patient_ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for patient_id, person_id, features in rows(
            f"SELECT patient_id, person_id, features FROM mpi_records "
            f"WHERE patient_id IN ({marks})",
            chunk,
        ):
            found[patient_id] = (person_id, MatchRecord.from_json(json.loads(features)))
    return found


def _features_json(record: MatchRecord) -> str:
    """A match record as stored in mpi_records.features."""
    return json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":"))


def candidates(rows: Rows, record: MatchRecord, rules: Rules, exclude: str = "") -> list[Candidate]:
    """Indexed Patients sharing a blocking key with `record`, scored, best first."""
    hashes = sorted({key_hash(k) for k in blocking_keys(record)})
    if not hashes:
        return []
    members = block_members(rows, hashes)
    found = _features(rows, _wanted(hashes, members, exclude))
    out = [
        Candidate(patient_id, person_id, compare(record, other, rules))
        for patient_id, (person_id, other) in found.items()
    ]
    return ranked(out)


def ranked(found: list[Candidate]) -> list[Candidate]:
    """Best score first; equal scores in Patient id order."""
    return sorted(found, key=lambda c: (-c.result.score, c.patient_id))


class _Rows:
    """Index rows of new Patients waiting to be written together."""

    def __init__(self) -> None:
        self.records: list[tuple[Any, ...]] = []
        self.keys: list[tuple[Any, ...]] = []
        self.links: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []

    def write(self, txn: WriteTransaction) -> None:
        txn.write_rows("mpi_records", ("patient_id", "person_id", "features"), self.records)
        txn.write_rows("mpi_keys", ("hk", "patient_id"), self.keys)
        txn.write_rows("mpi_links", _LINK_COLUMNS, self.links)
        txn.write_rows("mpi_events", _EVENT_COLUMNS, self.events)
        for written in (self.records, self.keys, self.links, self.events):
            written.clear()


_LINK_COLUMNS = ("patient_id", "person_id", "result", "source", "score", "reason", "updated")
_EVENT_COLUMNS = (
    "at",
    "kind",
    "patient_id",
    "person_id",
    "other_person_id",
    "result",
    "source",
    "actor",
    "detail",
)


class PatientIndex:
    """The index as a commit hook of the store (search/custom.TrackedStore)."""

    types = frozenset({"Patient"})

    def __init__(self, rules: Rules | None = None, clock: Callable[[], int] = now_micros):
        self.rules = rules or load_rules()
        self.clock = clock

    # -- following Patient writes
    def before_commit(self, txn: WriteTransaction, changed: list[StoredVersion]) -> None:
        latest = {stored.res_id: stored for stored in changed}  # the last version written
        run: list[StoredVersion] = []  # consecutive new Patients, matched together
        for patient_id, stored in latest.items():
            if stored.version == 1 and not stored.deleted:
                run.append(stored)
                continue
            self._index_new(txn, run)
            run = []
            self.index_patient(txn, patient_id, stored)
        self._index_new(txn, run)

    def _index_new(self, txn: WriteTransaction, new: list[StoredVersion]) -> None:
        """Index the first versions of Patients, in order, as index_patient would one by one,
        with fewer statements: the keys of a window of them are locked and looked up at once,
        and a Patient that matches nobody (most of them) has its rows written with the
        window's, in one statement per table. One that matches somebody is indexed on its
        own by index_patient, after the rows before it are written."""
        rows: Rows = lambda s, a: txn.rows(s, a)  # noqa: E731
        for start in range(0, len(new), _WINDOW):
            window = new[start : start + _WINDOW]
            patients = [stored.resource() for stored in window]
            records = [record_from_patient(p) for p in patients]
            keys = [blocking_keys(r) for r in records]
            hashes = [sorted({key_hash(k) for k in ks}) for ks in keys]
            identity = sorted(
                {f"mpi:{k}" for ks in keys for k in ks if k.startswith(_IDENTITY_KEYS)}
            )
            if identity:
                txn.lock(*identity)
            stored_members = block_members(rows, sorted({h for hs in hashes for h in hs}))
            indexed = _features(
                rows,
                sorted(
                    {i for ids in stored_members.values() if len(ids) <= BLOCK_CAP for i in ids}
                ),
            )
            added: dict[int, list[str]] = {}  # keys of the window's Patients indexed so far
            added_records: dict[str, tuple[str, MatchRecord]] = {}
            pending = _Rows()
            for stored, patient, record, key_hashes in zip(
                window, patients, records, hashes, strict=True
            ):
                patient_id = stored.res_id
                found = []
                for other_id in _wanted(key_hashes, stored_members, patient_id, added):
                    known = added_records.get(other_id) or indexed.get(other_id)
                    if known is not None:
                        result = compare(record, known[1], self.rules)
                        found.append(Candidate(other_id, known[0], result))
                if any(c.result.grade in ("certain", "probable") for c in found):
                    pending.write(txn)
                    person = self.index_patient(txn, patient_id, stored, ranked(found))
                else:
                    person = self._index_alone(
                        txn, patient_id, patient, record, key_hashes, pending
                    )
                for hk in key_hashes:
                    added.setdefault(hk, []).append(patient_id)
                added_records[patient_id] = (person or "", record)
            pending.write(txn)

    def _index_alone(
        self,
        txn: WriteTransaction,
        patient_id: str,
        patient: dict[str, Any],
        record: MatchRecord,
        key_hashes: list[int],
        pending: _Rows,
    ) -> str:
        """A new Patient that matches nobody: a Person of its own (index_patient's outcome),
        its rows left in `pending`. The Person's id."""
        now = self.clock()
        person_id = new_id()
        features = _features_json(record)
        pending.records.append((patient_id, person_id, features))
        pending.keys += [(h, patient_id) for h in key_hashes]
        pending.links.append((patient_id, person_id, "certain", "auto", None, _ALONE, now))
        pending.events.append(
            (now, "link", patient_id, person_id, None, "certain", "auto", None, _ALONE)
        )
        self.refresh_person(
            txn, person_id, now, {patient_id: patient}, members=[(patient_id, "auto", _ALONE)]
        )
        return person_id

    def index_patient(
        self,
        txn: WriteTransaction,
        patient_id: str,
        stored: StoredVersion | None = None,
        found: list[Candidate] | None = None,
    ) -> str | None:
        """(Re)link one Patient after it was written or deleted (`stored`: the version just
        written, if known; else it is read; `found`: its candidates, if already looked up).
        Its Person now, None if it was deleted."""
        now = self.clock()
        # The first version of an id (a create): nothing about it is indexed or decided yet.
        fresh = stored is not None and stored.version == 1 and not stored.deleted
        old = (
            []
            if fresh
            else txn.rows("SELECT person_id FROM mpi_records WHERE patient_id = ?", [patient_id])
        )
        old_person = old[0][0] if old else None
        if stored is None:
            current = txn.current("Patient", patient_id)
            deleted = current is None or current.deleted
        else:
            deleted = stored.deleted
        if deleted:
            if old_person is not None:
                self._forget(txn, patient_id, old_person, now)
            return None
        patient = (stored or txn.read("Patient", patient_id)).resource()
        record = record_from_patient(patient)
        keys = blocking_keys(record)
        identity = sorted(f"mpi:{k}" for k in keys if k.startswith(_IDENTITY_KEYS))
        if identity and found is None:
            txn.lock(*identity)
        decided = (
            {}
            if fresh
            else {
                person: (result, source)
                for person, result, source in txn.rows(
                    "SELECT person_id, result, source FROM mpi_links WHERE patient_id = ?",
                    [patient_id],
                )
            }
        )
        excluded = {p for p, (r, _) in decided.items() if r == "no-match"}
        manual = [p for p, (r, s) in decided.items() if r == "certain" and s == "manual"]
        best: dict[str, Candidate] = {}
        if found is None:
            found = candidates(lambda s, a: txn.rows(s, a), record, self.rules, patient_id)
        for c in found:
            if c.person_id in excluded:
                continue
            if c.person_id not in best or c.result.score > best[c.person_id].result.score:
                best[c.person_id] = c
        certain = [c for c in best.values() if c.result.grade == "certain"]
        certain.sort(key=lambda c: c.result.score, reverse=True)
        chosen: Candidate | None = None
        if manual:
            target, source, score, reason = manual[0], "manual", None, "linked by an operator"
        elif certain:
            chosen = next((c for c in certain if c.person_id == old_person), certain[0])
            target, source = chosen.person_id, "auto"
            score, reason = chosen.result.score, chosen.result.reason or "probabilistic"
        else:
            alone = old_person is not None and not txn.rows(
                "SELECT 1 FROM mpi_records WHERE person_id = ? AND patient_id <> ? LIMIT 1",
                [old_person, patient_id],
            )
            target = old_person if alone and old_person else new_id()
            source, score, reason = "auto", None, _ALONE
        alone_new = target != old_person and not certain and not manual
        features = _features_json(record)
        if old_person is None:
            txn.run(
                "INSERT INTO mpi_records (patient_id, person_id, features) VALUES (?, ?, ?)",
                [patient_id, target, features],
            )
        else:
            txn.run(
                "UPDATE mpi_records SET person_id = ?, features = ? WHERE patient_id = ?",
                [target, features, patient_id],
            )
        if not fresh:
            txn.run("DELETE FROM mpi_keys WHERE patient_id = ?", [patient_id])
        txn.run_many(
            "INSERT INTO mpi_keys (hk, patient_id) VALUES (?, ?)",
            [(h, patient_id) for h in sorted({key_hash(k) for k in keys})],
        )
        if source != "manual" or decided.get(target) is None:
            self._set_link(
                txn, patient_id, target, "certain", source, score, reason, now, known=alone_new
            )
        if old_person != target:
            self._event(txn, now, "link", patient_id, target, "certain", source, None, reason)
            if old_person is not None:
                self._drop_link(txn, patient_id, old_person)
                self._event(txn, now, "unlink", patient_id, old_person, None, "auto", None, None)
        # Probable matches (and other Persons that also matched for certain: maybe one
        # human with two Persons) wait for review, unless an operator decided the pair.
        waiting = {
            c.person_id: c
            for c in best.values()
            if c.person_id != target
            and c.result.grade in ("certain", "probable")
            and decided.get(c.person_id, ("", "auto"))[1] != "manual"
        }
        for person, (result, link_source) in decided.items():
            if result == "probable" and link_source == "auto" and person not in waiting:
                self._drop_link(txn, patient_id, person)
        for person, c in waiting.items():
            why = c.result.reason or ("also certain" if c.result.grade == "certain" else None)
            self._set_link(txn, patient_id, person, "probable", "auto", c.result.score, why, now)
        if alone_new:  # a new Person of this Patient alone: no need to look it up
            self.refresh_person(
                txn, target, now, {patient_id: patient}, members=[(patient_id, source, reason)]
            )
        else:
            self.refresh_person(txn, target, now, {patient_id: patient})
        if old_person is not None and old_person != target:
            self.refresh_person(txn, old_person, now)
        return target

    def rebuild(self, store: Any, *, batch: int = 500) -> Iterator[int]:
        """(Re)index every stored Patient, `batch` per transaction, in id order; yields the
        number done after each batch. For data loaded before the index existed or with it
        off; running it again changes nothing that is already right."""
        after = ""
        while True:
            ids = [
                str(r[0])
                for r in store.rows(
                    "SELECT res_id FROM resources WHERE res_type = ? AND deleted = ? "
                    "AND res_id > ? ORDER BY res_id LIMIT ?",
                    ["Patient", store.boolean(False), after, batch],
                )
            ]
            if not ids:
                return
            with store.inner.transaction() as txn:
                for patient_id in ids:
                    self.index_patient(txn, patient_id)
            after = ids[-1]
            yield len(ids)

    def _forget(self, txn: WriteTransaction, patient_id: str, person_id: str, now: int) -> None:
        txn.run("DELETE FROM mpi_keys WHERE patient_id = ?", [patient_id])
        txn.run("DELETE FROM mpi_records WHERE patient_id = ?", [patient_id])
        txn.run("DELETE FROM mpi_links WHERE patient_id = ? AND source = ?", [patient_id, "auto"])
        self._event(txn, now, "unlink", patient_id, person_id, None, "auto", None, "deleted")
        self.refresh_person(txn, person_id, now)

    # -- links and events
    def _set_link(
        self,
        txn: WriteTransaction,
        patient_id: str,
        person_id: str,
        result: str,
        source: str,
        score: float | None,
        reason: str | None,
        now: int,
        *,
        known: bool = False,
    ) -> None:
        """`known`: the pair has no link yet (a new Person), none to drop."""
        score = None if score is None or score != score or abs(score) == float("inf") else score
        if not known:
            self._drop_link(txn, patient_id, person_id)
        txn.run(
            "INSERT INTO mpi_links (patient_id, person_id, result, source, score, reason, "
            "updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [patient_id, person_id, result, source, score, reason, now],
        )

    def _drop_link(self, txn: WriteTransaction, patient_id: str, person_id: str) -> None:
        txn.run(
            "DELETE FROM mpi_links WHERE patient_id = ? AND person_id = ?",
            [patient_id, person_id],
        )

    def _event(
        self,
        txn: WriteTransaction,
        now: int,
        kind: str,
        patient_id: str | None,
        person_id: str | None,
        result: str | None,
        source: str,
        actor: str | None,
        detail: str | None,
        other: str | None = None,
    ) -> None:
        txn.run(
            "INSERT INTO mpi_events (at, kind, patient_id, person_id, other_person_id, result, "
            "source, actor, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [now, kind, patient_id, person_id, other, result, source, actor, detail],
        )

    # -- the golden Person
    def refresh_person(
        self,
        txn: WriteTransaction,
        person_id: str,
        now: int,
        known: dict[str, dict[str, Any]] | None = None,
        members: list[tuple[str, str | None, str | None]] | None = None,
    ) -> None:
        """Write the Person as its linked Patients say (a new version only if it changed).
        `members` (patient, link source, reason), when given, says the Person is new and
        holds just these."""
        previous = None
        if members is None:
            members = txn.rows(
                "SELECT r.patient_id, l.source, l.reason FROM mpi_records r "
                "LEFT JOIN mpi_links l ON l.patient_id = r.patient_id "
                "AND l.person_id = r.person_id WHERE r.person_id = ? ORDER BY r.patient_id",
                [person_id],
            )
            previous = txn.current("Person", person_id)
        old = None
        if previous is not None and not previous.deleted:
            old = txn.read("Person", person_id).resource()
        if members:
            known = known or {}
            patients = [
                known[m[0]] if m[0] in known else txn.read("Patient", m[0]).resource()
                for m in members
            ]
            person = golden_person(person_id, patients, [(m[1], m[2]) for m in members])
        elif old is None or old.get("active") is False:
            return  # nothing to show, or merged away before: stays as it is
        else:  # its last Patient left: kept, inactive, for its history
            person = {k: v for k, v in old.items() if k not in ("meta", "link")}
            person.update(meta={"tag": [GOLDEN_TAG]}, active=False)
        if old is not None and _same(old, person):
            return
        txn.write("Person", person_id, person, "PUT" if previous else "POST", previous)

    # -- reads (outside write transactions)
    def person_of(self, rows: Rows, patient_id: str) -> str | None:
        found = rows("SELECT person_id FROM mpi_records WHERE patient_id = ?", [patient_id])
        return str(found[0][0]) if found else None

    def linked_patients(self, rows: Rows, patient_id: str) -> list[str]:
        """The Patients linked (for certain) to the same Person as `patient_id`, itself first."""
        person = self.person_of(rows, patient_id)
        if person is None:
            return [patient_id]
        others = rows(
            "SELECT patient_id FROM mpi_records WHERE person_id = ? ORDER BY patient_id",
            [person],
        )
        return [patient_id, *(str(r[0]) for r in others if r[0] != patient_id)]

    def links(
        self,
        rows: Rows,
        *,
        result: str | None = None,
        patient: str | None = None,
        person: str | None = None,
        limit: int = 100,
    ) -> list[Link]:
        where, args = [], []
        for column, value in (("result", result), ("patient_id", patient), ("person_id", person)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT patient_id, person_id, result, source, score, reason, updated FROM mpi_links"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated, patient_id, person_id LIMIT ?"
        return [
            Link(str(a), str(b), str(c), str(d), None if e is None else float(e), f, int(g))
            for a, b, c, d, e, f, g in rows(sql, [*args, limit])
        ]

    # -- operator decisions
    def update_link(
        self, txn: WriteTransaction, patient_id: str, person_id: str, result: str, actor: str
    ) -> None:
        """An operator's decision on a pair: `certain` links the Patient to the Person
        (accepting a review item), `no-match` separates them (rejecting a review item, or
        unlinking a wrong link: the Patient gets a Person of its own). Manual decisions are
        never overridden by the automatic linker."""
        if result not in ("certain", "no-match"):
            raise InvalidRequest("result must be certain or no-match", ("result",))
        now = self.clock()
        current = txn.current("Patient", patient_id)
        if current is None or current.deleted:
            raise NotFound(f"Patient/{patient_id} is not known")
        self._lock_persons(txn, [person_id])
        old = txn.rows("SELECT person_id FROM mpi_records WHERE patient_id = ?", [patient_id])
        if not old:
            raise NotFound(f"Patient/{patient_id} is not in the index")
        old_person = str(old[0][0])
        person = txn.current("Person", person_id)
        if person is None or person.deleted:
            raise NotFound(f"Person/{person_id} is not known")
        if result == "certain":
            if txn.read("Person", person_id).resource().get("active") is False:
                raise Conflict(f"Person/{person_id} was merged: link to the Person it went into")
            others = txn.rows(
                "SELECT 1 FROM mpi_records WHERE person_id = ? AND patient_id <> ? LIMIT 1",
                [old_person, patient_id],
            )
            if old_person != person_id and others:
                # Its Person holds other records linked to it for certain: accepting says
                # they are all this human, so the two Persons become one.
                self._set_link(txn, patient_id, person_id, "certain", "manual", None, actor, now)
                self.merge(txn, old_person, person_id, actor)
                return
            self._set_link(txn, patient_id, person_id, "certain", "manual", None, actor, now)
            if old_person != person_id:
                self._drop_link(txn, patient_id, old_person)
                txn.run(
                    "UPDATE mpi_records SET person_id = ? WHERE patient_id = ?",
                    [person_id, patient_id],
                )
            self._event(txn, now, "link", patient_id, person_id, "certain", "manual", actor, None)
            self.refresh_person(txn, person_id, now)
            if old_person != person_id:
                self.refresh_person(txn, old_person, now)
            return
        self._set_link(txn, patient_id, person_id, "no-match", "manual", None, actor, now)
        self._event(txn, now, "no-match", patient_id, person_id, "no-match", "manual", actor, None)
        if old_person == person_id:  # unlink: a Person of its own
            fresh = new_id()
            txn.run(
                "UPDATE mpi_records SET person_id = ? WHERE patient_id = ?", [fresh, patient_id]
            )
            self._set_link(
                txn, patient_id, fresh, "certain", "manual", None, f"unlinked by {actor}", now
            )
            self._event(txn, now, "link", patient_id, fresh, "certain", "manual", actor, "unlink")
            self.refresh_person(txn, fresh, now)
            self.refresh_person(txn, person_id, now)

    def merge(self, txn: WriteTransaction, source: str, target: str, actor: str) -> int:
        """Move every Patient of Person `source` to Person `target`; `source` stays, inactive,
        linking to `target`. Returns the number of Patients moved."""
        if source == target:
            raise InvalidRequest("A Person cannot be merged into itself", ("source",))
        now = self.clock()
        self._lock_persons(txn, [source, target])
        for person_id in (source, target):
            found = txn.current("Person", person_id)
            if found is None or found.deleted:
                raise NotFound(f"Person/{person_id} is not known")
            if txn.read("Person", person_id).resource().get("active") is False:
                raise Conflict(f"Person/{person_id} is already merged into another Person")
        moved = [
            str(r[0])
            for r in txn.rows(
                "SELECT patient_id FROM mpi_records WHERE person_id = ? ORDER BY patient_id",
                [source],
            )
        ]
        self._event(txn, now, "merge", None, target, None, "manual", actor, None, other=source)
        for patient_id in moved:
            txn.run(
                "UPDATE mpi_records SET person_id = ? WHERE patient_id = ?", [target, patient_id]
            )
            self._drop_link(txn, patient_id, source)
            self._set_link(
                txn, patient_id, target, "certain", "manual", None, f"merged by {actor}", now
            )
            self._event(
                txn, now, "relink", patient_id, target, "certain", "manual", actor, "merge", source
            )
        # Review items proposing the merged Person are moot now.
        txn.run("DELETE FROM mpi_links WHERE person_id = ? AND result = ?", [source, "probable"])
        self.refresh_person(txn, target, now)
        merged = txn.read("Person", source).resource()
        merged.pop("meta", None)
        merged.update(
            meta={"tag": [GOLDEN_TAG]},
            active=False,
            link=[{"target": {"reference": f"Person/{target}"}, "assurance": "level4"}],
        )
        txn.write("Person", source, merged, "PUT", txn.current("Person", source))
        return len(moved)

    def unmerge(self, txn: WriteTransaction, source: str, actor: str) -> int:
        """Undo the last merge of Person `source`: its Patients go back to it."""
        now = self.clock()
        found = txn.rows(
            "SELECT event, person_id FROM mpi_events WHERE kind = ? AND other_person_id = ? "
            "ORDER BY event DESC LIMIT 1",
            ["merge", source],
        )
        if not found:
            raise InvalidRequest(f"Person/{source} was never merged", ("source",))
        event, target = int(found[0][0]), str(found[0][1])
        self._lock_persons(txn, [source, target])
        undone = txn.rows(
            "SELECT 1 FROM mpi_events WHERE kind = ? AND other_person_id = ? AND event > ?",
            ["unmerge", source, event],
        )
        if undone:
            raise Conflict(f"The last merge of Person/{source} was already undone")
        moved = [
            str(r[0])
            for r in txn.rows(
                "SELECT DISTINCT patient_id FROM mpi_events WHERE kind = ? AND "
                "other_person_id = ? AND person_id = ? AND event > ?",
                ["relink", source, target, event],
            )
        ]
        self._event(txn, now, "unmerge", None, target, None, "manual", actor, None, other=source)
        back = []
        for patient_id in moved:
            still = txn.rows(
                "SELECT 1 FROM mpi_records WHERE patient_id = ? AND person_id = ?",
                [patient_id, target],
            )
            if not still:
                continue  # moved again or deleted since: left where it is
            back.append(patient_id)
            txn.run(
                "UPDATE mpi_records SET person_id = ? WHERE patient_id = ?", [source, patient_id]
            )
            self._drop_link(txn, patient_id, target)
            self._set_link(
                txn, patient_id, source, "certain", "manual", None, f"unmerged by {actor}", now
            )
            self._event(
                txn, now, "relink", patient_id, source, "certain", "manual", actor, "unmerge"
            )
        restored = txn.read("Person", source).resource()
        restored.pop("meta", None)
        restored.pop("link", None)
        restored["active"] = True
        restored["meta"] = {"tag": [GOLDEN_TAG]}
        txn.write("Person", source, restored, "PUT", txn.current("Person", source))
        self.refresh_person(txn, source, now)
        self.refresh_person(txn, target, now)
        return len(back)

    def _lock_persons(self, txn: WriteTransaction, persons: list[str]) -> None:
        for person in sorted(set(persons)):  # one order: two merges cannot deadlock
            txn.lock(f"mpi:person:{person}")


def golden_person(
    person_id: str, patients: list[dict[str, Any]], links: list[tuple[str | None, str | None]]
) -> dict[str, Any]:
    """The Person of `patients`: the most complete record's name, gender, birth date and
    address; every verified national identifier and phone of all of them; a link to each."""
    best = max(patients, key=_completeness) if patients else {}
    identifiers: dict[tuple[str, str], dict[str, Any]] = {}
    telecom: dict[str, dict[str, Any]] = {}
    for patient in patients:
        for identifier in patient.get("identifier") or []:
            system, value = identifier.get("system"), identifier.get("value")
            if system in _PERSON_IDENTIFIERS and value and is_verified(identifier):
                identifiers.setdefault(
                    (system, value), {"use": "official", "system": system, "value": value}
                )
        for point in patient.get("telecom") or []:
            if point.get("value"):
                telecom.setdefault(
                    f"{point.get('system')}|{point['value']}",
                    {k: point[k] for k in ("system", "value") if k in point},
                )
    person: dict[str, Any] = {
        "resourceType": "Person",
        "id": person_id,
        "meta": {"tag": [GOLDEN_TAG]},
    }
    if identifiers:
        person["identifier"] = list(identifiers.values())
    if best.get("name"):
        person["name"] = best["name"][:1]
    if telecom:
        person["telecom"] = list(telecom.values())
    for element in ("gender", "birthDate"):
        if best.get(element):
            person[element] = best[element]
    if best.get("address"):
        person["address"] = best["address"][:1]
    person["active"] = True
    person["link"] = [
        {
            "target": {"reference": f"Patient/{p['id']}"},
            "assurance": "level3" if source == "auto" and reason == "probabilistic" else "level4",
        }
        for p, (source, reason) in zip(patients, links, strict=True)
    ]
    return person


_PERSON_IDENTIFIERS = (CCCD, CMND, BHYT, VNEID)


def _completeness(patient: dict[str, Any]) -> tuple[int, int, str]:
    birth = patient.get("birthDate") or ""
    national = any(
        i.get("system") == _PERSON_IDENTIFIERS[0] and is_verified(i)
        for i in patient.get("identifier") or []
    )
    last = (patient.get("meta") or {}).get("lastUpdated") or ""
    return (int(national), len(birth), last)


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    strip = ("meta", "id")
    return {k: v for k, v in old.items() if k not in strip} == {
        k: v for k, v in new.items() if k not in strip
    }
