"""Audit trail helpers: the records a server holds, read through its public interfaces."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.smart import server_of


def flushed(client: TestClient) -> None:
    """Write the queued records now (instead of within audit_flush_ms)."""
    trail = server_of(client).audit
    assert trail is not None
    trail.flush()


def trail(client: TestClient, headers: dict[str, str] | None = None, **query: str) -> list[Any]:
    """The AuditEvents `GET AuditEvent?...` answers (after writing what is queued)."""
    flushed(client)
    response = client.get("/fhir/AuditEvent", params={"_count": "1000", **query}, headers=headers)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])]


def subtype(event: dict[str, Any]) -> str:
    return str(event["subtype"][0]["code"])


def entities(event: dict[str, Any], role: str) -> list[str]:
    """The references of the entities with this object-role (1 Patient, 4 Domain Resource)."""
    return [
        e["what"]["reference"]
        for e in event.get("entity", [])
        if e["role"]["code"] == role and "what" in e
    ]


def agent(event: dict[str, Any], code: str) -> dict[str, Any]:
    return next(a for a in event["agent"] if a["type"]["coding"][0]["code"] == code)
