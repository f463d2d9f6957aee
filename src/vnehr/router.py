"""The FHIR router: FhirRequest -> FhirResponse, knowing nothing of HTTP.

The HTTP layer, the CLI, transaction entries and the tests all come through here. Only this
module turns vnehr's errors into OperationOutcome responses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import parse_qsl

from vnehr.errors import FhirError, InvalidRequest, Issue, MethodNotAllowed, operation_outcome
from vnehr.interactions import create, delete, history, patch, read, search, update
from vnehr.interactions.capabilities import capabilities
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.respond import body_resource, check_type
from vnehr.interactions.transaction import batch, bundle_entries, transaction
from vnehr.operations.registry import OperationRegistry, builtin_operations
from vnehr.search.query import compartments
from vnehr.storage.base import WriteTransaction

log = logging.getLogger("vnehr.router")

Write = Callable[[WriteTransaction], FhirResponse]


class Router:
    def __init__(self, ctx: Context, operations: OperationRegistry | None = None) -> None:
        self.ctx = ctx
        self.operations = operations or builtin_operations()
        self._capabilities: dict[tuple[str, int], bytes] = {}

    def handle(self, request: FhirRequest) -> FhirResponse:
        """Answer any request; errors become OperationOutcome responses."""
        try:
            return self.dispatch(request, None)
        except FhirError as exc:
            return FhirResponse(exc.status, resource=exc.outcome())
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.path)
            issue = Issue(
                "fatal", "exception", "Internal server error; the request was not applied"
            )
            return FhirResponse(500, resource=operation_outcome([issue]))

    def _write(self, txn: WriteTransaction | None, work: Write) -> FhirResponse:
        if txn is not None:
            return work(txn)
        with self.ctx.store.transaction() as own:
            return work(own)

    def dispatch(self, request: FhirRequest, txn: WriteTransaction | None) -> FhirResponse:
        ctx = self.ctx
        method = request.method.upper()
        if method == "HEAD":
            request.method = "GET"
            response = self.dispatch(request, txn)
            response.body, response.resource = None, None
            return response
        parts = [p for p in request.path.strip("/").split("/") if p]
        n = len(parts)
        if n == 0:
            if method == "POST":
                resource = body_resource(request, "Bundle")
                kind, entries = bundle_entries(resource)
                if kind == "transaction":
                    if txn is not None:
                        raise InvalidRequest("A transaction cannot be nested in a transaction")
                    return transaction(ctx, request, entries, self.dispatch)
                return batch(ctx, request, entries, self.dispatch)
            if method == "GET":
                return search.search(ctx, request, None)
            raise MethodNotAllowed(f"{method} on the base URL is not supported")
        first = parts[0]
        if first == "metadata" and n == 1:
            self._only(method, ("GET",), "metadata")
            return capabilities(ctx, request, self.operations, self._capabilities)
        if first == "_history" and n == 1:
            self._only(method, ("GET",), "_history")
            return history.history(ctx, request, None, None)
        if first.startswith("$"):
            return self._operation(request, first[1:], None, None, txn)
        res_type = first
        check_type(res_type)
        if n == 1:
            match method:
                case "GET":
                    return search.search(ctx, request, res_type)
                case "POST":
                    return self._write(txn, lambda t: create.create(ctx, request, res_type, t))
                case "PUT":
                    return self._write(
                        txn, lambda t: update.conditional_update(ctx, request, res_type, t)
                    )
                case "DELETE":
                    return self._write(
                        txn, lambda t: delete.conditional_delete(ctx, request, res_type, t)
                    )
                case "PATCH":
                    return self._write(
                        txn, lambda t: patch.conditional_patch(ctx, request, res_type, t)
                    )
            raise MethodNotAllowed(f"{method} is not allowed on {res_type}")
        second = parts[1]
        if n == 2 and second == "_search":
            self._only(method, ("POST",), f"{res_type}/_search")
            return search.search(ctx, self._form_request(request), res_type)
        if n == 2 and second == "_history":
            self._only(method, ("GET",), f"{res_type}/_history")
            return history.history(ctx, request, res_type, None)
        if second.startswith("$"):
            if n != 2:
                raise InvalidRequest(f"Unknown path {request.path}")
            return self._operation(request, second[1:], res_type, None, txn)
        res_id = second
        if n == 2:
            match method:
                case "GET":
                    return read.read(ctx, request, res_type, res_id, txn)
                case "PUT":
                    return self._write(
                        txn, lambda t: update.update(ctx, request, res_type, res_id, t)
                    )
                case "DELETE":
                    return self._write(
                        txn, lambda t: delete.delete(ctx, request, res_type, res_id, t)
                    )
                case "PATCH":
                    return self._write(
                        txn, lambda t: patch.patch(ctx, request, res_type, res_id, t)
                    )
            raise MethodNotAllowed(f"{method} is not allowed on {res_type}/{res_id}")
        third = parts[2]
        if n == 3 and (third == "*" or third in compartments().get(res_type, {})):
            self._only(method, ("GET",), f"{res_type}/{res_id}/{third}")
            if res_type not in compartments():
                raise InvalidRequest(f"{res_type} is not a compartment")
            target = None if third == "*" else third
            return search.search(ctx, request, target, compartment=(res_type, res_id))
        if third.startswith("$") and n == 3:
            return self._operation(request, third[1:], res_type, res_id, txn)
        if third == "_history" and n == 3:
            self._only(method, ("GET",), "_history")
            return history.history(ctx, request, res_type, res_id)
        if third == "_history" and n == 4:
            self._only(method, ("GET",), "vread")
            return read.vread(ctx, request, res_type, res_id, parts[3], txn)
        raise InvalidRequest(f"Unknown path {request.path}")

    def _only(self, method: str, allowed: tuple[str, ...], what: str) -> None:
        if method not in allowed:
            raise MethodNotAllowed(f"{method} is not allowed on {what}; use {', '.join(allowed)}")

    def _form_request(self, request: FhirRequest) -> FhirRequest:
        body = (request.body or b"").decode("utf-8", errors="replace")
        form = parse_qsl(body, keep_blank_values=True) if body else []
        return FhirRequest(
            method="GET",
            path=request.path,
            query=[*request.query, *form],
            headers=request.headers,
            base_url=request.base_url,
        )

    def _operation(
        self,
        request: FhirRequest,
        code: str,
        res_type: str | None,
        res_id: str | None,
        txn: WriteTransaction | None,
    ) -> FhirResponse:
        op = self.operations.get(code)
        level_ok = op is not None and (
            (res_type is None and op.system)
            or (res_type is not None and res_id is None and op.type)
            or (res_id is not None and op.instance)
        )
        if op is None or not level_ok:
            where = "/".join(p for p in (res_type, res_id) if p) or "the system level"
            raise InvalidRequest(f"Operation ${code} is not supported on {where}")
        if op.resource_types and res_type not in op.resource_types:
            raise InvalidRequest(f"Operation ${code} is not supported on {res_type}")
        self._only(request.method.upper(), op.methods, f"${code}")
        return op.handler(self.ctx, request, res_type, res_id)
