"""Who reads which audit records: a citizen their own access log ("who viewed my record"), a
facility its own accesses, operators and national services everything, no one else anything."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.audit.conftest import agent, entities, flushed, subtype
from tests.people import CCCD
from tests.smart import (
    backend_token,
    bearer,
    citizen_code,
    exchange,
    register_backend,
    system_token,
)


def token(api: TestClient, scope: str, facility: str | None) -> dict[str, str]:
    client_id, private = register_backend(api, scope=scope, facility=facility)
    response = backend_token(api, client_id, private, scope)
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def citizen(api: TestClient, people: dict[str, Any]) -> dict[str, str]:
    """Nguyễn Thị Lan, signed in to her health app."""
    client_id, code, verifier = citizen_code(
        api, people, "openid fhirUser launch/patient patient/*.rs"
    )
    answer = exchange(api, client_id, code, verifier)
    assert answer.status_code == 200, answer.text
    return bearer(answer.json()["access_token"])


def events(api: TestClient, headers: dict[str, str], **query: str) -> list[dict[str, Any]]:
    flushed(api)
    response = api.get("/fhir/AuditEvent", params={"_count": "1000", **query}, headers=headers)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])]


def patients_of(found: list[dict[str, Any]]) -> set[str]:
    return {ref for event in found for ref in entities(event, "1")}


def test_a_citizen_sees_who_viewed_her_record_and_when_and_why(
    api: TestClient, people: dict[str, Any]
) -> None:
    bachmai = token(api, "system/*.rs", "org-b")
    api.get(f"/fhir/Patient/{people['lan']}", headers=bachmai)
    # Whatever the policy lets Bạch Mai find, asking about her is in her log.
    api.get("/fhir/Observation", params={"subject": f"Patient/{people['lan']}"}, headers=bachmai)
    national = token(api, "system/*.rs vnehr/national", None)
    api.get("/fhir/Observation", params={"subject": f"Patient/{people['lan']}"}, headers=national)
    lan = citizen(api, people)
    found = events(api, lan, patient=f"Patient/{people['lan']}")
    assert patients_of(found) == {f"Patient/{people['lan']}"}
    by_org_b = [
        e
        for e in found
        if any(a["who"].get("reference") == "Organization/org-b" for a in e["agent"])
    ]
    assert sorted(subtype(e) for e in by_org_b) == ["read", "search-type"]
    read = next(e for e in by_org_b if subtype(e) == "read")
    assert agent(read, "110153")["role"][0]["coding"][0]["code"] == "clinical"
    assert read["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
    assert read["recorded"].endswith("Z")
    assert "tag" not in read["meta"]  # not break-the-glass
    search = next(
        e
        for e in found
        if subtype(e) == "search-type"
        and agent(e, "110153")["role"][0]["coding"][0]["code"] == "national"
    )
    assert search["purposeOfEvent"][0]["coding"][0]["code"] == "HOPERAT"
    query = next(x for x in search["entity"] if x["role"]["code"] == "24")
    assert "query" not in query and "description" not in query  # may name other people
    # the creations by facility org-a's system are hers too
    assert any(subtype(e) == "create" for e in found)


def test_a_citizen_sees_nothing_about_anyone_else(api: TestClient, people: dict[str, Any]) -> None:
    lan = citizen(api, people)
    everything = events(api, lan)
    assert everything and patients_of(everything) == {f"Patient/{people['lan']}"}
    assert events(api, lan, patient=people["other"]) == []
    operator = token(api, "system/*.rs vnehr/admin", None)
    about_other = events(api, operator, patient=people["other"])
    assert about_other
    hidden = api.get(f"/fhir/AuditEvent/{about_other[0]['id']}", headers=lan)
    assert hidden.status_code == 404
    mine = api.get(f"/fhir/AuditEvent/{everything[0]['id']}", headers=lan)
    assert mine.status_code == 200
    compartment = api.get(f"/fhir/Patient/{people['other']}/AuditEvent", headers=lan)
    assert compartment.json().get("entry") is None


def test_reading_her_log_is_itself_in_her_log(api: TestClient, people: dict[str, Any]) -> None:
    lan = citizen(api, people)
    events(api, lan)
    own = [
        e
        for e in events(api, lan, subtype="search-type")
        if agent(e, "IRCP")["who"] == {"reference": f"Patient/{people['lan']}"}
    ]
    assert own
    assert own[0]["purposeOfEvent"][0]["coding"][0]["code"] == "PATRQT"
    assert agent(own[0], "IRCP")["role"][0]["coding"][0]["code"] == "citizen"


def test_a_facility_sees_its_own_accesses_only(api: TestClient, people: dict[str, Any]) -> None:
    org_a = token(api, "system/*.rs", "org-a")
    org_b = token(api, "system/*.rs", "org-b")
    api.get(f"/fhir/Patient/{people['lan']}", headers=org_b)
    seen_by_b = events(api, org_b)
    facilities = {
        a["who"]["reference"] for e in seen_by_b for a in e["agent"] if "reference" in a["who"]
    }
    assert facilities == {"Organization/org-b"}
    assert {subtype(e) for e in seen_by_b} >= {"read"}
    seen_by_a = events(api, org_a)
    assert {subtype(e) for e in seen_by_a} >= {"create"}  # seed_people's writes
    assert all(
        any(a["who"].get("reference") == "Organization/org-a" for a in e["agent"])
        for e in seen_by_a
    )


def test_operators_with_admin_and_national_services_see_everything(
    api: TestClient, people: dict[str, Any]
) -> None:
    org_b = token(api, "system/*.rs", "org-b")
    api.get(f"/fhir/Patient/{people['other']}", headers=org_b)
    operator = token(api, "system/*.rs vnehr/admin", None)
    national = token(api, "system/*.rs vnehr/national", None)
    for headers in (operator, national):
        found = events(api, headers)
        assert patients_of(found) >= {f"Patient/{people['lan']}", f"Patient/{people['other']}"}
        assert {"token", "create", "read"} <= {subtype(e) for e in found} | {
            c["code"] for e in found for c in e["subtype"]
        }


@pytest.mark.parametrize(
    ("scope", "facility"),
    [
        ("system/*.rs", None),  # an operator without vnehr/admin
        ("system/*.rs vnehr/public-health", None),
        ("system/Observation.rs", "org-a"),  # no scope on AuditEvent
    ],
)
def test_everyone_else_is_refused(
    api: TestClient, people: dict[str, Any], scope: str, facility: str | None
) -> None:
    headers = token(api, scope, facility)
    answer = api.get("/fhir/AuditEvent", headers=headers)
    assert answer.status_code == 403
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert api.get("/fhir/AuditEvent/anything", headers=headers).status_code == 403


def test_break_the_glass_is_flagged_in_the_citizens_log(
    api: TestClient, people: dict[str, Any]
) -> None:
    org_b = token(api, "system/*.rs", "org-b")
    api.get(f"/fhir/Patient/{people['lan']}", headers=org_b)  # before: not flagged
    reason = {
        "resourceType": "Parameters",
        "parameter": [{"name": "reason", "valueString": "Bệnh nhân hôn mê, cấp cứu"}],
    }
    opened = api.post(f"/fhir/Patient/{people['lan']}/$break-glass", json=reason, headers=org_b)
    assert opened.status_code == 200, opened.text
    assert api.get(f"/fhir/Patient/{people['lan']}", headers=org_b).status_code == 200
    lan = citizen(api, people)
    by_org_b = [
        e
        for e in events(api, lan)
        if any(a["who"].get("reference") == "Organization/org-b" for a in e["agent"])
    ]
    flagged = [e for e in by_org_b if e["meta"].get("tag")]
    assert sorted(subtype(e) for e in flagged) == ["operation", "read"]
    for event in flagged:
        assert event["meta"]["tag"][0]["code"] == "break-the-glass"
        assert event["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
    assert len(by_org_b) == 3  # the read before was not flagged


def test_the_audit_trail_is_read_only_for_every_token(
    api: TestClient, people: dict[str, Any]
) -> None:
    national = token(api, "system/*.cruds vnehr/national", None)
    answer = api.post("/fhir/AuditEvent", json={"resourceType": "AuditEvent"}, headers=national)
    assert answer.status_code == 405
    assert api.delete("/fhir/AuditEvent/x", headers=national).status_code == 405


def test_a_guardian_sees_who_viewed_her_wards_record(
    api: TestClient, people: dict[str, Any]
) -> None:
    writer = bearer(system_token(api))
    role = {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "GUARD"}
    guardian = {
        "resourceType": "RelatedPerson",
        "patient": {"reference": f"Patient/{people['other']}"},
        "relationship": [{"coding": [role]}],
        "identifier": [{"system": CCCD, "value": people["cccd"]}],
    }
    assert api.post("/fhir/RelatedPerson", json=guardian, headers=writer).status_code == 201
    bachmai = token(api, "system/*.rs", "org-b")
    assert api.get(f"/fhir/Patient/{people['other']}", headers=bachmai).status_code in (200, 404)
    lan = citizen(api, people)
    found = events(api, lan, patient=f"Patient/{people['other']}")
    assert patients_of(found) == {f"Patient/{people['other']}"}
    assert any(
        subtype(e) == "read"
        and any(a["who"].get("reference") == "Organization/org-b" for a in e["agent"])
        for e in found
    )
    assert {f"Patient/{people['lan']}", f"Patient/{people['other']}"} <= patients_of(
        events(api, lan)
    )
