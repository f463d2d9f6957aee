"""Loading files into the store: Bundles through the router, NDJSON in bulk transactions.

Every resource is validated first; a bad line or entry is reported with its file and line
and skipped, never half-written. NDJSON is parsed, validated, indexed and serialised by
worker processes (storage/prepared.py) while this process only writes, in file order, in
transactions of `batch` resources.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vnehr.errors import FhirError
from vnehr.fhir import json as fhir_json
from vnehr.fhir.definitions import resource_types
from vnehr.fhir.ids import is_valid_id, new_id
from vnehr.interactions.exchange import FhirRequest
from vnehr.search.registry import SearchParam
from vnehr.storage.prepared import PreparedResource, prepare

if TYPE_CHECKING:
    from vnehr.app import Server

CHUNK_LINES = 250
Line = tuple[int, Any]  # (line number, raw bytes or a parsed resource)


def start_workers(workers: int | None = None) -> Executor | None:
    """A pool of worker processes for NDJSON, started now: call before opening a store,
    so the processes are forked before any thread exists. None when 0 workers are asked."""
    n = min(os.cpu_count() or 1, 4) if workers is None else workers
    if n <= 0:
        return None
    executor = ProcessPoolExecutor(
        max_workers=n,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )
    for future in [executor.submit(_warm_up) for _ in range(n)]:
        future.result()
    return executor


def _die_with_parent(parent: int) -> None:
    """A worker exits when the loading process is gone, even killed (SIGKILL): it would
    otherwise wait for work forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="vnehr-parent-watch", daemon=True).start()


def _warm_up() -> bool:
    _worker_tools()
    return True


_TOOLS: dict[str, Any] = {}


def _worker_tools(
    custom: tuple[SearchParam, ...] = (),
) -> tuple[Callable[[dict[str, Any]], list[Any]], Callable[..., Any]]:
    """The validator and the extractor of a worker: the R4 parameters plus `custom` (the
    server's custom SearchParameters), rebuilt when those change."""
    if not _TOOLS or _TOOLS["custom"] != custom:
        from vnehr.checks import check as validate
        from vnehr.search.extract import Extractor
        from vnehr.search.registry import default_registry, r4_registry

        registry = default_registry() if not custom else r4_registry()
        for param in custom:
            registry.add_param(param)
        _TOOLS["validate"] = validate
        _TOOLS["extract"] = Extractor(registry).extract
        _TOOLS["custom"] = custom
    return _TOOLS["validate"], _TOOLS["extract"]


@dataclass(frozen=True, slots=True)
class Block:
    """Whole lines of an NDJSON file: `length` bytes from `offset`, the first being line
    `first_line`. Sent to workers instead of the lines themselves."""

    path: str
    offset: int
    length: int
    first_line: int

    def lines(self) -> list[Line]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(self.length)
        return list(enumerate(data.split(b"\n"), start=self.first_line))


Chunk = list[Line] | Block
BLOCK_BYTES = 256 * 1024


def _blocks(path: Path, progress: Callable[[int], None] | None) -> Iterator[Block]:
    with path.open("rb") as f:
        offset, line = 0, 1
        carry = b""
        while True:
            data = f.read(BLOCK_BYTES)
            if not data:
                if carry:
                    yield Block(str(path), offset, len(carry), line)
                    if progress:
                        progress(len(carry))
                return
            data = carry + data
            end = data.rfind(b"\n")
            if end == -1:
                carry = data
                continue
            whole, carry = data[: end + 1], data[end + 1 :]
            yield Block(str(path), offset, len(whole) - 1, line)  # without the last newline
            if progress:
                progress(len(whole))
            offset += len(whole)
            line += whole.count(b"\n")


def prepare_lines(
    chunk: Chunk, origin: str, check: bool, custom: tuple[SearchParam, ...] = ()
) -> list[tuple[int, Any]]:
    """Parse, check, validate and prepare each line: (line, PreparedResource or error text)."""
    lines = chunk.lines() if isinstance(chunk, Block) else chunk
    validate, extract = _worker_tools(custom)
    types = resource_types()
    out: list[tuple[int, Any]] = []
    for number, raw in lines:
        if isinstance(raw, bytes) and not raw.strip():
            continue  # blank lines are allowed
        where = f"{origin}:{number}"
        try:
            resource = fhir_json.loads(raw) if isinstance(raw, bytes | str) else raw
        except FhirError as exc:
            out.append((number, f"{where}: {exc.diagnostics}"))
            continue
        if not isinstance(resource, dict) or resource.get("resourceType") not in types:
            out.append((number, f"{where}: not a FHIR resource"))
            continue
        res_id = resource.get("id")
        if res_id is not None and not (isinstance(res_id, str) and is_valid_id(res_id)):
            out.append((number, f"{where}: invalid id {res_id!r}"))
            continue
        if check:
            errors = [i for i in validate(resource) if i.severity in ("error", "fatal")]
            if errors:
                first = errors[0]
                at = f" at {first.expression[0]}" if first.expression else ""
                out.append((number, f"{where}: {first.diagnostics}{at}"))
                continue
        out.append((number, prepare(resource, extract)))
    return out


class Loader:
    def __init__(self, server: Server, *, batch: int = 1000, executor: Executor | None = None):
        self.server = server
        self.batch = batch
        self.executor = executor
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []

    def load_file(self, path: Path, progress: Callable[[int], None] | None = None) -> None:
        if path.suffix in (".ndjson", ".jsonl") or path.name.endswith(".ndjson.gz"):
            self.load_ndjson(path, progress)
            return
        data = path.read_bytes()
        try:
            resource = fhir_json.loads(data)
        except FhirError as exc:
            self.errors.append(f"{path}: {exc.diagnostics}")
            return
        if progress:
            progress(len(data))
        if not isinstance(resource, dict) or resource.get("resourceType") != "Bundle":
            self._write(iter([[(1, resource)]]), str(path))
            return
        self.load_bundle(resource, origin=str(path))

    def load_bundle(self, bundle: dict[str, Any], *, origin: str) -> None:
        kind = bundle.get("type")
        if kind in ("transaction", "batch"):
            request = FhirRequest(
                method="POST",
                path="",
                resource=bundle,
                base_url="",
                headers={"prefer": "return=minimal"},
            )
            response = self.server.router.handle(request)
            if response.status >= 400:
                outcome = response.resource or {}
                issue = (outcome.get("issue") or [{}])[0]
                self.errors.append(f"{origin}: {kind} failed: {issue.get('diagnostics')}")
                return
            result = response.resource or {}
            for entry, answer in zip(
                bundle.get("entry", []), result.get("entry", []), strict=False
            ):
                status = str(answer.get("response", {}).get("status", ""))
                res_type = (entry.get("resource") or {}).get("resourceType") or "?"
                if status.startswith("2"):
                    self.counts[res_type] += 1
                else:
                    self.errors.append(f"{origin}: entry {res_type}: {status}")
            return
        entries = bundle.get("entry") or []
        lines = ((i + 1, e.get("resource")) for i, e in enumerate(entries) if isinstance(e, dict))
        self._write(_chunks(lines, CHUNK_LINES), f"{origin} (entry)")

    def load_ndjson(self, path: Path, progress: Callable[[int], None] | None = None) -> None:
        if path.name.endswith(".gz"):
            import gzip

            def lines() -> Iterator[Line]:
                with gzip.open(path, "rb") as f:
                    for number, line in enumerate(f, start=1):
                        if progress:
                            progress(len(line))
                        yield number, line

            self._write(_chunks(lines(), CHUNK_LINES), str(path))
            return
        # Plain files: the workers read their blocks themselves; only offsets travel.
        self._write(_blocks(path, progress), str(path))

    def _prepared(self, chunks: Iterator[Chunk], origin: str) -> Iterator[tuple[int, Any]]:
        """Prepared resources (or errors) in input order, from the workers when there are."""
        check = self.server.router.ctx.settings.validate
        custom = self._custom_parameters()
        if self.executor is None:
            for chunk in chunks:
                yield from prepare_lines(chunk, origin, check, custom)
            return
        pending: deque[Future[list[tuple[int, Any]]]] = deque()
        depth = 4 * max(1, getattr(self.executor, "_max_workers", 1))
        for chunk in chunks:
            pending.append(self.executor.submit(prepare_lines, chunk, origin, check, custom))
            if len(pending) >= depth:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()

    def _custom_parameters(self) -> tuple[SearchParam, ...]:
        """The server's custom SearchParameters in use, for the preparing workers."""
        registry = self.server.router.ctx.registry
        found = (registry.by_url(url) for url in self.server.search_parameters.urls().values())
        return tuple(sorted((p for p in found if p is not None), key=lambda p: p.url))

    def _write(self, chunks: Iterator[Chunk], origin: str) -> None:
        batch: list[PreparedResource] = []
        for _, item in self._prepared(chunks, origin):
            if isinstance(item, str):
                self.errors.append(item)
                continue
            batch.append(item)
            if len(batch) >= self.batch:
                self._commit(batch)
                batch = []
        if batch:
            self._commit(batch)

    def _commit(self, batch: list[PreparedResource]) -> None:
        with self.server.store.transaction() as txn:
            txn.prefetch((item.res_type, item.res_id) for item in batch if item.res_id)
            for item in batch:
                res_id = item.res_id or new_id()
                previous = txn.current(item.res_type, res_id)
                method = "PUT" if item.res_id else "POST"
                txn.write_prepared(item.res_type, res_id, item, method, previous)
        for item in batch:
            self.counts[item.res_type] += 1


def _chunks(lines: Iterator[Line], size: int) -> Iterator[list[Line]]:
    chunk: list[Line] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
