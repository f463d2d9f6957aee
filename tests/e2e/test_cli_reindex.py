"""`vnehr reindex`, run as its own process: stored resources become findable by a custom
search parameter added after them; `--type` limits it; a summary per type."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.api.test_search_parameters import district_param, patient_in
from tests.people import hba1c
from vnehr.app import create_server
from vnehr.interactions.exchange import FhirRequest
from vnehr.settings import Settings


def _env() -> dict[str, str]:
    root = Path(__file__).resolve().parents[2]
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'src'}"}


def _vnehr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vnehr.cli", *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _handle(url: str, method: str, path: str, **kw: Any) -> dict[str, Any]:
    server = create_server(Settings(database_url=url, dev=True))
    try:
        response = server.router.handle(FhirRequest(method, path, base_url="http://x/fhir", **kw))
    finally:
        server.close()
    assert response.status < 300, response.resource
    if response.resource is not None:
        return response.resource
    body: dict[str, Any] = json.loads(response.body or b"{}")
    return body


def _district(url: str, value: str) -> set[str]:
    bundle = _handle(
        url,
        "GET",
        "Patient",
        query=[("district", value)],
        headers={"prefer": "handling=strict"},
    )
    return {e["resource"]["id"] for e in bundle.get("entry", [])}


def test_reindex_makes_earlier_resources_findable(database_url: str) -> None:
    patients = [patient_in("Ba Đình"), patient_in("Ba Đình", "001185099999")]
    ids = [_handle(database_url, "POST", "Patient", resource=p)["id"] for p in patients]
    _handle(database_url, "POST", "Observation", resource=hba1c(f"Patient/{ids[0]}"))
    _handle(database_url, "POST", "SearchParameter", resource=district_param())
    assert _district(database_url, "Ba Đình") == set()

    only_obs = _vnehr("reindex", "--database", database_url, "--type", "Observation")
    assert only_obs.returncode == 0, only_obs.stderr
    assert "reindexed 1 resources" in only_obs.stdout
    assert "1 custom" in only_obs.stderr
    assert _district(database_url, "Ba Đình") == set()

    result = _vnehr("reindex", "--database", database_url, "--batch", "1")
    assert result.returncode == 0, result.stderr
    assert "reindexed 6 resources" in result.stdout
    lines = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:]}
    # Person: the golden records of the master patient index, one per (different) person.
    assert lines == {"Observation": "1", "Patient": "2", "Person": "2", "SearchParameter": "1"}
    assert _district(database_url, "Ba Đình") == set(ids)


def test_reindex_rejects_an_unknown_type(database_url: str) -> None:
    result = _vnehr("reindex", "--database", database_url, "--type", "Patients")
    assert result.returncode == 2
    assert "Unknown resource type: Patients" in result.stderr


def test_vnehr_load_indexes_ndjson_with_the_custom_parameters(
    database_url: str, tmp_path: Path
) -> None:
    _handle(database_url, "POST", "SearchParameter", resource=district_param())
    lines = [
        {**patient_in("Ba Đình"), "id": "p1"},
        {**patient_in("Hoàn Kiếm", "001185099999"), "id": "p2"},
    ]
    data = tmp_path / "patients.ndjson"
    data.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in lines), "utf-8")
    for workers in ("0", "2"):  # in this process, and in worker processes
        result = _vnehr("load", str(data), "--database", database_url, "--workers", workers)
        assert result.returncode == 0, result.stderr
        assert _district(database_url, "Ba Đình") == {"p1"}
        assert _district(database_url, "Hoàn Kiếm") == {"p2"}
