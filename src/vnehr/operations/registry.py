"""Operations declared as data: code, levels, resource types; routes and the
CapabilityStatement are derived from these declarations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vnehr.interactions.context import Context
    from vnehr.interactions.exchange import FhirRequest, FhirResponse

Handler = Callable[["Context", "FhirRequest", "str | None", "str | None"], "FhirResponse"]


@dataclass(frozen=True, slots=True)
class Operation:
    code: str  # without the $
    definition: str  # canonical URL of the OperationDefinition
    system: bool
    type: bool
    instance: bool
    resource_types: tuple[str, ...]  # empty: every type
    affects_state: bool
    methods: tuple[str, ...]
    handler: Handler
    documentation: str
    # The resource type whose SMART scope the operation needs (access.py); None: the type
    # it is called on, or its single declared type, or every type ("*").
    scope_type: str | None = None


class OperationRegistry:
    def __init__(self) -> None:
        self._ops: dict[str, Operation] = {}

    def register(self, op: Operation) -> None:
        self._ops[op.code] = op

    def get(self, code: str) -> Operation | None:
        return self._ops.get(code)

    def all(self) -> list[Operation]:
        return sorted(self._ops.values(), key=lambda o: o.code)


def builtin_operations() -> OperationRegistry:
    from vnehr.operations import identity, terminology, validate
    from vnehr.policy import break_glass

    registry = OperationRegistry()
    registry.register(validate.OPERATION)
    registry.register(break_glass.OPERATION)
    for op in (*identity.OPERATIONS, *terminology.OPERATIONS):
        registry.register(op)
    return registry
