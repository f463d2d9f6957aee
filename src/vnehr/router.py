"""The FHIR router: FhirRequest -> FhirResponse, knowing nothing of HTTP.

The HTTP layer, the CLI, transaction entries and the tests all come through here. Only this
module turns vnehr's errors into OperationOutcome responses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import parse_qsl

from vnehr.audit import endpoint as audit_endpoint
from vnehr.auth import access
from vnehr.errors import (
    FhirError,
    Forbidden,
    Gone,
    InvalidRequest,
    Issue,
    MethodNotAllowed,
    NotFound,
    operation_outcome,
)
from vnehr.interactions import create, delete, history, patch, read, search, update
from vnehr.interactions.capabilities import capabilities
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.respond import body_resource, check_type
from vnehr.interactions.transaction import batch, bundle_entries, transaction
from vnehr.operations.registry import Operation, OperationRegistry, builtin_operations
from vnehr.policy.roles import role_of
from vnehr.policy.versions import visible_versions as past_versions
from vnehr.policy.writes import PolicyTransaction, held
from vnehr.search.query import compartments
from vnehr.storage.base import StoredVersion, WriteTransaction

log = logging.getLogger("vnehr.router")

Write = Callable[[WriteTransaction], FhirResponse]


class Router:
    def __init__(self, ctx: Context, operations: OperationRegistry | None = None) -> None:
        self.ctx = ctx
        self.operations = operations or builtin_operations()
        self._capabilities: dict[tuple[str, int], bytes] = {}

    def handle(self, request: FhirRequest) -> FhirResponse:
        """Answer any request; errors become OperationOutcome responses. Every answer is
        audited (vnehr.audit: writes in their own transaction, the rest once answered)."""
        audit = self.ctx.audit
        scope = audit.begin(request) if audit is not None else None
        response: FhirResponse | None = None
        try:
            response = self.dispatch(request, None)
        except FhirError as exc:
            self.refused(request, exc)
            response = FhirResponse(exc.status, resource=exc.outcome())
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.path)
            issue = Issue(
                "fatal", "exception", "Internal server error; the request was not applied"
            )
            response = FhirResponse(500, resource=operation_outcome([issue]))
        finally:
            if audit is not None and scope is not None:
                audit.end(scope, response)
        return response

    def refused(self, request: FhirRequest, exc: FhirError) -> None:
        """A refusal of what a token does not allow is a security event (batch entries
        too: probing through a batch leaves the same trace)."""
        if exc.status == 403 and request.principal is not None and self.ctx.denied:
            self.ctx.denied(request, str(exc))

    def _write(self, txn: WriteTransaction | None, work: Write) -> FhirResponse:
        if txn is not None:
            return work(txn)
        with self.ctx.store.transaction() as own:
            return work(own)

    def _write_as(
        self, request: FhirRequest, txn: WriteTransaction | None, work: Write
    ) -> FhirResponse:
        """A write held to the caller's access policy (vnehr.policy.writes)."""
        principal = request.principal
        return self._write(
            txn,
            lambda t: work(t if isinstance(t, PolicyTransaction) else held(self.ctx, t, principal)),
        )

    def dispatch(self, request: FhirRequest, txn: WriteTransaction | None) -> FhirResponse:
        ctx = self.ctx
        method = request.method.upper()
        if method == "HEAD":
            response = self.dispatch(replace(request, method="GET"), txn)
            response.body, response.resource = None, None
            return response
        parts = [p for p in request.path.strip("/").split("/") if p]
        n = len(parts)
        if audit_endpoint.handles(parts):  # read-only, from the audit trail's own tables
            return audit_endpoint.dispatch(ctx, request, parts)
        if n == 0:
            if method == "POST":
                resource = body_resource(request, "Bundle")
                kind, entries = bundle_entries(resource)
                if kind == "transaction":
                    if txn is not None:
                        raise InvalidRequest("A transaction cannot be nested in a transaction")
                    return transaction(ctx, request, entries, self.dispatch)
                return batch(ctx, request, entries, self.dispatch, self.refused)
            if method == "GET":
                access.require_all(request.principal, _system_types(request), "s", policed=True)
                return search.search(ctx, request, None)
            raise MethodNotAllowed(f"{method} on the base URL is not supported")
        first = parts[0]
        principal = request.principal
        if first == "metadata" and n == 1:
            self._only(method, ("GET",), "metadata")
            return capabilities(ctx, request, self.operations, self._capabilities)
        if first == "_history" and n == 1:
            self._only(method, ("GET",), "_history")
            access.require_all(principal, ("*",), "r")
            return history.history(ctx, request, None, None)
        if first.startswith("$"):
            return self._operation(request, first[1:], None, None, txn)
        res_type = first
        check_type(res_type)
        if n == 1:
            match method:
                case "GET":
                    found = access.require(principal, res_type, "s")
                    return search.search(ctx, request, res_type, grant=found)
                case "POST":
                    found = access.require(principal, res_type, "c")
                    if request.header("if-none-exist"):
                        access.require(principal, res_type, "s")
                    return self._write_as(
                        request,
                        txn,
                        lambda t: access.check_written(
                            ctx, t, found, create.create(ctx, request, res_type, t)
                        ),
                    )
                case "PUT":
                    found = access.require(principal, res_type, "u")
                    access.require(principal, res_type, "s")
                    return self._write_as(
                        request,
                        txn,
                        lambda t: access.check_written(
                            ctx, t, found, update.conditional_update(ctx, request, res_type, t)
                        ),
                    )
                case "DELETE":
                    access.require(principal, res_type, "s")
                    if access.require(principal, res_type, "d").narrowed:
                        raise Forbidden(
                            f"The access token allows delete on {res_type} only within "
                            "limits, which a conditional delete cannot apply"
                        )
                    return self._write_as(
                        request, txn, lambda t: delete.conditional_delete(ctx, request, res_type, t)
                    )
                case "PATCH":
                    found = access.require(principal, res_type, "u")
                    access.require(principal, res_type, "s")
                    return self._write_as(
                        request,
                        txn,
                        lambda t: access.check_written(
                            ctx, t, found, patch.conditional_patch(ctx, request, res_type, t)
                        ),
                    )
            raise MethodNotAllowed(f"{method} is not allowed on {res_type}")
        second = parts[1]
        if n == 2 and second == "_search":
            self._only(method, ("POST",), f"{res_type}/_search")
            found = access.require(principal, res_type, "s")
            return search.search(ctx, self._form_request(request), res_type, grant=found)
        if n == 2 and second == "_history":
            self._only(method, ("GET",), f"{res_type}/_history")
            access.require_all(principal, (res_type,), "r")
            return history.history(ctx, request, res_type, None)
        if second.startswith("$"):
            if n != 2:
                raise InvalidRequest(f"Unknown path {request.path}")
            return self._operation(request, second[1:], res_type, None, txn)
        res_id = second
        if n == 2:
            match method:
                case "GET":
                    self._visible(request, res_type, res_id, "r", txn)
                    return read.read(ctx, request, res_type, res_id, txn)
                case "PUT":
                    found = self._visible(request, res_type, res_id, "u", txn, write=True)
                    return self._write_as(
                        request,
                        txn,
                        lambda t: access.check_written(
                            ctx, t, found, update.update(ctx, request, res_type, res_id, t)
                        ),
                    )
                case "DELETE":
                    try:
                        self._visible(request, res_type, res_id, "d", txn, write=True)
                    except Hidden:  # answered as for an id that does not exist
                        return FhirResponse(
                            200,
                            resource=operation_outcome(
                                [
                                    Issue(
                                        "warning",
                                        "not-found",
                                        f"{res_type}/{res_id} does not exist; nothing deleted",
                                    )
                                ]
                            ),
                        )
                    return self._write_as(
                        request, txn, lambda t: delete.delete(ctx, request, res_type, res_id, t)
                    )
                case "PATCH":
                    found = self._visible(request, res_type, res_id, "u", txn, write=True)
                    return self._write_as(
                        request,
                        txn,
                        lambda t: access.check_written(
                            ctx, t, found, patch.patch(ctx, request, res_type, res_id, t)
                        ),
                    )
            raise MethodNotAllowed(f"{method} is not allowed on {res_type}/{res_id}")
        third = parts[2]
        if n == 3 and (third == "*" or third in compartments().get(res_type, {})):
            self._only(method, ("GET",), f"{res_type}/{res_id}/{third}")
            if res_type not in compartments():
                raise InvalidRequest(f"{res_type} is not a compartment")
            target = None if third == "*" else third
            if target is None:
                access.require_all(principal, ("*",), "s", policed=True)
                return search.search(ctx, request, None, compartment=(res_type, res_id))
            found = access.require(principal, target, "s")
            return search.search(ctx, request, target, compartment=(res_type, res_id), grant=found)
        if third.startswith("$") and n == 3:
            return self._operation(request, third[1:], res_type, res_id, txn)
        if third == "_history" and n == 3:
            self._only(method, ("GET",), "_history")
            found = self._visible(request, res_type, res_id, "r", txn)
            keep = self._past_versions(found, res_type, res_id, txn)
            return history.history(ctx, request, res_type, res_id, keep)
        if third == "_history" and n == 4:
            self._only(method, ("GET",), "vread")
            found = self._visible(request, res_type, res_id, "r", txn)
            keep = self._past_versions(found, res_type, res_id, txn)
            return read.vread(ctx, request, res_type, res_id, parts[3], txn, keep)
        raise InvalidRequest(f"Unknown path {request.path}")

    def _visible(
        self,
        request: FhirRequest,
        res_type: str,
        res_id: str,
        permission: str,
        txn: WriteTransaction | None,
        *,
        write: bool = False,
    ) -> access.Grant:
        """The grant for `permission` on this resource; a resource outside a narrowed grant
        is not found (reads) or forbidden (writes; a new id is judged after the write)."""
        found = access.require(request.principal, res_type, permission)
        if found.unrestricted or access.visible(self.ctx, found, [res_id], txn):
            return found
        source = txn if txn is not None else self.ctx.store
        try:
            source.read(res_type, res_id)
        except NotFound:
            if write:
                return found
            raise
        except Gone:
            if write:
                return found
            if found.narrowed or found.principal is None:
                raise
            # A deletion the policy hides answers as an unknown id: a 410 would say the
            # record existed (vnehr.policy).
            raise NotFound(f"{res_type}/{res_id} is not known") from None
        if write and found.narrowed:
            raise Forbidden(f"{res_type}/{res_id} is outside what the access token allows")
        if write and request.method.upper() == "PUT":
            raise Forbidden(f"{res_type}/{res_id} is outside what the access token allows")
        if write:
            raise Hidden(f"{res_type}/{res_id} is not known")
        raise NotFound(f"{res_type}/{res_id} is not known")

    def _past_versions(
        self, found: access.Grant, res_type: str, res_id: str, txn: WriteTransaction | None
    ) -> Callable[[list[StoredVersion]], list[StoredVersion]] | None:
        """Which past versions of a resource the caller sees (vnehr.policy.versions)."""
        if found.unrestricted:
            return None
        source = txn if txn is not None else self.ctx.store
        try:
            current: StoredVersion | None = source.read(res_type, res_id)
        except (NotFound, Gone):
            current = None
        return lambda versions: past_versions(self.ctx, found, current, versions)

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
            principal=request.principal,
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
        self._operation_access(request, op, res_type, res_id, txn)
        return op.handler(self.ctx, request, res_type, res_id)

    def _operation_access(
        self,
        request: FhirRequest,
        op: Operation,
        res_type: str | None,
        res_id: str | None,
        txn: WriteTransaction | None,
    ) -> None:
        """An operation that changes data needs `u`; one on an instance `r`; otherwise
        `s`, on the type the operation declares it works on. The master patient index's
        operations are for operators and national services (vnehr.policy); `$everything`
        holds its answer to the access policy itself."""
        principal = request.principal
        if principal is None:
            return
        permission = "u" if op.affects_state else ("r" if res_id else "s")
        scope_type = op.scope_type or res_type
        if scope_type is None:
            scope_type = op.resource_types[0] if len(op.resource_types) == 1 else "*"
        found = access.require(principal, scope_type, permission)
        if op.code == "break-glass":
            return  # outside the policy by design: its handler checks who, and records it
        if op.code in _IDENTITY_OPERATIONS:
            if found.narrowed or role_of(principal) not in ("registry", "national"):
                raise Forbidden(
                    f"${op.code} is for operators of the master patient index and national "
                    "services; a facility finds its patients by registering them"
                )
            return
        if found.unrestricted:
            return
        if res_id is not None and res_type is not None:
            if found.compartment == ("Patient", res_id) and res_type == "Patient":
                return  # the launch patient's own $everything
            if op.code == "everything" and not found.narrowed:
                self._visible(request, res_type, res_id, "r", txn)
                return  # the answer is held to the policy (operations/identity.py)
            if scope_type == res_type:
                self._visible(request, res_type, res_id, permission, txn)
                return
        elif not found.narrowed and not op.affects_state and op.code != "everything":
            return  # reads no stored patient data ($validate of a body, terminology)
        raise Forbidden(f"${op.code} needs {permission} on {scope_type} without limits")


class Hidden(NotFound):
    """A record the access policy hides from a write: answered as an unknown id (404 for
    a patch, "nothing deleted" for a delete)."""


_IDENTITY_OPERATIONS = frozenset(
    {"match", "ihe-pix", "mpi-links", "mpi-update-link", "mpi-merge", "mpi-unmerge"}
)


def _system_types(request: FhirRequest) -> tuple[str, ...]:
    """The types a system search covers: `_type`'s, or every type ("*")."""
    named = [t for value in request.query if value[0] == "_type" for t in value[1].split(",")]
    return tuple(t.strip() for t in named if t.strip()) or ("*",)
