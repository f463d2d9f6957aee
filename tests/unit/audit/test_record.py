"""Audit records as IHE BALP AuditEvents: one per patient, the codes BALP gives, the flags."""

from __future__ import annotations

import base64
import json
from typing import Any

from vnehr.audit.record import Row, Touched, Who, rest_rows, security_row

DOCTOR = Who(
    agent="Practitioner/duc",
    user={"reference": "Practitioner/duc"},
    client="his-bachmai",
    facility="org-a",
    role="clinical",
    purpose="TREAT",
    address="10.1.2.3",
)
NOW = 1_790_000_000_000_000


def events(rows: list[Row]) -> list[dict[str, Any]]:
    return [json.loads(row.content) for row in rows]


def entity_roles(event: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["role"]["code"], e.get("what", {}).get("reference")) for e in event["entity"]]


def test_a_read_is_a_balp_patient_read_with_the_patient_and_the_resource() -> None:
    rows = rest_rows(
        code="read",
        who=DOCTOR,
        recorded=NOW,
        outcome=0,
        touched=[Touched("Observation/1/_history/2", frozenset({"lan"}))],
        base_url="https://ehr.example.vn/fhir",
        query_like=False,
    )
    assert [(r.kind, r.patient, r.agent, r.facility, r.role, r.purpose) for r in rows] == [
        ("read", "lan", "Practitioner/duc", "org-a", "clinical", "TREAT")
    ]
    (event,) = events(rows)
    assert event["meta"]["profile"] == [
        "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
    ]
    assert event["type"]["code"] == "rest"
    assert event["subtype"][0] == {
        "system": "http://hl7.org/fhir/restful-interaction",
        "code": "read",
        "display": "read",
    }
    assert (event["action"], event["outcome"]) == ("R", "0")
    assert entity_roles(event) == [("1", "Patient/lan"), ("4", "Observation/1/_history/2")]
    agents = {a["type"]["coding"][0]["code"]: a for a in event["agent"]}
    assert agents["IRCP"]["who"] == {"reference": "Practitioner/duc"}
    assert agents["IRCP"]["requestor"] is True
    assert agents["110153"]["network"] == {"address": "10.1.2.3", "type": "2"}
    assert agents["PROV"]["who"] == {"reference": "Organization/org-a"}
    assert "110152" in agents


def test_a_search_is_one_query_record_per_patient_found() -> None:
    rows = rest_rows(
        code="search-type",
        who=DOCTOR,
        recorded=NOW,
        outcome=0,
        touched=[
            Touched("Observation/1", frozenset({"lan"})),
            Touched("Observation/2", frozenset({"duc"})),
            Touched("Organization/org-a", frozenset()),
        ],
        base_url="",
        query_like=True,
        query="Observation?code=4548-4",
    )
    assert [r.patient for r in rows] == ["duc", "lan"]
    for event in events(rows):
        assert event["action"] == "E"
        roles = entity_roles(event)
        assert [code for code, _ in roles] == ["1", "24"]  # the patient, the query: no data
        query = event["entity"][1]
        assert base64.b64decode(query["query"]).decode() == "Observation?code=4548-4"


def test_a_search_that_found_no_patient_is_one_record_without_one() -> None:
    rows = rest_rows(
        code="search-type",
        who=DOCTOR,
        recorded=NOW,
        outcome=0,
        touched=[Touched("Organization/org-a", frozenset())],
        base_url="",
        query_like=True,
        query="Organization",
    )
    assert [r.patient for r in rows] == [None]
    assert events(rows)[0]["meta"]["profile"][0].endswith(".Query")


def test_a_write_of_several_patients_resources_is_split_by_patient() -> None:
    rows = rest_rows(
        code="transaction",
        who=DOCTOR,
        recorded=NOW,
        outcome=0,
        touched=[
            Touched("Patient/lan/_history/1", frozenset({"lan"})),
            Touched("Observation/1/_history/1", frozenset({"lan"})),
            Touched("Observation/2/_history/1", frozenset({"duc"})),
            Touched("Organization/org-a/_history/1", frozenset()),
        ],
        base_url="",
        query_like=False,
    )
    by_patient = {r.patient: entity_roles(json.loads(r.content)) for r in rows}
    assert by_patient == {
        "duc": [("1", "Patient/duc"), ("4", "Observation/2/_history/1")],
        "lan": [
            ("1", "Patient/lan"),
            ("4", "Patient/lan/_history/1"),
            ("4", "Observation/1/_history/1"),
        ],
        None: [("4", "Organization/org-a/_history/1")],
    }
    assert len({r.id for r in rows}) == 3


def test_an_access_under_break_the_glass_is_flagged_with_emergency_treatment() -> None:
    rows = rest_rows(
        code="read",
        who=DOCTOR,
        recorded=NOW,
        outcome=0,
        touched=[
            Touched("Patient/lan", frozenset({"lan"})),
            Touched("Patient/duc", frozenset({"duc"})),
        ],
        base_url="",
        query_like=False,
        glass={"lan": NOW + 60_000_000, "duc": NOW - 1},  # Đức's access has ended
    )
    flagged = {r.patient: (r.break_glass, r.purpose) for r in rows}
    assert flagged == {"lan": (1, "ETREAT"), "duc": (0, "TREAT")}
    lan = next(e for e in events(rows) if e["entity"][0]["what"]["reference"] == "Patient/lan")
    assert lan["meta"]["tag"] == [
        {
            "system": "https://vnehr.org/fhir/CodeSystem/audit-flag",
            "code": "break-the-glass",
            "display": "Break-the-glass access",
        }
    ]
    assert lan["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"


def test_a_refusal_is_a_minor_failure_with_its_reason_and_no_balp_profile() -> None:
    (row,) = rest_rows(
        code="read",
        who=DOCTOR,
        recorded=NOW,
        outcome=4,
        touched=[Touched("Observation/9", frozenset())],
        base_url="",
        query_like=False,
        failure="Observation/9 is not known",
    )
    event = json.loads(row.content)
    assert (row.outcome, event["outcome"], event["outcomeDesc"]) == (
        4,
        "4",
        "Observation/9 is not known",
    )
    assert "profile" not in event["meta"]


def test_a_backend_system_is_the_requesting_agent_with_its_role() -> None:
    system = Who("his-a", None, "his-a", "org-a", "clinical", "TREAT", None)
    (row,) = rest_rows(
        code="create",
        who=system,
        recorded=NOW,
        outcome=0,
        touched=[Touched("Observation/1/_history/1", frozenset({"lan"}))],
        base_url="",
        query_like=False,
    )
    event = json.loads(row.content)
    client = event["agent"][0]
    assert client["type"]["coding"][0]["code"] == "110153"
    assert client["requestor"] is True
    assert client["who"] == {
        "identifier": {"system": "https://vnehr.org/fhir/sid/client", "value": "his-a"}
    }
    assert client["role"][0]["coding"][0]["code"] == "clinical"
    assert event["action"] == "C"


def test_security_events_follow_dicom_user_authentication() -> None:
    login = security_row(
        kind="login",
        success=False,
        recorded=NOW,
        event_number=7,
        client_id="app-1",
        account_id="acc-lan",
        facility=None,
        address="203.0.113.9",
        detail={"reason": "password", "empty": None},
    )
    event = json.loads(login.content)
    assert event["type"]["code"] == "110114"
    assert [c["code"] for c in event["subtype"]] == ["110122", "login"]
    assert (login.outcome, event["outcomeDesc"]) == (4, "password")
    assert event["entity"][0]["what"]["identifier"]["value"] == "7"
    assert event["entity"][0]["detail"] == [{"type": "reason", "valueString": "password"}]
    denied = security_row(
        kind="request",
        success=False,
        recorded=NOW,
        event_number=8,
        client_id="his-b",
        account_id="his-b",
        facility="org-b",
        address=None,
        detail={"reason": "forbidden", "path": "Observation"},
    )
    assert denied.kind == "access-denied"
    assert json.loads(denied.content)["type"]["code"] == "110113"
    token = security_row(
        kind="token",
        success=True,
        recorded=NOW,
        event_number=9,
        client_id="his-b",
        account_id=None,
        facility="org-b",
        address=None,
        detail={"grant_type": "client_credentials"},
    )
    assert json.loads(token.content)["subtype"][0]["code"] == "ITI-71"
    assert token.outcome == 0
