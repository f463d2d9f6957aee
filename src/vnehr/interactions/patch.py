"""patch with JSON Patch or FHIRPath Patch (https://hl7.org/fhir/R4/http.html#patch)."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from vnehr.errors import InvalidRequest, NotFound, Unprocessable, UnsupportedMediaType
from vnehr.fhir import json as fhir_json
from vnehr.fhir.patch import apply_fhirpath_patch, apply_json_patch
from vnehr.interactions.conditional import criteria_from_text, single_match
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.read import check_id
from vnehr.interactions.respond import check_type, written
from vnehr.interactions.update import update_resource
from vnehr.storage.base import WriteTransaction


def _patch_document(request: FhirRequest) -> tuple[str, object]:
    if request.resource is not None:  # a transaction entry: Parameters or a Binary
        resource = request.resource
        if resource.get("resourceType") == "Binary":
            data = base64.b64decode(resource.get("data", ""))
            return "json-patch", fhir_json.loads(data)
        return "fhirpath", resource
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if not request.body:
        raise InvalidRequest("PATCH needs a body: a JSON Patch or a FHIRPath Patch Parameters")
    if content_type not in (
        "application/json-patch+json",
        "application/fhir+json",
        "application/json",
    ):
        raise UnsupportedMediaType(
            f"PATCH Content-Type {content_type!r} is not supported: use "
            "application/json-patch+json or application/fhir+json (FHIRPath Patch)"
        )
    document = fhir_json.loads(request.body)
    if content_type == "application/json-patch+json":
        return "json-patch", document
    if content_type in ("application/fhir+json", "application/json"):
        if isinstance(document, dict) and document.get("resourceType") == "Parameters":
            return "fhirpath", document
        if isinstance(document, list):
            return "json-patch", document
        raise InvalidRequest("A FHIRPath Patch body must be a Parameters resource")
    raise InvalidRequest("A JSON Patch body must be a JSON array of operations")


def patch_resource(
    ctx: Context, request: FhirRequest, txn: WriteTransaction, res_type: str, res_id: str
) -> FhirResponse:
    kind, document = _patch_document(request)
    txn.current(res_type, res_id)  # lock first: a concurrent patch must not be lost
    current = txn.read(res_type, res_id)
    resource = current.resource()
    if kind == "json-patch":
        if not isinstance(document, list):
            raise InvalidRequest("A JSON Patch document must be a JSON array of operations")
        patched = apply_json_patch(resource, document)
    else:
        assert isinstance(document, dict)
        patched = apply_fhirpath_patch(resource, document)
    if not isinstance(patched, dict):
        raise Unprocessable("The patch did not leave a resource")
    if patched.get("resourceType") != res_type or patched.get("id") != res_id:
        raise Unprocessable("A patch must not change the resourceType or id")
    stored, _, warnings = update_resource(
        ctx, request, txn, patched, res_type, res_id, method="PATCH"
    )
    return written(request, stored, 200, warnings)


def patch(
    ctx: Context, request: FhirRequest, res_type: str, res_id: str, txn: WriteTransaction
) -> FhirResponse:
    check_type(res_type)
    check_id(res_id)
    return patch_resource(ctx, request, txn, res_type, res_id)


def conditional_patch(
    ctx: Context, request: FhirRequest, res_type: str, txn: WriteTransaction
) -> FhirResponse:
    check_type(res_type)
    criteria = criteria_from_text(ctx, res_type, urlencode(request.query), request.principal)
    found = single_match(txn, criteria, lock=True)
    if found is None:
        raise NotFound(f"No {res_type} matches {criteria.key()}")
    return patch_resource(ctx, request, txn, res_type, found)
