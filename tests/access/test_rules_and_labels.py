"""Access rules as resources write them (Encounter, referral, Consent, guardian), the
security labels added by code, and `vnehr access rebuild|rules`: through the FHIR API in
development mode (the CLI's trusted view) and the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tests.people import lan
from vnehr.app import create_server
from vnehr.cli import main
from vnehr.settings import Settings, SettingsError

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ICD10 = "http://hl7.org/fhir/sid/icd-10"


def _created(client: TestClient, resource: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert isinstance(body, dict)
    return body


def _rules(database_url: str, patient: str) -> list[list[str]]:
    result = CliRunner().invoke(main, ["access", "rules", patient, "--database", database_url])
    assert result.exit_code == 0, result.output
    return [line.split("\t") for line in result.output.splitlines() if "\t" in line]


def test_an_hiv_diagnosis_is_labelled_and_a_cold_is_not(client: TestClient) -> None:
    patient = _created(client, lan())
    subject = {"reference": f"Patient/{patient['id']}"}
    hiv = _created(
        client,
        {
            "resourceType": "Condition",
            "subject": subject,
            "code": {"coding": [{"system": ICD10, "code": "B20.1"}]},
        },
    )
    cold = _created(
        client,
        {
            "resourceType": "Condition",
            "subject": subject,
            "code": {"coding": [{"system": ICD10, "code": "J00"}]},
        },
    )
    assert {"system": ACT, "code": "HIV"} in hiv["meta"]["security"]
    assert "security" not in cold["meta"]
    found = client.get("/fhir/Condition?_security=HIV").json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [hiv["id"]]


def test_encounters_referrals_and_consents_make_rules_and_rebuild_keeps_them(
    client: TestClient, database_url: str
) -> None:
    patient = _created(client, lan())
    pid = patient["id"]
    subject = {"reference": f"Patient/{pid}"}
    encounter = _created(
        client,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": subject,
            "serviceProvider": {"reference": "Organization/org-a"},
            "period": {"start": "2026-11-01T08:00:00+07:00", "end": "2026-11-01T09:00:00+07:00"},
        },
    )
    _created(
        client,
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "authoredOn": "2026-11-02",
            "performer": [{"reference": "Organization/org-b"}],
        },
    )
    _created(
        client,
        {
            "resourceType": "Consent",
            "status": "active",
            "scope": {"coding": [{"code": "patient-privacy"}]},
            "category": [{"text": "Từ chối chia sẻ"}],
            "patient": subject,
            "policyRule": {"coding": [{"system": ACT, "code": "OPTOUT"}]},
            "provision": {
                "type": "deny",
                "actor": [
                    {
                        "role": {"coding": [{"code": "IRCP"}]},
                        "reference": {"reference": "Organization/org-c"},
                    }
                ],
                "provision": [
                    {
                        "type": "permit",
                        "actor": [
                            {
                                "role": {"coding": [{"code": "IRCP"}]},
                                "reference": {"reference": "Organization/org-c"},
                            }
                        ],
                        "securityLabel": [{"system": ACT, "code": "PSY"}],
                        "period": {"end": "2027-02-01"},
                    }
                ],
            },
        },
    )
    rules = _rules(database_url, pid)
    summary = sorted((r[1], r[2], r[3]) for r in rules)
    assert summary == [
        ("care", "Organization/org-a", "*"),
        ("deny", "Organization/org-c", "*"),
        ("permit", "Organization/org-c", "PSY"),
        ("referral", "Organization/org-b", "*"),
    ]
    assert next(r for r in rules if r[1] == "permit")[4].endswith("2027-02-01T23:59")
    # A cancelled encounter opens nothing; rebuild recomputes the same rules.
    cancelled = {**encounter, "status": "cancelled"}
    assert client.put(f"/fhir/Encounter/{encounter['id']}", json=cancelled).status_code == 200
    result = CliRunner().invoke(main, ["access", "rebuild", "--database", database_url])
    assert result.exit_code == 0, result.output
    after = sorted((r[1], r[2], r[3]) for r in _rules(database_url, pid))
    assert after == [s for s in summary if s[0] != "care"]


def test_a_broken_labelling_file_stops_the_server_at_start(
    database_url: str, tmp_path: Path
) -> None:
    broken = tmp_path / "labels.yaml"
    broken.write_text("HIV:\n  - codes: [B20]\n", "utf-8")  # no system
    with pytest.raises(SettingsError, match="VNEHR_ACCESS_LABELS"):
        create_server(Settings(database_url=database_url, access_labels=str(broken)))
