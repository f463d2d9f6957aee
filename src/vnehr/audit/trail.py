"""The audit trail: every FHIR interaction and security event becomes audit records.

- Writes: a commit hook (vnehr.search.custom.CommitHook) sees every resource a transaction
  wrote and inserts their records in that same transaction, before it commits: a write
  that commits has its record, whatever happens after (a killed process included), and a
  write that rolls back leaves none.
- Security events (vnehr.auth.events) are inserted in the transaction that records them.
- Everything else (reads, searches, refusals, failures) is queued in memory when the router
  has answered and written in batches by a background thread at most `audit_flush_ms`
  later, and on close: what a killed process had queued is lost (docs/audit.md).
- The same thread seals what was inserted into the hash chain (vnehr.audit.chain).
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import orjson

from vnehr.audit.chain import seal
from vnehr.audit.codes import outcome_of
from vnehr.audit.interaction import Interaction, classify
from vnehr.audit.patients import PatientLinks
from vnehr.audit.record import (
    Row,
    Touched,
    local_write_row,
    raw_query,
    rest_rows,
    security_row,
    who_of,
)
from vnehr.auth.events import SecurityEvent
from vnehr.auth.tokens import Principal
from vnehr.errors import MethodNotAllowed
from vnehr.fhir import json as fhir_json
from vnehr.fhir.instant import now_micros
from vnehr.identity.index import GOLDEN_TAG
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.policy.break_glass import active_for, party_of
from vnehr.policy.persons import person_patients
from vnehr.search.registry import SearchParamRegistry
from vnehr.settings import Settings
from vnehr.storage.base import Store, StoredVersion, WriteTransaction
from vnehr.storage.schema import AUDIT_COLUMNS

log = logging.getLogger("vnehr.audit")

_current: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "vnehr_audit_scope", default=None
)
_TRANSACTION = re.compile(rb'"type"\s*:\s*"transaction"')
_METHODS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
# Interactions whose answer is the resource itself (a Bundle read is a Bundle).
_SINGLE = frozenset({"read", "vread", "create", "update", "patch"})
_BATCH = 5_000  # queued requests turned into records per round
_GLASS_SECONDS = 1.0  # how long a caller's break-the-glass patients are remembered
_BACKLOG_WARNING = 100_000
_ROUNDS = 2
_CHUNK = 64  # records per transaction of the writer thread
_INSERT_COLUMNS = ", ".join(AUDIT_COLUMNS)


@dataclass(slots=True)
class Scope:
    """A request the router is answering: what the commit hook needs to know."""

    request: FhirRequest
    interaction: Interaction
    token: contextvars.Token[Scope | None] | None = None
    wrote: bool = False
    transaction: bool | None = None  # a POST to the base URL: a transaction Bundle?

    def is_transaction(self) -> bool:
        if self.transaction is None:
            body = self.request.body or b""
            resource = self.request.resource
            self.transaction = (
                resource.get("type") == "transaction"
                if resource is not None
                else _TRANSACTION.search(body) is not None
            )
        return self.transaction


def _golden(version: StoredVersion) -> bool:
    """A golden Person of the master patient index (vnehr.identity), by its tag."""
    if version.content is None or GOLDEN_TAG["code"].encode() not in version.content:
        return False
    tags = (orjson.loads(version.content).get("meta") or {}).get("tag") or []
    return any(
        isinstance(t, dict)
        and t.get("system") == GOLDEN_TAG["system"]
        and t.get("code") == GOLDEN_TAG["code"]
        for t in tags
    )


class _Pending(NamedTuple):
    request: FhirRequest
    interaction: Interaction
    response: FhirResponse
    recorded: int
    glass: dict[str, int]  # the caller's break-the-glass patients when it was answered


class AuditTrail:
    def __init__(self, store: Store, registry: SearchParamRegistry, settings: Settings) -> None:
        self.store = store  # the backend, for the trail's own transactions
        self.links = PatientLinks(registry)
        # The commit hook's types: every resource type.
        self.types = frozenset(registry.resource_types)
        self.flush_seconds = settings.audit_flush_ms / 1000
        self._queue: deque[_Pending] = deque()
        self._unsaved: list[Row] = []  # built, not yet written (the database failed)
        # Sealing rounds still due: unsealed records may exist (at start: a killed process's).
        # Two, because a record marked before its transaction commits is seen a round later.
        self._dirty = _ROUNDS
        self._glass: dict[str, tuple[float, dict[str, int]]] = {}
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="vnehr-audit", daemon=True)
        self._thread.start()

    # -- the router: Router.handle brackets every request with begin/end
    def begin(self, request: FhirRequest) -> Scope:
        scope = Scope(request, classify(request))
        scope.token = _current.set(scope)
        return scope

    def end(self, scope: Scope, response: FhirResponse | None) -> None:
        if scope.token is not None:
            _current.reset(scope.token)
            scope.token = None
        interaction = scope.interaction
        if response is None or interaction.code == "capabilities":
            return  # the CapabilityStatement is public and holds no one's data
        principal = scope.request.principal
        if interaction.operation == "break-glass":
            self._forget_glass(principal)
        if interaction.code == "batch" and scope.is_transaction():
            interaction = replace(interaction, code="transaction")
        if scope.wrote:
            self._dirty = _ROUNDS  # committed by now: the next flush seals it
            # Recorded in the writes' own transaction; what a batch read is not.
            if response.status < 400 and interaction.code != "batch":
                return
        glass = self._glass_for(principal)
        self._queue.append(_Pending(scope.request, interaction, response, now_micros(), glass))

    # -- the commit hook (vnehr.search.custom.CommitHook), in the writing transaction
    def before_commit(self, txn: WriteTransaction, changed: list[StoredVersion]) -> None:
        if any(v.res_type == "AuditEvent" for v in changed):
            raise MethodNotAllowed(
                "AuditEvent is read-only: the server writes the audit trail itself"
            )
        scope = _current.get()
        if scope is None:
            rows = [local_write_row(now_micros(), changed)]
            self._dirty = _ROUNDS
        else:
            # The golden Persons the master patient index rewrote because of this write are
            # the platform's doing, not the caller's, and the index keeps its own
            # append-only history of them (mpi_events, docs/identity.md). In the caller's
            # records they would name the person's other Patients, at other facilities, to
            # a facility that may not see them.
            own = [v for v in changed if not (v.res_type == "Person" and _golden(v))]
            rows = self._written(txn, scope, own) if own else []
            scope.wrote = True
        _insert(txn, rows)

    # -- security events (vnehr.auth.events.SecurityEvents), in their own transaction
    def security(self, txn: WriteTransaction, event: SecurityEvent) -> None:
        row = security_row(
            kind=event.kind,
            success=event.outcome == "success",
            recorded=event.at * 1_000_000,
            event_number=event.event or None,
            client_id=event.client_id,
            account_id=event.account_id,
            facility=event.facility,
            address=event.address,
            detail=event.detail,
        )
        _insert(txn, [row])
        self._dirty = _ROUNDS

    # -- writing
    def flush(self) -> None:
        """Write what is queued and seal what is unsealed, now."""
        with self._flushing:
            while True:
                pending = [self._queue.popleft() for _ in range(min(_BATCH, len(self._queue)))]
                if not pending and not self._unsaved and not self._dirty:
                    return
                if len(self._queue) > _BACKLOG_WARNING:
                    log.warning("%d audit records wait to be written", len(self._queue))
                rows = self._unsaved
                self._unsaved = []
                for item in pending:
                    try:
                        rows += self.rows_of(item)
                    except Exception:
                        log.exception(
                            "audit record of %s %s", item.request.method, item.request.path
                        )
                    # Let request threads have the GIL between two records: otherwise one
                    # arriving now waits up to the interpreter's switch interval (5 ms).
                    time.sleep(0)
                self._dirty = max(0, self._dirty - 1)
                if not self._write(rows):
                    return
                if not self._queue:
                    return

    def _write(self, rows: list[Row]) -> bool:
        """Seal the unsealed records and append `rows`, in transactions of a few dozen
        records: SQLite has one writer, and a request's write waits for each of them."""
        dialect = self.store.dialect
        done = 0
        try:
            sealed = _CHUNK
            while done < len(rows) or sealed == _CHUNK:
                with self.store.transaction() as txn:
                    sealed = seal(txn, dialect, rows[done : done + _CHUNK], _CHUNK)
                done += _CHUNK
        except Exception:
            left = rows[done:]
            log.exception("writing %d audit records failed; retrying", len(left))
            self._unsaved = left
            self._dirty = _ROUNDS
            return False
        return True

    def close(self) -> None:
        """Stop the background thread and write everything still queued."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(timeout=60)
        self._dirty = _ROUNDS  # whatever this process wrote last is sealed on the way out
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # never let the thread die
                log.exception("audit flush failed")

    # -- records
    def rows_of(self, item: _Pending) -> list[Row]:
        """The records of an answered request (not of the writes it committed)."""
        request, interaction, response = item.request, item.interaction, item.response
        code = interaction.code
        found: list[Any] = []
        if response.status < 400:
            body = response.resource
            if body is None and response.body:
                body = orjson.loads(response.body)
            if isinstance(body, dict):
                if body.get("resourceType") == "Bundle" and code not in _SINGLE:
                    found = list(_bundle_resources(body))  # a searchset, a history, ...
                elif body.get("resourceType") not in ("OperationOutcome", "Parameters"):
                    found = [body]
        if interaction.query_like:  # BALP records the patients found, not each resource
            touched = [Touched(None, frozenset(self.links.of_all(found)))] if found else []
        else:
            touched = [Touched(_ref(r), frozenset(self.links.of(r))) for r in found]
        if interaction.patient is not None:
            touched.append(Touched(None, frozenset([interaction.patient])))
        if not found and interaction.res_type and interaction.res_id:
            ref = f"{interaction.res_type}/{interaction.res_id}"
            if interaction.version:
                ref += f"/_history/{interaction.version}"
            touched.append(Touched(ref, frozenset()))
        elif not found and "Location" in response.headers:
            touched.append(Touched(_location_ref(response.headers["Location"]), frozenset()))
        query = None
        if interaction.query_like:
            form = request.body if request.path.rstrip("/").endswith("_search") else None
            query = raw_query(request.path, request.query, form)
            params = [*request.query, *parse_qsl((form or b"").decode(errors="replace"))]
            named = self.links.named(interaction.res_type, params)
            if named:
                touched.append(Touched(None, frozenset(named)))
        return rest_rows(
            code=code,
            who=who_of(request.principal, request.address),
            recorded=item.recorded,
            outcome=outcome_of(response.status),
            touched=touched,
            base_url=request.base_url,
            query_like=interaction.query_like,
            query=query,
            operation=interaction.operation,
            failure=_diagnostics(response) if response.status >= 400 else None,
            glass=item.glass,
        )

    def _written(
        self, txn: WriteTransaction, scope: Scope, changed: list[StoredVersion]
    ) -> list[Row]:
        request, interaction = scope.request, scope.interaction
        code = interaction.code
        if code == "batch":
            code = "transaction" if scope.is_transaction() else _METHODS[changed[0].method]
        touched = []
        for version in changed:
            content = version.content
            if content is None and version.version > 1:  # a deletion: whose it was
                content = txn.vread(version.res_type, version.res_id, version.version - 1).content
            patients = self.links.of(orjson.loads(content)) if content else set()
            ref = f"{version.res_type}/{version.res_id}/_history/{version.version}"
            touched.append(Touched(ref, frozenset(patients)))
        query = None
        if interaction.operation:
            query = raw_query(request.path, request.query, None)
        return rest_rows(
            code=code,
            who=who_of(request.principal, request.address),
            recorded=now_micros(),
            outcome=0,
            touched=touched,
            base_url=request.base_url,
            query_like=False,
            query=query,
            operation=interaction.operation,
            glass=self._glass_for(request.principal),
        )

    # -- break-the-glass: the patients a caller may see only by breaking the glass, and
    # their linked Patients, remembered for a second per clinician or facility
    def _glass_for(self, principal: Principal | None) -> dict[str, int]:
        if principal is None:
            return {}
        party = party_of(principal)
        if party is None:
            return {}
        now = time.monotonic()
        cached = self._glass.get(party)
        if cached is not None and cached[0] > now:
            return cached[1]
        active: dict[str, int] = {}
        try:
            found = active_for(self.store, principal, now_micros())
            if found:
                until = max(found.values())
                active = {p: until for p in person_patients(self.store, found)}
                active.update(found)
        except Exception:
            log.exception("reading break-the-glass rules")
        if len(self._glass) > 10_000:
            self._glass.clear()
        self._glass[party] = (now + _GLASS_SECONDS, active)
        return active

    def _forget_glass(self, principal: Principal | None) -> None:
        party = party_of(principal) if principal is not None else None
        if party is not None:
            self._glass.pop(party, None)


def _insert(txn: WriteTransaction, rows: list[Row]) -> None:
    """Unsealed records into a write's transaction: one INSERT statement of every row (one
    round trip; 500 rows a statement)."""
    marks = "(" + ", ".join("?" for _ in AUDIT_COLUMNS) + ")"
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        txn.run(
            f"INSERT INTO audit_events ({_INSERT_COLUMNS}) VALUES "
            + ", ".join(marks for _ in chunk),
            [value for row in chunk for value in row],
        )


def _bundle_resources(bundle: dict[str, Any]) -> Iterator[Any]:
    for entry in bundle.get("entry") or ():
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if isinstance(resource, fhir_json.StoredJson):  # a search's, as stored
            resource = orjson.loads(resource.content)
        if isinstance(resource, dict) and resource.get("resourceType") not in (
            "OperationOutcome",
            None,
        ):
            if resource.get("resourceType") == "Bundle":
                yield from _bundle_resources(resource)
            else:
                yield resource


def _ref(resource: dict[str, Any]) -> str | None:
    res_type, res_id = resource.get("resourceType"), resource.get("id")
    if not isinstance(res_type, str) or not isinstance(res_id, str):
        return None
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return f"{res_type}/{res_id}" + (f"/_history/{version}" if isinstance(version, str) else "")


def _location_ref(location: str) -> str:
    head, sep, version = location.partition("/_history/")
    parts = head.rstrip("/").split("/")
    ref = "/".join(parts[-2:])
    return f"{ref}/_history/{version}" if sep else ref


def _diagnostics(response: FhirResponse) -> str | None:
    outcome = response.resource
    if not isinstance(outcome, dict):
        return None
    texts = [
        issue.get("diagnostics")
        for issue in outcome.get("issue") or ()
        if isinstance(issue, dict) and issue.get("diagnostics")
    ]
    return "; ".join(str(t) for t in texts) or None
