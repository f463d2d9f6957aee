"""Factory for uvicorn (`vnehr.http.factory:app_from_env`): settings from the environment."""

from __future__ import annotations

from typing import Any

from vnehr.settings import Settings


def app_from_env() -> Any:
    from vnehr.app import create_app

    return create_app(Settings.from_env())
