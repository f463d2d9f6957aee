"""delete and conditional delete (https://hl7.org/fhir/R4/http.html#delete).

A delete writes a versioned tombstone: history keeps every earlier version, a read answers 410.
"""

from __future__ import annotations

from urllib.parse import urlencode

from vnehr.errors import Issue, operation_outcome
from vnehr.interactions.conditional import criteria_from_text, single_match
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.read import check_id
from vnehr.interactions.respond import check_type, etag
from vnehr.interactions.update import check_if_match
from vnehr.storage.base import WriteTransaction


def delete_resource(
    request: FhirRequest, txn: WriteTransaction, res_type: str, res_id: str
) -> FhirResponse:
    previous = txn.current(res_type, res_id)
    live = previous is not None and not previous.deleted
    check_if_match(request, previous.version if previous and live else None, f"{res_type}/{res_id}")
    if previous is None:
        outcome = operation_outcome(
            [Issue("warning", "not-found", f"{res_type}/{res_id} does not exist; nothing deleted")]
        )
        return FhirResponse(200, resource=outcome)
    if previous.deleted:
        return FhirResponse(204, headers={"ETag": etag(previous.version)})
    stored = txn.write(res_type, res_id, None, "DELETE", previous)
    return FhirResponse(204, headers={"ETag": etag(stored.version)})


def delete(
    ctx: Context, request: FhirRequest, res_type: str, res_id: str, txn: WriteTransaction
) -> FhirResponse:
    check_type(res_type)
    check_id(res_id)
    return delete_resource(request, txn, res_type, res_id)


def conditional_delete(
    ctx: Context, request: FhirRequest, res_type: str, txn: WriteTransaction
) -> FhirResponse:
    check_type(res_type)
    criteria = criteria_from_text(ctx, res_type, urlencode(request.query), request.principal)
    found = single_match(txn, criteria, lock=True)
    if found is None:
        outcome = operation_outcome(
            [Issue("warning", "not-found", f"No {res_type} matches; nothing deleted")]
        )
        return FhirResponse(200, resource=outcome)
    return delete_resource(request, txn, res_type, found)
