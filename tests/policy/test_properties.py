"""Property test of the leak suite (issue 7): random searches by org-a's hospital system
(a type, a random combination of filters, chains, `_has`, `_include`, `_revinclude`,
`_sort`, `_count`, `_summary=count`, `_total`) find exactly what the policy lets it see,
and never include a record it may not.

The expected answer is computed without vnehr's policy code: the national service (which
the policy does not limit) answers the same filters, and the world's ground truth
(tests/policy/world.py: who owns each record, whose record it is, its labels) keeps what
org-a may see; a chain or a `_has` holds only through records org-a may see too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.policy.world import ACT_CODE, ICD10, PEOPLE, World, ago, entries, pages

TYPES = ("Patient", "Observation", "Condition", "Encounter")
NAMES = ("Lan", "Bình", "Chi", "Dũng", "Hoa", "Huy", "Giang", "Trần", "Nguyễn", "Thị")
OBSERVATION_CODES = ("4548-4", "2339-0", "20447-9", "29463-7")
CONDITION_CODES = (f"{ICD10}|B20", f"{ICD10}|E11", "B20", "E11")
DATES = (f"ge{ago(30)[:10]}", f"lt{ago(100)[:10]}", f"ge{ago(200)[:10]}")
RESULT = frozenset({"_count", "_sort", "_summary", "_total"})
SORTS = {
    "Patient": ("birthdate", "-birthdate", "name", "-_lastUpdated", "gender,-birthdate"),
    "Observation": ("date", "-date", "code", "-_lastUpdated", "subject,date"),
    "Condition": ("onset-date", "-onset-date", "code", "_lastUpdated"),
    "Encounter": ("date", "-date", "service-provider", "_lastUpdated"),
}
INCLUDES = {
    "Patient": ("*", "Patient:link", "Patient:organization"),
    "Observation": ("*", "Observation:subject", "Observation:patient", "Observation:performer"),
    "Condition": ("*", "Condition:subject", "Condition:patient"),
    "Encounter": ("*", "Encounter:subject", "Encounter:diagnosis", "Encounter:service-provider"),
}
REVINCLUDES = {
    "Patient": (
        "Observation:subject",
        "Condition:subject",
        "Encounter:subject",
        "Consent:patient",
        "RelatedPerson:patient",
        "ServiceRequest:subject",
    ),
    "Observation": (),
    "Condition": ("Encounter:diagnosis",),
    "Encounter": ("Observation:encounter",),
}
ITERATES = ("Condition:subject", "Encounter:diagnosis", "Observation:subject", "Patient:link")
# the reference elements the chains and _has of the pool go through
ELEMENTS = {"subject": ("subject",), "patient": ("patient",), "diagnosis": ("diagnosis",)}

PROPERTIES = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def filters(world: World, res_type: str) -> dict[str, st.SearchStrategy[str]]:
    """The filter parameters of `res_type` and their values, drawn from the world."""
    patients = sorted(f.ref for f in world.facts.values() if f.res_type == "Patient")
    cccds = [world.cccd(p) for p in PEOPLE]
    ids = sorted(f.id for f in world.facts.values() if f.res_type == res_type)
    pool: dict[str, st.SearchStrategy[str]] = {
        "_id": st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True).map(",".join),
    }
    if res_type == "Patient":
        pool |= {
            "identifier": st.sampled_from(cccds),
            "name": st.sampled_from(NAMES),
            "gender": st.sampled_from(("male", "female")),
            "birthdate": st.sampled_from(("lt2000", "ge2000", "ge1980-01-01")),
            "_has:Observation:subject:code": st.sampled_from(OBSERVATION_CODES),
            "_has:Condition:subject:code": st.sampled_from(CONDITION_CODES),
            "_has:Encounter:subject:service-provider": st.sampled_from(
                ("Organization/org-a", "Organization/org-b")
            ),
            "_has:Consent:patient:status": st.just("active"),
            "_has:RelatedPerson:patient:relationship": st.sampled_from(("PRN", "GUARD")),
        }
    else:
        pool |= {
            "subject": st.sampled_from(patients),
            "patient": st.sampled_from(patients),
            "subject:Patient.identifier": st.sampled_from(cccds),
            "subject:Patient.name": st.sampled_from(NAMES),
        }
    if res_type == "Observation":
        pool |= {
            "code": st.sampled_from(OBSERVATION_CODES),
            "performer": st.sampled_from(("Organization/org-a", "Organization/org-b")),
            "date": st.sampled_from(DATES),
            "_security": st.just(f"{ACT_CODE}|HIV"),
        }
    if res_type == "Condition":
        pool |= {
            "code": st.sampled_from(CONDITION_CODES),
            "_security": st.just(f"{ACT_CODE}|HIV"),
        }
    if res_type == "Encounter":
        pool |= {
            "service-provider": st.sampled_from(("Organization/org-a", "Organization/org-b")),
            "date": st.sampled_from(DATES),
            "diagnosis:Condition.code": st.sampled_from(CONDITION_CODES),
        }
    return pool


def draw_query(data: st.DataObject, world: World) -> tuple[str, list[tuple[str, str]]]:
    res_type = data.draw(st.sampled_from(TYPES), label="type")
    pool = filters(world, res_type)
    names = data.draw(
        st.lists(st.sampled_from(sorted(pool)), max_size=3, unique=True), label="filters"
    )
    params = [(name, data.draw(pool[name], label=name)) for name in names]
    if data.draw(st.booleans(), label="include?"):
        params.append(("_include", data.draw(st.sampled_from(INCLUDES[res_type]))))
    if REVINCLUDES[res_type] and data.draw(st.booleans(), label="revinclude?"):
        params.append(("_revinclude", data.draw(st.sampled_from(REVINCLUDES[res_type]))))
    if data.draw(st.integers(0, 3), label="iterate?") == 0:
        params.append(("_include:iterate", data.draw(st.sampled_from(ITERATES))))
    if data.draw(st.booleans(), label="sort?"):
        params.append(("_sort", data.draw(st.sampled_from(SORTS[res_type]))))
    if data.draw(st.integers(0, 3), label="count?") == 0:
        params.append(("_summary", "count"))
    else:
        params.append(("_count", str(data.draw(st.sampled_from((1, 2, 3, 100))))))
        if data.draw(st.booleans(), label="total?"):
            params.append(("_total", "accurate"))
    return res_type, params


def national_found(world: World, api: TestClient, url: str) -> dict[str, dict[str, Any]]:
    """`Type/id` -> resource of every match of `url`, as the national service finds them."""
    found: dict[str, dict[str, Any]] = {}
    for bundle in pages(api, url, world.national):
        for entry in bundle.get("entry") or []:
            resource = entry["resource"]
            if (entry.get("search") or {}).get("mode") == "match":
                found[f"{resource['resourceType']}/{resource['id']}"] = resource
    return found


def targets(resource: dict[str, Any], element: str) -> set[str]:
    """The references of one of the pool's reference elements."""
    values = resource.get(element)
    if element == "diagnosis":
        values = [d.get("condition") for d in values or []]
    if isinstance(values, dict):
        values = [values]
    return {v["reference"] for v in values or [] if isinstance(v, dict) and "reference" in v}


def seen_by_org_a(world: World, ref: str) -> bool:
    fact = world.fact_of(ref)
    assert fact is not None, f"{ref} is not a record of the world"
    return world.visible(fact)


def expected_matches(
    world: World, api: TestClient, res_type: str, params: list[tuple[str, str]]
) -> set[str]:
    """What org-a's search should match: the national answer to the same filters, kept to
    what org-a may see, each chain and `_has` holding through records it may see."""
    filters_ = [(n, v) for n, v in params if n not in RESULT and not n.startswith("_include")]
    filters_ = [(n, v) for n, v in filters_ if not n.startswith("_revinclude")]
    found = national_found(
        world, api, f"/fhir/{res_type}?{urlencode([*filters_, ('_count', '100')])}"
    )
    kept = {ref: r for ref, r in found.items() if seen_by_org_a(world, ref)}
    for name, value in filters_:
        if name.startswith("_has:"):  # _has:Type:reference:parameter
            _, inner, element, parameter = name.split(":")
            through = national_found(
                world, api, f"/fhir/{inner}?{urlencode([(parameter, value), ('_count', '100')])}"
            )
            allowed = {
                target
                for ref, resource in through.items()
                if seen_by_org_a(world, ref)
                for target in targets(resource, element)
            }
            kept = {ref: r for ref, r in kept.items() if ref in allowed}
        elif "." in name:  # reference:Type.parameter
            element, chain = name.split(":", 1)
            inner, parameter = chain.split(".", 1)
            through = national_found(
                world, api, f"/fhir/{inner}?{urlencode([(parameter, value), ('_count', '100')])}"
            )
            allowed = {ref for ref in through if seen_by_org_a(world, ref)}
            kept = {r: x for r, x in kept.items() if targets(x, ELEMENTS[element][0]) & allowed}
    return set(kept)


@PROPERTIES
@given(data=st.data())
def test_random_searches_by_org_a_return_nothing_the_policy_forbids(
    world: World, api: TestClient, data: st.DataObject
) -> None:
    res_type, params = draw_query(data, world)
    url = f"/fhir/{res_type}?{urlencode(params)}"
    expected = expected_matches(world, api, res_type, params)
    event(f"{res_type}: {'some' if expected else 'no'} matches expected")
    hidden = world.hidden_refs()
    if ("_summary", "count") in params:
        answer = api.get(url, headers=world.org_a)
        assert answer.status_code == 200, (url, answer.text)
        bundle = answer.json()
        assert entries(bundle) == ([], []), url
        assert bundle["total"] == len(expected), url
        return
    per_page = int(dict(params)["_count"])
    matches: list[str] = []
    includes: set[str] = set()
    for bundle in pages(world.client, url, world.org_a):
        found, extra = entries(bundle)
        assert len(found) <= per_page, url
        if ("_total", "accurate") in params:
            assert bundle["total"] == len(expected), url
        matches += found
        includes |= set(extra)
        for entry in bundle.get("entry") or []:  # the index's golden records, if included
            resource = entry["resource"]
            if resource["resourceType"] == "Person":
                links = {x["target"]["reference"] for x in resource.get("link") or []}
                assert not links & hidden, (url, links & hidden)
    assert len(matches) == len(set(matches)), (url, matches)
    assert set(matches) == expected, url
    leaked = {ref for ref in includes if not ref.startswith("Person/")}
    leaked = {ref for ref in leaked if not seen_by_org_a(world, ref)}
    assert leaked == set(), url
