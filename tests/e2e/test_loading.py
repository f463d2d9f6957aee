"""vnehr.loading: NDJSON read in blocks by workers, with the right line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.people import lan
from vnehr import loading
from vnehr.app import create_server
from vnehr.settings import Settings


def test_lines_longer_than_a_block_and_no_final_newline(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "BLOCK_BYTES", 64)  # far shorter than one resource
    rows = [json.dumps({**lan(f"0011851{i:05d}"), "id": f"b{i}"}) for i in range(12)]
    rows.insert(3, "")
    rows.insert(7, "[1, 2]")
    data = tmp_path / "p.ndjson"
    data.write_text("\r\n".join(rows))  # CRLF, and no newline after the last line
    server = create_server(Settings(database_url=database_url, dev=True))
    try:
        loader = loading.Loader(server, batch=5)
        seen: list[int] = []
        loader.load_ndjson(data, progress=seen.append)
        assert loader.counts["Patient"] == 12
        assert loader.errors == [f"{data}:8: not a FHIR resource"]
        assert sum(seen) == data.stat().st_size
        assert server.store.read("Patient", "b11").version == 1
    finally:
        server.close()
