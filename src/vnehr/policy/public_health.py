"""Public health and analytics (role `public-health`): de-identified aggregates only.

Such a caller may count (`_summary=count`) resources of one type by their clinical
attributes (code, date, status, category, an organisation, a place), never read a record,
never search by what identifies a person (identifiers, names, contact details, addresses,
birth dates, references to a patient, `_id`, chains, `_has`, text), and never learn a count
smaller than `public_health_min_count` (small cells can single a person out).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from vnehr.errors import Forbidden, Issue, operation_outcome

if TYPE_CHECKING:
    from collections.abc import Callable

    from vnehr.interactions.context import Context
    from vnehr.interactions.exchange import FhirRequest, FhirResponse

IDENTIFYING = frozenset(
    {
        "identifier",
        "name",
        "family",
        "given",
        "phonetic",
        "telecom",
        "phone",
        "email",
        "address",
        "address-city",
        "address-state",
        "address-postalcode",
        "address-country",
        "address-use",
        "birthdate",
        "death-date",
        "patient",
        "subject",
        "link",
        "general-practitioner",
        "_id",
        "_text",
        "_content",
        "_list",
        "_include",
        "_revinclude",
        "_elements",
        "_contained",
    }
)
RESULT = frozenset({"_summary", "_total", "_count", "_format", "_pretty"})


def count(
    ctx: Context,
    request: FhirRequest,
    res_type: str | None,
    compartment: tuple[str, str] | None,
    search: Callable[[FhirRequest], FhirResponse],
) -> FhirResponse:
    if res_type is None or compartment is not None:
        raise Forbidden("Public health callers count resources of one type (GET Type?...)")
    if request.param("_summary") != "count":
        raise Forbidden(
            "Public health and analytics callers see aggregates only: add _summary=count"
        )
    for name, _ in request.query:
        base = name.split(":")[0]
        if base in RESULT:
            continue
        if base in IDENTIFYING or "." in name or base.startswith("_has"):
            raise Forbidden(
                f"{name} can single out a person: public health callers count by clinical "
                "attributes only"
            )
    response = search(replace(request, principal=None))
    bundle = response.resource or {}
    total = bundle.get("total")
    floor = ctx.settings.public_health_min_count
    if isinstance(total, int) and 0 < total < floor:
        bundle.pop("total", None)
        outcome = operation_outcome(
            [
                Issue(
                    "information",
                    "suppressed",
                    f"Fewer than {floor} matches: the count is not given (small cells can "
                    "identify a person)",
                )
            ]
        )
        bundle.setdefault("entry", []).append({"resource": outcome, "search": {"mode": "outcome"}})
    return response
