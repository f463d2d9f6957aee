"""batch and transaction (https://hl7.org/fhir/R4/http.html#transaction).

A transaction is one database transaction: every entry succeeds or the store is left exactly
as it was. Entries run in the spec's order (DELETE, POST, PUT/PATCH, GET/HEAD); `urn:uuid:`
fullUrls and conditional references (`Patient?identifier=...`) are resolved and rewritten.
Batch entries are independent, each in its own transaction with its own status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from email.utils import parsedate_to_datetime
from functools import lru_cache
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from vnehr.auth import access
from vnehr.errors import FhirError, InvalidRequest, Issue, PreconditionFailed, operation_outcome
from vnehr.fhir import json as fhir_json
from vnehr.fhir.ids import new_id
from vnehr.interactions.bundles import bundle
from vnehr.interactions.conditional import criteria_from_text, parse_criteria, single_match
from vnehr.interactions.context import Context
from vnehr.interactions.create import create_resource
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.respond import body_resource, check_type, prefer_return, written
from vnehr.policy.writes import held
from vnehr.storage.base import WriteTransaction

Dispatch = Callable[[FhirRequest, "WriteTransaction | None"], FhirResponse]

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_METHODS = set(_ORDER)


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _located(exc: FhirError, index: int) -> FhirError:
    """The same error with every issue located at `Bundle.entry[index]`."""
    prefix = f"Bundle.entry[{index}]"
    issues = []
    for issue in exc.issues:
        where = tuple(
            f"{prefix}.resource" + (e[e.index(".") :] if "." in e else "") for e in issue.expression
        ) or (prefix,)
        issues.append(replace(issue, expression=where))
    exc.issues = issues
    exc.diagnostics = f"{prefix}: {exc.diagnostics}"
    return exc


def _entry_request(entry: Any, index: int, base: FhirRequest) -> FhirRequest:
    if not isinstance(entry, dict):
        raise InvalidRequest("A Bundle entry must be an object", (f"Bundle.entry[{index}]",))
    req = entry.get("request")
    where = f"Bundle.entry[{index}].request"
    if not isinstance(req, dict):
        raise InvalidRequest("Every entry of a batch/transaction needs a request", (where,))
    method = req.get("method")
    url = req.get("url")
    if method not in _METHODS:
        raise InvalidRequest(f"Entry request method {method!r} is not supported", (where,))
    if not isinstance(url, str) or not url:
        raise InvalidRequest("Entry request has no url", (f"{where}.url",))
    if url.startswith(base.base_url + "/"):
        url = url[len(base.base_url) + 1 :]
    path, _, query_text = url.lstrip("/").partition("?")
    headers = {"prefer": base.header("prefer") or ""}
    for name, key in (
        ("ifMatch", "if-match"),
        ("ifNoneMatch", "if-none-match"),
        ("ifNoneExist", "if-none-exist"),
        ("ifModifiedSince", "if-modified-since"),
    ):
        if isinstance(req.get(name), str):
            headers[key] = req[name]
    resource = entry.get("resource")
    if resource is not None and not isinstance(resource, dict):
        raise InvalidRequest(
            "Entry resource must be an object", (f"Bundle.entry[{index}].resource",)
        )
    if method in ("POST", "PUT") and resource is None and not path.startswith("$"):
        raise InvalidRequest(f"A {method} entry needs a resource", (f"Bundle.entry[{index}]",))
    return FhirRequest(
        method=method,
        path=path,
        query=parse_qsl(query_text, keep_blank_values=True),
        headers=headers,
        resource=resource,
        base_url=base.base_url,
        principal=base.principal,
    )


@lru_cache(maxsize=64)
def _instant_of(http_date: str) -> str:
    # The entries of one transaction share their second: parse it once.
    return parsedate_to_datetime(http_date).strftime("%Y-%m-%dT%H:%M:%SZ")


def _response_entry(response: FhirResponse, *, include_resource: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"response": {"status": _status_text(response.status)}}
    headers = response.headers
    if "Location" in headers:
        out["response"]["location"] = headers["Location"]
    if "ETag" in headers:
        out["response"]["etag"] = headers["ETag"]
    if "Last-Modified" in headers:  # an HTTP date in the header, a FHIR instant here
        out["response"]["lastModified"] = _instant_of(headers["Last-Modified"])
    body = response.resource
    if body is None and response.body is not None and include_resource:
        body = fhir_json.loads(response.body)
    if body is not None:
        if body.get("resourceType") == "OperationOutcome" and response.status >= 400:
            out["response"]["outcome"] = body
        elif (
            include_resource
            or response.status < 200
            or body.get("resourceType") in ("OperationOutcome", "Bundle", "Parameters")
        ):
            out["resource"] = body
    return out


def _rewrite(resource: dict[str, Any], ids: dict[str, str], resolve: Callable[[str], str]) -> Any:
    """Rewrite, in place, every Reference.reference (entry fullUrls and conditional references
    become `Type/id`) and any other string naming an entry's fullUrl (e.g. Attachment.url).

    Exact type tests instead of isinstance, and no lookup for strings that are not `urn:`s:
    measured 12 us per demo resource, against 38 us for a regex pass over its serialised form.
    """
    stack: list[Any] = [resource]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            for key, child in node.items():
                kind = type(child)
                if kind is str:
                    if key == "reference":
                        new = resolve(child)
                        if new is not child:
                            node[key] = new
                    elif child.startswith("urn:") and child in ids:
                        node[key] = ids[child]
                elif kind is dict or kind is list:
                    stack.append(child)
        else:
            for i, child in enumerate(node):
                kind = type(child)
                if kind is dict or kind is list:
                    stack.append(child)
                elif kind is str and child.startswith("urn:") and child in ids:
                    node[i] = ids[child]
    return resource


class _Transaction:
    def __init__(self, ctx: Context, request: FhirRequest, dispatch: Dispatch) -> None:
        self.ctx = ctx
        self.request = request
        self.dispatch = dispatch
        self.ids: dict[str, str] = {}  # fullUrl -> "Type/id"
        # What each POST entry's token allows (the router checks the other entries).
        self.grants: dict[int, access.Grant] = {}

    def resolver(self, txn: WriteTransaction) -> Callable[[str], str]:
        def resolve(ref: str) -> str:
            target = self.ids.get(ref)
            if target is not None:
                return target
            if ref.startswith("urn:uuid:"):
                raise InvalidRequest(f"Reference {ref} does not match any entry's fullUrl")
            head, sep, query = ref.partition("?")
            if sep and "/" not in head and head[:1].isupper():
                check_type(head)
                access.require(self.request.principal, head, "s")
                criteria = parse_criteria(
                    self.ctx,
                    head,
                    parse_qsl(query, keep_blank_values=True),
                    self.request.principal,
                )
                found = txn.search_ids(criteria.query, 2)
                if len(found) != 1:
                    raise PreconditionFailed(
                        f"Conditional reference {ref} matches {len(found)} resources, not one"
                    )
                return f"{head}/{found[0]}"
            return ref

        return resolve

    def run(self, entries: list[Any]) -> FhirResponse:
        requests = [_entry_request(e, i, self.request) for i, e in enumerate(entries)]
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            full = entry.get("fullUrl")
            if isinstance(full, str) and full.startswith("urn:"):
                if full in seen:
                    raise InvalidRequest(
                        f"Two entries share the fullUrl {full}", (f"Bundle.entry[{i}].fullUrl",)
                    )
                seen.add(full)
        include = prefer_return(self.request) == "representation" and bool(
            self.request.header("prefer")
        )
        responses: list[FhirResponse | None] = [None] * len(entries)
        order = sorted(range(len(entries)), key=lambda i: _ORDER[requests[i].method])
        with self.ctx.store.transaction() as raw:
            principal = self.request.principal
            txn = held(self.ctx, raw, principal)
            # Identities first, so that every reference can be rewritten before writing.
            for i in order:
                try:
                    self._assign(i, entries[i], requests[i], txn)
                except FhirError as exc:
                    raise _located(exc, i) from None
            # One query for every resource the entries update, patch or delete by id.
            txn.prefetch(
                (r.path.split("/")[0], r.path.split("/")[1])
                for r in requests
                if r.method in ("PUT", "PATCH", "DELETE") and r.path.count("/") == 1
            )
            resolve = self.resolver(txn)
            for i in order:
                try:
                    responses[i] = self._process(i, requests[i], txn, resolve)
                except FhirError as exc:
                    raise _located(exc, i) from None
        out = [_response_entry(r, include_resource=include) for r in responses if r is not None]
        return FhirResponse(200, resource=bundle("transaction-response", out))

    def _assign(
        self, i: int, entry: dict[str, Any], req: FhirRequest, txn: WriteTransaction
    ) -> None:
        full = entry.get("fullUrl")
        parts = [p for p in req.path.split("/") if p]
        if req.method == "POST" and len(parts) == 1 and not parts[0].startswith("$"):
            res_type = parts[0]
            check_type(res_type)
            self.grants[i] = access.require(req.principal, res_type, "c")
            existing = None
            if_none_exist = req.header("if-none-exist")
            if if_none_exist:
                access.require(req.principal, res_type, "s")
                existing = single_match(
                    txn,
                    criteria_from_text(self.ctx, res_type, if_none_exist, req.principal),
                    lock=True,
                )
            target = existing or new_id()
            req.headers = {**req.headers, "x-vnehr-assigned-id": target}
            if existing:
                req.headers["x-vnehr-existing"] = "1"
            if isinstance(full, str):
                self.ids[full] = f"{res_type}/{target}"
        elif req.method == "PUT" and len(parts) == 1 and req.query:
            res_type = parts[0]
            check_type(res_type)
            access.require(req.principal, res_type, "s")
            found = single_match(
                txn, parse_criteria(self.ctx, res_type, req.query, req.principal), lock=True
            )
            body_id = (req.resource or {}).get("id")
            target = found or (body_id if isinstance(body_id, str) else new_id())
            req.path, req.query = f"{res_type}/{target}", []
            if req.resource is not None:
                req.resource = {**req.resource, "id": target}
            if isinstance(full, str):
                self.ids[full] = f"{res_type}/{target}"
        elif req.method == "PUT" and len(parts) == 2 and isinstance(full, str):
            self.ids[full] = f"{parts[0]}/{parts[1]}"

    def _process(
        self, i: int, req: FhirRequest, txn: WriteTransaction, resolve: Callable[[str], str]
    ) -> FhirResponse:
        if req.resource is not None:
            req.resource = _rewrite(req.resource, self.ids, resolve)
        assigned = req.headers.get("x-vnehr-assigned-id")
        if assigned is None:
            return self.dispatch(req, txn)
        res_type = req.path.strip("/")
        if req.headers.get("x-vnehr-existing"):
            stored = txn.read(res_type, assigned)
            return written(req, stored, 200)
        resource = body_resource(req, res_type)
        stored, warnings = create_resource(self.ctx, txn, resource, res_id=assigned)
        return access.check_written(
            self.ctx, txn, self.grants[i], written(req, stored, 201, warnings)
        )


def transaction(
    ctx: Context, request: FhirRequest, entries: list[Any], dispatch: Dispatch
) -> FhirResponse:
    return _Transaction(ctx, request, dispatch).run(entries)


def batch(
    ctx: Context,
    request: FhirRequest,
    entries: list[Any],
    dispatch: Dispatch,
    refused: Callable[[FhirRequest, FhirError], None] | None = None,
) -> FhirResponse:
    out = []
    for i, entry in enumerate(entries):
        try:
            req = _entry_request(entry, i, request)
            if isinstance(entry.get("fullUrl"), str) and req.resource is not None:
                req.resource = _rewrite(req.resource, {}, _no_urn_refs)
            response = dispatch(req, None)
        except FhirError as exc:
            if refused is not None:
                refused(req, exc)
            response = FhirResponse(exc.status, resource=exc.outcome())
        except Exception as exc:
            issue = Issue("fatal", "exception", f"Internal error: {type(exc).__name__}")
            response = FhirResponse(500, resource=operation_outcome([issue]))
        out.append(_response_entry(response, include_resource=True))
    return FhirResponse(200, resource=bundle("batch-response", out))


def _no_urn_refs(ref: str) -> str:
    if ref.startswith("urn:uuid:"):
        raise InvalidRequest(
            f"Batch entries are independent: reference {ref} to another entry is not allowed"
        )
    return ref


def bundle_entries(resource: dict[str, Any]) -> tuple[str, list[Any]]:
    kind = resource.get("type")
    entries = resource.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidRequest("Bundle.entry must be an array", ("Bundle.entry",))
    if kind not in ("batch", "transaction"):
        raise InvalidRequest(
            f"POST to the base URL takes a batch or transaction Bundle, not {kind!r}",
            ("Bundle.type",),
        )
    return str(kind), entries
