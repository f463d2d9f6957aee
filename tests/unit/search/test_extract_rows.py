"""The extractor's fast paths give the rows the plain way gives: repeats, caches, shared rows."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from tests.people import BHYT, CCCD, LOINC, hba1c, lan
from vnehr.fhir.json import loads
from vnehr.fhir.text import fold
from vnehr.search.extract import Extractor, date, reference, string
from vnehr.search.registry import r4_registry

HERE = Path(__file__).parent
LISTS = ("tokens", "strings", "dates", "numbers", "quantities", "references", "uris")


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor(r4_registry())


def of(rows: list[Any], code: str) -> list[tuple[Any, ...]]:
    return [row[1:] for row in rows if row[0] == code]


# -- the R4 examples, row for row ----------


def test_the_examples_give_the_rows_recorded_in_order(extractor):
    # expected_rows.json: the rows of tests/unit/search/data/*.json, in order, as extracted
    # before the extractor's fast paths (caches, shared rows, deduplication on demand).
    expected = json.loads((HERE / "expected_rows.json").read_text("utf-8"))
    paths = sorted((HERE / "data").glob("*.json"))
    assert sorted(expected) == [p.stem for p in paths]
    for _ in range(2):  # caches empty, then full
        for path in paths:
            rows = extractor.extract(loads(path.read_bytes()))
            got = {name: [list(r) for r in getattr(rows, name)] for name in LISTS}
            want = {name: expected[path.stem].get(name, []) for name in LISTS}
            assert got == want, path.stem


# -- repeated values give one row ----------


def test_an_identifier_given_twice_is_one_row(extractor):
    patient = {**lan(), "identifier": [{"system": CCCD, "value": "1"}] * 2}
    assert of(extractor.extract(patient).tokens, "identifier") == [(CCCD, "1", None)]


def test_many_repeated_values_keep_their_first_rows_in_order(extractor):
    values = ["1", "2", "1", "3", "2", "4"]
    patient = {**lan(), "identifier": [{"system": CCCD, "value": v} for v in values]}
    assert of(extractor.extract(patient).tokens, "identifier") == [
        (CCCD, v, None) for v in ("1", "2", "3", "4")
    ]


def test_a_text_repeating_a_display_only_coding_is_one_row(extractor):
    observation = hba1c("Patient/lan")
    observation["code"] = {"coding": [{"display": "HbA1c"}], "text": "hba1c"}
    assert of(extractor.extract(observation).tokens, "code") == [(None, None, "hba1c")]


def test_two_equal_codings_are_one_row(extractor):
    observation = hba1c("Patient/lan")
    observation["code"]["coding"] *= 2
    assert of(extractor.extract(observation).tokens, "code") == [
        (LOINC, "4548-4", "hemoglobin a1c")
    ]


def test_a_code_also_found_in_a_component_is_one_combo_code_row(extractor):
    observation = hba1c("Patient/lan")
    observation["component"] = [{"code": observation["code"]}, {"code": {"text": "x"}}]
    rows = extractor.extract(observation)
    assert of(rows.tokens, "combo-code") == [
        (LOINC, "4548-4", "hemoglobin a1c"),
        (None, None, "x"),
    ]
    assert of(rows.tokens, "code") == [(LOINC, "4548-4", "hemoglobin a1c")]


def test_a_name_whose_text_is_its_family_is_one_row(extractor):
    patient = {"resourceType": "Patient", "name": [{"text": "Lan", "family": "Lan"}]}
    rows = extractor.extract(patient)
    assert of(rows.strings, "name") == [("lan", "Lan")]
    assert of(rows.strings, "phonetic") == [("lan", "Lan")]


def test_the_same_performer_twice_is_one_row(extractor):
    observation = {**hba1c("Patient/lan"), "performer": [{"reference": "Practitioner/a"}] * 3}
    rows = extractor.extract(observation)
    assert of(rows.references, "performer") == [("Practitioner", "a", None)]


def test_union_members_reaching_the_same_values_give_one_row_each():
    extractor = Extractor(r4_registry())
    extractor.registry.add(
        {
            "resourceType": "SearchParameter",
            "url": "http://example.org/SearchParameter/given-twice",
            "status": "active",
            "code": "given-twice",
            "base": ["Patient"],
            "type": "string",
            "expression": "Patient.name.given | Patient.name.given",
        }
    )
    rows = extractor.extract(lan())
    assert of(rows.strings, "given-twice") == [("thi", "Thị"), ("lan", "Lan")]


# -- rows made once for several parameters ----------


def test_code_and_combo_code_have_the_same_rows(extractor):
    observation = hba1c("Patient/lan")
    observation["code"]["text"] = "Đường huyết"
    rows = extractor.extract(observation)
    assert (
        of(rows.tokens, "code")
        == of(rows.tokens, "combo-code")
        == [
            (LOINC, "4548-4", "hemoglobin a1c"),
            (None, None, "duong huyet"),
        ]
    )


def test_rows_follow_the_order_of_the_resource_keys(extractor):
    first = {"resourceType": "Patient", "gender": "male", "active": True}
    second = {"resourceType": "Patient", "active": True, "gender": "male"}
    assert [r[0] for r in extractor.extract(first).tokens][:2] == ["gender", "active"]
    assert [r[0] for r in extractor.extract(second).tokens][:2] == ["active", "gender"]


@pytest.mark.parametrize(
    ("subject", "patient"),
    [
        ({"reference": "Patient/lan"}, [("Patient", "lan", None)]),
        ({"reference": "Group/g"}, []),
        (
            {"reference": "https://fhir.bachmai.vn/Patient/lan"},
            [(None, None, "https://fhir.bachmai.vn/Patient/lan")],
        ),
        ({"reference": "Patient/lan/_history/3"}, [("Patient", "lan", None)]),
        ({"reference": "#p"}, []),
        ({"identifier": {"system": BHYT, "value": "x"}, "type": "Patient"}, []),
        ([{"reference": "Patient/lan"}], [("Patient", "lan", None)]),
    ],
)
def test_subject_and_patient_come_from_one_reference(extractor, subject, patient):
    rows = extractor.extract({**hba1c("Patient/x"), "subject": subject})
    assert of(rows.references, "patient") == patient
    if patient:
        assert of(rows.references, "subject") == patient


# -- remembered parsing ----------

_DATES = [
    "2024",
    "2024-02",
    "2024-12",
    "9999-12",
    "2024-02-29",
    "2023-02-29",
    "2024-13-01",
    "2024-03-05T08:30:00Z",
    "2024-03-05T08:30:00+07:00",
    "2024-03-05T08:30:00-03:30",
    "2024-03-05T08:30:00",
    "2024-03-05T08:30",
    "2024-03-05T08:30Z",
    "2024-03-05T08:30:00.25Z",
    "2024-03-05T08:30:00.1234567+07:00",
    "2024-12-31T23:59:60Z",
    "2024-03-05T24:00:00Z",
    "2024-03-05T08:60:00Z",
    "2024-03-05T08:30:61Z",
    "2024-02-30T08:30:00Z",
    "2024-03-05T08:30:00+99:99",
    "2024-03-05 08:30:00Z",
    "2024-03-05T",
    "2024-03-05Tx",
    "0000-01-01T00:00:00Z",
    "２０２４-03-05T08:30:00Z",
    "2024-03-05T0８:30:00Z",
    "",
    "x",
]


@pytest.mark.parametrize("text", _DATES)
def test_a_remembered_date_range_is_the_one_computed_whole(text):
    assert date.date_range(text) == date._parse(text)
    assert date.date_range(text) == date._parse(text)  # from the cache


def test_dates_sharing_a_day_or_a_time_are_each_right():
    for day in ("2024-03-05", "2024-03-06", "2024-02-30"):
        for time in ("T08:30:00+07:00", "T08:30:00Z", "T25:00:00Z"):
            assert date.date_range(day + time) == date._parse(day + time)


@pytest.mark.parametrize(
    "text",
    ["Patient/1", "Patient/1/_history/2", "http://x/Patient/1|2", "#c", "urn:uuid:1", "a/b?c", ""],
)
def test_a_remembered_reference_is_the_one_computed(text):
    assert reference.parse(text) == reference._parse(text)
    assert reference.parse(text) == reference._parse(text)
    node = {"reference": text}
    assert reference.reference_type(node) == reference._reference_type(text)
    assert reference.reference_type(node) == reference._reference_type(text)


# -- folding ----------


@pytest.mark.parametrize(
    "text",
    [
        "Nguyễn Thị Lan",
        "Trần Văn Đức",
        "Số 12 đường Phố Huế, phường Bạch Đằng",
        "ĐƯỜNG HUYẾT",
        "Straße",
        "Łódź",
        "Ørsted",
        "ðe",
        unicodedata.normalize("NFD", "Nguyễn Văn Đức"),
        "Ａｂｃ",
        "İstanbul",
        "ǅ",
        "e\U0001d165x",
        "\U0002f800 \U0001f600",
        "plain ascii",
        "",
    ],
)
def test_folding_is_the_search_side_fold(text):
    assert string.fast_fold(text) == fold(text)
    assert string.folded(text) == fold(text)


def test_folding_every_mark_and_letter_is_the_search_side_fold():
    points = [p for p in range(0x80, 0x20000) if unicodedata.combining(chr(p))]
    points += list(range(0x80, 0x250)) + list(range(0x1E00, 0x1F00)) + [0xD7FF, 0xFFFD]
    for point in points:
        text = "Aế" + chr(point) + "đ"
        assert string.fast_fold(text) == fold(text), hex(point)
