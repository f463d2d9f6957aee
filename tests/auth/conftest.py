"""Sign-in fixtures: a real OpenID Connect provider on loopback, standing in for VNeID."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth.oidc_provider import OidcProvider


@pytest.fixture
def oidc_provider() -> Iterator[OidcProvider]:
    """A fresh provider per test (its own port, grants and misbehaviours); keys are reused."""
    provider = OidcProvider().start()
    try:
        yield provider
    finally:
        provider.stop()
