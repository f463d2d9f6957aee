"""What every interaction works with: the store, the settings, search parameters, validation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vnehr.errors import Issue
from vnehr.search.registry import SearchParamRegistry
from vnehr.settings import Settings
from vnehr.storage.base import Store

if TYPE_CHECKING:
    from vnehr.audit.trail import AuditTrail
    from vnehr.identity.index import PatientIndex
    from vnehr.interactions.exchange import FhirRequest
    from vnehr.terminology.service import Terminology

Validator = Callable[[dict[str, Any]], list[Issue]]


@dataclass(frozen=True, slots=True)
class Context:
    store: Store
    settings: Settings
    registry: SearchParamRegistry
    validator: Validator
    identity: PatientIndex | None = None  # the master patient index (vnehr.identity)
    terminology: Terminology | None = None  # the terminology service (vnehr.terminology)
    # Told of every refused request (403) of a caller with a token: the security events.
    denied: Callable[[FhirRequest, str], None] | None = None
    audit: AuditTrail | None = None  # the audit trail (vnehr.audit); None: not audited
