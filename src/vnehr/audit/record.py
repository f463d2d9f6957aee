"""Audit records: AuditEvents following IHE BALP (https://profiles.ihe.net/ITI/BALP/), with the
columns the trail is searched by.

One record is about at most one patient: BALP records a query that found several patients
as one AuditEvent per patient, and vnehr does the same for every interaction, so that a
citizen's access log never shows another person's identifiers.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlencode

import orjson

from vnehr.audit import codes
from vnehr.audit.codes import coding, concept
from vnehr.auth.tokens import Principal
from vnehr.fhir.instant import format_instant
from vnehr.policy.roles import role_of
from vnehr.storage.base import StoredVersion

HOST = socket.gethostname()

# The parts every record shares, made once (they are serialised, never changed).
_REST = coding(codes.AUDIT_EVENT_TYPE, "rest", "Restful Operation")
_SOURCE = {
    "observer": {"display": f"vnehr on {HOST}"},
    "type": [coding(codes.SOURCE_TYPE, "4", "Application Server")],
}
_SERVER = {
    "type": concept(codes.DICOM, "110152", "Destination Role ID"),
    "who": {"display": f"vnehr on {HOST}"},
    "requestor": False,
    "network": {"address": HOST, "type": "1"},
}
_CLIENT_TYPE = concept(codes.DICOM, "110153", "Source Role ID")
_AUTHOR = concept(codes.PARTICIPATION, "AUT", "author")
_RECIPIENT = concept(codes.PARTICIPATION, "IRCP", "information recipient")
_PROVIDER = concept(codes.ROLE_CLASS, "PROV", "healthcare provider")
_NO_TOKEN = {"display": "no access token (development mode or a local command)"}
_PERSON = coding(codes.ENTITY_TYPE, "1", "Person")
_SYSTEM_OBJECT = coding(codes.ENTITY_TYPE, "2", "System Object")
_PATIENT_ROLE = coding(codes.OBJECT_ROLE, "1", "Patient")
_DOMAIN_RESOURCE = coding(codes.OBJECT_ROLE, "4", "Domain Resource")
_QUERY_ROLE = coding(codes.OBJECT_ROLE, "24", "Query")
_FLAG = [coding(codes.AUDIT_FLAG, codes.BREAK_GLASS, "Break-the-glass access")]


class Row(NamedTuple):
    """An audit record as stored (vnehr.storage.schema.AUDIT_COLUMNS, in that order)."""

    id: str
    recorded: int  # epoch microseconds
    kind: str  # the restful-interaction code, or the security event's kind
    outcome: int  # 0, 4, 8
    agent: str | None  # fhirUser, account or client id; None: no principal
    client: str | None
    facility: str | None
    role: str | None
    patient: str | None
    purpose: str | None
    break_glass: int  # 1: an access under break-the-glass
    content: str  # the AuditEvent JSON


@dataclass(frozen=True, slots=True)
class Who:
    """The caller, as an audit record names it."""

    agent: str | None
    user: dict[str, Any] | None  # the human user's `who` Reference; None: a system, or none
    client: str | None
    facility: str | None
    role: str | None
    purpose: str | None
    address: str | None


def who_of(principal: Principal | None, address: str | None) -> Who:
    if principal is None:  # development mode or a local command (the CLI)
        return Who(None, None, None, None, None, None, address)
    role = role_of(principal)
    user: dict[str, Any] | None = None
    if principal.kind != "system":
        user = (
            {"reference": principal.fhir_user}
            if principal.fhir_user
            else {"identifier": {"system": codes.ACCOUNT, "value": principal.subject}}
        )
    purpose = principal.claims.get("purpose_of_use") if principal.claims else None
    return Who(
        agent=principal.fhir_user or principal.subject,
        user=user,
        client=principal.client_id,
        facility=principal.facility,
        role=role,
        purpose=purpose if isinstance(purpose, str) else codes.PURPOSE_OF_ROLE.get(role),
        address=address,
    )


@dataclass(frozen=True, slots=True)
class Touched:
    """A resource an interaction read or wrote (`Type/id/_history/v`; None: only the
    patients are known) and the patients it belongs to."""

    ref: str | None
    patients: frozenset[str]


def rest_rows(
    *,
    code: str,
    who: Who,
    recorded: int,
    outcome: int,
    touched: Sequence[Touched],
    base_url: str,
    query_like: bool,
    query: str | None = None,
    operation: str | None = None,
    failure: str | None = None,
    glass: Mapping[str, int] | None = None,
) -> list[Row]:
    """The records of one REST interaction: one per patient it touched (one without a
    patient for what belongs to none, or when it touched no patient at all)."""
    by_patient: dict[str, list[str]] = {}
    loose: list[str] = []
    for item in touched:
        for pid in item.patients:
            refs = by_patient.setdefault(pid, [])
            if item.ref is not None and item.ref not in refs:
                refs.append(item.ref)
        if not item.patients and item.ref is not None and item.ref not in loose:
            loose.append(item.ref)
    groups: list[tuple[str | None, list[str]]] = [(p, by_patient[p]) for p in sorted(by_patient)]
    if not groups or (loose and not query_like):
        groups.append((None, loose))
    rows = []
    for patient, group in groups:
        glass_until = (glass or {}).get(patient or "", 0)
        emergency = glass_until > recorded
        purpose = codes.EMERGENCY if emergency else who.purpose
        entities = []
        if patient is not None:
            entities.append(_patient_entity(patient))
        if not query_like:
            entities += [_data_entity(ref) for ref in group]
        if query is not None:
            entities.append(_query_entity(query))
        subtypes = [_interaction(code)]
        if operation:
            subtypes.append(coding(codes.OPERATION, operation, f"${operation}"))
        profile = codes.PROFILES.get(code) if outcome == 0 else None
        event = _event(
            recorded=recorded,
            type_=_REST,
            subtypes=subtypes,
            action=codes.ACTIONS.get(code, "E"),
            outcome=outcome,
            failure=failure if outcome else None,
            purpose=purpose,
            emergency=emergency,
            agents=_agents(who, purpose, writer=code in ("create", "update", "patch", "delete")),
            entities=entities,
            site=base_url,
            profile=None if profile is None else profile[patient is not None],
        )
        rows.append(_row(event, recorded, code, outcome, who, patient, purpose, emergency))
    return rows


def security_row(
    *,
    kind: str,
    success: bool,
    recorded: int,
    event_number: int | None,
    client_id: str | None,
    account_id: str | None,
    facility: str | None,
    address: str | None,
    detail: Mapping[str, Any],
) -> Row:
    """The record of a security event (vnehr.auth.events): a sign-in, a token issued, a
    revocation, a refused token or request, an account or client changed."""
    reason = str(detail.get("reason") or "")
    if kind == "request":
        kind = "access-denied" if reason == "forbidden" else "invalid-token"
    type_, subtype = _SECURITY.get(kind, (codes.USER_AUTHENTICATION, None))
    subtypes = [coding(*subtype)] if subtype else []
    subtypes.append(coding(codes.SECURITY_EVENT, kind))
    outcome = 0 if success else 4
    user = {"identifier": {"system": codes.ACCOUNT, "value": account_id}} if account_id else None
    who = Who(account_id or client_id, user, client_id, facility, None, None, address)
    entity: dict[str, Any] = {
        "type": coding(codes.ENTITY_TYPE, "2", "System Object"),
        "role": coding(codes.OBJECT_ROLE, "13", "Security Resource"),
        "detail": [
            {"type": str(key), "valueString": str(value)}
            for key, value in detail.items()
            if value is not None and value != ""
        ],
    }
    if event_number is not None:
        entity["what"] = {"identifier": {"system": codes.AUTH_EVENT, "value": str(event_number)}}
    if not entity["detail"]:
        del entity["detail"]
    event = _event(
        recorded=recorded,
        type_=coding(*type_),
        subtypes=subtypes,
        action="E",
        outcome=outcome,
        failure=(reason or None) if outcome else None,
        purpose=None,
        emergency=False,
        agents=_agents(who, None, writer=False),
        entities=[entity],
        site=None,
        profile=None,
    )
    return _row(event, recorded, kind, outcome, who, None, None, False)


def local_write_row(recorded: int, changed: Sequence[StoredVersion]) -> Row:
    """A write outside any FHIR request (`vnehr load` of NDJSON, the CLI's commands): one
    record of what was written, counted by type."""
    counts: dict[str, int] = {}
    methods = set()
    for version in changed:
        counts[version.res_type] = counts.get(version.res_type, 0) + 1
        methods.add(version.method)
    code = _METHODS.get(methods.pop(), "batch") if len(methods) == 1 else "batch"
    who = Who(None, None, None, None, None, None, None)
    entities = [
        {
            "type": coding(codes.ENTITY_TYPE, "2", "System Object"),
            "role": coding(codes.OBJECT_ROLE, "4", "Domain Resource"),
            "name": res_type,
            "detail": [{"type": "count", "valueString": str(n)}],
        }
        for res_type, n in sorted(counts.items())
    ]
    event = _event(
        recorded=recorded,
        type_=coding(codes.AUDIT_EVENT_TYPE, "rest", "Restful Operation"),
        subtypes=[coding(codes.RESTFUL_INTERACTION, code, code)],
        action=codes.ACTIONS.get(code, "E"),
        outcome=0,
        failure=None,
        purpose=None,
        emergency=False,
        agents=_agents(who, None, writer=True),
        entities=entities,
        site=None,
        profile=None,
    )
    return _row(event, recorded, code, 0, who, None, None, False)


_METHODS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}

_SECURITY: dict[str, tuple[tuple[str, str, str], tuple[str, str, str] | None]] = {
    "login": (codes.USER_AUTHENTICATION, codes.LOGIN),
    "revoke": (codes.USER_AUTHENTICATION, codes.LOGOUT),
    "token": (codes.USER_AUTHENTICATION, codes.GET_ACCESS_TOKEN),
    "invalid-token": (codes.USER_AUTHENTICATION, codes.LOGIN),
    "access-denied": (codes.SECURITY_ALERT, None),
    "client-registered": (codes.USER_SECURITY_CHANGED, None),
    "account-created": (codes.USER_SECURITY_CHANGED, None),
    "activation-issue": (codes.USER_SECURITY_CHANGED, None),
}


def raw_query(path: str, query: Iterable[tuple[str, str]], body: bytes | None) -> str:
    """The search as the client sent it (form parameters of POST _search included)."""
    text = path
    pairs = list(query)
    if pairs:
        text += "?" + urlencode(pairs)
    if body:
        text += ("&" if pairs else "?") + body.decode("utf-8", errors="replace")
    return text


def _row(
    event: dict[str, Any],
    recorded: int,
    kind: str,
    outcome: int,
    who: Who,
    patient: str | None,
    purpose: str | None,
    emergency: bool,
) -> Row:
    return Row(
        id=event["id"],
        recorded=recorded,
        kind=kind,
        outcome=outcome,
        agent=who.agent,
        client=who.client,
        facility=who.facility,
        role=who.role,
        patient=patient,
        purpose=purpose,
        break_glass=1 if emergency else 0,
        content=orjson.dumps(event).decode(),
    )


def _event(
    *,
    recorded: int,
    type_: dict[str, Any],
    subtypes: list[dict[str, Any]],
    action: str,
    outcome: int,
    failure: str | None,
    purpose: str | None,
    emergency: bool,
    agents: list[dict[str, Any]],
    entities: list[dict[str, Any]],
    site: str | None,
    profile: str | None,
) -> dict[str, Any]:
    instant = format_instant(recorded)
    meta: dict[str, Any] = {"versionId": "1", "lastUpdated": instant}
    if profile:
        meta["profile"] = [codes.BALP + profile]
    if emergency:
        meta["tag"] = _FLAG
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": os.urandom(16).hex(),  # as unique as a UUID, a tenth of the cost
        "meta": meta,
        "type": type_,
        "subtype": subtypes,
        "action": action,
        "recorded": instant,
        "outcome": str(outcome),
    }
    if failure:
        event["outcomeDesc"] = failure[:1000]
    if purpose:
        event["purposeOfEvent"] = [_purpose(purpose)]
    event["agent"] = agents
    event["source"] = {**_SOURCE, "site": site} if site else _SOURCE
    if entities:
        event["entity"] = entities
    return event


def _agents(who: Who, purpose: str | None, *, writer: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    role = [_role(who.role)] if who.role else None
    purposes = [_purpose(purpose)] if purpose else None
    if who.user is not None:
        user: dict[str, Any] = {
            "type": _AUTHOR if writer else _RECIPIENT,
            "who": who.user,
            "requestor": True,
        }
        if role:
            user["role"] = role
        if purposes:
            user["purposeOfUse"] = purposes
        out.append(user)
    client: dict[str, Any] = {
        "type": _CLIENT_TYPE,
        "who": {"identifier": {"system": codes.CLIENT, "value": who.client}}
        if who.client
        else _NO_TOKEN,
        "requestor": who.user is None,
    }
    if who.user is None:
        if role:
            client["role"] = role
        if purposes:
            client["purposeOfUse"] = purposes
    if who.address:
        client["network"] = {"address": who.address, "type": _network_type(who.address)}
    out.append(client)
    out.append(_SERVER)
    if who.facility:
        out.append(
            {
                "type": _PROVIDER,
                "who": {"reference": f"Organization/{who.facility}"},
                "requestor": False,
            }
        )
    return out


@functools.lru_cache(maxsize=64)
def _interaction(code: str) -> dict[str, Any]:
    return coding(codes.RESTFUL_INTERACTION, code, code)


@functools.lru_cache(maxsize=64)
def _purpose(code: str) -> dict[str, Any]:
    return concept(codes.ACT_REASON, code, codes.PURPOSES.get(code))


@functools.lru_cache(maxsize=64)
def _role(code: str) -> dict[str, Any]:
    return concept(codes.ROLE, code)


@functools.lru_cache(maxsize=4096)
def _network_type(address: str) -> str:
    """`2` an IP address, `1` a machine name."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return "1"
    return "2"


def _patient_entity(patient: str) -> dict[str, Any]:
    return {
        "what": {"reference": f"Patient/{patient}"},
        "type": _PERSON,
        "role": _PATIENT_ROLE,
    }


def _data_entity(ref: str) -> dict[str, Any]:
    return {
        "what": {"reference": ref},
        "type": _SYSTEM_OBJECT,
        "role": _DOMAIN_RESOURCE,
    }


def _query_entity(query: str) -> dict[str, Any]:
    """BALP: the raw request base64-encoded (what was asked, malicious patterns included),
    and readable in the description."""
    return {
        "type": _SYSTEM_OBJECT,
        "role": _QUERY_ROLE,
        "description": query,
        "query": base64.b64encode(query.encode()).decode(),
    }
