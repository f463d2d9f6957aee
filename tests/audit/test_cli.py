"""`vnehr audit list`: the operators' view of the trail, filtered, newest first; itself audited."""

from __future__ import annotations

from click.testing import CliRunner

from tests.people import duc, lan
from vnehr.app import create_server
from vnehr.cli import main
from vnehr.interactions.exchange import FhirRequest
from vnehr.settings import Settings


def fill(url: str) -> dict[str, str]:
    server = create_server(Settings(database_url=url, dev=True))
    ids = {}
    try:
        for name, patient in (("lan", lan()), ("duc", duc())):
            created = server.router.handle(FhirRequest("POST", "Patient", resource=patient))
            ids[name] = created.headers["Location"].split("/Patient/")[1].split("/")[0]
        for _ in range(3):
            server.router.handle(FhirRequest("GET", f"Patient/{ids['lan']}"))
    finally:
        server.close()
    return ids


def listed(url: str, *options: str) -> list[str]:
    result = CliRunner().invoke(main, ["audit", "list", "--database", url, *options])
    assert result.exit_code == 0, result.output
    return [line for line in result.output.splitlines() if line.strip()]


def test_the_list_shows_the_latest_records_about_a_patient(database_url: str) -> None:
    ids = fill(database_url)
    lines = listed(database_url, "--patient", ids["lan"])
    assert [line.split()[1] for line in lines] == ["read", "read", "read", "create"]
    assert all(f"Patient/{ids['lan']}" in line for line in lines)
    assert all("outcome=0" in line for line in lines)
    assert len(listed(database_url, "--patient", ids["lan"], "--limit", "2")) == 2
    assert [line.split()[1] for line in listed(database_url, "--patient", ids["duc"])] == ["create"]


def test_the_list_filters_by_time_and_agent(database_url: str) -> None:
    ids = fill(database_url)
    assert listed(database_url, "--patient", ids["lan"], "--since", "2999-01-01") == []
    since = listed(database_url, "--patient", ids["lan"], "--since", "2020-01-01")
    # the listing before asked about her: it is in her log too
    assert [line.split()[1] for line in since] == ["search-type", "read", "read", "read", "create"]
    assert listed(database_url, "--agent", "Practitioner/nobody") == []


def test_listing_the_trail_is_itself_recorded(database_url: str) -> None:
    ids = fill(database_url)
    listed(database_url, "--patient", ids["duc"])
    again = listed(database_url, "--patient", ids["duc"])
    assert [line.split()[1] for line in again] == ["search-type", "create"]
