"""Which REST interaction a request is (http://hl7.org/fhir/restful-interaction), read from its
method and path alone, as the router will route it: cheap enough for every request."""

from __future__ import annotations

from dataclasses import dataclass

from vnehr.interactions.exchange import FhirRequest


@dataclass(frozen=True, slots=True)
class Interaction:
    code: str  # a restful-interaction code; "capabilities" is not audited
    res_type: str | None = None
    res_id: str | None = None
    version: str | None = None
    operation: str | None = None  # without the $
    # The Patient the path names (`Patient/1`, `Patient/1/$everything`, `Patient/1/Observation`)
    patient: str | None = None

    @property
    def query_like(self) -> bool:
        """An interaction whose answer is a set found by criteria: BALP records its query
        and the patients found, not every resource returned."""
        return self.code in (
            "search-type",
            "search-system",
            "history-type",
            "history-system",
            "operation",
        )


_BY_METHOD = {"GET": "read", "PUT": "update", "DELETE": "delete", "PATCH": "patch"}
_TYPE_LEVEL = {"GET": "search-type", "POST": "create", "PUT": "update", "DELETE": "delete"}


def classify(request: FhirRequest) -> Interaction:
    method = request.method.upper()
    if method == "HEAD":
        method = "GET"
    parts = [p for p in request.path.strip("/").split("/") if p]
    n = len(parts)
    if n == 0:
        return Interaction("search-system" if method == "GET" else "batch")
    first = parts[0]
    if first == "metadata":
        return Interaction("capabilities")
    if first == "_history":
        return Interaction("history-system")
    if first.startswith("$"):
        return Interaction("operation", operation=first[1:])
    patient = parts[1] if first == "Patient" and n >= 2 and parts[1][:1] not in "_$" else None
    if n == 1:
        return Interaction(_TYPE_LEVEL.get(method, "patch"), res_type=first)
    second = parts[1]
    if second == "_search":
        return Interaction("search-type", res_type=first)
    if second == "_history":
        return Interaction("history-type", res_type=first)
    if second.startswith("$"):
        return Interaction("operation", res_type=first, operation=second[1:])
    if n == 2:
        code = _BY_METHOD.get(method, "create")
        return Interaction(code, res_type=first, res_id=second, patient=patient)
    third = parts[2]
    if third.startswith("$"):
        return Interaction(
            "operation", res_type=first, res_id=second, operation=third[1:], patient=patient
        )
    if third == "_history":
        if n == 4:
            return Interaction(
                "vread", res_type=first, res_id=second, version=parts[3], patient=patient
            )
        return Interaction("history-instance", res_type=first, res_id=second, patient=patient)
    # A compartment search: Patient/1/Observation
    return Interaction("search-type", res_type=third, patient=patient)
