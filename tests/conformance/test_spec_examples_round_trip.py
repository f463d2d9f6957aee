"""Every accepted R4 spec example round-trips: POST, then GET returns the same content apart
from the server's id and meta (versionId, lastUpdated), on every backend."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from vnehr.app import Server
from vnehr.fhir import json as fhir_json
from vnehr.fhir.validation import has_errors, validate
from vnehr.interactions.exchange import FhirRequest
from vnehr.policy.labels import labelled, load_rules

EXAMPLES = Path(__file__).parent / "data" / "r4-examples" / "examples.ndjson.gz"


def _accepted() -> list[tuple[str, dict[str, Any]]]:
    out = []
    with gzip.open(EXAMPLES, "rb") as f:
        for line in f:
            row = fhir_json.loads(line)
            if not has_errors(validate(row["resource"])):
                out.append((row["file"], row["resource"]))
    return out


def _comparable(resource: dict[str, Any]) -> bytes:
    """Canonical bytes (keys sorted, decimals as written) without the server's id and meta."""
    body = {k: v for k, v in resource.items() if k != "id"}
    meta = {
        k: v
        for k, v in (body.pop("meta", None) or {}).items()
        if k not in ("versionId", "lastUpdated")
    }
    if meta:
        body["meta"] = meta
    return fhir_json.dumps(_sort(body))


def _sort(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sort(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sort(v) for v in value]
    return value


def test_accepted_examples_come_back_unchanged(server: Server) -> None:
    examples = _accepted()
    assert len(examples) >= 690
    changed = []
    rules = load_rules()
    audit_events = [name for name, r in examples if r["resourceType"] == "AuditEvent"]
    assert audit_events  # the audit trail is the server's own: refused below
    for name, resource in examples:
        body = fhir_json.dumps(resource)
        if resource["resourceType"] == "AuditEvent":
            refused = server.router.handle(
                FhirRequest("POST", "AuditEvent", body=body, base_url="http://x/fhir")
            )
            assert refused.status == 405, name
            continue
        # Security labels the server adds by code (vnehr.policy.labels) are expected.
        resource = labelled(resource, rules)
        created = server.router.handle(
            FhirRequest(
                "POST",
                resource["resourceType"],
                body=body,
                base_url="http://x/fhir",
                headers={"prefer": "return=minimal"},
            )
        )
        assert created.status == 201, (name, created.resource)
        location = created.headers["Location"].split("/fhir/")[1].split("/_history")[0]
        read = server.router.handle(FhirRequest("GET", location, base_url="http://x/fhir"))
        assert read.status == 200, name
        assert read.body is not None
        if _comparable(fhir_json.loads(read.body)) != _comparable(resource):
            changed.append(name)
    assert changed == []
