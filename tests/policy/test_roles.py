"""The leak suite (issue 7) for the other roles and the policy's switches: a citizen across
facilities, a guardian, break-the-glass, public health, an operator's backend, opt-in
sharing; and the leaks this suite found that need the world changed (they come last: they
write)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.policy.world import (
    CLINICAL,
    GLUCOSE,
    HIV_LOAD,
    ICD10,
    PASSWORD,
    PEOPLE,
    Fact,
    World,
    ago,
    backend_headers,
    citizen_account,
    observation,
    patient,
    search,
    shape,
    unknown_id,
)
from tests.smart import bearer, exchange, register_app, server_of, sign_in
from vnehr.app import create_app
from vnehr.auth.outbox import Outbox
from vnehr.settings import Settings

REASON = "Bệnh nhân hôn mê, nhập cấp cứu, cần tiền sử bệnh"


@pytest.fixture(scope="module")
def citizens(world: World, api: TestClient) -> dict[str, dict[str, str]]:
    """Bearer headers of Lan (account on her org-a Patient) and Bình (Huy's father)."""
    citizen_account(world, "lan", "lanA")
    citizen_account(world, "binh", "binhB")
    app, _ = register_app(api)
    out = {}
    for person in ("lan", "binh"):
        code, verifier = sign_in(
            api,
            app,
            username=PEOPLE[person][4],
            password=PASSWORD,
            scope="launch/patient patient/*.rs",
        )
        token = exchange(api, app, code, verifier)
        assert token.status_code == 200, token.text
        out[person] = bearer(token.json()["access_token"])
    return out


def refs(world: World, *keys: str) -> set[str]:
    return {world.ref(k) for k in keys}


def reads_like_unknown(world: World, headers: dict[str, str], key: str) -> bool:
    fact, unknown = world.facts[key], unknown_id()
    answer = world.client.get(f"/fhir/{fact.ref}", headers=headers)
    nothing = world.client.get(f"/fhir/{fact.res_type}/{unknown}", headers=headers)
    return nothing.status_code == 404 and shape(answer, fact.id) == shape(nothing, unknown)


# -- citizens and guardians


def test_a_citizen_sees_her_record_at_both_facilities_and_nothing_else(
    world: World, api: TestClient, citizens: dict[str, dict[str, str]]
) -> None:
    lan = citizens["lan"]
    for res_type in sorted(CLINICAL):
        expected = world.person_refs({"lan"}, res_type)
        assert search(api, f"/fhir/{res_type}?_count=100", lan)[0] == expected, res_type
        count = api.get(f"/fhir/{res_type}?_summary=count", headers=lan).json()["total"]
        assert count == len(expected), res_type
    assert refs(world, "lanA", "lanB", "obsLanB") <= world.person_refs({"lan"})
    for fact in world.facts.values():
        if fact.res_type in CLINICAL and "lan" not in fact.persons:
            assert reads_like_unknown(world, lan, fact.key), fact.key
    assert api.get(f"/fhir/{world.ref('obsLanB')}", headers=lan).status_code == 200
    matches, includes = search(api, f"/fhir/Patient/{world.id('lanB')}/$everything", lan)
    found = {m for m in matches | includes if not m.startswith("Person/")}
    assert found == world.person_refs({"lan"})
    has = search(api, "/fhir/Patient?_has:Observation:subject:code=4548-4", lan)[0]
    assert has == refs(world, "lanB")
    chain = f"/fhir/Observation?subject:Patient.identifier={world.cccd('binh')}"
    assert search(api, chain, lan)[0] == set()
    matches, includes = search(api, "/fhir/Observation?_include=*", lan)
    assert includes - {"Organization/org-a", "Organization/org-b"} <= world.person_refs({"lan"})


def test_a_guardian_sees_the_child_record(
    world: World, api: TestClient, citizens: dict[str, dict[str, str]]
) -> None:
    father = citizens["binh"]
    for res_type in ("Patient", "Observation", "RelatedPerson", "Encounter", "Condition"):
        expected = world.person_refs({"binh", "huy"}, res_type)
        assert search(api, f"/fhir/{res_type}?_count=100", father)[0] == expected, res_type
    assert refs(world, "huyB", "obsHuyB", "guardianHuyB") <= world.person_refs({"huy"})
    child = api.get(f"/fhir/{world.ref('huyB')}", headers=father)
    assert child.status_code == 200 and child.json()["birthDate"] == PEOPLE["huy"][3]
    matches, _ = search(api, f"/fhir/Patient/{world.id('huyB')}/$everything", father)
    assert {m for m in matches if not m.startswith("Person/")} == world.person_refs({"huy"})
    for key in ("lanA", "obsLanB", "hoaB", "hivDungB"):
        assert reads_like_unknown(world, father, key), key
    # the child's record is not the mother's: Lan is no guardian of Huy
    assert reads_like_unknown(world, citizens["lan"], "huyB")


# -- break-the-glass


def glass(world: World, headers: dict[str, str], patient_id: str, reason: str = REASON) -> Any:
    body = {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": reason}]}
    return world.client.post(f"/fhir/Patient/{patient_id}/$break-glass", json=body, headers=headers)


def test_break_the_glass_opens_a_hidden_patient_and_tells_her_by_sms(
    world: World, api: TestClient, citizens: dict[str, dict[str, str]]
) -> None:
    giang = world.id("giangB")
    outbox = Outbox(server_of(api).store)
    before = len(outbox.all())
    assert reads_like_unknown(world, world.org_a, "giangB")
    assert glass(world, world.org_a, giang, "cấp cứu").status_code == 400  # reason too short
    assert glass(world, citizens["lan"], giang).status_code == 403
    public_health = backend_headers(api, None, "system/*.rs vnehr/public-health")
    assert glass(world, public_health, giang).status_code == 403
    assert glass(world, world.org_a, unknown_id()).status_code == 404
    assert reads_like_unknown(world, world.org_a, "giangB")
    assert len(outbox.all()) == before
    answer = glass(world, world.org_a, giang)
    assert answer.status_code == 200, answer.text
    given = {p["name"]: p for p in answer.json()["parameter"]}
    assert given["patient"]["valueReference"]["reference"] == world.ref("giangB")
    assert given["notified"]["valueBoolean"] is True
    world.broken.add("giang")
    assert api.get(f"/fhir/{world.ref('giangB')}", headers=world.org_a).status_code == 200
    found = search(api, f"/fhir/Observation?subject={world.ref('giangB')}", world.org_a)[0]
    assert found == refs(world, "hivLoadGiangB", "obsGiangB")  # labels included
    for res_type in ("Patient", "Observation"):
        expected = world.visible_refs(res_type)
        assert search(api, f"/fhir/{res_type}?_count=100", world.org_a)[0] == expected
    assert reads_like_unknown(world, world.org_a, "binhB")  # nobody else
    sms = outbox.all()[before:]
    assert [(m.channel, m.recipient) for m in sms] == [("sms", "0912345678")]
    assert "org-a" in sms[0].body
    # org-a's glass is org-a's: an operator's backend still sees nothing of Giang
    operator = backend_headers(api, None, "system/*.rs")
    assert reads_like_unknown(world, operator, "giangB")


def test_the_break_the_glass_sms_is_written_without_diacritics(
    world: World, api: TestClient
) -> None:
    before = len(Outbox(server_of(api).store).all())
    assert glass(world, world.org_a, world.id("giangB")).status_code == 200
    world.broken.add("giang")
    (sms,) = Outbox(server_of(api).store).all()[before:]
    assert sms.body.isascii(), sms.body


# -- public health, operators


def test_public_health_counts_only_and_never_below_five(world: World, api: TestClient) -> None:
    ph = backend_headers(api, None, "system/*.rs vnehr/public-health")
    queries = [
        "Observation?_summary=count",
        "Observation?code=4548-4&_summary=count",
        "Patient?gender=female&_summary=count",
        f"Condition?code={ICD10}|B20&_summary=count",
        "Encounter?service-provider=Organization/org-a&_summary=count",
        "Condition?_summary=count&_total=accurate",
    ]
    shown = suppressed = 0
    for query in queries:
        everyone = api.get(f"/fhir/{query}", headers=world.national).json()["total"]
        answer = api.get(f"/fhir/{query}", headers=ph)
        assert answer.status_code == 200, (query, answer.text)
        bundle = answer.json()
        kinds = {e["resource"]["resourceType"] for e in bundle.get("entry") or []}
        assert kinds <= {"OperationOutcome"}, query
        if everyone >= 5:
            assert bundle["total"] == everyone, query
            shown += 1
        else:
            assert "total" not in bundle, query
            assert kinds == {"OperationOutcome"}, query
            suppressed += 1
    assert shown >= 2 and suppressed >= 2
    refused = [
        "Observation",
        "Observation?_total=accurate",
        f"Observation/{world.id('obsLanB')}",
        f"Patient?identifier={world.cccd('lan')}&_summary=count",
        f"Observation?subject={world.ref('lanB')}&_summary=count",
        "Observation?subject:Patient.name=Lan&_summary=count",
        "Patient?_has:Condition:subject:code=B20&_summary=count",
        "Observation?_summary=count&_include=Observation:subject",
        f"Patient/{world.id('lanB')}/Observation?_summary=count",
        f"Patient/{world.id('lanB')}/$everything",
    ]
    for query in refused:
        assert api.get(f"/fhir/{query}", headers=ph).status_code == 403, query
    body = observation(world.ref("lanB"), "org-b", "PH-1", GLUCOSE, 5.0, "mmol/L", ago(20))
    assert api.post("/fhir/Observation", json=body, headers=ph).status_code == 403


def test_an_operator_backend_reads_registries_not_patient_data(
    world: World, api: TestClient
) -> None:
    operator = backend_headers(api, None, "system/*.cruds")
    for res_type in ("Patient", "Observation", "Condition", "Encounter", "Consent"):
        answer = api.get(f"/fhir/{res_type}?_summary=count", headers=operator)
        assert answer.json()["total"] == 0, res_type
        assert search(api, f"/fhir/{res_type}?_count=100", operator) == (set(), set())
    for key in ("obsLanB", "lanA", "hoaB", "hivDungB", "referralHoaB"):
        assert reads_like_unknown(world, operator, key), key
    has = "/fhir/Organization?_has:Observation:performer:code=4548-4"
    assert search(api, has, operator)[0] == set()
    organization = api.get("/fhir/Organization/org-a", headers=operator)
    assert organization.status_code == 200
    assert organization.json()["name"] == "Bệnh viện Bạch Mai"
    body = observation(world.ref("lanB"), "org-b", "OP-1", GLUCOSE, 5.0, "mmol/L", ago(20))
    assert api.post("/fhir/Observation", json=body, headers=operator).status_code == 403


# -- opt-in sharing


@pytest.fixture(scope="module")
def opt_in(world_settings: Settings) -> Iterator[TestClient]:
    """The same database served with `access_sharing=opt-in`."""
    app = create_app(world_settings.with_(access_sharing="opt-in"))
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def test_opt_in_closes_what_care_alone_opened(
    world: World, api: TestClient, opt_in: TestClient
) -> None:
    closed = world.visible_refs() - world.visible_refs(opt_in=True)
    assert refs(world, "lanB", "obsLanB", "dungB", "dmDungB", "encDungB") <= closed
    assert world.ref("referralHoaB") not in closed  # a referral still opens
    for res_type in sorted(CLINICAL):
        expected = world.visible_refs(res_type, opt_in=True)
        assert search(opt_in, f"/fhir/{res_type}?_count=100", world.org_a)[0] == expected
        count = opt_in.get(f"/fhir/{res_type}?_summary=count", headers=world.org_a)
        assert count.json()["total"] == len(expected), res_type
        # the same database, opt-out: care opens them again
        assert search(api, f"/fhir/{res_type}?_count=100", world.org_a)[0] == (
            world.visible_refs(res_type)
        )
    answer = opt_in.get(f"/fhir/{world.ref('lanB')}", headers=world.org_a)
    unknown = unknown_id()
    nothing = opt_in.get(f"/fhir/Patient/{unknown}", headers=world.org_a)
    assert shape(answer, world.id("lanB")) == shape(nothing, unknown)
    matches, _ = search(opt_in, f"/fhir/Patient/{world.id('lanA')}/$everything", world.org_a)
    assert {m for m in matches if not m.startswith("Person/")} == refs(
        world, "lanA", "encLanA", "obsLanA"
    )
    has = "/fhir/Patient?_has:Observation:subject:code=4548-4"
    assert search(opt_in, has, world.org_a)[0] == refs(world, "hoaB")


# -- leaks found by this suite that need the world changed


def test_registering_a_patient_does_not_reveal_their_other_records_in_the_audit_trail(
    world: World, api: TestClient
) -> None:
    world.write("binhA", world.org_a, patient("binh", "org-a", "BM-BINH"), "org-a", ("binh",))
    answer = api.get("/fhir/AuditEvent?_count=1000", headers=world.org_a)
    assert answer.status_code == 200, answer.text
    named: set[str] = set()
    for entry in answer.json().get("entry") or []:
        # The writes' records (a read names the id the caller asked for, known or not).
        if entry["resource"]["subtype"][0]["code"] not in ("create", "update", "transaction"):
            continue
        for entity in entry["resource"].get("entity") or []:
            reference = (entity.get("what") or {}).get("reference") or ""
            named.add(reference.split("/_history")[0])
    assert world.ref("binhA") in named  # the create itself is there
    assert named & world.hidden_refs() == set()


def test_history_does_not_show_versions_about_a_hidden_patient(
    world: World, api: TestClient
) -> None:
    body = observation(world.ref("binhB"), "org-b", "CR-XN-0200", GLUCOSE, 11.2, "mmol/L", ago(2))
    created = api.post("/fhir/Observation", json=body, headers=world.org_b)
    assert created.status_code == 201, created.text
    obs_id = created.json()["id"]
    moved = {**body, "id": obs_id, "subject": {"reference": world.ref("lanB")}}
    assert (
        api.put(f"/fhir/Observation/{obs_id}", json=moved, headers=world.org_b).status_code == 200
    )
    world.facts["movedLanB"] = Fact("movedLanB", "Observation", obs_id, "org-b", ("lan",))
    current = api.get(f"/fhir/Observation/{obs_id}", headers=world.org_a)
    assert current.status_code == 200  # Lan's now: open to org-a
    history = api.get(f"/fhir/Observation/{obs_id}/_history", headers=world.org_a)
    first = api.get(f"/fhir/Observation/{obs_id}/_history/1", headers=world.org_a)
    assert world.id("binhB") not in history.text + first.text
    assert history.status_code == 200
    shown = [e["resource"]["meta"]["versionId"] for e in history.json()["entry"]]
    assert shown == ["2"]  # the corrected version, about Lan
    assert first.status_code == 404
    # The facility that filed both versions sees them both.
    own = api.get(f"/fhir/Observation/{obs_id}/_history", headers=world.org_b)
    assert [e["resource"]["meta"]["versionId"] for e in own.json()["entry"]] == ["2", "1"]


def test_history_does_not_show_a_sensitive_label_the_current_version_lost(
    world: World, api: TestClient
) -> None:
    # Dũng is cared for at org-a: his unlabelled data is open to it. A viral load filed at
    # org-b (labelled HIV by the server), then corrected to a glucose: org-a sees the
    # glucose, not the earlier HIV test.
    body = observation(
        world.ref("dungB"), "org-b", "CR-XN-0202", HIV_LOAD, 40.0, "copies/mL", ago(3)
    )
    created = api.post("/fhir/Observation", json=body, headers=world.org_b)
    assert created.status_code == 201, created.text
    assert "HIV" in {s["code"] for s in created.json()["meta"]["security"]}
    obs_id = created.json()["id"]
    fixed = observation(world.ref("dungB"), "org-b", "CR-XN-0202", GLUCOSE, 5.4, "mmol/L", ago(3))
    put = api.put(f"/fhir/Observation/{obs_id}", json={**fixed, "id": obs_id}, headers=world.org_b)
    assert put.status_code == 200, put.text
    assert "HIV" not in {s.get("code") for s in put.json()["meta"].get("security") or []}
    world.facts["glucoseDungB"] = Fact("glucoseDungB", "Observation", obs_id, "org-b", ("dung",))
    assert api.get(f"/fhir/Observation/{obs_id}", headers=world.org_a).status_code == 200
    history = api.get(f"/fhir/Observation/{obs_id}/_history", headers=world.org_a)
    assert [e["resource"]["meta"]["versionId"] for e in history.json()["entry"]] == ["2"]
    assert HIV_LOAD[0] not in history.text
    first = api.get(f"/fhir/Observation/{obs_id}/_history/1", headers=world.org_a)
    assert first.status_code == 404
    assert api.get(f"/fhir/Observation/{obs_id}/_history/1", headers=world.org_b).status_code == 200


def test_a_deleted_hidden_record_answers_404_like_an_unknown_one(
    world: World, api: TestClient
) -> None:
    body = observation(world.ref("binhB"), "org-b", "CR-XN-0201", GLUCOSE, 4.1, "mmol/L", ago(2))
    created = api.post("/fhir/Observation", json=body, headers=world.org_b)
    obs_id = created.json()["id"]
    assert api.delete(f"/fhir/Observation/{obs_id}", headers=world.org_b).status_code in (200, 204)
    unknown = unknown_id()
    for suffix in ("", "/_history"):
        answer = api.get(f"/fhir/Observation/{obs_id}{suffix}", headers=world.org_a)
        nothing = api.get(f"/fhir/Observation/{unknown}{suffix}", headers=world.org_a)
        assert shape(answer, obs_id) == shape(nothing, unknown), suffix


def test_a_task_about_a_hidden_patient_is_hidden(world: World, api: TestClient) -> None:
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "description": "Gọi điện nhắc anh Bình tái khám HbA1c",
        "for": {"reference": world.ref("binhB")},
        "owner": {"reference": "Organization/org-b"},
        "authoredOn": ago(3),
    }
    created = api.post("/fhir/Task", json=task, headers=world.org_b)
    assert created.status_code == 201, created.text
    found = api.get(f"/fhir/Task?patient={world.ref('binhB')}", headers=world.org_a).json()
    read = api.get(f"/fhir/Task/{created.json()['id']}", headers=world.org_a)
    assert (found["total"], read.status_code) == (0, 404), json.dumps(found)[:300]
