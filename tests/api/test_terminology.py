"""The terminology service through the FHIR API, on both backends (docs/terminology.md)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

ICD = "http://example.org/fhir/CodeSystem/icd-demo"
LAB = "http://hospital-a.example.org/lab-codes"
LOINC = "http://loinc.org"
CATALOGUE = "https://fhir.moh.gov.vn/CodeSystem/lab-catalogue"


def icd(version: str = "2024") -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": f"icd-{version}",
        "url": ICD,
        "version": version,
        "name": "IcdDemo",
        "status": "active",
        "content": "complete",
        "caseSensitive": False,
        "property": [{"code": "chapter", "type": "code"}],
        "concept": [
            {
                "code": "IX",
                "display": "Bệnh hệ tuần hoàn",
                "concept": [
                    {
                        "code": "I10",
                        "display": "Tăng huyết áp vô căn (nguyên phát)",
                        "designation": [{"language": "en", "value": "Essential hypertension"}],
                        "property": [{"code": "chapter", "valueCode": "IX"}],
                    },
                    {
                        "code": "I11",
                        "display": "Bệnh tim do tăng huyết áp",
                        "property": [{"code": "chapter", "valueCode": "IX"}],
                        "concept": [
                            {
                                "code": "I11.0",
                                "display": "Bệnh tim do tăng huyết áp có suy tim",
                                "property": [{"code": "chapter", "valueCode": "IX"}],
                            }
                        ],
                    },
                ],
            },
            {
                "code": "A90",
                "display": "Sốt Dengue [sốt xuất huyết Dengue cổ điển]",
                "designation": [{"language": "en", "value": "Dengue fever"}],
                "property": [{"code": "chapter", "valueCode": "I"}],
            },
            {
                "code": "A91",
                "display": "Sốt xuất huyết Dengue",
                "property": [
                    {"code": "chapter", "valueCode": "I"},
                    {"code": "status", "valueCode": "retired"},
                ],
            },
        ],
    }


def value_set(vs_id: str, compose: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "id": vs_id,
        "url": f"http://example.org/fhir/ValueSet/{vs_id}",
        "status": "active",
        "compose": compose,
    }


def params(resource: dict[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for p in resource["parameter"]:
        value = next((v for k, v in p.items() if k.startswith("value")), p.get("part"))
        out.setdefault(p["name"], []).append(value if value is not None else p.get("resource"))
    return out


@pytest.fixture
def loaded(client: TestClient) -> TestClient:
    assert client.put("/fhir/CodeSystem/icd-2024", json=icd()).status_code == 201
    cardio = value_set(
        "cardio",
        {
            "include": [
                {"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": "IX"}]}
            ]
        },
    )
    assert client.put("/fhir/ValueSet/cardio", json=cardio).status_code == 201
    return client


def codes(expansion: dict[str, Any]) -> list[str]:
    return [c["code"] for c in expansion["expansion"].get("contains", [])]


def test_expand_filters_by_hierarchy_and_accent_free_text(loaded: TestClient) -> None:
    r = loaded.get("/fhir/ValueSet/cardio/$expand")
    assert r.status_code == 200, r.text
    assert codes(r.json()) == ["IX", "I10", "I11", "I11.0"]
    assert r.json()["expansion"]["total"] == 4
    # Type-ahead: case- and accent-insensitive, each word a prefix.
    r = loaded.get(
        "/fhir/ValueSet/$expand",
        params={"url": "http://example.org/fhir/ValueSet/cardio", "filter": "TANG huyet"},
    )
    assert codes(r.json()) == ["I10", "I11", "I11.0"]
    r = loaded.get("/fhir/ValueSet/cardio/$expand", params={"filter": "suy tim"})
    assert codes(r.json()) == ["I11.0"]


def test_expand_pages_and_display_language(loaded: TestClient) -> None:
    r = loaded.get("/fhir/ValueSet/cardio/$expand", params={"count": "2", "offset": "1"})
    body = r.json()["expansion"]
    assert [c["code"] for c in body["contains"]] == ["I10", "I11"]
    assert body["total"] == 4 and body["offset"] == 1
    r = loaded.post(
        "/fhir/ValueSet/$expand",
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "url", "valueUri": "http://example.org/fhir/ValueSet/cardio"},
                {"name": "displayLanguage", "valueCode": "en"},
            ],
        },
    )
    shown = {c["code"]: c.get("display") for c in r.json()["expansion"]["contains"]}
    assert shown["I10"] == "Essential hypertension"
    assert shown["I11"] == "Bệnh tim do tăng huyết áp"  # no English designation: Vietnamese


def test_expand_inline_value_set_with_property_filter_exclude_and_active_only(
    loaded: TestClient,
) -> None:
    vs = value_set(
        "infections",
        {
            "include": [
                {"system": ICD, "filter": [{"property": "chapter", "op": "=", "value": "I"}]}
            ],
            "exclude": [{"system": ICD, "concept": [{"code": "A90"}]}],
        },
    )
    body = {"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": vs}]}
    r = loaded.post("/fhir/ValueSet/$expand", json=body)
    assert r.status_code == 200, r.text
    assert codes(r.json()) == ["A91"]
    assert r.json()["expansion"]["contains"][0]["inactive"] is True
    body["parameter"].append({"name": "activeOnly", "valueBoolean": True})
    assert codes(loaded.post("/fhir/ValueSet/$expand", json=body).json()) == []


def test_validate_code_in_value_set_and_code_system(loaded: TestClient) -> None:
    url = "http://example.org/fhir/ValueSet/cardio"
    r = loaded.get(
        "/fhir/ValueSet/$validate-code", params={"url": url, "system": ICD, "code": "I10"}
    )
    out = params(r.json())
    assert out["result"] == [True] and out["display"] == ["Tăng huyết áp vô căn (nguyên phát)"]
    # Not in the value set (a real code of the system).
    out = params(
        loaded.get(
            "/fhir/ValueSet/$validate-code", params={"url": url, "system": ICD, "code": "A90"}
        ).json()
    )
    assert out["result"] == [False]
    assert "was not found in the value set" in out["message"][0]
    # A wrong display.
    out = params(
        loaded.get(
            "/fhir/ValueSet/$validate-code",
            params={"url": url, "system": ICD, "code": "I10", "display": "Đái tháo đường"},
        ).json()
    )
    assert out["result"] == [False] and "Wrong Display Name" in out["message"][0]
    # The English designation is a valid display too; the system is case-insensitive.
    out = params(
        loaded.get(
            "/fhir/CodeSystem/$validate-code",
            params={"url": ICD, "code": "i10", "display": "Essential hypertension"},
        ).json()
    )
    assert out["result"] == [True]
    out = params(
        loaded.get("/fhir/CodeSystem/$validate-code", params={"url": ICD, "code": "Z99"}).json()
    )
    assert out["result"] == [False] and "Unknown code 'Z99'" in out["message"][0]
    # A CodeableConcept: one good coding is enough.
    cc = {
        "coding": [
            {"system": "http://other.example", "code": "x"},
            {"system": ICD, "code": "I11.0"},
        ]
    }
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "url", "valueUri": url},
            {"name": "codeableConcept", "valueCodeableConcept": cc},
        ],
    }
    out = params(loaded.post("/fhir/ValueSet/$validate-code", json=body).json())
    assert out["result"] == [True]


def test_lookup_subsumes_and_versions(loaded: TestClient) -> None:
    out = params(
        loaded.get("/fhir/CodeSystem/$lookup", params={"system": ICD, "code": "I11"}).json()
    )
    assert out["name"] == ["IcdDemo"] and out["version"] == ["2024"]
    props = {
        (p[0]["valueCode"], next(v for k, v in p[1].items() if k.startswith("value")))
        for p in out["property"]
    }
    assert ("parent", "IX") in props and ("child", "I11.0") in props
    assert ("chapter", "IX") in props
    r = loaded.get(
        "/fhir/CodeSystem/$subsumes", params={"system": ICD, "codeA": "IX", "codeB": "I11.0"}
    )
    assert params(r.json())["outcome"] == ["subsumes"]
    r = loaded.get(
        "/fhir/CodeSystem/$subsumes", params={"system": ICD, "codeA": "I11.0", "codeB": "IX"}
    )
    assert params(r.json())["outcome"] == ["subsumed-by"]
    r = loaded.get(
        "/fhir/CodeSystem/$subsumes", params={"system": ICD, "codeA": "A90", "codeB": "I10"}
    )
    assert params(r.json())["outcome"] == ["not-subsumed"]
    # A second version: the latest is used unless one is asked for.
    newer = icd("2025")
    newer["concept"].append({"code": "U07.1", "display": "COVID-19"})
    assert loaded.put("/fhir/CodeSystem/icd-2025", json=newer).status_code == 201
    ok = loaded.get("/fhir/CodeSystem/$lookup", params={"system": ICD, "code": "U07.1"})
    assert ok.status_code == 200 and params(ok.json())["version"] == ["2025"]
    old = loaded.get(
        "/fhir/CodeSystem/$lookup", params={"system": ICD, "code": "U07.1", "version": "2024"}
    )
    assert old.status_code == 404
    # Deleting a CodeSystem removes its concepts.
    assert loaded.delete("/fhir/CodeSystem/icd-2025").status_code in (200, 204)
    gone = loaded.get("/fhir/CodeSystem/$lookup", params={"system": ICD, "code": "U07.1"})
    assert gone.status_code == 404


def test_translate_both_directions_and_local_codes_mapped_on_write(loaded: TestClient) -> None:
    cmap = {
        "resourceType": "ConceptMap",
        "id": "hospital-a-lab",
        "url": "http://hospital-a.example.org/ConceptMap/lab",
        "status": "active",
        "group": [
            {
                "source": LAB,
                "target": LOINC,
                "element": [
                    {
                        "code": "GLU",
                        "display": "Đường huyết",
                        "target": [
                            {
                                "code": "14771-0",
                                "display": "Fasting glucose",
                                "equivalence": "equivalent",
                            }
                        ],
                    },
                    {"code": "XX", "target": [{"equivalence": "unmatched"}]},
                ],
            }
        ],
    }
    assert loaded.put("/fhir/ConceptMap/hospital-a-lab", json=cmap).status_code == 201
    out = params(
        loaded.get("/fhir/ConceptMap/$translate", params={"system": LAB, "code": "GLU"}).json()
    )
    assert out["result"] == [True]
    concept = out["match"][0][1]["valueCoding"]
    assert (concept["system"], concept["code"]) == (LOINC, "14771-0")
    back = params(
        loaded.get(
            "/fhir/ConceptMap/hospital-a-lab/$translate",
            params={"system": LOINC, "code": "14771-0", "reverse": "true"},
        ).json()
    )
    assert back["match"][0][1]["valueCoding"]["code"] == "GLU"
    none = params(
        loaded.get("/fhir/ConceptMap/$translate", params={"system": LAB, "code": "XX"}).json()
    )
    assert none["result"] == [False]
    # An Observation arriving with the local code gets the LOINC coding added.
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LAB, "code": "GLU", "display": "Đường huyết"}]},
        "meta": {"source": "http://hospital-a.example.org"},
    }
    r = loaded.post("/fhir/Observation", json=obs)
    assert r.status_code == 201, r.text
    stored = loaded.get(f"/fhir/Observation/{r.json()['id']}").json()
    assert stored["code"]["coding"][0] == {"system": LAB, "code": "GLU", "display": "Đường huyết"}
    assert {"system": LOINC, "code": "14771-0", "display": "Fasting glucose"} in stored["code"][
        "coding"
    ]
    found = loaded.get("/fhir/Observation", params={"code": f"{LOINC}|14771-0"}).json()
    assert found.get("total", len(found.get("entry", []))) == 1
    # A local code without a map is kept as sent and reported.
    obs["code"]["coding"] = [{"system": LAB, "code": "HBA", "display": "HbA1c"}]
    assert loaded.post("/fhir/Observation", json=obs).status_code == 201
    assert loaded.post("/fhir/Observation", json=obs).status_code == 201
    report = loaded.get("/fhir/$unmapped-codes").json()
    rows = [
        {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in entry["part"]}
        for entry in report["parameter"]
    ]
    assert [(r["system"], r["code"], r["seen"]) for r in rows] == [(LAB, "HBA", 2)]
    assert rows[0]["facility"] == "http://hospital-a.example.org"


def test_search_below_above_and_in_use_the_hierarchy(loaded: TestClient) -> None:
    for code in ("I10", "I11.0", "A90"):
        cond = {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": ICD, "code": code}]},
        }
        assert loaded.post("/fhir/Condition", json=cond).status_code == 201

    def found(query: dict[str, str]) -> list[str]:
        r = loaded.get("/fhir/Condition", params=query)
        assert r.status_code == 200, r.text
        return sorted(e["resource"]["code"]["coding"][0]["code"] for e in r.json().get("entry", []))

    assert found({"code:below": f"{ICD}|IX"}) == ["I10", "I11.0"]
    assert found({"code:below": f"{ICD}|I11"}) == ["I11.0"]
    assert found({"code:above": f"{ICD}|I11.0"}) == ["I11.0"]
    assert found({"code:in": "http://example.org/fhir/ValueSet/cardio"}) == ["I10", "I11.0"]
    assert found({"code:not-in": "http://example.org/fhir/ValueSet/cardio"}) == ["A90"]
    bad = loaded.get("/fhir/Condition", params={"code:below": "http://unknown.example|X"})
    assert bad.status_code == 400 and "code:below" in bad.text


def test_bad_terminology_input_answers_operation_outcomes(loaded: TestClient) -> None:
    unknown = value_set("unknown", {"include": [{"system": "http://nowhere.example/cs"}]})
    r = loaded.post(
        "/fhir/ValueSet/$expand",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "valueSet", "resource": unknown}],
        },
    )
    assert r.status_code == 404 and "could not be found" in r.text
    loop = value_set("loop", {"include": [{"valueSet": ["http://example.org/fhir/ValueSet/loop"]}]})
    assert loaded.put("/fhir/ValueSet/loop", json=loop).status_code == 201
    r = loaded.get("/fhir/ValueSet/loop/$expand")
    assert r.status_code == 400 and "includes itself" in r.text
    nofilter = value_set(
        "nofilter",
        {
            "include": [
                {"system": ICD, "filter": [{"property": "colour", "op": "=", "value": "red"}]}
            ]
        },
    )
    r = loaded.post(
        "/fhir/ValueSet/$expand",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "valueSet", "resource": nofilter}],
        },
    )
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["ValueSet.compose.include[0].filter[0].property"]
    broken = {
        "resourceType": "ConceptMap",
        "id": "broken",
        "status": "active",
        "group": [
            {
                "source": LAB,
                "target": LOINC,
                "element": [{"code": "GLU", "target": [{"equivalence": "equivalent"}]}],
            }
        ],
    }
    r = loaded.put("/fhir/ConceptMap/broken", json=broken)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["ConceptMap.group[0].element[0].target[0].code"]
    assert loaded.get("/fhir/ConceptMap/broken").status_code == 404  # nothing written
    cycle = {
        **icd("cycle"),
        "id": "cycle",
        "concept": [
            {"code": "A", "property": [{"code": "parent", "valueCode": "B"}]},
            {"code": "B", "property": [{"code": "parent", "valueCode": "A"}]},
        ],
    }
    r = loaded.put("/fhir/CodeSystem/cycle", json=cycle)
    assert r.status_code == 400 and "cycle" in r.text
    r = loaded.get("/fhir/ValueSet/$expand", params={"url": "http://nothing.example/vs"})
    assert r.status_code == 404
    r = loaded.get("/fhir/ValueSet/cardio/$expand", params={"count": "-1"})
    assert r.status_code == 400


def test_bindings_to_stored_value_sets_warn(loaded: TestClient) -> None:
    # Observation.interpretation is bound (extensible) to this value set: once the server
    # holds it, a code outside it is a warning on write.
    interp = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    cs = {
        "resourceType": "CodeSystem",
        "id": "interp",
        "url": interp,
        "status": "active",
        "content": "fragment",
        "concept": [
            {"code": "H", "display": "High"},
            {"code": "L", "display": "Low"},
            {"code": "N", "display": "Normal"},
        ],
    }
    assert loaded.put("/fhir/CodeSystem/interp", json=cs).status_code == 201
    vs = {
        "resourceType": "ValueSet",
        "id": "interp-vs",
        "status": "active",
        "url": "http://hl7.org/fhir/ValueSet/observation-interpretation",
        "compose": {"include": [{"system": interp, "concept": [{"code": "H"}, {"code": "L"}]}]},
    }
    assert loaded.put("/fhir/ValueSet/interp-vs", json=vs).status_code == 201
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "14771-0"}]},
        "interpretation": [{"coding": [{"system": interp, "code": "N"}]}],
    }
    prefer = {"Prefer": "return=OperationOutcome"}
    r = loaded.post("/fhir/Observation", json=obs, headers=prefer)
    assert r.status_code == 201, r.text

    def bound(outcome: dict[str, Any]) -> list[list[str]]:
        return [
            i["expression"]
            for i in outcome["issue"]
            if i["severity"] == "warning" and "interpretation" in i["expression"][0]
        ]

    assert bound(r.json()) == [["Observation.interpretation[0]"]]
    obs["interpretation"][0]["coding"][0]["code"] = "H"
    r = loaded.post("/fhir/Observation", json=obs, headers=prefer)
    assert bound(r.json()) == []
    # $validate reports the same.
    obs["interpretation"][0]["coding"][0]["code"] = "N"
    r = loaded.post("/fhir/Observation/$validate", json=obs)
    assert bound(r.json()) == [["Observation.interpretation[0]"]]


def test_a_value_set_stored_after_writes_is_used_at_once(loaded: TestClient) -> None:
    interp = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "14771-0"}]},
        "interpretation": [{"coding": [{"system": interp, "code": "N"}]}],
    }
    prefer = {"Prefer": "return=OperationOutcome"}

    def warned() -> bool:
        r = loaded.post("/fhir/Observation", json=obs, headers=prefer)
        assert r.status_code == 201, r.text
        return any(
            i["severity"] == "warning" and i["expression"] == ["Observation.interpretation[0]"]
            for i in r.json()["issue"]
        )

    assert not warned()  # no value set held for the binding: nothing to check
    cs = {
        "resourceType": "CodeSystem",
        "id": "interp",
        "url": interp,
        "status": "active",
        "content": "fragment",
        "concept": [{"code": "H"}, {"code": "N"}],
    }
    assert loaded.put("/fhir/CodeSystem/interp", json=cs).status_code == 201
    vs = {
        "resourceType": "ValueSet",
        "id": "interp-vs",
        "status": "active",
        "url": "http://hl7.org/fhir/ValueSet/observation-interpretation",
        "compose": {"include": [{"system": interp, "concept": [{"code": "H"}]}]},
    }
    assert loaded.put("/fhir/ValueSet/interp-vs", json=vs).status_code == 201
    assert warned()  # the new value set is used by the next write, not 2 s later
