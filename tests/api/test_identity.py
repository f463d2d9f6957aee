"""The master patient index through the FHIR API, on both backends (docs/identity.md)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"
RECORD = "http://fhir.ehealth.gov.vn/core/sid/patient-internal-id"
UNVERIFIED = "https://vnehr.org/fhir/StructureDefinition/identifier-unverified"
GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


def patient(
    family: str = "Nguyễn",
    given: tuple[str, ...] = ("Thị", "Lan"),
    birth: str = "1985-03-12",
    cccd: str | None = "001185012345",
    phone: str | None = None,
    gender: str = "female",
    record: str | None = None,
) -> dict[str, Any]:
    p: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": family, "given": list(given)}],
        "gender": gender,
        "birthDate": birth,
        "identifier": [],
    }
    if cccd:
        p["identifier"].append({"system": CCCD, "value": cccd})
    if record:
        p["identifier"].append(
            {"system": RECORD, "value": record, "assigner": {"reference": "Organization/f1"}}
        )
    if phone:
        p["telecom"] = [{"system": "phone", "value": phone}]
    if not p["identifier"]:
        del p["identifier"]
    return p


def create(client: TestClient, resource: dict[str, Any]) -> str:
    r = client.post("/fhir/Patient", json=resource)
    assert r.status_code == 201, r.text
    return str(r.headers["location"]).split("/")[-3]


def person_of(client: TestClient, patient_id: str) -> str:
    bundle = client.get("/fhir/Person", params={"link": f"Patient/{patient_id}"}).json()
    persons = [e["resource"] for e in bundle.get("entry", [])]
    assert len(persons) == 1, persons
    return str(persons[0]["id"])


def links(client: TestClient, **params: str) -> list[dict[str, Any]]:
    r = client.get("/fhir/$mpi-links", params=params)
    assert r.status_code == 200, r.text
    out = []
    for item in r.json().get("parameter", []):
        parts = {p["name"]: p for p in item["part"]}
        out.append(
            {
                "patient": parts["patient"]["valueReference"]["reference"].split("/")[1],
                "person": parts["person"]["valueReference"]["reference"].split("/")[1],
                "result": parts["result"]["valueCode"],
                "source": parts["source"]["valueCode"],
            }
        )
    return out


def params(**values: str) -> dict[str, Any]:
    parts = []
    for name, value in values.items():
        if name in ("patient", "person", "source", "target"):
            parts.append({"name": name, "valueReference": {"reference": value}})
        else:
            parts.append({"name": name, "valueCode": value})
    return {"resourceType": "Parameters", "parameter": parts}


def test_same_cccd_is_one_person_with_a_golden_person(client: TestClient) -> None:
    a = create(client, patient(record="BN1"))
    b = create(client, patient(family="Nguyen", given=("Thi", "Lan"), record="HS-77"))
    other = create(client, patient(given=("Văn", "Đức"), cccd="001089000001", gender="male",
                                   birth="1989-01-01"))  # fmt: skip
    person = person_of(client, a)
    assert person_of(client, b) == person
    assert person_of(client, other) != person
    golden = client.get(f"/fhir/Person/{person}").json()
    assert sorted(x["target"]["reference"] for x in golden["link"]) == sorted(
        [f"Patient/{a}", f"Patient/{b}"]
    )
    assert {"system": CCCD, "value": "001185012345", "use": "official"} in golden["identifier"]
    assert golden["active"] is True


def test_two_different_cccds_are_never_linked(client: TestClient) -> None:
    a = create(client, patient(cccd="001185012345"))
    b = create(client, patient(cccd="001185099999"))  # same name, birth date, gender
    assert person_of(client, a) != person_of(client, b)
    assert not [x for x in links(client, patient=b) if x["result"] == "probable"]


def test_a_probable_match_waits_for_review_then_accept_links_it(client: TestClient) -> None:
    a = create(client, patient(phone="0912345678"))
    # The commune station: no CCCD, no accents, the birth year only, the same phone.
    b = create(client, patient(family="Nguyen", given=("Thi", "Lan"), cccd=None, birth="1985",
                               phone="+84 912 345 678"))  # fmt: skip
    person_a, person_b = person_of(client, a), person_of(client, b)
    assert person_a != person_b  # not certain: not linked automatically
    queue = links(client, result="probable")
    assert {"patient": b, "person": person_a, "result": "probable", "source": "auto"} in queue
    r = client.post(
        "/fhir/$mpi-update-link",
        json=params(patient=f"Patient/{b}", person=f"Person/{person_a}", result="certain"),
    )
    assert r.status_code == 200, r.text
    assert person_of(client, b) == person_a
    assert not links(client, result="probable")
    # An update of the Patient does not undo the operator's decision.
    r = client.put(
        f"/fhir/Patient/{b}", json={**patient(family="Nguyen", cccd=None, birth="1985"), "id": b}
    )
    assert r.status_code == 200, r.text
    assert person_of(client, b) == person_a
    # The emptied Person stays, inactive.
    assert client.get(f"/fhir/Person/{person_b}").json()["active"] is False


def test_reject_and_unlink_are_remembered(client: TestClient) -> None:
    a = create(client, patient(phone="0912345678"))
    b = create(client, patient(family="Nguyen", cccd=None, birth="1985", phone="0912345678"))
    person_a = person_of(client, a)
    r = client.post(
        "/fhir/$mpi-update-link",
        json=params(patient=f"Patient/{b}", person=f"Person/{person_a}", result="no-match"),
    )
    assert r.status_code == 200, r.text
    assert not links(client, result="probable")
    client.put(
        f"/fhir/Patient/{b}", json={**patient(family="Nguyen", cccd=None, birth="1985"), "id": b}
    )
    assert not links(client, result="probable")  # not proposed again
    # Unlinking a certain link gives the Patient a Person of its own, for good.
    c = create(client, patient(record="X1"))
    assert person_of(client, c) == person_a
    r = client.post(
        "/fhir/$mpi-update-link",
        json=params(patient=f"Patient/{c}", person=f"Person/{person_a}", result="no-match"),
    )
    assert r.status_code == 200, r.text
    assert person_of(client, c) != person_a
    client.put(f"/fhir/Patient/{c}", json={**patient(record="X2"), "id": c})
    assert person_of(client, c) != person_a


def test_merge_and_unmerge_keep_everything(client: TestClient) -> None:
    a = create(client, patient(cccd="001185012345"))
    b = create(client, patient(cccd="001185099999", given=("Thị", "Lanh")))
    source, target = person_of(client, b), person_of(client, a)
    r = client.post(
        "/fhir/Person/$mpi-merge",
        json=params(source=f"Person/{source}", target=f"Person/{target}"),
    )
    assert r.status_code == 200, r.text
    assert person_of(client, b) == target
    merged = client.get(f"/fhir/Person/{source}").json()
    assert merged["active"] is False
    assert merged["link"] == [{"target": {"reference": f"Person/{target}"}, "assurance": "level4"}]
    # Merging it again, or into itself: refused, nothing changes.
    again = client.post(
        "/fhir/Person/$mpi-merge",
        json=params(source=f"Person/{source}", target=f"Person/{target}"),
    )
    assert again.status_code == 409
    itself = client.post(
        "/fhir/Person/$mpi-merge",
        json=params(source=f"Person/{target}", target=f"Person/{target}"),
    )
    assert itself.status_code == 400
    assert itself.json()["resourceType"] == "OperationOutcome"
    r = client.post("/fhir/Person/$mpi-unmerge", json=params(source=f"Person/{source}"))
    assert r.status_code == 200, r.text
    assert person_of(client, b) == source
    assert client.get(f"/fhir/Person/{source}").json()["active"] is True
    # Every version of the Person is kept.
    history = client.get(f"/fhir/Person/{source}/_history").json()
    assert len(history["entry"]) >= 3  # created, merged away, restored


def test_match_operation(client: TestClient) -> None:
    a = create(client, patient(phone="0912345678"))
    create(client, patient(given=("Văn", "Nam"), cccd="001089000001", gender="male",
                           birth="1989-01-01"))  # fmt: skip
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": patient(family="Nguyen", cccd=None, birth="1985")},
            {"name": "count", "valueInteger": 5},
        ],
    }
    r = client.post("/fhir/Patient/$match", json=body)
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["type"] == "searchset"
    ids = [e["resource"]["id"] for e in bundle["entry"]]
    assert ids == [a]  # the other person is not a candidate at all
    search = bundle["entry"][0]["search"]
    assert 0.5 <= search["score"] <= 1
    assert search["extension"][0]["url"] == GRADE
    assert search["extension"][0]["valueCode"] in ("probable", "certain")
    # With the CCCD the match is certain, and onlyCertainMatches keeps it.
    body["parameter"][0]["resource"] = patient(family="Nguyen")
    body["parameter"].append({"name": "onlyCertainMatches", "valueBoolean": True})
    certain = client.post("/fhir/Patient/$match", json=body).json()
    assert [e["search"]["extension"][0]["valueCode"] for e in certain["entry"]] == ["certain"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"resourceType": "Parameters", "parameter": []}, "resource"),
        (
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "resource", "resource": {"resourceType": "Observation"}}],
            },
            "resource",
        ),
        (
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "resource", "resource": patient()},
                    {"name": "count", "valueInteger": 0},
                ],
            },
            "count",
        ),
    ],
)
def test_match_bad_input(client: TestClient, body: dict[str, Any], where: str) -> None:
    r = client.post("/fhir/Patient/$match", json=body)
    assert r.status_code == 400
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert where in str(outcome)


def test_malformed_cccd_is_rejected_naming_the_rule_unless_unverified(client: TestClient) -> None:
    bad = patient(cccd="00118501234")  # 11 digits
    r = client.post("/fhir/Patient", json=bad)
    assert r.status_code == 400
    assert "cccd-length" in r.text
    assert client.get("/fhir/Patient").json().get("total") == 0  # nothing written
    bad["identifier"][0]["extension"] = [{"url": UNVERIFIED, "valueBoolean": True}]
    r = client.post("/fhir/Patient", json=bad)
    assert r.status_code == 201, r.text
    # An unverified identifier never links deterministically.
    p1 = str(r.headers["location"]).split("/")[-3]
    p2 = create(client, {**bad, "name": [{"family": "Trần", "given": ["Văn", "Hùng"]}]})
    assert person_of(client, p1) != person_of(client, p2)


def test_ihe_pix_returns_the_persons_other_identifiers(client: TestClient) -> None:
    a = create(client, patient(record="BN1"))
    b = create(client, patient(record="HS-77"))
    r = client.get("/fhir/Patient/$ihe-pix", params={"sourceIdentifier": f"{RECORD}|BN1"})
    assert r.status_code == 200, r.text
    out = r.json()["parameter"]
    ids = {p["valueReference"]["reference"] for p in out if p["name"] == "targetId"}
    assert ids == {f"Patient/{a}", f"Patient/{b}"}
    values = {p["valueIdentifier"]["value"] for p in out if p["name"] == "targetIdentifier"}
    assert values == {"001185012345", "HS-77"}
    only = client.get(
        "/fhir/Patient/$ihe-pix",
        params=[("sourceIdentifier", f"{RECORD}|BN1"), ("targetSystem", CCCD)],
    ).json()["parameter"]
    assert {p["valueIdentifier"]["value"] for p in only if p["name"] == "targetIdentifier"} == {
        "001185012345"
    }
    assert (
        client.get(
            "/fhir/Patient/$ihe-pix", params={"sourceIdentifier": f"{RECORD}|nobody"}
        ).status_code
        == 404
    )
    assert client.get("/fhir/Patient/$ihe-pix").status_code == 400


def test_everything_spans_the_linked_patients(client: TestClient) -> None:
    a = create(client, patient(record="BN1"))
    b = create(client, patient(record="HS-77"))
    lonely = create(client, patient(cccd="001185099999", given=("Văn", "Tư"), gender="male"))
    for subject in (a, b, lonely):
        r = client.post(
            "/fhir/Observation",
            json={
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "HbA1c"},
                "subject": {"reference": f"Patient/{subject}"},
            },
        )
        assert r.status_code == 201
    r = client.get(f"/fhir/Patient/{b}/$everything")
    assert r.status_code == 200, r.text
    found = [e["resource"] for e in r.json()["entry"]]
    observed = sorted(
        o["subject"]["reference"] for o in found if o["resourceType"] == "Observation"
    )
    assert observed == sorted([f"Patient/{a}", f"Patient/{b}"])
    assert {p["id"] for p in found if p["resourceType"] == "Patient"} == {a, b}
    assert client.get("/fhir/Patient/nobody/$everything").status_code == 404


def test_deleting_a_patient_takes_it_out_of_its_person(client: TestClient) -> None:
    a = create(client, patient(record="BN1"))
    b = create(client, patient(record="HS-77"))
    person = person_of(client, a)
    assert client.delete(f"/fhir/Patient/{b}").status_code in (200, 204)
    golden = client.get(f"/fhir/Person/{person}").json()
    assert [x["target"]["reference"] for x in golden["link"]] == [f"Patient/{a}"]


def test_concurrent_merges_of_one_person_one_wins(client: TestClient) -> None:
    a = create(client, patient(cccd="001185012345"))
    b = create(client, patient(cccd="001185099999"))
    c = create(client, patient(cccd="001185088888"))
    source = person_of(client, a)
    targets = [person_of(client, b), person_of(client, c)]
    statuses: list[int] = []

    def merge(target: str) -> None:
        r = client.post(
            "/fhir/Person/$mpi-merge",
            json=params(source=f"Person/{source}", target=f"Person/{target}"),
        )
        statuses.append(r.status_code)

    threads = [threading.Thread(target=merge, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 409]
    assert person_of(client, a) in targets


def test_patients_written_together_are_linked_as_if_one_at_a_time(client: TestClient) -> None:
    """A transaction (or a `vnehr load` batch) of many Patients: matches between them, across
    the index's windows of 256, and with stored Patients updated in the same transaction."""
    stored = create(client, patient(cccd="001185999999", given=("Thị", "Thu")))
    people = {
        f"p{n:03d}": patient(
            given=("Thị", f"Lan{chr(97 + n % 26)}{chr(97 + n // 26)}"),
            birth=f"1985-{1 + n % 12:02d}-{1 + n % 28:02d}",
            cccd=f"001185{n:06d}",
            phone=f"09123{n:05d}",
        )
        for n in range(300)
    }
    people["p010"] = {**people["p009"], "name": [{"family": "Nguyen", "given": ["Thi", "Lanja"]}]}
    people["p280"] = {**people["p005"], "telecom": [{"system": "phone", "value": "0988000280"}]}
    people["p250"] = patient(family="Nguyen", given=("Thi", "Thu"), cccd="001185999999")
    commune = patient(family="Nguyen", given=people["p100"]["name"][0]["given"], cccd=None,
                      birth="1985", phone=people["p100"]["telecom"][0]["value"])  # fmt: skip
    people["p150"] = commune
    entries = [
        {"resource": {**p, "id": pid}, "request": {"method": "PUT", "url": f"Patient/{pid}"}}
        for pid, p in people.items()
    ]
    update = {**patient(cccd="001185999999", given=("Thị", "Thu"), phone="0912000000")}
    entries.insert(120, {"resource": {**update, "id": stored},
                         "request": {"method": "PUT", "url": f"Patient/{stored}"}})  # fmt: skip
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                   "entry": entries})  # fmt: skip
    assert r.status_code == 200, r.text
    assert person_of(client, "p010") == person_of(client, "p009")  # in one window
    assert person_of(client, "p280") == person_of(client, "p005")  # across windows
    assert person_of(client, "p250") == person_of(client, stored)  # a stored, updated one
    queue = links(client, result="probable")
    assert {"patient": "p150", "person": person_of(client, "p100"), "result": "probable",
            "source": "auto"} in queue  # fmt: skip
    certain = links(client, result="certain", _count="1000")
    assert len(certain) == 301
    persons: dict[str, list[str]] = {}
    for link in certain:
        persons.setdefault(link["person"], []).append(link["patient"])
    assert len(persons) == 301 - 3
    for person, members in persons.items():
        golden = client.get(f"/fhir/Person/{person}").json()
        assert sorted(x["target"]["reference"] for x in golden["link"]) == sorted(
            f"Patient/{m}" for m in members
        )
