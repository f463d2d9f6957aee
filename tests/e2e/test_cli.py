"""The `vnehr` command line: migrate, load (bundles and NDJSON with a summary), serve's guard."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.people import hba1c, lan
from vnehr.app import create_server
from vnehr.cli import main
from vnehr.settings import Settings


def test_migrate_creates_the_schema_once(database_url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["migrate", "--database", database_url])
    assert first.exit_code == 0, first.output
    assert "0001_resources" in first.output or "up to date" in first.output
    second = runner.invoke(main, ["migrate", "--database", database_url])
    assert second.exit_code == 0
    assert "up to date" in second.output


def test_load_ndjson_and_bundles_with_a_summary_and_errors(
    database_url: str, tmp_path: Path
) -> None:
    ndjson = tmp_path / "patients.ndjson"
    lines = [json.dumps({**lan(f"00118500{i:04d}"), "id": f"n{i}"}) for i in range(30)]
    lines.insert(5, '{"resourceType": "Patient", "gender": "sometimes"}')
    lines.insert(9, "{not json")
    ndjson.write_text("\n".join(lines) + "\n")
    bundle = tmp_path / "tx.json"
    bundle.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "fullUrl": "urn:uuid:a",
                        "resource": lan("001185999999"),
                        "request": {"method": "POST", "url": "Patient"},
                    },
                    {
                        "resource": hba1c("urn:uuid:a"),
                        "request": {"method": "POST", "url": "Observation"},
                    },
                ],
            }
        )
    )
    result = CliRunner().invoke(
        main, ["load", str(ndjson), str(bundle), "--database", database_url, "--batch", "7"]
    )
    assert result.exit_code == 1, result.output  # errors were reported
    assert "loaded 32 resources" in result.output
    assert "Observation" in result.output
    assert f"{ndjson}:6:" in result.output  # the invalid resource, by line
    assert f"{ndjson}:10:" in result.output  # the malformed JSON, by line
    server = create_server(Settings(database_url=database_url, dev=True))
    try:
        assert server.store.count("Patient") == 31
        assert server.store.count("Observation") == 1
    finally:
        server.close()


def test_serve_refuses_to_start_in_production_without_a_signing_key(database_url: str) -> None:
    result = CliRunner().invoke(
        main, ["serve", "--database", database_url], env={"VNEHR_DEV": "", "VNEHR_AUTH_KEYS": ""}
    )
    assert result.exit_code != 0
    assert "no signing key" in result.output


def test_serve_refuses_to_start_in_production_with_no_way_to_sign_in(
    database_url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.json"
    assert CliRunner().invoke(main, ["auth", "keys", "rotate", "--file", str(keys)]).exit_code == 0
    result = CliRunner().invoke(
        main,
        ["serve", "--database", database_url],
        env={"VNEHR_DEV": "", "VNEHR_AUTH_KEYS": str(keys), "VNEHR_AUTH_LOGIN": ","},
    )
    assert result.exit_code != 0
    assert "no one could sign in" in result.output
