"""AuditEvent over FHIR, read-only, from the audit tables (not the resource store):

    GET AuditEvent?patient=&date=&agent=&entity=&subtype=&outcome=&_count=
    GET AuditEvent/{id}
    GET Patient/{id}/AuditEvent   (and Practitioner/{id}/AuditEvent: by agent)

Newest first, paged by `_cursor`. Every write answers 405. What a caller sees is limited by
vnehr.audit.visibility; reading the trail is itself audited (by the router, like any read).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import orjson

from vnehr.audit.visibility import Visible, visible_to
from vnehr.errors import InvalidRequest, MethodNotAllowed, NotFound
from vnehr.fhir.instant import parse_range
from vnehr.interactions.bundles import bundle, link
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.search.parse import split_prefix

RESOURCE = "AuditEvent"
READ_ONLY = "AuditEvent is read-only: the server writes the audit trail itself"
_IGNORED = frozenset({"_format", "_pretty", "_cursor", "_count"})


def handles(parts: Sequence[str]) -> bool:
    """The paths answered here: AuditEvent[/...] and AuditEvent in a compartment
    (`Patient/1/AuditEvent`); operations (`AuditEvent/$validate`) stay with the router."""
    if not parts or any(p.startswith("$") for p in parts):
        return False
    return parts[0] == RESOURCE or (len(parts) == 3 and parts[2] == RESOURCE)


def dispatch(ctx: Context, request: FhirRequest, parts: Sequence[str]) -> FhirResponse:
    method = request.method.upper()
    if parts[0] != RESOURCE:  # a compartment: Patient/1/AuditEvent
        if method != "GET":
            raise MethodNotAllowed(READ_ONLY)
        owner = ("patient", parts[1]) if parts[0] == "Patient" else ("agent", "/".join(parts[:2]))
        return search(ctx, request, request.query, "/".join(parts), owner)
    if len(parts) == 2 and parts[1] == "_search":
        if method != "POST":
            raise MethodNotAllowed("Use POST for AuditEvent/_search")
        body = (request.body or b"").decode("utf-8", errors="replace")
        form = parse_qsl(body, keep_blank_values=True) if body else []
        return search(ctx, request, [*request.query, *form], RESOURCE)
    if method != "GET":
        raise MethodNotAllowed(READ_ONLY)
    if len(parts) == 1:
        return search(ctx, request, request.query, RESOURCE)
    if len(parts) == 2 and not parts[1].startswith("_"):
        return read(ctx, request, parts[1])
    raise InvalidRequest("AuditEvent supports read and search only")


def read(ctx: Context, request: FhirRequest, event_id: str) -> FhirResponse:
    seen = visible_to(ctx, request.principal, "r")
    rows = ctx.store.rows(
        "SELECT content, patient, facility FROM audit_events WHERE id = ?", [event_id]
    )
    if not rows or not _allowed(seen, rows[0][1], rows[0][2]):
        raise NotFound(f"AuditEvent/{event_id} is not known")
    return FhirResponse(200, resource=_shown(rows[0][0], seen))


def search(
    ctx: Context,
    request: FhirRequest,
    params: Sequence[tuple[str, str]],
    path: str,
    owner: tuple[str, str] | None = None,
) -> FhirResponse:
    seen = visible_to(ctx, request.principal, "s")
    where, args = _criteria([*params, *([owner] if owner else [])])
    if not seen.everything:
        if seen.patients is not None:
            if not seen.patients:
                where.append("1 = 0")
            else:
                where.append(f"patient IN ({', '.join('?' for _ in seen.patients)})")
                args += sorted(seen.patients)
        if seen.facility is not None:
            where.append("facility = ?")
            args.append(seen.facility)
    count = _count(ctx, params)
    cursor = _param(params, "_cursor")
    if cursor:
        recorded, event_id = _decode_cursor(cursor)
        where.append("(recorded < ? OR (recorded = ? AND id < ?))")
        args += [recorded, recorded, event_id]
    sql = "SELECT recorded, id, content FROM audit_events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = ctx.store.rows(sql + " ORDER BY recorded DESC, id DESC LIMIT ?", [*args, count + 1])
    more = len(rows) > count
    rows = rows[:count]
    entries = [
        {
            "fullUrl": f"{request.base_url}/AuditEvent/{row[1]}",
            "resource": _shown(row[2], seen),
            "search": {"mode": "match"},
        }
        for row in rows
    ]
    used = [(k, v) for k, v in params if k != "_cursor"]
    links = [link("self", request.base_url, path, list(params))]
    if more and rows:
        after = _encode_cursor(int(rows[-1][0]), str(rows[-1][1]))
        links.append(link("next", request.base_url, path, [*used, ("_cursor", after)]))
    return FhirResponse(200, resource=bundle("searchset", entries, link=links))


def _allowed(seen: Visible, patient: str | None, facility: str | None) -> bool:
    if seen.everything:
        return True
    if seen.patients is not None and patient not in seen.patients:
        return False
    return seen.facility is None or facility == seen.facility


def _shown(content: str, seen: Visible) -> dict[str, Any]:
    event: dict[str, Any] = orjson.loads(content)
    if seen.redact_queries:
        for entity in event.get("entity") or ():
            if entity.get("role", {}).get("code") == "24":  # object-role Query
                entity.pop("query", None)
                entity.pop("description", None)
    return event


def _criteria(params: Sequence[tuple[str, str]]) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for name, value in params:
        values = [v.strip() for v in value.split(",") if v.strip()]
        if name in _IGNORED:
            continue
        if not values:
            raise InvalidRequest(f"AuditEvent search parameter {name!r} has no value", (name,))
        if name == "patient":
            ids = [_patient_id(v) for v in values]
            where.append(f"patient IN ({', '.join('?' for _ in ids)})")
            args += ids
        elif name == "date":
            for text in values:
                condition, bounds = _date(text)
                where.append(condition)
                args += bounds
        elif name == "agent":
            marks = ", ".join("?" for _ in values)
            where.append(f"(agent IN ({marks}) OR client IN ({marks}))")
            args += [*values, *values]
        elif name == "entity":
            alternatives = []
            for ref in values:
                if ref.startswith("Patient/"):
                    alternatives.append("patient = ?")
                    args.append(_patient_id(ref))
                else:
                    alternatives.append("(content LIKE ? OR content LIKE ?)")
                    args += [f'%"reference":"{ref}"%', f'%"reference":"{ref}/_history/%']
            where.append("(" + " OR ".join(alternatives) + ")")
        elif name == "subtype":
            codes = [v.rsplit("|", 1)[-1] for v in values]
            where.append(f"kind IN ({', '.join('?' for _ in codes)})")
            args += codes
        elif name == "outcome":
            if not all(v.isdigit() for v in values):
                raise InvalidRequest("outcome is 0, 4, 8 or 12", (name,))
            where.append(f"outcome IN ({', '.join('?' for _ in values)})")
            args += [int(v) for v in values]
        else:
            raise InvalidRequest(
                f"AuditEvent search supports patient, date, agent, entity, subtype, outcome, "
                f"_count; not {name!r}",
                (name,),
            )
    return where, args


def _patient_id(value: str) -> str:
    head, _, tail = value.rpartition("/")
    if head not in ("", "Patient") and not head.endswith("/Patient"):
        raise InvalidRequest(f"patient must be a Patient reference, not {value!r}", ("patient",))
    return tail


def _date(text: str) -> tuple[str, list[int]]:
    prefix, rest = split_prefix(text)
    low, high = parse_range(rest.replace(" ", "+"), "date")
    match prefix:
        case "eq" | "ap":
            return "recorded BETWEEN ? AND ?", [low, high]
        case "ne":
            return "NOT (recorded BETWEEN ? AND ?)", [low, high]
        case "gt" | "sa":
            return "recorded > ?", [high]
        case "ge":
            return "recorded >= ?", [low]
        case "lt" | "eb":
            return "recorded < ?", [low]
        case _:  # le
            return "recorded <= ?", [high]


def _count(ctx: Context, params: Sequence[tuple[str, str]]) -> int:
    raw = _param(params, "_count")
    settings = ctx.settings
    if raw is None:
        return settings.default_page_size
    if not raw.isdigit():
        raise InvalidRequest(f"_count must be a number, not {raw!r}", ("_count",))
    return min(int(raw), settings.max_page_size)


def _param(params: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value
    return None


def _encode_cursor(recorded: int, event_id: str) -> str:
    return base64.urlsafe_b64encode(f"{recorded}:{event_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        recorded, event_id = raw.split(":", 1)
        return int(recorded), event_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(f"Invalid paging cursor {cursor!r}", ("_cursor",)) from None
