"""Which REST interaction a request is, from its method and path."""

from __future__ import annotations

import pytest

from vnehr.audit.interaction import Interaction, classify
from vnehr.interactions.exchange import FhirRequest


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "Observation/1", Interaction("read", "Observation", "1")),
        ("HEAD", "Observation/1", Interaction("read", "Observation", "1")),
        ("GET", "Patient/p1", Interaction("read", "Patient", "p1", patient="p1")),
        ("GET", "Observation/1/_history/2", Interaction("vread", "Observation", "1", "2")),
        ("GET", "Observation", Interaction("search-type", "Observation")),
        ("POST", "Observation/_search", Interaction("search-type", "Observation")),
        ("GET", "", Interaction("search-system")),
        ("POST", "", Interaction("batch")),
        ("POST", "Observation", Interaction("create", "Observation")),
        ("PUT", "Observation/1", Interaction("update", "Observation", "1")),
        ("PUT", "Observation", Interaction("update", "Observation")),
        ("PATCH", "Observation/1", Interaction("patch", "Observation", "1")),
        ("PATCH", "Observation", Interaction("patch", "Observation")),
        ("DELETE", "Observation/1", Interaction("delete", "Observation", "1")),
        ("DELETE", "Observation", Interaction("delete", "Observation")),
        ("GET", "_history", Interaction("history-system")),
        ("GET", "Observation/_history", Interaction("history-type", "Observation")),
        (
            "GET",
            "Patient/p1/_history",
            Interaction("history-instance", "Patient", "p1", patient="p1"),
        ),
        (
            "GET",
            "Patient/p1/$everything",
            Interaction("operation", "Patient", "p1", operation="everything", patient="p1"),
        ),
        ("POST", "$validate", Interaction("operation", operation="validate")),
        ("POST", "Person/$mpi-merge", Interaction("operation", "Person", operation="mpi-merge")),
        ("GET", "Patient/p1/Observation", Interaction("search-type", "Observation", patient="p1")),
        ("GET", "metadata", Interaction("capabilities")),
    ],
)
def test_each_request_is_the_interaction_the_router_routes_it_to(
    method: str, path: str, expected: Interaction
) -> None:
    assert classify(FhirRequest(method=method, path=path)) == expected


def test_searches_histories_and_operations_are_recorded_as_queries() -> None:
    assert classify(FhirRequest("GET", "Observation")).query_like
    assert classify(FhirRequest("GET", "Patient/1/$everything")).query_like
    assert classify(FhirRequest("GET", "Observation/_history")).query_like
    assert not classify(FhirRequest("GET", "Observation/1")).query_like
    assert not classify(FhirRequest("GET", "Observation/1/_history")).query_like
