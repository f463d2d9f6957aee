"""An operation's input parameters, from a `Parameters` body (POST) or the query string (GET)."""

from __future__ import annotations

from typing import Any

from vnehr.errors import InvalidRequest
from vnehr.interactions.exchange import FhirRequest
from vnehr.interactions.respond import body_resource

Json = dict[str, Any]


class OperationInput:
    """Named parameters: values (`value[x]`), resources and parts, by name."""

    def __init__(self, request: FhirRequest, bare: str | None = None) -> None:
        """`bare`: the parameter a body that is not a Parameters stands for (`$match`
        takes a Patient as its `resource`); without it such a body is refused."""
        self._parts: dict[str, list[Json]] = {}
        if request.method.upper() != "GET" and (request.body or request.resource is not None):
            body = body_resource(request, None)
            if body.get("resourceType") != "Parameters" and bare is not None:
                body = {
                    "resourceType": "Parameters",
                    "parameter": [{"name": bare, "resource": body}],
                }
            if body.get("resourceType") != "Parameters":
                raise InvalidRequest(
                    "The operation's body must be a Parameters resource", ("resourceType",)
                )
            for i, part in enumerate(body.get("parameter") or []):
                if not isinstance(part, dict) or not isinstance(part.get("name"), str):
                    raise InvalidRequest(
                        "A parameter needs a name", (f"Parameters.parameter[{i}].name",)
                    )
                self._parts.setdefault(part["name"], []).append(part)
        for key, value in request.query:
            if not key.startswith("_"):
                self._parts.setdefault(key, []).append({"name": key, "valueString": value})

    def names(self) -> list[str]:
        return list(self._parts)

    def values(self, name: str) -> list[Any]:
        out = []
        for part in self._parts.get(name, []):
            for key, value in part.items():
                if key.startswith("value"):
                    out.append(value)
        return out

    def value(self, name: str) -> Any:
        found = self.values(name)
        return found[0] if found else None

    def text(self, name: str) -> str | None:
        value = self.value(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidRequest(f"Parameter {name!r} must be a string", (name,))
        return value

    def reference(self, name: str) -> str | None:
        """A value given as text (`Person/1`) or as a Reference (its `reference`)."""
        value = self.value(name)
        if isinstance(value, dict):
            value = value.get("reference")
        return value if isinstance(value, str) else None

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.value(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return bool(value == "true")
        raise InvalidRequest(f"Parameter {name!r} must be true or false", (name,))

    def integer(self, name: str, minimum: int = 0) -> int | None:
        value = self.value(name)
        if value is None:
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise InvalidRequest(f"Parameter {name!r} must be an integer", (name,)) from None
        if number < minimum:
            raise InvalidRequest(f"Parameter {name!r} must be at least {minimum}", (name,))
        return number

    def resources(self, name: str) -> list[Json]:
        return [
            p["resource"] for p in self._parts.get(name, []) if isinstance(p.get("resource"), dict)
        ]

    def resource(self, name: str, res_type: str) -> Json | None:
        found = self.resources(name)
        if not found:
            return None
        if found[0].get("resourceType") != res_type:
            raise InvalidRequest(f"Parameter {name!r} must be a {res_type}", (name,))
        return found[0]

    def object(self, name: str) -> Json | None:
        value = self.value(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise InvalidRequest(f"Parameter {name!r} must be a complex value", (name,))
        return value
