"""Docs that cannot drift: every setting and every CLI command is documented."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from vnehr.cli import main
from vnehr.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "settings.md").read_text()
    missing = [f.name for f in fields(Settings) if f"VNEHR_{f.name.upper()}" not in text]
    assert missing == []


def test_every_cli_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    missing = [name for name in main.commands if f"vnehr {name}" not in text]
    assert missing == []
