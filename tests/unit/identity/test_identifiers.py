"""Validation and normalisation of Vietnamese patient identifiers (vnehr.identity.identifiers)."""

from __future__ import annotations

from typing import Any

import pytest

from vnehr.demo import population
from vnehr.demo import systems as demo_systems
from vnehr.errors import Unprocessable
from vnehr.identity.identifiers import (
    BHYT,
    CCCD,
    CMND,
    MRN,
    PASSPORT,
    PATIENT_INTERNAL_ID,
    UNVERIFIED_EXTENSION,
    VNEID,
    CccdFacts,
    IdentifierIssue,
    cccd_facts,
    check_identifier,
    check_patient_identifiers,
    is_verified,
    normalise_patient_identifiers,
    normalise_value,
    outcome_issues,
    raise_if_rejected,
)

Resource = dict[str, Any]
FACILITY = {"reference": "Organization/bv-bach-mai", "display": "Bệnh viện Bạch Mai"}
UNVERIFIED = {"url": UNVERIFIED_EXTENSION, "valueBoolean": True}


def _issues(
    system: str,
    value: Any,
    *,
    birth_date: str | None = None,
    gender: str | None = None,
    **extra: Any,
) -> list[tuple[str, str]]:
    """(severity, rule) of every issue of one identifier."""
    identifier = {"system": system, "value": value, **extra}
    found = check_identifier(identifier, 0, birth_date=birth_date, gender=gender)
    return [(i.severity, i.rule) for i in found]


def _errors(system: str, value: Any, **kwargs: Any) -> list[str]:
    return [rule for severity, rule in _issues(system, value, **kwargs) if severity == "error"]


# -- systems -----------------------------------------------------------------------------


def test_systems_are_those_the_demo_generator_uses() -> None:
    assert CCCD == demo_systems.CCCD
    assert BHYT == demo_systems.BHYT
    assert PATIENT_INTERNAL_ID == demo_systems.PATIENT_INTERNAL_ID
    assert MRN == demo_systems.MEDICAL_RECORD_NUMBER
    assert CMND == "http://fhir.ehealth.gov.vn/core/sid/citizen_id"
    assert PASSPORT == "http://fhir.ehealth.gov.vn/core/sid/passport_number"
    assert VNEID == "https://vnehr.org/fhir/sid/vneid"


def test_unknown_systems_are_not_checked() -> None:
    assert _issues("urn:oid:1.2.3.4", "anything at all ") == []
    assert _issues("urn:oid:1.2.3.4", None) == []
    assert check_identifier({"value": "001"}, 0, birth_date=None, gender=None) == []


def test_a_known_system_needs_a_value() -> None:
    assert _errors(CCCD, None) == ["identifier-value"]
    assert _errors(CCCD, "  ") == ["identifier-value"]
    assert _errors(PATIENT_INTERNAL_ID, "", assigner=FACILITY) == ["identifier-value"]


# -- CCCD --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "birth_date", "gender"),
    [
        ("001185012345", "1985-03-12", "female"),  # Hà Nội, female born 1985
        ("079203001234", "2003", "male"),  # TP Hồ Chí Minh, male born 2003
        ("002090123456", "1990-07", "male"),  # Hà Giang, male born 1990
        ("096318000077", "2018-01-01", "female"),  # Cà Mau, female born 2018
        ("001 185 012 345", "1985-03-12", "female"),  # spaces are formatting
        ("001185012345", None, None),  # nothing to compare with
        ("001185012345", "1985-03-12", "unknown"),
    ],
)
def test_valid_cccd(value: str, birth_date: str | None, gender: str | None) -> None:
    assert _issues(CCCD, value, birth_date=birth_date, gender=gender) == []


@pytest.mark.parametrize(
    ("value", "rules"),
    [
        ("00118501234", ["cccd-length"]),  # 11 digits
        ("0011850123456", ["cccd-length"]),  # 13 digits
        ("00118501234A", ["cccd-length"]),  # a letter
        ("００１１８５０１２３４５", ["cccd-length"]),  # full-width digits
        ("003185012345", ["cccd-province"]),  # 03 (Hà Tây, merged in 2008) is no code
        ("101185012345", ["cccd-province"]),  # the first digit is always 0
        ("001499012345", ["cccd-century"]),  # 4 = male born 2100-2199: 2199
        ("099499012345", ["cccd-province", "cccd-century"]),
    ],
)
def test_invalid_cccd(value: str, rules: list[str]) -> None:
    assert _errors(CCCD, value) == rules


def test_cccd_inconsistent_with_birth_date_and_gender_gives_warnings() -> None:
    issues = _issues(CCCD, "001185012345", birth_date="1986-03-12", gender="male")
    assert issues == [("warning", "cccd-birth-year"), ("warning", "cccd-gender")]


def test_cccd_consistency_is_not_checked_on_a_malformed_number() -> None:
    assert _issues(CCCD, "0011850", birth_date="1990", gender="male") == [("error", "cccd-length")]


def test_cccd_century_digit_reads_every_century() -> None:
    assert _issues(CCCD, "001885012345", birth_date="1885-01-01", gender="male") == []
    assert _issues(CCCD, "001985012345", birth_date="1885-01-01", gender="female") == []
    assert _issues(CCCD, "001305012345", birth_date="2005", gender="female") == []
    assert _issues(CCCD, "001305012345", birth_date="1905", gender="female") == [
        ("warning", "cccd-birth-year")
    ]


def test_cccd_facts() -> None:
    assert cccd_facts("001185012345") == CccdFacts("01", "01", "female", 1985)
    assert cccd_facts("002090123456") == CccdFacts("02", "08", "male", 1990)  # Hà Giang
    assert cccd_facts("079 203 001 234") == CccdFacts("79", "79", "male", 2003)
    assert cccd_facts("003185012345") is None
    assert cccd_facts("00118501234") is None
    assert cccd_facts("001499012345") is None


# -- CMND --------------------------------------------------------------------------------


def test_valid_cmnd() -> None:
    assert _issues(CMND, "012345678") == []
    assert _issues(CMND, "012 345 678") == []
    # The 12-digit CMND (2012-2016) has the structure of a CCCD.
    assert _issues(CMND, "001185012345", birth_date="1985", gender="female") == []


def test_invalid_cmnd() -> None:
    assert _errors(CMND, "01234567") == ["cmnd-length"]
    assert _errors(CMND, "0123456789") == ["cmnd-length"]
    assert _errors(CMND, "A12345678") == ["cmnd-length"]
    assert _errors(CMND, "003185012345") == ["cmnd-province"]
    assert _issues(CMND, "001185012345", gender="male") == [("warning", "cmnd-gender")]


# -- BHYT --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "DN4010123456789",  # employee, 80%, Hà Nội
        "TE1790123456789",  # child under 6, TP Hồ Chí Minh
        "HT3480123456789",  # retiree, Đà Nẵng
        "QN5970123456789",  # soldier, social insurance of the Ministry of Defence
        "dn4 01 0123456789",  # lower case and spaces
        "DN4-01-0123456789",
        "0123456789",  # the bare social insurance number
        "001185012345",  # the personal identification number (from 2025)
    ],
)
def test_valid_bhyt(value: str) -> None:
    assert _issues(BHYT, value, birth_date="1985-03-12", gender="female") == []


@pytest.mark.parametrize(
    ("value", "rules"),
    [
        ("ZZ4010123456789", ["bhyt-group"]),
        ("DN6010123456789", ["bhyt-benefit-level"]),
        ("DN0010123456789", ["bhyt-benefit-level"]),
        ("DN4030123456789", ["bhyt-province"]),
        ("ZZ0030123456789", ["bhyt-group", "bhyt-benefit-level", "bhyt-province"]),
        ("DN40101234567X9", ["bhyt-format"]),
        ("4DN010123456789", ["bhyt-format"]),
        ("DN401012345678", ["bhyt-length"]),  # 14 characters
        ("012345678", ["bhyt-length"]),  # 9 digits
        ("003185012345", ["bhyt-pin-province"]),  # 12 digits that are no CCCD
        ("001499012345", ["bhyt-pin-century"]),
    ],
)
def test_invalid_bhyt(value: str, rules: list[str]) -> None:
    assert _errors(BHYT, value) == rules


def test_bhyt_personal_identification_number_is_checked_against_the_patient() -> None:
    assert _issues(BHYT, "001185012345", birth_date="1990-01-01", gender="female") == [
        ("warning", "bhyt-pin-birth-year")
    ]


# -- VNeID -------------------------------------------------------------------------------


def test_vneid_is_a_personal_identification_number() -> None:
    assert _issues(VNEID, "001185012345", birth_date="1985", gender="female") == []
    assert _errors(VNEID, "vneid-user-1") == ["vneid-length"]
    assert _errors(VNEID, "003185012345") == ["vneid-province"]
    assert _issues(VNEID, "001185012345", gender="male") == [("warning", "vneid-gender")]


# -- passports ---------------------------------------------------------------------------


VIETNAM = {"display": "Cục Quản lý xuất nhập cảnh, Bộ Công an, Việt Nam"}


@pytest.mark.parametrize(
    ("value", "extra"),
    [
        ("C1234567", {}),
        ("c 1234567", {}),
        ("C1234567", {"assigner": VIETNAM}),
        ("B7654321", {"assigner": {"identifier": {"value": "VNM"}}}),
        ("533380006", {}),  # United States: 9 digits
        ("XA0123456", {"assigner": {"display": "France"}}),
        ("TR12345", {}),
    ],
)
def test_valid_passport(value: str, extra: Resource) -> None:
    assert _issues(PASSPORT, value, **extra) == []


@pytest.mark.parametrize(
    ("value", "extra", "rules"),
    [
        ("C12", {}, ["passport-format"]),
        ("C1234567890", {}, ["passport-format"]),
        ("ABCDEFGH", {}, ["passport-format"]),  # no digit
        ("C12345/7", {}, ["passport-format"]),
        ("CA123456", {"assigner": VIETNAM}, ["passport-vn-format"]),
        ("123456789", {"assigner": {"display": "Vietnam"}}, ["passport-vn-format"]),
        ("C123456", {"assigner": {"identifier": {"value": "VNM"}}}, ["passport-vn-format"]),
    ],
)
def test_invalid_passport(value: str, extra: Resource, rules: list[str]) -> None:
    assert _errors(PASSPORT, value, **extra) == rules


# -- facility record numbers -------------------------------------------------------------


@pytest.mark.parametrize("system", [PATIENT_INTERNAL_ID, MRN])
@pytest.mark.parametrize(
    "assigner",
    [
        FACILITY,
        {"reference": "https://ehr.example.vn/fhir/Organization/17/_history/2"},
        {"reference": "urn:uuid:6f1c3a52-3b3e-4c1e-9d61-1b0f5e0c2a11", "type": "Organization"},
        {"identifier": {"system": demo_systems.PROVIDER_CODE, "value": "01001"}},
    ],
)
def test_valid_record_number(system: str, assigner: Resource) -> None:
    assert _issues(system, "BN00012345", assigner=assigner) == []


@pytest.mark.parametrize("system", [PATIENT_INTERNAL_ID, MRN])
def test_record_number_without_assigner(system: str) -> None:
    identifier = {"system": system, "value": "BN00012345"}
    issues = check_identifier(identifier, 2, birth_date=None, gender=None)
    assert issues == [
        IdentifierIssue(
            "error",
            "record-number-assigner",
            issues[0].message,
            2,
            "Patient.identifier[2].assigner",
        )
    ]
    assert "assigner" in issues[0].message


@pytest.mark.parametrize(
    "assigner",
    [
        {"display": "Bệnh viện Bạch Mai"},  # a name only
        {"reference": "Practitioner/123"},
        {"reference": "urn:uuid:6f1c3a52-3b3e-4c1e-9d61-1b0f5e0c2a11", "type": "Patient"},
        "Organization/1",
    ],
)
def test_record_number_assigner_must_be_an_organization(assigner: Any) -> None:
    assert _errors(PATIENT_INTERNAL_ID, "BN1", assigner=assigner) == ["record-number-assigner"]


def test_record_number_length_and_whitespace() -> None:
    assert _errors(MRN, "A" * 64, assigner=FACILITY) == []
    assert _errors(MRN, "A" * 65, assigner=FACILITY) == ["record-number-length"]
    assert _errors(MRN, " BN1", assigner=FACILITY) == ["record-number-whitespace"]
    assert _errors(MRN, "BN1\t", assigner=FACILITY) == ["record-number-whitespace"]
    assert _errors(MRN, "BN 1", assigner=FACILITY) == []  # inside is the facility's business


# -- unverified identifiers --------------------------------------------------------------


def test_is_verified() -> None:
    assert is_verified({"system": CCCD, "value": "001185012345"})
    assert not is_verified({"system": CCCD, "extension": [UNVERIFIED]})
    assert is_verified({"extension": [{"url": UNVERIFIED_EXTENSION, "valueBoolean": False}]})
    assert is_verified({"extension": [{"url": "urn:other", "valueBoolean": True}]})


def test_unverified_identifier_errors_become_warnings() -> None:
    identifier = {"system": CCCD, "value": "12345", "extension": [UNVERIFIED]}
    issues = check_identifier(identifier, 0, birth_date=None, gender=None)
    assert [(i.severity, i.rule) for i in issues] == [("warning", "cccd-length")]
    assert "unverified" in issues[0].message
    no_assigner = {"system": MRN, "value": "BN1", "extension": [UNVERIFIED]}
    assert [i.severity for i in check_identifier(no_assigner, 0, birth_date=None, gender=None)] == [
        "warning"
    ]


def test_explicitly_verified_identifier_keeps_its_errors() -> None:
    extension = [{"url": UNVERIFIED_EXTENSION, "valueBoolean": False}]
    assert _issues(CCCD, "12345", extension=extension) == [("error", "cccd-length")]


# -- whole resources ---------------------------------------------------------------------


def _patient(*identifiers: Resource, **fields: Any) -> Resource:
    return {"resourceType": "Patient", "identifier": list(identifiers), **fields}


def test_check_patient_identifiers_places_issues() -> None:
    patient = _patient(
        {"system": "urn:oid:1.2.3", "value": "x"},
        {"system": CCCD, "value": "001185012345"},
        {"system": BHYT, "value": "ZZ4010123456789"},
        birthDate="1985-03-12",
        gender="male",
    )
    issues = check_patient_identifiers(patient)
    assert [(i.severity, i.rule, i.index, i.expression) for i in issues] == [
        ("warning", "cccd-gender", 1, "Patient.identifier[1].value"),
        ("error", "bhyt-group", 2, "Patient.identifier[2].value"),
    ]


def test_check_related_person_identifiers() -> None:
    person = {
        "resourceType": "RelatedPerson",
        "identifier": [{"system": CCCD, "value": "001185012345"}],
        "birthDate": "1970-01-01",
    }
    issues = check_patient_identifiers(person)
    assert [(i.rule, i.expression) for i in issues] == [
        ("cccd-birth-year", "RelatedPerson.identifier[0].value")
    ]


def test_check_patient_without_identifiers() -> None:
    assert check_patient_identifiers({"resourceType": "Patient"}) == []


def test_normalise_value() -> None:
    assert normalise_value(CCCD, " 001-185-012 345 ") == "001185012345"
    assert normalise_value(BHYT, "dn4 01 0123456789") == "DN4010123456789"
    assert normalise_value(PASSPORT, "c1234567") == "C1234567"
    assert normalise_value(CMND, "012.345.678") == "012345678"
    assert normalise_value(MRN, " bn 1 ") == " bn 1 "
    assert normalise_value("urn:oid:1.2.3", "a b-c") == "a b-c"


def test_normalise_patient_identifiers_returns_a_copy() -> None:
    patient = _patient(
        {"system": BHYT, "value": "dn4 01 0123456789", "use": "official"},
        {"system": "urn:oid:1.2.3", "value": "a b"},
        {"system": PATIENT_INTERNAL_ID, "value": "bn1", "assigner": FACILITY},
        gender="female",
    )
    normalised = normalise_patient_identifiers(patient)
    assert normalised["identifier"] == [
        {"system": BHYT, "value": "DN4010123456789", "use": "official"},
        {"system": "urn:oid:1.2.3", "value": "a b"},
        {"system": PATIENT_INTERNAL_ID, "value": "bn1", "assigner": FACILITY},
    ]
    assert normalised["gender"] == "female"
    assert patient["identifier"][0]["value"] == "dn4 01 0123456789"


# -- OperationOutcome --------------------------------------------------------------------


def test_errors_reject_with_an_outcome_naming_the_rule() -> None:
    patient = _patient(
        {"system": CCCD, "value": "003185012345"},
        {"system": VNEID, "value": "001185012345"},
        gender="male",
    )
    with pytest.raises(Unprocessable) as caught:
        raise_if_rejected(check_patient_identifiers(patient))
    outcome = caught.value.outcome()
    assert caught.value.status == 422
    assert "cccd-province" in caught.value.diagnostics
    assert [(i["severity"], i["diagnostics"].split(":")[0]) for i in outcome["issue"]] == [
        ("error", "cccd-province"),
        ("warning", "vneid-gender"),
    ]
    assert outcome["issue"][0]["expression"] == ["Patient.identifier[0].value"]


def test_warnings_alone_do_not_reject() -> None:
    patient = _patient({"system": CCCD, "value": "001185012345"}, gender="male")
    issues = check_patient_identifiers(patient)
    assert [i.severity for i in issues] == ["warning"]
    raise_if_rejected(issues)
    assert outcome_issues(issues)[0].code == "value"


# -- the demo population -----------------------------------------------------------------


def test_demo_patients_identifiers_validate() -> None:
    patients = [
        entry["resource"]
        for bundle in population(120, seed=3)
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "Patient"
    ]
    assert len(patients) == 120
    checked = {i["system"] for p in patients for i in p["identifier"]}
    assert {CCCD, BHYT, PATIENT_INTERNAL_ID} <= checked
    problems = {p["id"]: check_patient_identifiers(p) for p in patients}
    assert {pid: issues for pid, issues in problems.items() if issues} == {}
