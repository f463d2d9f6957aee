"""SMART App Launch: authorization code with PKCE for citizens and clinicians, launch
context, refresh-token rotation, ID tokens, introspection and revocation."""

from __future__ import annotations

from typing import Any

from joserfc import jwk, jwt
from starlette.testclient import TestClient

from tests.smart import (
    APP_REDIRECT,
    DOCTOR_PASSWORD,
    FHIR,
    bearer,
    citizen_code,
    exchange,
    national_token,
    register_app,
    sign_in,
    system_token,
)


def test_a_citizen_signs_in_and_sees_only_her_own_record(
    api: TestClient, people: dict[str, Any]
) -> None:
    client_id, code, verifier = citizen_code(
        api, people, "openid fhirUser launch/patient patient/*.rs"
    )
    token = exchange(api, client_id, code, verifier)
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["patient"] == people["lan"]
    assert set(body["scope"].split()) == {"openid", "fhirUser", "launch/patient", "patient/*.rs"}
    headers = bearer(body["access_token"])
    assert api.get(f"/fhir/Patient/{people['lan']}", headers=headers).status_code == 200
    assert api.get(f"/fhir/Patient/{people['other']}", headers=headers).status_code == 404
    found = api.get("/fhir/Observation", headers=headers).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [people["lan_obs"]]
    other = api.get(f"/fhir/Observation/{people['other_obs']}", headers=headers)
    assert other.status_code == 404


def test_a_citizen_reports_allergies_on_her_own_record_only(
    api: TestClient, people: dict[str, Any]
) -> None:
    client_id, code, verifier = citizen_code(
        api,
        people,
        "launch/patient patient/AllergyIntolerance.cruds patient/Observation.cruds "
        "patient/Patient.rs",
    )
    headers = bearer(exchange(api, client_id, code, verifier).json()["access_token"])
    allergy = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"text": "Dị ứng penicillin"},
        "patient": {"reference": f"Patient/{people['other']}"},
    }
    refused = api.post("/fhir/AllergyIntolerance", json=allergy, headers=headers)
    assert refused.status_code == 403
    admin = bearer(national_token(api))
    count = api.get("/fhir/AllergyIntolerance?_summary=count", headers=admin).json()["total"]
    assert count == 0  # nothing was written
    # Citizens report allergies; their observations come from facilities.
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Huyết áp tự đo"},
        "subject": {"reference": f"Patient/{people['lan']}"},
    }
    assert api.post("/fhir/Observation", json=obs, headers=headers).status_code == 403
    own = {**allergy, "patient": {"reference": f"Patient/{people['lan']}"}}
    created = api.post("/fhir/AllergyIntolerance", json=own, headers=headers)
    assert created.status_code == 201, created.text
    tags = created.json()["meta"]["tag"]
    assert {
        "system": "https://vnehr.org/fhir/CodeSystem/provenance",
        "code": "patient-reported",
    } in tags
    changed = {**created.json(), "criticality": "high"}
    update = api.put(f"/fhir/AllergyIntolerance/{changed['id']}", json=changed, headers=headers)
    assert update.status_code == 200, update.text
    # Moving her allergy onto someone else's record is a write outside the grant.
    moved = {**changed, "patient": {"reference": f"Patient/{people['other']}"}}
    assert (
        api.put(
            f"/fhir/AllergyIntolerance/{changed['id']}", json=moved, headers=headers
        ).status_code
        == 403
    )
    stored = api.get(f"/fhir/AllergyIntolerance/{changed['id']}", headers=admin).json()
    assert stored["patient"]["reference"] == f"Patient/{people['lan']}"
    theirs = api.put(
        f"/fhir/Observation/{people['lan_obs']}",
        json={**obs, "id": people["lan_obs"]},
        headers=headers,
    )
    assert theirs.status_code == 403
    assert api.delete(f"/fhir/Patient/{people['lan']}", headers=headers).status_code == 403


def test_a_doctor_launched_from_the_ehr_gets_the_patient_and_encounter_in_context(
    api: TestClient, people: dict[str, Any]
) -> None:
    ehr = system_token(api, scope="vnehr/launch")
    launch = api.post(
        "/auth/launch",
        json={"patient": people["lan"], "encounter": "enc-1"},
        headers=bearer(ehr),
    )
    assert launch.status_code == 201, launch.text
    client_id, _ = register_app(api)
    code, verifier = sign_in(
        api,
        client_id,
        username="bs.duc",
        password=DOCTOR_PASSWORD,
        scope="launch openid fhirUser patient/Observation.rs user/Patient.rs",
        launch=launch.json()["launch"],
        nonce="n-0S6_WzA2Mj",
    )
    body = exchange(api, client_id, code, verifier).json()
    assert body["patient"] == people["lan"]
    assert body["encounter"] == "enc-1"
    jwks = jwk.KeySet.import_key_set(api.get("/auth/jwks").json())
    id_token = jwt.decode(body["id_token"], jwks, algorithms=["RS256"]).claims
    assert id_token["fhirUser"] == "Practitioner/duc"
    assert id_token["aud"] == client_id
    assert id_token["iss"] == FHIR
    assert id_token["nonce"] == "n-0S6_WzA2Mj"


def test_an_unknown_launch_is_sent_back_to_the_app_as_an_error(
    api: TestClient, people: dict[str, Any]
) -> None:
    client_id, _ = register_app(api)
    from tests.smart import authorize_params, pkce

    _, challenge = pkce()
    params = authorize_params(client_id, "launch patient/*.rs", challenge, launch="made-up")
    answer = api.get("/auth/authorize", params=params, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(APP_REDIRECT + "?error=invalid_request")


def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_whole_grant(
    api: TestClient, people: dict[str, Any]
) -> None:
    client_id, code, verifier = citizen_code(
        api, people, "launch/patient offline_access patient/*.rs"
    )
    first = exchange(api, client_id, code, verifier).json()

    def refresh(token: str, **extra: str) -> Any:
        form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id}
        return api.post("/auth/token", data={**form, **extra})

    second = refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert second.json()["patient"] == people["lan"]
    headers = bearer(second.json()["access_token"])
    assert api.get(f"/fhir/Patient/{people['lan']}", headers=headers).status_code == 200
    # The first refresh token again: a thief or a replay. Everything of this grant dies.
    stolen = refresh(first["refresh_token"])
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    assert refresh(second.json()["refresh_token"]).status_code == 400
    assert api.get(f"/fhir/Patient/{people['lan']}", headers=headers).status_code == 401


def test_a_refresh_cannot_widen_the_scopes(api: TestClient, people: dict[str, Any]) -> None:
    client_id, code, verifier = citizen_code(
        api, people, "launch/patient offline_access patient/Observation.rs"
    )
    first = exchange(api, client_id, code, verifier).json()
    wider = api.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": client_id,
            "scope": "patient/Observation.rs patient/*.cruds",
        },
    )
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"


def test_an_authorization_code_works_once(api: TestClient, people: dict[str, Any]) -> None:
    client_id, code, verifier = citizen_code(api, people, "launch/patient patient/*.rs")
    first = exchange(api, client_id, code, verifier)
    assert first.status_code == 200
    again = exchange(api, client_id, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    # What the first use gave is revoked too (RFC 6749 4.1.2).
    headers = bearer(first.json()["access_token"])
    assert api.get(f"/fhir/Patient/{people['lan']}", headers=headers).status_code == 401


def test_a_wrong_pkce_verifier_gets_no_token(api: TestClient, people: dict[str, Any]) -> None:
    client_id, code, _ = citizen_code(api, people, "launch/patient patient/*.rs")
    wrong = exchange(api, client_id, code, "x" * 50)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"


def test_introspection_and_revocation_of_an_access_token(
    api: TestClient, people: dict[str, Any]
) -> None:
    client_id, secret = register_app(api, auth_method="client_secret_basic")
    assert secret is not None
    code, verifier = sign_in(
        api, client_id, username="bs.duc", password=DOCTOR_PASSWORD, scope="user/Patient.rs"
    )
    token = api.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": APP_REDIRECT,
        },
        auth=(client_id, secret),
    ).json()["access_token"]
    seen = api.post("/auth/introspect", data={"token": token}, auth=(client_id, secret)).json()
    assert seen["active"] is True
    assert seen["scope"] == "user/Patient.rs"
    assert seen["fhirUser"] == "Practitioner/duc"
    assert seen["facility"] == "org-a"
    assert (
        api.post("/auth/revoke", data={"token": token}, auth=(client_id, secret)).status_code == 200
    )
    gone = api.post("/auth/introspect", data={"token": token}, auth=(client_id, secret)).json()
    assert gone == {"active": False}
    assert api.get("/fhir/Patient", headers=bearer(token)).status_code == 401
    wrong = api.post("/auth/introspect", data={"token": token}, auth=(client_id, "guess"))
    assert wrong.status_code == 401


def test_a_narrowed_scope_shows_only_the_category_it_names(
    api: TestClient, people: dict[str, Any]
) -> None:
    admin = bearer(system_token(api))
    category = "http://terminology.hl7.org/CodeSystem/observation-category"
    lab = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": category, "code": "laboratory"}]}],
        "code": {"text": "Glucose"},
        "subject": {"reference": f"Patient/{people['lan']}"},
    }
    lab_id = api.post("/fhir/Observation", json=lab, headers=admin).json()["id"]
    client_id, code, verifier = citizen_code(
        api, people, f"launch/patient patient/Observation.rs?category={category}|laboratory"
    )
    headers = bearer(exchange(api, client_id, code, verifier).json()["access_token"])
    found = api.get("/fhir/Observation", headers=headers).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [lab_id]
    assert api.get(f"/fhir/Observation/{people['lan_obs']}", headers=headers).status_code == 404
    assert api.get(f"/fhir/Observation/{lab_id}", headers=headers).status_code == 200
    assert api.get(f"/fhir/Patient/{people['lan']}", headers=headers).status_code == 403
