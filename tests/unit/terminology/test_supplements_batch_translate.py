"""Code system supplements, fragments, R5-style $translate and $batch-validate-code, through
the FHIR API on both backends (resources sent as tx-resource)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from vnehr.terminology.supplements import EXT_VS_SUPPLEMENT, requested

BASE = "http://example.org/fhir/CodeSystem/base"
SUPP = "http://example.org/fhir/CodeSystem/base-nl"
FRAG = "http://example.org/fhir/CodeSystem/fragment"
VS = "http://example.org/fhir/ValueSet/base"

Json = dict[str, Any]

BASE_CS: Json = {
    "resourceType": "CodeSystem",
    "url": BASE,
    "version": "1.0.0",
    "name": "Base",
    "status": "active",
    "content": "complete",
    "concept": [
        {"code": "a", "display": "Alpha"},
        {"code": "b", "display": "Beta"},
    ],
}
SUPP_CS: Json = {
    "resourceType": "CodeSystem",
    "url": SUPP,
    "version": "0.1.0",
    "status": "active",
    "content": "supplement",
    "supplements": BASE,
    "concept": [
        {
            "code": "a",
            "designation": [{"language": "nl", "value": "Alfa"}],
            "property": [{"code": "weight", "valueDecimal": 2}],
        }
    ],
}


def value_set(extension: str | None = None) -> Json:
    vs: Json = {
        "resourceType": "ValueSet",
        "url": VS,
        "status": "active",
        "compose": {"include": [{"system": BASE}]},
    }
    if extension:
        vs["extension"] = [{"url": EXT_VS_SUPPLEMENT, "valueCanonical": extension}]
    return vs


def post(client: TestClient, path: str, *params: Json, resources: tuple[Json, ...] = ()) -> Any:
    body = {
        "resourceType": "Parameters",
        "parameter": [*params, *({"name": "tx-resource", "resource": r} for r in resources)],
    }
    return client.post(f"/fhir/{path}", json=body)


def named(answer: Json, name: str) -> list[Json]:
    return [p for p in answer.get("parameter") or [] if p["name"] == name]


def test_supplements_are_looked_up_only_when_asked_for() -> None:
    assert requested(None, []) == []
    assert requested(value_set(), []) == []
    assert requested(value_set(f"{SUPP}|0.1.0"), [SUPP]) == [SUPP, f"{SUPP}|0.1.0"]


def test_lookup_with_a_supplement_adds_its_designations(client: TestClient) -> None:
    res = post(
        client,
        "CodeSystem/$lookup",
        {"name": "system", "valueUri": BASE},
        {"name": "code", "valueCode": "a"},
        {"name": "useSupplement", "valueCanonical": SUPP},
        resources=(BASE_CS, SUPP_CS),
    )
    assert res.status_code == 200, res.text
    answer = res.json()
    designations = [
        {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in d["part"]}
        for d in named(answer, "designation")
    ]
    assert {"language": "nl", "source": f"{SUPP}|0.1.0", "value": "Alfa"} in designations
    assert named(answer, "used-supplement") == [
        {"name": "used-supplement", "valueCanonical": f"{SUPP}|0.1.0"}
    ]
    # without useSupplement: the base code system only
    plain = post(
        client,
        "CodeSystem/$lookup",
        {"name": "system", "valueUri": BASE},
        {"name": "code", "valueCode": "a"},
        resources=(BASE_CS, SUPP_CS),
    ).json()
    assert not named(plain, "designation") and not named(plain, "used-supplement")


def test_an_unknown_supplement_is_an_error(client: TestClient) -> None:
    for path, extra in (
        ("CodeSystem/$lookup", {"name": "code", "valueCode": "a"}),
        ("ValueSet/$validate-code", {"name": "code", "valueCode": "a"}),
        ("ValueSet/$expand", {"name": "count", "valueInteger": 5}),
    ):
        res = post(
            client,
            path,
            {"name": "system", "valueUri": BASE},
            {"name": "url", "valueUri": VS},
            {"name": "useSupplement", "valueCanonical": f"{SUPP}-x"},
            extra,
            resources=(BASE_CS, SUPP_CS, value_set()),
        )
        assert res.status_code == 404, (path, res.text)
        issue = res.json()["issue"][0]
        assert issue["code"] == "not-found"
        assert issue["details"]["text"] == f"Required supplement not found: {SUPP}-x"
    # named by the value set
    res = post(
        client,
        "ValueSet/$expand",
        {"name": "url", "valueUri": VS},
        resources=(BASE_CS, SUPP_CS, value_set(f"{SUPP}|9.9.9")),
    )
    assert res.status_code == 404
    assert SUPP in res.json()["issue"][0]["details"]["text"]


def test_a_supplement_display_is_valid_when_the_supplement_is_used(client: TestClient) -> None:
    coding = {"name": "coding", "valueCoding": {"system": BASE, "code": "a", "display": "Alfa"}}
    without = post(
        client,
        "ValueSet/$validate-code",
        {"name": "url", "valueUri": VS},
        coding,
        resources=(BASE_CS, SUPP_CS, value_set()),
    ).json()
    assert named(without, "result")[0]["valueBoolean"] is False
    with_vs = post(
        client,
        "ValueSet/$validate-code",
        {"name": "url", "valueUri": VS},
        {"name": "displayLanguage", "valueCode": "nl"},
        coding,
        resources=(BASE_CS, SUPP_CS, value_set(SUPP)),
    ).json()
    assert named(with_vs, "result")[0]["valueBoolean"] is True
    assert named(with_vs, "display")[0]["valueString"] == "Alfa"


def test_expansion_names_the_supplement_used(client: TestClient) -> None:
    res = post(
        client,
        "ValueSet/$expand",
        {"name": "url", "valueUri": VS},
        {"name": "includeDesignations", "valueBoolean": True},
        resources=(BASE_CS, SUPP_CS, value_set(SUPP)),
    )
    assert res.status_code == 200, res.text
    expansion = res.json()["expansion"]
    assert {"name": "used-supplement", "valueUri": f"{SUPP}|0.1.0"} in expansion["parameter"]
    a = next(c for c in expansion["contains"] if c["code"] == "a")
    assert {"language": "nl", "value": "Alfa"} in a["designation"]


def test_a_supplement_is_not_a_coding_system(client: TestClient) -> None:
    answer = post(
        client,
        "CodeSystem/$validate-code",
        {"name": "coding", "valueCoding": {"system": SUPP, "code": "a"}},
        resources=(BASE_CS, SUPP_CS),
    ).json()
    assert named(answer, "result")[0]["valueBoolean"] is False
    assert named(answer, "message")[0]["valueString"] == (
        f"CodeSystem {SUPP}|0.1.0 is a supplement, so can't be used as a value in Coding.system"
    )


def test_an_unknown_code_of_a_fragment_is_a_warning(client: TestClient) -> None:
    fragment = {**BASE_CS, "url": FRAG, "content": "fragment"}
    vs = {**value_set(), "compose": {"include": [{"system": FRAG}]}}
    answer = post(
        client,
        "ValueSet/$validate-code",
        {"name": "url", "valueUri": VS},
        {"name": "coding", "valueCoding": {"system": FRAG, "code": "zz"}},
        resources=(fragment, vs),
    ).json()
    assert named(answer, "result")[0]["valueBoolean"] is True
    issue = named(answer, "issues")[0]["resource"]["issue"][0]
    assert issue["severity"] == "warning" and "fragment" in issue["details"]["text"]
    expansion = post(
        client, "ValueSet/$expand", {"name": "url", "valueUri": VS}, resources=(fragment, vs)
    ).json()["expansion"]
    assert {"name": "used-fragment", "valueUri": f"{FRAG}|1.0.0"} in expansion["parameter"]


MAP: Json = {
    "resourceType": "ConceptMap",
    "url": "http://example.org/fhir/ConceptMap/m",
    "version": "2.0",
    "status": "active",
    "group": [
        {
            "source": "http://example.org/src",
            "target": BASE,
            "element": [
                {"code": "s1", "target": [{"code": "a", "relationship": "equivalent"}]},
                {
                    "code": "s2",
                    "target": [{"code": "b", "relationship": "source-is-broader-than-target"}],
                },
            ],
        }
    ],
}


def test_translate_with_r5_parameters(client: TestClient) -> None:
    forward = post(
        client,
        "ConceptMap/$translate",
        {"name": "sourceCode", "valueCode": "s2"},
        {"name": "sourceSystem", "valueUri": "http://example.org/src"},
        {"name": "targetSystem", "valueUri": BASE},
        resources=(MAP,),
    ).json()
    assert named(forward, "result")[0]["valueBoolean"] is True
    parts = {p["name"]: p for p in named(forward, "match")[0]["part"]}
    assert parts["concept"]["valueCoding"] == {"system": BASE, "code": "b"}
    assert parts["equivalence"]["valueCode"] == "wider"
    assert parts["originMap"]["valueCanonical"] == "http://example.org/fhir/ConceptMap/m|2.0"
    reverse = post(
        client,
        "ConceptMap/$translate",
        {"name": "targetCode", "valueCode": "a"},
        {"name": "targetSystem", "valueUri": BASE},
        {"name": "sourceSystem", "valueUri": "http://example.org/src"},
        resources=(MAP,),
    ).json()
    parts = {p["name"]: p for p in named(reverse, "match")[0]["part"]}
    assert parts["source"]["valueCoding"] == {"system": "http://example.org/src", "code": "s1"}
    assert parts["concept"]["valueCoding"] == {"system": BASE, "code": "a"}


def test_batch_validate_code(client: TestClient) -> None:
    def validation(*params: Json) -> Json:
        return {
            "name": "validation",
            "resource": {"resourceType": "Parameters", "parameter": list(params)},
        }

    res = post(
        client,
        "ValueSet/$batch-validate-code",
        {"name": "url", "valueUri": VS},
        validation({"name": "coding", "valueCoding": {"system": BASE, "code": "a"}}),
        validation({"name": "codingX", "valueCoding": {"system": BASE, "code": "a"}}),
        validation({"name": "coding", "valueCoding": {"system": BASE, "code": "zz"}}),
        resources=(BASE_CS, value_set()),
    )
    assert res.status_code == 200, res.text
    answers = [p["resource"] for p in named(res.json(), "validation")]
    assert [a["resourceType"] for a in answers] == ["Parameters", "OperationOutcome", "Parameters"]
    assert named(answers[0], "result")[0]["valueBoolean"] is True
    assert "Unable to find code to validate" in answers[1]["issue"][0]["details"]["text"]
    assert named(answers[2], "result")[0]["valueBoolean"] is False


def test_a_filter_without_a_value_is_a_located_error(client: TestClient) -> None:
    broken = {
        **value_set(),
        "compose": {
            "include": [{"system": BASE, "filter": [{"property": "concept", "op": "is-a"}]}]
        },
    }
    for path, extra in (
        ("ValueSet/$expand", {"name": "count", "valueInteger": 5}),
        (
            "ValueSet/$validate-code",
            {"name": "coding", "valueCoding": {"system": BASE, "code": "a"}},
        ),
    ):
        res = post(
            client, path, {"name": "url", "valueUri": VS}, extra, resources=(BASE_CS, broken)
        )
        assert res.status_code == 400, (path, res.text)
        issue = res.json()["issue"][0]
        assert issue["details"]["text"] == (
            f"The system {BASE} filter with property = concept, op = is-a has no value"
        )
        assert issue["expression"] == ["ValueSet.compose.include[0].filter[0]"]
