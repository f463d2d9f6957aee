"""capabilities: the CapabilityStatement, derived from what is actually wired
(https://hl7.org/fhir/R4/capabilitystatement.html)."""

from __future__ import annotations

from typing import Any

from vnehr import __version__
from vnehr.fhir import json as fhir_json
from vnehr.fhir.definitions import resource_types
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.operations.registry import OperationRegistry
from vnehr.search.query import compartments

_INTERACTIONS = [
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]
# What GET AuditEvent answers (vnehr.audit.endpoint).
_AUDIT_SEARCH = frozenset({"patient", "date", "agent", "entity", "subtype", "outcome"})
# Every parameter type but `special` (near) is searchable (vnehr.search).
_SEARCHABLE_TYPES = {
    "token",
    "string",
    "reference",
    "date",
    "uri",
    "number",
    "quantity",
    "composite",
}


def capability_statement(
    ctx: Context, base_url: str, operations: OperationRegistry
) -> dict[str, Any]:
    resources = []
    revincludes = _revincludes(ctx)
    for res_type in sorted(resource_types()):
        params = [
            {"name": p.code, "definition": p.url, "type": p.type}
            for p in ctx.registry.for_type(res_type).values()
            if p.type in _SEARCHABLE_TYPES and p.url
        ]
        references = sorted(p["name"] for p in params if p["type"] == "reference")
        ops = [
            {"name": op.code, "definition": op.definition}
            for op in operations.all()
            if (op.type or op.instance) and (not op.resource_types or res_type in op.resource_types)
        ]
        entry: dict[str, Any] = {
            "type": res_type,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{res_type}",
            "interaction": [{"code": code} for code in _INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "referencePolicy": ["literal", "logical"],
            "searchInclude": ["*", *(f"{res_type}:{code}" for code in references)],
            "searchParam": params,
        }
        revinclude = sorted(f"{source}:{code}" for source, code in revincludes.get(res_type, ()))
        if revinclude:
            entry["searchRevInclude"] = revinclude
        if ops:
            entry["operation"] = ops
        if res_type == "AuditEvent":
            # The server writes the audit trail itself; clients read and search it
            # (vnehr.audit.endpoint), never write it.
            entry.update(
                interaction=[{"code": c} for c in ("read", "search-type")],
                documentation="Read-only: the server's audit trail (IHE BALP). Each caller "
                "sees the records the access policy gives it (docs/audit.md).",
                readHistory=False,
                updateCreate=False,
                conditionalCreate=False,
                conditionalUpdate=False,
                conditionalDelete="not-supported",
                searchParam=[p for p in params if p["name"] in _AUDIT_SEARCH],
            )
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-22",
        "publisher": "vnehr",
        "kind": "instance",
        "software": {"name": "vnehr", "version": __version__},
        "implementation": {"description": "vnehr FHIR R4 server", "url": base_url},
        "fhirVersion": "4.0.1",
        # JSON only: XML requests answer 415/406 with an OperationOutcome.
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Development mode: requests without a token are served "
                "unauthenticated (see README)."
                if ctx.settings.dev
                else "vnehr FHIR R4 REST API",
                "security": _security(base_url),
                "resource": resources,
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                    {"code": "search-system"},
                ],
                "compartment": [
                    f"http://hl7.org/fhir/CompartmentDefinition/{kind.lower()}"
                    for kind in sorted(compartments())
                ],
                "operation": [
                    {"name": op.code, "definition": op.definition}
                    for op in operations.all()
                    if op.system
                ],
            }
        ],
    }


def _security(base_url: str) -> dict[str, Any]:
    """SMART on FHIR (https://hl7.org/fhir/smart-app-launch/conformance.html): the OAuth
    endpoints as the oauth-uris extension; discovery at [base]/.well-known/."""
    base = base_url.rstrip("/")
    origin = base[: -len("/fhir")] if base.endswith("/fhir") else base
    uris = [
        {"url": name, "valueUri": f"{origin}/auth/{path}"}
        for name, path in (
            ("token", "token"),
            ("authorize", "authorize"),
            ("introspect", "introspect"),
            ("revoke", "revoke"),
        )
    ]
    return {
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": uris,
            }
        ],
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 using SMART-on-FHIR profile (see "
                f"{base}/.well-known/smart-configuration)",
            }
        ],
        "description": "Every request but GET /metadata needs an access token (Authorization: "
        "Bearer) whose SMART scopes allow the interaction; discovery at "
        f"{base}/.well-known/smart-configuration and /.well-known/openid-configuration.",
    }


def _revincludes(ctx: Context) -> dict[str, list[tuple[str, str]]]:
    """Target type -> the (source type, reference parameter) pairs that can point at it."""
    out: dict[str, list[tuple[str, str]]] = {}
    for source in sorted(resource_types()):
        for code, param in ctx.registry.for_type(source).items():
            if param.type == "reference":
                for target in param.targets:
                    out.setdefault(target, []).append((source, code))
    return out


def capabilities(
    ctx: Context,
    request: FhirRequest,
    operations: OperationRegistry,
    cache: dict[tuple[str, int], bytes],
) -> FhirResponse:
    # The statement only changes with the base URL or the search parameters: built once each.
    key = (request.base_url, ctx.registry.version)
    body = cache.get(key)
    if body is None:
        body = fhir_json.dumps(capability_statement(ctx, request.base_url, operations))
        if len(cache) > 16:
            cache.clear()
        cache[key] = body
    return FhirResponse(200, body=body)
