"""$validate (https://hl7.org/fhir/R4/resource-operation-validate.html)."""

from __future__ import annotations

from vnehr.errors import InvalidRequest, Issue, operation_outcome
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.respond import body_resource, check_type
from vnehr.operations.registry import Operation


def validate(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    body = body_resource(request, None)
    resource = body
    if body.get("resourceType") == "Parameters" and res_type != "Parameters":
        params = body.get("parameter") or []
        found = [
            p.get("resource") for p in params if isinstance(p, dict) and p.get("name") == "resource"
        ]
        if not found or not isinstance(found[0], dict):
            raise InvalidRequest("$validate with Parameters needs a 'resource' parameter")
        resource = found[0]
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        raise InvalidRequest("The resource to validate has no resourceType", ("resourceType",))
    check_type(kind)
    if res_type is not None and kind != res_type:
        raise InvalidRequest(f"$validate on {res_type} was given a {kind}", ("resourceType",))
    issues = ctx.validator(resource)
    if ctx.terminology is not None:  # bindings to the value sets the server holds
        issues += ctx.terminology.check_bindings(resource)
    if not issues:
        issues = [Issue("information", "informational", "Validation successful: no issues found")]
    return FhirResponse(200, resource=operation_outcome(issues))


OPERATION = Operation(
    code="validate",
    definition="http://hl7.org/fhir/OperationDefinition/Resource-validate",
    system=True,
    type=True,
    instance=False,
    resource_types=(),
    affects_state=False,
    methods=("POST",),
    handler=validate,
    documentation="Structural validation against the R4 definitions; see docs/validation.md",
)
