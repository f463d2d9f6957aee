"""Loading files into the store: Bundles through the router, NDJSON in bulk transactions.

Every resource is validated first; a bad line or entry is reported with its file and line
and skipped, never half-written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vnehr.errors import FhirError
from vnehr.fhir import json as fhir_json
from vnehr.fhir.definitions import resource_types
from vnehr.fhir.ids import is_valid_id
from vnehr.interactions.exchange import FhirRequest

if TYPE_CHECKING:
    from vnehr.app import Server


class Loader:
    def __init__(self, server: Server, *, batch: int = 1000) -> None:
        self.server = server
        self.batch = batch
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
            self._bulk(iter([(1, resource)]), str(path))
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
        self._bulk(
            ((i + 1, e.get("resource")) for i, e in enumerate(entries) if isinstance(e, dict)),
            f"{origin} (entry)",
        )

    def load_ndjson(self, path: Path, progress: Callable[[int], None] | None = None) -> None:
        def lines() -> Iterator[tuple[int, Any]]:
            opener: Any = open
            if path.name.endswith(".gz"):
                import gzip

                opener = gzip.open
            with opener(path, "rb") as f:
                for number, line in enumerate(f, start=1):
                    if progress:
                        progress(len(line))
                    if not line.strip():
                        continue
                    try:
                        yield number, fhir_json.loads(line)
                    except FhirError as exc:
                        self.errors.append(f"{path}:{number}: {exc.diagnostics}")

        self._bulk(lines(), str(path))

    def _bulk(self, items: Iterator[tuple[int, Any]], origin: str) -> None:
        ctx = self.server.router.ctx
        types = resource_types()

        def valid() -> Iterator[dict[str, Any]]:
            for number, resource in items:
                where = f"{origin}:{number}"
                if not isinstance(resource, dict) or resource.get("resourceType") not in types:
                    self.errors.append(f"{where}: not a FHIR resource")
                    continue
                res_id = resource.get("id")
                if res_id is not None and not (isinstance(res_id, str) and is_valid_id(res_id)):
                    self.errors.append(f"{where}: invalid id {res_id!r}")
                    continue
                if ctx.settings.validate:
                    errors = [
                        i for i in ctx.validator(resource) if i.severity in ("error", "fatal")
                    ]
                    if errors:
                        first = errors[0]
                        at = f" at {first.expression[0]}" if first.expression else ""
                        self.errors.append(f"{where}: {first.diagnostics}{at}")
                        continue
                yield resource

        for stored in self.server.store.bulk_write(valid(), batch=self.batch):
            self.counts[stored.res_type] += 1
