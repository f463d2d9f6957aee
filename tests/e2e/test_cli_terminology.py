"""`vnehr terminology ...` as its own process, on both backends: load a catalogue from a
published-style table, replace it, fail a bad load without changing anything, load the
shipped defaults, list unmapped local codes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from tests.e2e.test_cli_reindex import _handle, _vnehr
from vnehr.app import create_server
from vnehr.interactions.exchange import FhirRequest
from vnehr.settings import Settings

CATALOGUE = "https://fhir.moh.gov.vn/CodeSystem/lab-catalogue"
LOINC = "http://loinc.org"


def _table(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Mã", "Tên chỉ số", "Nhóm", "Mã LOINC", "Đơn vị"])
        writer.writerows(rows)
    return path


def _lookup(url: str, code: str) -> dict[str, Any]:
    return _handle(url, "GET", "CodeSystem/$lookup", query=[("system", CATALOGUE), ("code", code)])


def _parameters(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        p["name"]: next((v for k, v in p.items() if k.startswith("value")), None)
        for p in resource.get("parameter", [])
    }


def test_load_replace_and_failed_load(database_url: str, tmp_path: Path) -> None:
    first = _table(
        tmp_path / "v1.csv",
        [
            ["HS0001", "Glucose máu lúc đói", "Hóa sinh", "14771-0", "mmol/L"],
            ["HH0004", "Huyết sắc tố", "Huyết học", "718-7", "g/L"],
        ],
    )
    run = _vnehr(
        "terminology", "load", "catalogue", str(first), "--version", "1", "--database", database_url
    )
    assert run.returncode == 0, run.stderr
    assert "2 concepts" in run.stdout
    found = _parameters(_lookup(database_url, "HS0001"))
    assert found["display"] == "Glucose máu lúc đói" and found["version"] == "1"
    mapped = _handle(
        database_url,
        "GET",
        "ConceptMap/$translate",
        query=[("system", CATALOGUE), ("code", "HH0004")],
    )
    concept = next(p for p in mapped["parameter"] if p["name"] == "match")["part"][1]
    assert concept["valueCoding"]["code"] == "718-7"

    # A bad row (a LOINC code with a wrong check digit) stops the load: version 1 stays.
    bad = _table(
        tmp_path / "bad.csv",
        [
            ["HS0001", "Glucose", "Hóa sinh", "14771-0", "mmol/L"],
            ["HS0002", "Ure", "Hóa sinh", "3094-1", "mmol/L"],
        ],
    )
    run = _vnehr(
        "terminology", "load", "catalogue", str(bad), "--version", "2", "--database", database_url
    )
    assert run.returncode != 0
    assert "nothing was changed" in run.stderr and "3" in run.stderr  # the row
    assert _parameters(_lookup(database_url, "HS0001"))["version"] == "1"

    # A good new version replaces the old concepts.
    second = _table(tmp_path / "v2.csv", [["HS0002", "Ure máu", "Hóa sinh", "3094-0", "mmol/L"]])
    run = _vnehr(
        "terminology",
        "load",
        "catalogue",
        str(second),
        "--version",
        "2",
        "--database",
        database_url,
    )
    assert run.returncode == 0, run.stderr
    assert _parameters(_lookup(database_url, "HS0002"))["display"] == "Ure máu"
    server = create_server(Settings(database_url=database_url, dev=True))
    try:
        gone = server.router.handle(
            FhirRequest(
                "GET", "CodeSystem/$lookup", query=[("system", CATALOGUE), ("code", "HS0001")]
            )
        )
    finally:
        server.close()
    assert gone.status == 404


def test_defaults_and_unmapped_codes(database_url: str) -> None:
    run = _vnehr("terminology", "defaults", "--database", database_url)
    assert run.returncode == 0, run.stderr
    assert "CodeSystem/icd-10" in run.stdout and "CodeSystem/lab-catalogue" in run.stdout
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "meta": {"source": "https://bvx.example.vn"},
        "code": {"coding": [{"system": "https://bvx.example.vn/lab", "code": "K+"}]},
    }
    created = _handle(database_url, "POST", "Observation", resource=obs)
    assert created["resourceType"] == "Observation"
    run = _vnehr("terminology", "unmapped", "--database", database_url)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.rstrip("\n").splitlines()
    assert lines[1].split("\t") == [
        "1",
        "https://bvx.example.vn",
        "https://bvx.example.vn/lab",
        "K+",
        "",
    ]


def test_local_code_mapped_to_the_catalogue_gets_its_loinc_too(database_url: str) -> None:
    run = _vnehr("terminology", "defaults", "--database", database_url)
    assert run.returncode == 0, run.stderr
    local = "https://bvy.example.vn/xet-nghiem"
    cmap = {
        "resourceType": "ConceptMap",
        "id": "bvy-lab",
        "status": "active",
        "group": [
            {
                "source": local,
                "target": CATALOGUE,
                "element": [
                    {"code": "GLU-D", "target": [{"code": "HS0001", "equivalence": "equivalent"}]}
                ],
            }
        ],
    }
    _handle(database_url, "PUT", "ConceptMap/bvy-lab", resource=cmap)
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": local, "code": "GLU-D", "display": "Đường huyết đói"}]},
    }
    stored = _handle(database_url, "POST", "Observation", resource=obs)
    codings = [(c["system"], c["code"]) for c in stored["code"]["coding"]]
    assert codings == [(local, "GLU-D"), (CATALOGUE, "HS0001"), (LOINC, "14771-0")]
    run = _vnehr("terminology", "unmapped", "--database", database_url)
    assert run.stdout.rstrip("\n").splitlines()[1:] == []  # mapped: not reported
