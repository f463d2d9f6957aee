"""The FHIR JSON codec keeps decimals exactly as written and reports malformed JSON."""

from __future__ import annotations

import pytest

from vnehr.errors import InvalidRequest
from vnehr.fhir import json as fhir_json


@pytest.mark.parametrize(
    "text",
    [
        b'{"v":1.50}',
        b'{"v":100.0}',
        b'{"v":1e3}',
        b'{"v":0.30000000000000004}',
        b'{"v":12345678901234567890}',
        b'{"v":[1.0,2.50]}',
        b'{"v":1.5,"s":"2.0"}',
    ],
)
def test_numbers_round_trip_exactly(text: bytes) -> None:
    assert fhir_json.dumps(fhir_json.loads(text)) == text


def test_decimals_still_compare_as_numbers() -> None:
    value = fhir_json.loads(b'{"v":7.20}')["v"]
    assert value == 7.2 and value > 7


def test_malformed_json_names_line_and_column() -> None:
    with pytest.raises(InvalidRequest, match="line 2 column"):
        fhir_json.loads(b'{"a": 1,\n "b": }')


def test_vietnamese_text_is_kept() -> None:
    text = '{"family":"Nguyễn"}'.encode()
    assert fhir_json.dumps(fhir_json.loads(text)) == text
