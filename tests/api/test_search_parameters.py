"""Custom search parameters: SearchParameter resources POSTed to the server are used to index
new data and to search; `reindex` indexes the data stored before them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.people import LOINC, lan
from vnehr.app import create_app, create_server
from vnehr.settings import Settings

JSON = {"Content-Type": "application/fhir+json"}
STRICT = {"Prefer": "handling=strict"}
ETHNICITY = "http://fhir.ehealth.gov.vn/core/StructureDefinition/ext-ethnicity"
DANTOC = "http://fhir.ehealth.gov.vn/core/CodeSystem/dan-toc"


def district_param(**changes: Any) -> dict[str, Any]:
    """A string parameter on Patient: the district (quận/huyện) of an address."""
    return {
        "resourceType": "SearchParameter",
        "url": "http://fhir.ehealth.gov.vn/core/SearchParameter/patient-district",
        "name": "district",
        "status": "active",
        "description": "The district (quận/huyện) of one of the patient's addresses",
        "code": "district",
        "base": ["Patient"],
        "type": "string",
        "expression": "Patient.address.district",
        **changes,
    }


def ethnicity_param() -> dict[str, Any]:
    """A token parameter on an extension: the patient's ethnic group (dân tộc)."""
    return {
        "resourceType": "SearchParameter",
        "url": "http://fhir.ehealth.gov.vn/core/SearchParameter/patient-ethnicity",
        "name": "ethnicity",
        "status": "active",
        "description": "The patient's ethnic group (dân tộc)",
        "code": "ethnicity",
        "base": ["Patient"],
        "type": "token",
        "expression": f"Patient.extension('{ETHNICITY}').value",
    }


def patient_in(district: str, cccd: str = "001185012345") -> dict[str, Any]:
    return {**lan(cccd), "address": [{"district": district, "city": "Hà Nội", "country": "VN"}]}


def _create(client: TestClient, resource: dict[str, Any]) -> str:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=JSON)
    assert r.status_code == 201, r.text
    res_id: str = r.json()["id"]
    return res_id


def _ids(client: TestClient, params: dict[str, str], headers: dict[str, str] | None = None) -> set:
    r = client.get("/fhir/Patient", params=params, headers=headers or {})
    assert r.status_code == 200, r.text
    return {
        e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"
    }


def _outcomes(client: TestClient, params: dict[str, str]) -> list[dict[str, Any]]:
    r = client.get("/fhir/Patient", params=params)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json()["entry"] if e["search"]["mode"] == "outcome"]


@contextmanager
def _app(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver") as c:
        yield c


def _reindex(settings: Settings, *types: str) -> dict[str, int]:
    """Reindex through the Python API, as `vnehr reindex` does (its own server)."""
    server = create_server(settings)
    total: dict[str, int] = {}
    try:
        for done in server.store.reindex(types, batch=2):
            for res_type, n in done.items():
                total[res_type] = total.get(res_type, 0) + n
    finally:
        server.close()
    return total


def test_resources_written_after_the_parameter_are_found_by_it(client: TestClient) -> None:
    assert _create(client, district_param())
    ba_dinh = _create(client, patient_in("Ba Đình"))
    _create(client, patient_in("Hoàn Kiếm", "001185099999"))
    assert _ids(client, {"district": "ba dinh"}, STRICT) == {ba_dinh}
    assert _ids(client, {"district:exact": "Ba Đình"}, STRICT) == {ba_dinh}
    assert _ids(client, {"district": "Ba", "gender": "female"}, STRICT) == {ba_dinh}


def test_a_token_parameter_on_an_extension(client: TestClient) -> None:
    _create(client, ethnicity_param())
    kinh = {
        **lan(),
        "extension": [
            {"url": ETHNICITY, "valueCoding": {"system": DANTOC, "code": "01", "display": "Kinh"}}
        ],
    }
    kinh_id = _create(client, kinh)
    unknown = _create(client, lan("001185099999"))  # no ethnicity recorded
    assert _ids(client, {"ethnicity": f"{DANTOC}|01"}, STRICT) == {kinh_id}
    assert _ids(client, {"ethnicity": "02"}, STRICT) == set()
    assert _ids(client, {"ethnicity:missing": "true"}, STRICT) == {unknown}


def test_resources_stored_before_are_found_after_reindex(
    client: TestClient, settings: Settings
) -> None:
    before = _create(client, patient_in("Ba Đình"))
    other = _create(client, patient_in("Cầu Giấy", "001185099999"))
    version = client.get(f"/fhir/Patient/{before}").json()["meta"]
    _create(client, district_param())
    after = _create(client, patient_in("Ba Đình", "001185088888"))
    assert _ids(client, {"district": "Ba Đình"}, STRICT) == {after}
    done = _reindex(settings)
    assert done == {"Patient": 3, "Person": 3, "SearchParameter": 1}  # Person: the MPI's
    assert _ids(client, {"district": "Ba Đình"}, STRICT) == {before, after}
    assert _ids(client, {"district": "Cầu"}, STRICT) == {other}
    # The built-in parameters still work, and reindexing made no new version.
    assert _ids(client, {"identifier": "001185012345"}, STRICT) == {before}
    assert client.get(f"/fhir/Patient/{before}").json()["meta"] == version
    history = client.get(f"/fhir/Patient/{before}/_history").json()
    assert len(history["entry"]) == 1


def test_reindex_of_some_types_only(client: TestClient, settings: Settings) -> None:
    patient = _create(client, patient_in("Ba Đình"))
    _create(client, district_param())
    assert _reindex(settings, "Observation") == {}
    assert _ids(client, {"district": "Ba Đình"}, STRICT) == set()
    assert _reindex(settings, "Patient") == {"Patient": 1}
    assert _ids(client, {"district": "Ba Đình"}, STRICT) == {patient}


def test_a_deleted_parameter_is_unknown_again(client: TestClient, settings: Settings) -> None:
    sp = _create(client, district_param())
    patient = _create(client, patient_in("Ba Đình"))
    assert _ids(client, {"district": "Ba Đình"}) == {patient}
    assert client.delete(f"/fhir/SearchParameter/{sp}").status_code == 204
    # Lenient: the parameter is ignored (every patient matches) and reported.
    assert _ids(client, {"district": "Nowhere"}) == {patient}
    (outcome,) = _outcomes(client, {"district": "Nowhere"})
    assert outcome["issue"][0]["expression"] == ["district"]
    r = client.get("/fhir/Patient", params={"district": "Ba Đình"}, headers=STRICT)
    assert r.status_code == 400
    # A reindex drops the rows it left behind; the parameter can come back under a new id.
    _reindex(settings)
    again = _create(client, district_param())
    assert again != sp
    assert _ids(client, {"district": "Ba Đình"}, STRICT) == set()  # rows gone until reindex
    _reindex(settings)
    assert _ids(client, {"district": "Ba Đình"}, STRICT) == {patient}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"expression": "Patient.address.where(district = "}, "SearchParameter.expression"),
        ({"expression": "Observation.code"}, "SearchParameter.expression"),
        ({"code": "name"}, "SearchParameter.code"),  # R4 has Patient.name
        ({"base": ["Patients"]}, "SearchParameter.base"),
        ({"type": "special"}, "SearchParameter.type"),
        ({"url": "http://hl7.org/fhir/SearchParameter/Patient-name"}, "SearchParameter.url"),
    ],
)
def test_an_unusable_parameter_is_rejected_and_nothing_stored(
    client: TestClient, changes: dict[str, Any], problem: str
) -> None:
    r = client.post("/fhir/SearchParameter", json=district_param(**changes), headers=JSON)
    assert r.status_code == 400, r.text
    issue = r.json()["issue"][0]
    assert r.json()["resourceType"] == "OperationOutcome"
    assert issue["expression"][0].startswith(problem)  # base: the validator's own check
    assert client.get("/fhir/SearchParameter").json()["total"] == 0
    assert client.get("/fhir/SearchParameter/_history").json().get("entry", []) == []


def test_two_parameters_cannot_share_a_code_or_a_url(client: TestClient) -> None:
    _create(client, district_param())
    same_code = district_param(url="http://example.org/SearchParameter/district")
    r = client.post("/fhir/SearchParameter", json=same_code, headers=JSON)
    assert r.status_code == 400
    assert "district" in r.json()["issue"][0]["diagnostics"]
    same_url = district_param(code="quan-huyen")
    r = client.post("/fhir/SearchParameter", json=same_url, headers=JSON)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["SearchParameter.url"]


def test_only_active_parameters_are_used(client: TestClient) -> None:
    draft = district_param(status="draft", expression="Patient.address.where(")
    r = client.post("/fhir/SearchParameter", json=draft, headers=JSON)
    assert r.status_code == 201, r.text  # a draft is a document: not checked, not used
    sp = r.json()["id"]
    patient = _create(client, patient_in("Ba Đình"))
    assert client.get("/fhir/Patient", params={"district": "x"}, headers=STRICT).status_code == 400
    active = {**district_param(), "id": sp}
    r = client.put(f"/fhir/SearchParameter/{sp}", json=active, headers=JSON)
    assert r.status_code == 200, r.text
    later = _create(client, patient_in("Ba Đình", "001185099999"))
    assert _ids(client, {"district": "Ba Đình"}, STRICT) == {later}
    retired = {**active, "status": "retired"}
    assert client.put(f"/fhir/SearchParameter/{sp}", json=retired, headers=JSON).status_code == 200
    assert client.get("/fhir/Patient", params={"district": "x"}, headers=STRICT).status_code == 400
    assert patient


def test_an_updated_expression_indexes_new_writes_its_way(client: TestClient) -> None:
    sp = _create(client, district_param())
    city = {**district_param(expression="Patient.address.city"), "id": sp}
    r = client.put(f"/fhir/SearchParameter/{sp}", json=city, headers=JSON)
    assert r.status_code == 200, r.text
    patient = _create(client, patient_in("Ba Đình"))
    assert _ids(client, {"district": "Hà Nội"}, STRICT) == {patient}
    assert _ids(client, {"district": "Ba Đình"}, STRICT) == set()


def test_a_patch_that_breaks_the_expression_is_rejected(client: TestClient) -> None:
    sp = _create(client, district_param())
    patch = [{"op": "replace", "path": "/expression", "value": "Patient.address.where("}]
    r = client.patch(
        f"/fhir/SearchParameter/{sp}",
        json=patch,
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 400, r.text
    assert client.get(f"/fhir/SearchParameter/{sp}").json()["meta"]["versionId"] == "1"
    patient = _create(client, patient_in("Ba Đình"))
    assert _ids(client, {"district": "Ba Đình"}, STRICT) == {patient}


def test_in_a_transaction_the_parameter_applies_once_it_commits(client: TestClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": district_param(), "request": {"method": "POST", "url": "SearchParameter"}},
            {"resource": patient_in("Ba Đình"), "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    r = client.post("/fhir", json=bundle, headers=JSON)
    assert r.status_code == 200, r.text
    # The patient of the same transaction was indexed before the parameter was in use.
    assert _ids(client, {"district": "Ba Đình"}, STRICT) == set()
    later = _create(client, patient_in("Ba Đình", "001185099999"))
    assert _ids(client, {"district": "Ba Đình"}, STRICT) == {later}


def test_a_transaction_with_an_unusable_parameter_stores_nothing(client: TestClient) -> None:
    bad = ethnicity_param() | {"expression": "Patient.extension("}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": district_param(), "request": {"method": "POST", "url": "SearchParameter"}},
            {"resource": bad, "request": {"method": "POST", "url": "SearchParameter"}},
        ],
    }
    r = client.post("/fhir", json=bundle, headers=JSON)
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[1].resource.expression"]
    assert client.get("/fhir/SearchParameter").json()["total"] == 0
    assert client.get("/fhir/Patient", params={"district": "x"}, headers=STRICT).status_code == 400


def test_a_transaction_can_hand_a_code_over_to_another_parameter(client: TestClient) -> None:
    old = _create(client, district_param())
    replacement = district_param(
        url="http://example.org/SearchParameter/patient-district-v2",
        expression="Patient.address.district | Patient.address.city",
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": replacement, "request": {"method": "POST", "url": "SearchParameter"}},
            {"request": {"method": "DELETE", "url": f"SearchParameter/{old}"}},
        ],
    }
    r = client.post("/fhir", json=bundle, headers=JSON)
    assert r.status_code == 200, r.text
    patient = _create(client, patient_in("Ba Đình"))
    assert _ids(client, {"district": "Hà Nội"}, STRICT) == {patient}
    assert _ids(client, {"district": "Ba Đình"}, STRICT) == {patient}


def test_batch_entries_are_checked_on_their_own(client: TestClient) -> None:
    bad = ethnicity_param() | {"expression": "Patient.extension("}
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": bad, "request": {"method": "POST", "url": "SearchParameter"}},
            {"resource": district_param(), "request": {"method": "POST", "url": "SearchParameter"}},
        ],
    }
    r = client.post("/fhir", json=bundle, headers=JSON)
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["400 Bad Request", "201 Created"]
    patient = _create(client, patient_in("Ba Đình"))
    assert _ids(client, {"district": "Ba Đình"}, STRICT) == {patient}


def test_custom_parameters_survive_a_restart(settings: Settings) -> None:
    with _app(settings) as first:
        _create(first, district_param())
        patient = _create(first, patient_in("Ba Đình"))
    with _app(settings) as second:
        assert _ids(second, {"district": "Ba Đình"}, STRICT) == {patient}
        later = _create(second, patient_in("Ba Đình", "001185099999"))
        assert _ids(second, {"district": "Ba Đình"}, STRICT) == {patient, later}
        statement = second.get("/fhir/metadata").json()
        (patient_rest,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Patient"]
        assert "district" in {p["name"] for p in patient_rest["searchParam"]}


def test_servers_do_not_share_custom_parameters(settings: Settings, tmp_path: Any) -> None:
    other = Settings(database_url=f"sqlite:///{tmp_path / 'other.db'}", dev=True)
    with _app(settings) as first, _app(other) as second:
        _create(first, district_param())
        r = second.get("/fhir/Patient", params={"district": "x"}, headers=STRICT)
        assert r.status_code == 400


def test_another_process_on_the_same_database_picks_it_up(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("vnehr.search.custom.POLL_SECONDS", 0.0)
    with _app(settings) as first, _app(settings) as second:
        sp = _create(first, district_param())
        patient = _create(second, patient_in("Ba Đình"))  # the write polls first
        assert _ids(second, {"district": "Ba Đình"}, STRICT) == {patient}
        assert first.delete(f"/fhir/SearchParameter/{sp}").status_code == 204
        second.get("/fhir/Patient")  # the search polls
        r = second.get("/fhir/Patient", params={"district": "x"}, headers=STRICT)
        assert r.status_code == 400


def test_a_custom_composite_pairs_values_of_one_element(client: TestClient) -> None:
    # Observation.component pairs: a component's code with its interpretation, e.g. the
    # systolic pressure flagged high.
    code = "http://hl7.org/fhir/SearchParameter/clinical-code"
    flag = "http://hl7.org/fhir/SearchParameter/Observation-component-code"
    composite = {
        "resourceType": "SearchParameter",
        "url": "http://example.org/SearchParameter/component-code-interpretation",
        "name": "ComponentCodeInterpretation",
        "status": "active",
        "description": "A component's code with its interpretation",
        "code": "component-code-interpretation",
        "base": ["Observation"],
        "type": "composite",
        "expression": "Observation.component",
        "component": [
            {"definition": code, "expression": "code"},
            {"definition": flag, "expression": "interpretation"},
        ],
    }
    _create(client, composite)
    v3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

    def pressure(high: str) -> dict[str, Any]:
        def part(loinc: str) -> dict[str, Any]:
            out: dict[str, Any] = {"code": {"coding": [{"system": LOINC, "code": loinc}]}}
            out["valueQuantity"] = {"value": 150, "unit": "mmHg"}
            if loinc == high:
                out["interpretation"] = [{"coding": [{"system": v3, "code": "H"}]}]
            return out

        return {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "component": [part("8480-6"), part("8462-4")],
        }

    systolic_high = _create(client, pressure("8480-6"))
    diastolic_high = _create(client, pressure("8462-4"))
    r = client.get(
        "/fhir/Observation",
        params={"component-code-interpretation": f"{LOINC}|8480-6${v3}|H"},
        headers=STRICT,
    )
    assert r.status_code == 200, r.text
    assert [e["resource"]["id"] for e in r.json().get("entry", [])] == [systolic_high]
    assert diastolic_high != systolic_high
    broken = {**composite, "url": "http://example.org/sp/x", "code": "x"}
    broken["component"] = [{"definition": "http://example.org/none", "expression": "code"}] * 2
    r = client.post("/fhir/SearchParameter", json=broken, headers=JSON)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["SearchParameter.component"]
