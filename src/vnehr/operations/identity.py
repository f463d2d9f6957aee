"""Operations of the master patient index (docs/identity.md):

- `POST Patient/$match` (https://hl7.org/fhir/R4/patient-operation-match.html, IHE PDQm);
- `GET Patient/$ihe-pix` (IHE PIXm): one identifier in, the person's other identifiers and
  Patients out;
- `GET $mpi-links` (the review queue is `result=probable`), `POST $mpi-update-link`
  (accept, reject, link, unlink);
- `POST Person/$mpi-merge` and `POST Person/$mpi-unmerge`;
- `GET Patient/{id}/$everything`: the whole person's record, across every linked Patient.
"""

from __future__ import annotations

import math
from typing import Any

from vnehr.errors import Gone, InvalidRequest, NotFound
from vnehr.fhir import json as fhir_json
from vnehr.fhir.instant import format_instant
from vnehr.identity.features import record_from_patient
from vnehr.identity.index import RESULTS, PatientIndex, candidates
from vnehr.identity.matching.rules import Rules
from vnehr.interactions.bundles import entry_resource, link
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.respond import validated
from vnehr.operations.parameters import OperationInput
from vnehr.operations.registry import Operation
from vnehr.policy import conditions as policy
from vnehr.search import ir
from vnehr.search.query import compartments, multi_compartment_query, strict_query

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
_GRADE_CODES = {
    "certain": "certain",
    "probable": "probable",
    "possible": "possible",
    "no-match": "certainly-not",
}
MAX_MATCHES = 100
MAX_LINKS = 1000  # $mpi-links: `_count` default 100, at most this


def _index(ctx: Context) -> PatientIndex:
    if ctx.identity is None:
        raise InvalidRequest("The master patient index is not enabled on this server")
    return ctx.identity


def _id_of(value: Any, res_type: str, name: str) -> str:
    """`Person/123`, `123` or a Reference's reference -> `123`."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"Parameter {name!r} ({res_type} reference) is required", (name,))
    kind, _, rest = value.strip().rpartition("/")
    if kind and kind.rsplit("/", 1)[-1] != res_type:
        raise InvalidRequest(f"Parameter {name!r} must reference a {res_type}", (name,))
    return rest


def _positive(value: Any, name: str, default: int, cap: int = MAX_MATCHES) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"Parameter {name!r} must be a positive integer", (name,)) from None
    if number < 1:
        raise InvalidRequest(f"Parameter {name!r} must be a positive integer", (name,))
    return min(number, cap)


def probability(score: float, rules: Rules) -> float:
    """A Fellegi-Sunter weight (log2 likelihood ratio) as a score in [0, 1]: 0.5 at the
    `probable` threshold, rising towards 1 above it (a weight is not a probability until a
    prior is chosen; this keeps the order and puts the grades in bands)."""
    if math.isinf(score):
        return 1.0 if score > 0 else 0.0
    return round(1.0 / (1.0 + 2.0 ** (-(score - rules.probable) / 2)), 4)


# -- $match
def match(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    index = _index(ctx)
    inp = OperationInput(request, bare="resource")
    found = inp.resources("resource")
    if not found or not isinstance(found[0], dict):
        raise InvalidRequest("$match needs a Patient in the 'resource' parameter", ("resource",))
    patient = found[0]
    if patient.get("resourceType") != "Patient":
        raise InvalidRequest("$match's 'resource' must be a Patient", ("resource",))
    validated(ctx, patient)
    only_certain = inp.boolean("onlyCertainMatches")
    count = _positive(inp.value("count"), "count", 10)
    record = record_from_patient(patient)
    scored = candidates(ctx.store.rows, record, index.rules)
    keep = ("certain",) if only_certain else ("certain", "probable", "possible")
    chosen = [c for c in scored if c.result.grade in keep][:count]
    entries = []
    for c in chosen:
        try:
            stored = ctx.store.read("Patient", c.patient_id)
        except (NotFound, Gone):  # deleted since it was indexed
            continue
        entries.append(
            {
                "fullUrl": f"{request.base_url}/Patient/{c.patient_id}",
                "resource": fhir_json.loads(stored.content or b"{}"),
                "search": {
                    "mode": "match",
                    "score": probability(c.result.score, index.rules),
                    "extension": [{"url": MATCH_GRADE, "valueCode": _GRADE_CODES[c.result.grade]}],
                },
            }
        )
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "link": [link("self", request.base_url, "Patient/$match", [])],
        "entry": entries,
    }
    return FhirResponse(200, resource=bundle)


# -- $ihe-pix
def ihe_pix(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    index = _index(ctx)
    source = request.param("sourceIdentifier")
    if not source or "|" not in source:
        raise InvalidRequest("sourceIdentifier is required, as system|value", ("sourceIdentifier",))
    system, _, value = source.partition("|")
    if not system or not value:
        raise InvalidRequest("sourceIdentifier needs a system and a value", ("sourceIdentifier",))
    targets = {v for k, v in request.query if k == "targetSystem"}
    query = strict_query(ctx.registry, "Patient", [("identifier", source)])
    page = ctx.store.search(query, count=MAX_MATCHES)
    if not page.versions:
        raise NotFound(f"No Patient has the identifier {source}")
    patients: dict[str, dict[str, Any]] = {}
    for stored in page.versions:
        for patient_id in index.linked_patients(ctx.store.rows, stored.res_id):
            if patient_id not in patients:
                try:
                    patients[patient_id] = ctx.store.read("Patient", patient_id).resource()
                except (NotFound, Gone):
                    continue
    parameters: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = {(system, value)}
    for patient_id, patient in patients.items():
        for identifier in patient.get("identifier") or []:
            key = (identifier.get("system") or "", identifier.get("value") or "")
            if key in seen or (targets and key[0] not in targets):
                continue
            seen.add(key)
            shown = {
                k: identifier[k] for k in ("use", "system", "value", "assigner") if k in identifier
            }
            parameters.append({"name": "targetIdentifier", "valueIdentifier": shown})
        parameters.append(
            {"name": "targetId", "valueReference": {"reference": f"Patient/{patient_id}"}}
        )
    return FhirResponse(200, resource={"resourceType": "Parameters", "parameter": parameters})


# -- links and the review queue
def mpi_links(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    index = _index(ctx)
    result = request.param("result")
    if result is not None and result not in RESULTS:
        raise InvalidRequest("result must be certain, probable or no-match", ("result",))
    patient = request.param("patient")
    person = request.param("person")
    count = _positive(request.param("_count"), "_count", 100, MAX_LINKS)
    links = index.links(
        ctx.store.rows,
        result=result,
        patient=_id_of(patient, "Patient", "patient") if patient else None,
        person=_id_of(person, "Person", "person") if person else None,
        limit=count,
    )
    parameters = []
    for item in links:
        part: list[dict[str, Any]] = [
            {"name": "patient", "valueReference": {"reference": f"Patient/{item.patient_id}"}},
            {"name": "person", "valueReference": {"reference": f"Person/{item.person_id}"}},
            {"name": "result", "valueCode": item.result},
            {"name": "source", "valueCode": item.source},
            {"name": "updated", "valueInstant": format_instant(item.updated)},
        ]
        if item.score is not None:
            part.append({"name": "score", "valueDecimal": round(item.score, 3)})
        if item.reason:
            part.append({"name": "reason", "valueString": item.reason})
        parameters.append({"name": "link", "part": part})
    return FhirResponse(200, resource={"resourceType": "Parameters", "parameter": parameters})


def _actor(inp: OperationInput) -> str:
    actor = inp.value("actor")
    return actor if isinstance(actor, str) and actor.strip() else "operator"


def mpi_update_link(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    index = _index(ctx)
    inp = OperationInput(request)
    patient = _id_of(inp.reference("patient"), "Patient", "patient")
    person = _id_of(inp.reference("person"), "Person", "person")
    result = inp.value("result")
    if result not in ("certain", "no-match"):
        raise InvalidRequest("result must be certain or no-match", ("result",))
    with ctx.store.transaction() as txn:
        index.update_link(txn, patient, person, result, _actor(inp))
        new_person = index.person_of(lambda s, a: txn.rows(s, a), patient)
    return _outcome(f"Patient/{patient} is now linked to Person/{new_person}")


def mpi_merge(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    index = _index(ctx)
    inp = OperationInput(request)
    source = _id_of(inp.reference("source"), "Person", "source")
    target = _id_of(inp.reference("target"), "Person", "target")
    with ctx.store.transaction() as txn:
        moved = index.merge(txn, source, target, _actor(inp))
    return _outcome(f"Person/{source} merged into Person/{target}: {moved} Patient(s) moved")


def mpi_unmerge(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    index = _index(ctx)
    inp = OperationInput(request)
    source = _id_of(inp.reference("source"), "Person", "source")
    with ctx.store.transaction() as txn:
        moved = index.unmerge(txn, source, _actor(inp))
    return _outcome(f"Person/{source} restored: {moved} Patient(s) moved back")


def _outcome(text: str) -> FhirResponse:
    return FhirResponse(
        200,
        resource={
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
        },
    )


# -- $everything
EVERYTHING_CAP = 1000


def everything(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    """The Patient compartment of every Patient linked to the same Person, in one page of
    up to `_count` (default and most 1,000) resources."""
    assert res_id is not None
    ctx.store.read("Patient", res_id)  # 404 / 410 as a read would
    ids = (
        ctx.identity.linked_patients(ctx.store.rows, res_id)
        if ctx.identity is not None
        else [res_id]
    )
    count = EVERYTHING_CAP
    if request.param("_count") is not None:
        count = _positive(request.param("_count"), "_count", EVERYTHING_CAP, EVERYTHING_CAP)
    types = tuple(sorted({"Patient", *compartments().get("Patient", {})}))
    query = multi_compartment_query(types, "Patient", tuple(ids))
    if request.principal is not None:  # what the caller may see of it (vnehr.policy)
        held = policy.condition(ctx, request.principal, types)
        if held is not None and query.where is not None:
            query = ir.Query(query.res_types, ir.And((query.where, held)), query.sort)
    page = ctx.store.search(query, count=count)
    entries = [
        {
            "fullUrl": f"{request.base_url}/{v.res_type}/{v.res_id}",
            "resource": entry_resource(v, as_stored=request.stored_json),
            "search": {"mode": "match"},
        }
        for v in page.versions
    ]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [link("self", request.base_url, f"Patient/{res_id}/$everything", [])],
        "entry": entries,
    }
    if not page.more:
        bundle["total"] = len(entries)
    return FhirResponse(200, resource=bundle)


def _op(
    code: str,
    handler: Any,
    *,
    system: bool = False,
    type_level: bool = False,
    instance: bool = False,
    types: tuple[str, ...] = (),
    methods: tuple[str, ...] = ("GET", "POST"),
    affects_state: bool = False,
    definition: str = "",
    documentation: str,
    scope_type: str | None = None,
) -> Operation:
    return Operation(
        code=code,
        definition=definition or f"https://vnehr.org/fhir/OperationDefinition/{code}",
        system=system,
        type=type_level,
        instance=instance,
        resource_types=types,
        affects_state=affects_state,
        methods=methods,
        handler=handler,
        documentation=documentation,
        scope_type=scope_type,
    )


OPERATIONS = (
    _op(
        "match",
        match,
        type_level=True,
        types=("Patient",),
        methods=("POST",),
        definition="http://hl7.org/fhir/OperationDefinition/Patient-match",
        documentation="Probabilistic and deterministic matching against the master patient "
        "index; search.score and the match-grade extension (docs/identity.md)",
    ),
    _op(
        "ihe-pix",
        ihe_pix,
        type_level=True,
        types=("Patient",),
        methods=("GET",),
        definition="https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix",
        documentation="Given sourceIdentifier=system|value, the person's other identifiers "
        "(targetIdentifier) and Patients (targetId)",
    ),
    _op(
        "mpi-links",
        mpi_links,
        system=True,
        methods=("GET",),
        documentation="Links of the master patient index (result=probable: the review queue)",
        scope_type="Person",
    ),
    _op(
        "mpi-update-link",
        mpi_update_link,
        system=True,
        methods=("POST",),
        affects_state=True,
        documentation="An operator's decision: patient, person, result=certain|no-match",
        scope_type="Person",
    ),
    _op(
        "mpi-merge",
        mpi_merge,
        type_level=True,
        types=("Person",),
        methods=("POST",),
        affects_state=True,
        documentation="Merge Person source into Person target (nothing is deleted)",
    ),
    _op(
        "mpi-unmerge",
        mpi_unmerge,
        type_level=True,
        types=("Person",),
        methods=("POST",),
        affects_state=True,
        documentation="Undo the last merge of Person source",
    ),
    _op(
        "everything",
        everything,
        instance=True,
        types=("Patient",),
        methods=("GET",),
        definition="http://hl7.org/fhir/OperationDefinition/Patient-everything",
        documentation="The Patient compartment of every Patient linked to the same Person",
        scope_type="*",
    ),
)
