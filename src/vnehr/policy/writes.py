"""Who may write what (docs/access.md): every write of a caller with a token goes through
`PolicyTransaction.write`, in the request's transaction, so a refused write rolls back
everything the request did.

- A facility (hospital system or clinician) creates data stamped as its own (a `meta.tag`
  of OWNER_SYSTEM, which it cannot set or change itself), changes and deletes only its
  own data, files Encounters and episodes only at itself, writes only about patients it
  may see (its own Patients, or those opened to it), and records a citizen's Consent only
  when it denies: permits are the citizen's to give.
- A citizen updates their contact details (telecom, address, emergency contacts,
  communication) on their own Patients, reports allergies (tagged patient-reported) and
  manages their Consents, for themselves and their wards; nothing else.
- Operators write registries (facilities, practitioners, terminology), never patient data;
  public health writes nothing; national services and the CLI are not limited.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from vnehr.auth.tokens import Principal
from vnehr.errors import Forbidden, Gone, NotFound
from vnehr.policy import rules
from vnehr.policy.conditions import clinical_types, condition
from vnehr.policy.labels import labelled, load_rules
from vnehr.policy.roles import role_of
from vnehr.search import ir
from vnehr.search.extract.extractor import Extractor
from vnehr.search.query import patient_data
from vnehr.search.registry import subset_registry
from vnehr.storage.base import Current, StoredVersion, WriteTransaction

if TYPE_CHECKING:
    from vnehr.interactions.context import Context

PATIENT_REPORTED = ("https://vnehr.org/fhir/CodeSystem/provenance", "patient-reported")
# What a citizen may change on their own Patient.
CITIZEN_PATIENT_ELEMENTS = frozenset({"telecom", "address", "contact", "communication"})
_IGNORED = frozenset({"meta", "text", "id"})


class PolicyTransaction:
    """`txn` with the caller's writes held to the policy; everything else passes through."""

    def __init__(self, ctx: Context, txn: WriteTransaction, principal: Principal | None) -> None:
        self.ctx = ctx
        self.inner = txn
        self.principal = principal
        self.role = role_of(principal) if principal is not None else "national"
        self.labels = load_rules(ctx.settings.access_labels)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(
        self,
        res_type: str,
        res_id: str,
        resource: dict[str, Any] | None,
        method: str,
        previous: Current | None,
    ) -> StoredVersion:
        if resource is not None and res_type in clinical_types():
            resource = labelled(resource, self.labels)
        if self.principal is None:  # the CLI, development mode: labels only
            return self.inner.write(res_type, res_id, resource, method, previous)
        before = self._current(res_type, res_id, previous)
        resource = self.check(res_type, res_id, resource, before)
        return self.inner.write(res_type, res_id, resource, method, previous)

    def _current(
        self, res_type: str, res_id: str, previous: Current | None
    ) -> dict[str, Any] | None:
        if previous is None or previous.deleted:
            return None
        try:
            return self.inner.read(res_type, res_id).resource()
        except (NotFound, Gone):
            return None

    # -- the rules
    def check(
        self,
        res_type: str,
        res_id: str,
        resource: dict[str, Any] | None,
        before: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """`resource` as it may be written (None: a delete), or Forbidden."""
        role = self.role
        if role == "national" or (resource is None and before is None):
            return resource  # a delete of nothing changes nothing
        if role == "public-health":
            raise Forbidden("Public health and analytics callers do not write")
        if role == "registry":
            if res_type in clinical_types():
                raise Forbidden(
                    f"Operators manage registries; {res_type} is patient data, written by "
                    "facilities"
                )
            return resource
        if role == "citizen":
            return self._citizen(res_type, res_id, resource, before)
        if resource is None:
            assert before is not None
            self._own(res_type, res_id, before)
            return None
        return self._facility(res_type, res_id, resource, before)

    def _facility(
        self,
        res_type: str,
        res_id: str,
        resource: dict[str, Any],
        before: dict[str, Any] | None,
    ) -> dict[str, Any]:
        assert self.principal is not None and self.principal.facility is not None
        facility = self.principal.facility
        if before is not None:
            self._own(res_type, res_id, before)
        here = f"Organization/{facility}"
        for element in ("serviceProvider", "managingOrganization"):
            if res_type not in ("Encounter", "EpisodeOfCare"):
                break
            value = resource.get(element)
            target = rules.reference_id(value, "Organization")
            if value is not None and target != facility:
                raise Forbidden(
                    f"{res_type}.{element} must be this facility ({here}): a facility records "
                    "its own encounters"
                )
        if res_type == "Consent" and _permits(resource):
            raise Forbidden(
                "A facility may record a citizen's refusal (a deny Consent); permits are "
                "given by the citizen"
            )
        if res_type in clinical_types():
            self._patients_visible(resource)
        return _stamped(resource, facility)

    def _own(self, res_type: str, res_id: str, before: dict[str, Any]) -> None:
        if self.principal is None or rules.owner_of(before) != self.principal.facility:
            raise Forbidden(
                f"{res_type}/{res_id} is another facility's data: a facility changes and "
                "deletes its own data only"
            )

    def _patients_visible(self, resource: dict[str, Any]) -> None:
        """The Patients the resource is about must be open to the facility: it cannot
        start a record of a patient it cannot see (or learn that one exists)."""
        ids = sorted(_patient_refs(resource))
        if not ids:
            return
        assert self.principal is not None
        where = condition(self.ctx, self.principal, ("Patient",))
        query = ir.Query(("Patient",), ir.IdLeaf("Patient", tuple(ids)))
        if where is not None:
            query = ir.Query(("Patient",), ir.And((ir.IdLeaf("Patient", tuple(ids)), where)))
        seen = set(self.inner.search_ids(query, len(ids)))
        missing = [i for i in ids if i not in seen]
        if missing:
            raise Forbidden(
                f"Patient/{missing[0]} is not a patient this facility may write about "
                "(unknown, or not in its care): register the patient at this facility first"
            )

    def _citizen(
        self,
        res_type: str,
        res_id: str,
        resource: dict[str, Any] | None,
        before: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        if resource is None:
            if res_type == "Consent" or (
                res_type == "AllergyIntolerance"
                and before is not None
                and _patient_reported(before)
            ):
                return None
            raise Forbidden(
                "Citizens may withdraw their Consents and the allergies they reported, "
                f"not delete {res_type}"
            )
        if res_type == "Patient":
            if before is None:
                raise Forbidden("A citizen's Patient records are created by facilities")
            changed = {
                key
                for key in set(resource) | set(before)
                if key not in _IGNORED and resource.get(key) != before.get(key)
            }
            outside = sorted(changed - CITIZEN_PATIENT_ELEMENTS)
            if outside:
                raise Forbidden(
                    "A citizen may change their contact details, addresses and emergency "
                    f"contacts only, not Patient.{outside[0]}"
                )
            return resource
        if res_type == "AllergyIntolerance":
            if before is not None and not _patient_reported(before):
                raise Forbidden("Only allergies the citizen reported can be changed by them")
            return _tagged(resource, PATIENT_REPORTED)
        if res_type == "Consent":
            return resource
        raise Forbidden(
            "Citizens may update their contact details and emergency contacts, report "
            f"allergies and manage their Consents; not write {res_type}"
        )


def _permits(resource: dict[str, Any]) -> bool:
    stack = [resource.get("provision")]
    while stack:
        item = stack.pop()
        if not isinstance(item, dict):
            continue
        if item.get("type") == rules.PERMIT:
            return True
        stack.extend(item.get("provision") or [])
    return False


@cache
def _patient_links() -> Extractor:
    """An extractor of the parameters naming a resource's patient, and of nothing else:
    a facility's write is checked with it, before the store extracts every parameter."""
    return Extractor(subset_registry(patient_data()))


def _patient_refs(resource: dict[str, Any]) -> set[str]:
    """Patient ids of the resource's Patient-compartment references (its own id, for a
    Patient)."""
    res_type = resource.get("resourceType")
    if res_type == "Patient" or not isinstance(res_type, str):
        return set()
    params = set(patient_data().get(res_type, []))
    rows = _patient_links().extract(resource)
    return {
        target_id
        for code, target_type, target_id, _ in rows.references
        if code in params and target_type == "Patient" and target_id
    }


def _stamped(resource: dict[str, Any], facility: str) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = [
        t
        for t in meta.get("tag") or []
        if not (isinstance(t, dict) and t.get("system") == rules.OWNER_SYSTEM)
    ]
    tags.append({"system": rules.OWNER_SYSTEM, "code": facility})
    meta["tag"] = tags
    return {**resource, "meta": meta}


def _tagged(resource: dict[str, Any], tag: tuple[str, str]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag") or [] if t != {"system": tag[0], "code": tag[1]}]
    tags.append({"system": tag[0], "code": tag[1]})
    meta["tag"] = tags
    return {**resource, "meta": meta}


def _patient_reported(resource: dict[str, Any]) -> bool:
    return any(
        isinstance(t, dict) and (t.get("system"), t.get("code")) == PATIENT_REPORTED
        for t in (resource.get("meta") or {}).get("tag") or []
    )


def held(ctx: Context, txn: WriteTransaction, principal: Principal | None) -> WriteTransaction:
    """`txn` as the caller (None: the CLI, development mode) writes through it."""
    return PolicyTransaction(ctx, txn, principal)
