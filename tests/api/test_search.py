"""GET [type]?..., GET [base]?_type=..., GET Patient/x/[type], POST [type]/_search: search."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.people import CCCD, LOINC, duc, hba1c, lan, lan_without_accents
from vnehr.search.compile import sql

JSON = {"Content-Type": "application/fhir+json"}
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def put(client: TestClient, resource: dict[str, Any]) -> None:
    path = f"/fhir/{resource['resourceType']}/{resource['id']}"
    r = client.put(path, json=resource, headers=JSON)
    assert r.status_code in (200, 201), r.text


def ids(client: TestClient, query: str, mode: str = "match") -> list[str]:
    r = client.get(f"/fhir/{query}")
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == mode]


def all_pages(client: TestClient, query: str) -> list[str]:
    out: list[str] = []
    url: str | None = f"/fhir/{query}"
    while url:
        page = client.get(url).json()
        out += [e["resource"]["id"] for e in page.get("entry", [])]
        url = next(
            (
                lk["url"].removeprefix("http://testserver")
                for lk in page["link"]
                if lk["relation"] == "next"
            ),
            None,
        )
    return out


def people(client: TestClient) -> None:
    put(client, {**lan(), "id": "lan"})
    put(client, {**lan_without_accents(), "id": "lan2"})
    put(client, {**duc(), "id": "duc"})


def test_vietnamese_names_are_found_with_or_without_accents(client: TestClient) -> None:
    people(client)
    for typed in ("nguyen thi lan", "Nguyen Thi Lan", "Nguyễn Thị Lan", "NGUYỄN THỊ"):
        assert sorted(ids(client, f"Patient?name={typed}")) == ["lan", "lan2"], typed
    # A name written only as parts (no text) is found whole, family first, and by its
    # given names together; đ is d.
    assert ids(client, "Patient?name=tran van duc") == ["duc"]
    assert ids(client, "Patient?name=van duc") == ["duc"]
    assert ids(client, "Patient?family=tran&given=duc") == ["duc"]
    # :exact tells them apart; :contains finds the middle.
    assert ids(client, "Patient?name:exact=Nguyễn Thị Lan") == ["lan"]
    assert ids(client, "Patient?family:exact=Nguyen") == ["lan2"]
    assert ids(client, "Patient?name:contains=an van d") == ["duc"]


def test_identifier_of_type_and_reference_by_identifier(client: TestClient) -> None:
    patient = {
        **lan(),
        "id": "lan",
        "identifier": [
            {
                "type": {"coding": [{"system": V2_0203, "code": "NI"}]},
                "system": CCCD,
                "value": "001185012345",
            },
            {"type": {"coding": [{"system": V2_0203, "code": "MR"}]}, "value": "BV-77"},
        ],
    }
    put(client, patient)
    put(client, {**duc(), "id": "duc"})
    assert ids(client, f"Patient?identifier:of-type={V2_0203}|MR|BV-77") == ["lan"]
    assert ids(client, f"Patient?identifier:of-type={V2_0203}|NI|BV-77") == []
    assert ids(client, f"Patient?identifier:of-type={V2_0203}|NI|001185012345") == ["lan"]
    r = client.get("/fhir/Patient", params={"identifier:of-type": "MR|BV-77"})
    assert r.status_code == 400
    obs = {**hba1c("Patient/lan"), "id": "o1"}
    obs["subject"] = {"identifier": {"system": CCCD, "value": "001185012345"}}
    put(client, obs)
    assert ids(client, f"Observation?subject:identifier={CCCD}|001185012345") == ["o1"]
    assert ids(client, "Observation?subject:identifier=001185012345") == ["o1"]
    assert ids(client, f"Observation?subject:identifier={CCCD}|079214000123") == []


def test_token_in_and_not_in_a_stored_value_set(client: TestClient) -> None:
    put(client, {**lan(), "id": "lan"})
    put(client, {**hba1c("Patient/lan"), "id": "a1c"})
    glucose = hba1c("Patient/lan")
    glucose["code"]["coding"][0]["code"] = "2345-7"
    put(client, {**glucose, "id": "glu"})
    other = hba1c("Patient/lan")
    other["code"]["coding"] = [{"system": "http://example.org/local", "code": "4548-4"}]
    put(client, {**other, "id": "local"})
    put(
        client,
        {
            "resourceType": "ValueSet",
            "id": "diabetes-labs",
            "url": "http://example.org/ValueSet/diabetes-labs",
            "status": "active",
            "compose": {"include": [{"system": LOINC, "concept": [{"code": "4548-4"}]}]},
        },
    )
    by_url = "http://example.org/ValueSet/diabetes-labs"
    assert ids(client, f"Observation?code:in={by_url}") == ["a1c"]
    assert ids(client, "Observation?code:in=ValueSet/diabetes-labs") == ["a1c"]
    assert sorted(ids(client, f"Observation?code:not-in={by_url}")) == ["glu", "local"]
    # A value set of the specification: administrative-gender.
    gender = "http://hl7.org/fhir/ValueSet/administrative-gender"
    assert ids(client, f"Patient?gender:in={gender}") == ["lan"]
    unknown = client.get("/fhir/Observation", params={"code:in": "http://example.org/none"})
    assert unknown.status_code == 400


def test_paging_with_cursors_stays_exact_while_data_changes(client: TestClient) -> None:
    for i in range(12):
        put(client, {**hba1c("Patient/lan", value=5 + i % 4), "id": f"o{i:02d}"})
    expected = ids(client, "Observation?_sort=value-quantity,-_id&_count=100")
    assert all_pages(client, "Observation?_sort=value-quantity,-_id&_count=5") == expected
    first = client.get("/fhir/Observation?_sort=value-quantity,-_id&_count=5").json()
    next_url = next(lk["url"] for lk in first["link"] if lk["relation"] == "next")
    # A new match sorting before the cursor, and one of the first page deleted: the next
    # page neither repeats nor skips what followed the first page.
    put(client, {**hba1c("Patient/lan", value=1), "id": "early"})
    assert client.delete(f"/fhir/Observation/{expected[0]}").status_code in (200, 204)
    second = client.get(next_url.removeprefix("http://testserver")).json()
    assert [e["resource"]["id"] for e in second["entry"]] == expected[5:10]
    previous = next(lk["url"] for lk in second["link"] if lk["relation"] == "previous")
    back = client.get(previous.removeprefix("http://testserver")).json()
    assert [e["resource"]["id"] for e in back["entry"]] == ["early", *expected[1:5]]


def test_sort_by_several_keys_missing_values_last(client: TestClient) -> None:
    put(client, {**lan(), "id": "lan"})
    put(client, {**duc(), "id": "duc"})
    put(client, {**lan_without_accents(), "id": "lan2"})
    put(client, {"resourceType": "Patient", "id": "nobody", "gender": "unknown"})
    assert ids(client, "Patient?_sort=birthdate") == ["lan2", "lan", "duc", "nobody"]
    # Descending sorts a range by its end: all of 1985 ends after 1985-03-12.
    assert ids(client, "Patient?_sort=-birthdate") == ["duc", "lan2", "lan", "nobody"]
    assert ids(client, "Patient?_sort=gender,-birthdate") == ["lan2", "lan", "duc", "nobody"]
    # Equal sort values (nguyen, folded) keep insertion order: the sort is stable.
    assert ids(client, "Patient?_sort=-family") == ["duc", "lan", "lan2", "nobody"]


def test_include_and_revinclude(client: TestClient) -> None:
    put(client, {**lan(), "id": "lan"})
    put(client, {**duc(), "id": "duc"})
    put(client, {**hba1c("Patient/lan"), "id": "o1"})
    put(client, {**hba1c("Patient/lan"), "id": "o2"})
    put(client, {**hba1c("Patient/duc"), "id": "o3"})
    query = "Observation?subject=Patient/lan&_include=Observation:subject"
    assert sorted(ids(client, query)) == ["o1", "o2"]
    assert ids(client, query, "include") == ["lan"]
    query = "Patient?_id=duc&_revinclude=Observation:subject"
    assert ids(client, query) == ["duc"]
    assert ids(client, query, "include") == ["o3"]
    assert ids(client, "Patient?_id=duc&_revinclude=Observation:performer", "include") == []
    # :iterate follows references from included resources too.
    put(
        client,
        {
            "resourceType": "DiagnosticReport",
            "id": "r1",
            "status": "final",
            "code": {"text": "Diabetes panel"},
            "subject": {"reference": "Patient/lan"},
            "result": [{"reference": "Observation/o1"}],
        },
    )
    query = (
        "DiagnosticReport?_id=r1&_include=DiagnosticReport:result"
        "&_include:iterate=Observation:subject"
    )
    assert sorted(ids(client, query, "include")) == ["lan", "o1"]
    bad = client.get("/fhir/Observation", params={"_include": "Nonsense"})
    assert bad.status_code == 400


def test_compartment_and_system_search(client: TestClient) -> None:
    put(client, {**lan(), "id": "lan"})
    put(client, {**duc(), "id": "duc"})
    put(client, {**hba1c("Patient/lan"), "id": "o1"})
    put(client, {**hba1c("Patient/duc"), "id": "o3"})
    assert ids(client, "Patient/lan/Observation") == ["o1"]
    assert ids(client, "Patient/lan/Observation?code=4548-4") == ["o1"]
    # Patient/lan's compartment holds its golden Person too (Person.link, docs/identity.md).
    assert sorted(i for i in ids(client, "Patient/lan/*") if i in ("lan", "o1", "o3", "duc")) == [
        "lan",
        "o1",
    ]
    assert len(ids(client, "Patient/lan/*")) == 3
    assert client.get("/fhir/Patient/lan/Organization").status_code == 400
    got = ids(client, "?_type=Patient,Observation&_id=lan,o3")
    assert sorted(got) == ["lan", "o3"]
    assert sorted(ids(client, "?_type=Observation")) == ["o1", "o3"]
    assert client.get("/fhir/?_type=Nonsense").status_code == 400


def test_totals_and_summary_count(client: TestClient) -> None:
    for i in range(3):
        put(client, {**hba1c("Patient/lan"), "id": f"o{i}"})
    small = client.get("/fhir/Observation?_count=2").json()
    assert "total" not in small  # not free to count: not asked
    assert client.get("/fhir/Observation?_count=2&_total=accurate").json()["total"] == 3
    assert client.get("/fhir/Observation?_count=10").json()["total"] == 3  # one page: free
    counted = client.get("/fhir/Observation?_summary=count").json()
    assert counted["total"] == 3 and "entry" not in counted
    assert client.get("/fhir/Observation?_total=maybe").status_code == 400


def test_post_search_with_a_form_body(client: TestClient) -> None:
    people(client)
    r = client.post(
        "/fhir/Patient/_search",
        content="name=nguyen&gender=female",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert sorted(e["resource"]["id"] for e in r.json()["entry"]) == ["lan", "lan2"]


def test_bad_values_and_strict_handling(client: TestClient) -> None:
    for params in (
        {"birthdate": "2024-13"},
        {"birthdate": "zz2024"},
        {"_lastUpdated": "yesterday"},
        {"general-practitioner": "Nonsense/1"},
        {"_sort": "-"},
        {"_cursor": "not-a-cursor"},
    ):
        r = client.get("/fhir/Patient", params=params)
        assert r.status_code == 400, params
        assert r.json()["resourceType"] == "OperationOutcome"
    strict = client.get(
        "/fhir/Patient", params={"name:fuzzy": "x"}, headers={"Prefer": "handling=strict"}
    )
    assert strict.status_code == 400
    lenient = client.get("/fhir/Patient", params={"name:fuzzy": "x", "gender": "male"})
    assert lenient.status_code == 200
    self_link = lenient.json()["link"][0]["url"]
    assert "gender=male" in self_link and "fuzzy" not in self_link


def test_plans_chosen_by_row_estimates_give_the_same_answers(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a tiny estimate cap every condition looks common: `_has` looks for a referring
    # resource per candidate instead of listing them, and ANDs pick other drivers.
    people(client)
    for i, (patient, value) in enumerate([("lan", 7.2), ("lan", 5.0), ("duc", 7.2)]):
        put(client, {**hba1c(f"Patient/{patient}", value=value), "id": f"o{i}"})
    queries = [
        "Patient?_has:Observation:patient:code=4548-4",
        "Patient?_has:Observation:patient:value-quantity=gt7",
        "Patient?_has:Observation:patient:value-quantity=lt6&gender=female",
        "Observation?code=4548-4&value-quantity=gt7&subject=Patient/lan",
        "Patient?family=nguyen&given=lan&gender=female",
    ]
    expected = [sorted(ids(client, q)) for q in queries]
    assert expected == [["duc", "lan"], ["duc", "lan"], ["lan"], ["o0"], ["lan", "lan2"]]
    monkeypatch.setattr(sql, "ESTIMATE_CAP", 1)
    monkeypatch.setattr(sql, "FEW", 0)
    assert [sorted(ids(client, q)) for q in queries] == expected


def test_forged_cursors_are_400(client: TestClient) -> None:
    put(client, {**lan(), "id": "lan"})

    def cursor(values: list[Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")

    for sort, values in (
        ("birthdate", ["a", "text", 5]),
        ("birthdate", ["a", [1, 2], 5]),
        ("birthdate", ["a", {"x": 1}, 5]),
        ("birthdate", ["a", 10**30, 5]),
        ("family", ["a", 5, 5]),
        ("", ["a", 10**30]),
        ("", ["c", 5]),
        ("", ["a", "5"]),
    ):
        params = {"_cursor": cursor(values), **({"_sort": sort} if sort else {})}
        r = client.get("/fhir/Patient", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["issue"][0]["expression"] == ["_cursor"]
    huge = base64.urlsafe_b64encode(f"{10**30}:1:1".encode()).decode()
    assert client.get("/fhir/Patient/_history", params={"_cursor": huge}).status_code == 400
    # A cursor of the server's own still works.
    ok = client.get("/fhir/Patient", params={"_cursor": cursor(["a", 0])})
    assert ok.status_code == 200


def _medication(mid: str, code: str, form: str) -> dict[str, Any]:
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    forms = "http://snomed.info/sct"
    return {
        "resourceType": "Medication",
        "id": mid,
        "code": {"coding": [{"system": rxnorm, "code": code}]},
        "form": {"coding": [{"system": forms, "code": form}]},
    }


def _request(rid: str, *medications: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "contained": list(medications),
        "status": "active",
        "intent": "order",
        "medicationReference": {"reference": f"#{medications[0]['id']}"},
        "subject": {"reference": "Patient/lan"},
        # Every contained resource must be referenced from its container (dom-3).
        "supportingInformation": [{"reference": f"#{m['id']}"} for m in medications[1:]],
    }
    if len(medications) == 1:
        del request["supportingInformation"]
    return request


def test_contained_resources_are_searched_with_contained(client: TestClient) -> None:
    put(client, {**lan(), "id": "lan"})
    put(client, _medication("metformin", "860975", "tablet"))  # a Medication of its own
    put(client, _request("mr1", _medication("m1", "860975", "tablet")))
    put(client, _request("mr2", _medication("m2", "197361", "tablet")))
    # Two contained Medications, neither both 860975 and a capsule.
    put(
        client,
        _request("mr3", _medication("m3", "860975", "tablet"), _medication("m4", "1", "capsule")),
    )
    assert ids(client, "Medication?code=860975") == ["metformin"]
    assert ids(client, "Medication?code=860975&_contained=false") == ["metformin"]
    assert ids(client, "Medication?code=860975&_contained=true") == ["mr1", "mr3"]
    assert ids(client, "Medication?code=860975&_contained=both") == ["metformin", "mr1", "mr3"]
    # Every criterion on one contained resource, not across two of a container.
    assert ids(client, "Medication?code=860975&form=capsule&_contained=true") == []
    assert ids(client, "Medication?form=capsule&_contained=true") == ["mr3"]
    each = client.get(
        "/fhir/Medication",
        params={"code": "860975", "_contained": "true", "_containedType": "contained"},
    ).json()
    assert [e["fullUrl"].rsplit("/", 2)[-2:] for e in each["entry"]] == [
        ["MedicationRequest", "mr1#m1"],
        ["MedicationRequest", "mr3#m3"],
    ]
    assert [e["resource"]["id"] for e in each["entry"]] == ["m1", "m3"]
    assert ids(client, "Medication?_id=m2&_contained=true") == ["mr2"]
    # A negation holds on one contained resource even if another of its container fails it.
    assert ids(client, "Medication?form:not=capsule&_contained=true") == ["mr1", "mr2", "mr3"]
    assert ids(client, "Medication?code:not=860975&_contained=true") == ["mr2", "mr3"]
    assert ids(client, "Medication?_contained=true") == ["mr1", "mr2", "mr3"]
    for params in (
        {"_contained": "maybe"},
        {"_contained": "true", "_sort": "code"},
        {"_contained": "true", "_summary": "count"},
    ):
        assert client.get("/fhir/Medication", params=params).status_code == 400, params


def test_found_resources_are_sent_as_stored_decimals_and_all(client: TestClient) -> None:
    """A searchset carries each resource exactly as stored (a decimal's trailing zero kept),
    whole or shaped by `_elements`/`_summary`, compact or `_pretty`."""
    body = json.dumps({**hba1c("Patient/lan"), "id": "o150"}).replace(
        '"value": 7.2', '"value": 7.50'
    )
    assert "7.50" in body
    created = client.put(
        "/fhir/Observation/o150", content=body, headers={"Content-Type": "application/fhir+json"}
    )
    assert created.status_code == 201, created.text
    read = client.get("/fhir/Observation/o150").json()
    for params in ("", "&_pretty=true", "&_summary=false"):
        answer = client.get(f"/fhir/Observation?_id=o150{params}")
        assert answer.status_code == 200, answer.text
        assert '"value":7.50' in answer.text.replace(" ", ""), params
        assert answer.json()["entry"][0]["resource"] == read, params
    shaped = client.get("/fhir/Observation?_id=o150&_elements=valueQuantity").json()
    resource = shaped["entry"][0]["resource"]
    assert resource["valueQuantity"]["value"] == 7.5 and "subject" not in resource
    assert '"value":7.50' in client.get("/fhir/Observation?_id=o150&_elements=valueQuantity").text
    history = client.get("/fhir/Observation/o150/_history")
    assert '"value":7.50' in history.text
    assert history.json()["entry"][0]["resource"] == read
