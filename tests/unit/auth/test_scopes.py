"""The SMART scope grammar: v1 and v2 permissions, queries, what a registration covers."""

from __future__ import annotations

import pytest

from vnehr.auth.scopes import ScopeError, Scopes, narrow, parse_clinical


@pytest.mark.parametrize(
    ("text", "letters"),
    [
        ("patient/Observation.read", "rs"),
        ("user/*.write", "cud"),
        ("system/*.*", "cruds"),
        ("patient/Observation.rs", "rs"),
        ("user/Patient.cruds", "cruds"),
        ("system/Encounter.c", "c"),
    ],
)
def test_v1_and_v2_permissions_become_letters_of_cruds(text: str, letters: str) -> None:
    scope = parse_clinical(text)
    assert scope is not None
    assert scope.permissions == frozenset(letters)


@pytest.mark.parametrize("text", ["patient/Observation.dus", "user/Patient.rr", "system/*.x"])
def test_permissions_out_of_order_or_unknown_are_refused(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_clinical(text)


def test_a_query_narrows_a_scope() -> None:
    scope = parse_clinical("patient/Observation.rs?category=laboratory&status=final")
    assert scope is not None
    assert scope.query == (("category", "laboratory"), ("status", "final"))


def test_plain_scopes_stay_plain() -> None:
    scopes = Scopes.parse("openid fhirUser launch/patient offline_access")
    assert scopes.clinical == ()
    assert "launch/patient" in scopes


def test_narrow_grants_only_what_the_registration_covers() -> None:
    allowed = Scopes.parse("openid patient/*.rs user/Observation.cruds")
    asked = Scopes.parse(
        "openid profile patient/Observation.rs patient/Patient.cud user/Observation.r"
    )
    granted = narrow(asked, allowed)
    assert {s.text for s in granted.clinical} == {"patient/Observation.rs", "user/Observation.r"}
    assert granted.plain == frozenset({"openid"})


def test_a_registration_with_a_query_covers_only_that_query() -> None:
    allowed = Scopes.parse("patient/Observation.rs?category=laboratory")
    assert narrow(Scopes.parse("patient/Observation.rs"), allowed).clinical == ()
    same = narrow(Scopes.parse("patient/Observation.rs?category=laboratory"), allowed)
    assert len(same.clinical) == 1
