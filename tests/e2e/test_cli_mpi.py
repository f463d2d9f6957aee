"""`vnehr mpi ...` as its own process: rebuild the index of data written with it off, review
the queue, accept, reject, merge and unmerge."""

from __future__ import annotations

from typing import Any

from tests.e2e.test_cli_reindex import _env, _vnehr
from vnehr.app import create_server
from vnehr.interactions.exchange import FhirRequest
from vnehr.settings import Settings

CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"


def _patient(given: str, cccd: str | None, birth: str, phone: str) -> dict[str, Any]:
    p: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": "Trần", "given": ["Thị", given]}],
        "gender": "female",
        "birthDate": birth,
        "telecom": [{"system": "phone", "value": phone}],
    }
    if cccd:
        p["identifier"] = [{"system": CCCD, "value": cccd}]
    return p


def _write(url: str, resources: list[dict[str, Any]], *, mpi: bool) -> list[str]:
    server = create_server(Settings(database_url=url, dev=True, mpi=mpi))
    try:
        ids = []
        for resource in resources:
            response = server.router.handle(FhirRequest("POST", "Patient", resource=resource))
            assert response.status == 201, response.resource
            location = {k.lower(): v for k, v in response.headers.items()}["location"]
            ids.append(location.split("/")[-3])
        return ids
    finally:
        server.close()


def _persons(url: str) -> dict[str, str]:
    """Patient id -> the Person linking it (active Persons)."""
    server = create_server(Settings(database_url=url, dev=True))
    try:
        response = server.router.handle(FhirRequest("GET", "Person", query=[("_count", "100")]))
        out = {}
        for entry in (response.resource or {}).get("entry", []):
            person = entry["resource"]
            for link in person.get("link", []):
                ref = link["target"]["reference"]
                if person.get("active") and ref.startswith("Patient/"):
                    out[ref.split("/")[1]] = person["id"]
        return out
    finally:
        server.close()


def test_rebuild_review_accept_reject_merge(database_url: str) -> None:
    assert "PYTHONPATH" in _env()
    a, b, c, d = _write(
        database_url,
        [
            _patient("Hoa", "001185012345", "1985-03-12", "0912345678"),
            _patient("Hoa", "001185012345", "1985-03-12", "0987654321"),  # same CCCD
            _patient("Hoa", None, "1985", "0912345678"),  # commune: probable
            _patient("Mai", "001190077777", "1990-07-07", "0977777777"),
        ],
        mpi=False,
    )
    assert _persons(database_url) == {}  # written with the index off

    rebuilt = _vnehr("mpi", "rebuild", "--database", database_url)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "indexed 4 Patients" in rebuilt.stdout
    persons = _persons(database_url)
    assert persons[a] == persons[b]
    assert len({persons[a], persons[c], persons[d]}) == 3

    review = _vnehr("mpi", "review", "--database", database_url)
    assert review.returncode == 0, review.stderr
    rows = [line.split("\t") for line in review.stdout.splitlines()]
    # One item: the commune record and the hospital person, in whichever order they came.
    assert len(rows) == 1, rows
    patient, person = rows[0][0].split("/")[1], rows[0][1].split("/")[1]
    assert (patient, person) in {(c, persons[a]), (a, persons[c]), (b, persons[c])}

    accepted = _vnehr("mpi", "accept", patient, person, "--database", database_url)
    assert accepted.returncode == 0, accepted.stderr
    now = _persons(database_url)
    assert now[a] == now[b] == now[c] == person  # accepting joins the two persons
    assert _vnehr("mpi", "review", "--database", database_url).stdout == ""

    rejected = _vnehr("mpi", "reject", c, person, "--database", database_url)
    assert rejected.returncode == 0, rejected.stderr
    now = _persons(database_url)
    assert now[c] != person and now[a] == now[b] == person
    persons[a] = person

    merged = _vnehr("mpi", "merge", persons[d], persons[a], "--database", database_url)
    assert merged.returncode == 0, merged.stderr
    assert _persons(database_url)[d] == persons[a]
    itself = _vnehr("mpi", "merge", persons[a], persons[a], "--database", database_url)
    assert itself.returncode != 0
    assert "itself" in itself.stderr
    unmerged = _vnehr("mpi", "unmerge", persons[d], "--database", database_url)
    assert unmerged.returncode == 0, unmerged.stderr
    assert _persons(database_url)[d] == persons[d]
