"""read and vread (https://hl7.org/fhir/R4/http.html#read)."""

from __future__ import annotations

from collections.abc import Callable

from vnehr.errors import InvalidRequest, NotFound
from vnehr.fhir.ids import is_valid_id
from vnehr.fhir.instant import http_date
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.respond import check_type, etag
from vnehr.interactions.shaping import shape
from vnehr.storage.base import StoredVersion, WriteTransaction


def check_id(res_id: str) -> None:
    if not is_valid_id(res_id):
        raise InvalidRequest(f"Invalid resource id {res_id!r}: 1-64 of A-Z a-z 0-9 - .")


def _respond(request: FhirRequest, stored: StoredVersion) -> FhirResponse:
    headers = {"ETag": etag(stored.version), "Last-Modified": http_date(stored.last_updated)}
    if_none_match = request.header("if-none-match")
    if if_none_match and if_none_match.strip() in (etag(stored.version), f'"{stored.version}"'):
        return FhirResponse(304, headers=headers)
    shaped = shape(stored.resource(), request.query) if request.query else None
    if shaped is not None:
        return FhirResponse(200, resource=shaped, headers=headers)
    return FhirResponse(200, body=stored.content, headers=headers)


def read(
    ctx: Context,
    request: FhirRequest,
    res_type: str,
    res_id: str,
    txn: WriteTransaction | None = None,
) -> FhirResponse:
    check_type(res_type)
    check_id(res_id)
    source = txn if txn is not None else ctx.store
    return _respond(request, source.read(res_type, res_id))


def vread(
    ctx: Context,
    request: FhirRequest,
    res_type: str,
    res_id: str,
    version: str,
    txn: WriteTransaction | None = None,
    keep: Callable[[list[StoredVersion]], list[StoredVersion]] | None = None,
) -> FhirResponse:
    """`keep`: whether the caller may see the version (vnehr.policy.versions); one it may
    not answers as a version that does not exist."""
    check_type(res_type)
    check_id(res_id)
    if not version.isdigit():
        raise InvalidRequest(f"Invalid version id {version!r}: versions are numbers")
    source = txn if txn is not None else ctx.store
    stored = source.vread(res_type, res_id, int(version))
    if keep is not None and not keep([stored]):
        raise NotFound(f"{res_type}/{res_id} has no version {version}")
    return _respond(request, stored)
