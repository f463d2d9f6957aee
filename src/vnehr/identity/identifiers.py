"""Validation and normalisation of Vietnamese patient identifiers.

Identifier systems are those of the Ministry of Health draft VN Core IG (its `NamingSystem.*`
resources), plus one of vnehr's own:

- `CCCD` (`.../sid/national_id`): căn cước (công dân), the 12-digit personal identification
  number;
- `CMND` (`.../sid/citizen_id`): the old chứng minh nhân dân, 9 digits (or 12, 2012-2016);
- `BHYT` (`.../sid/insurance_number`): health insurance, the 15-character card number, the
  12-digit personal identification number (the insurance code from 2025) or the 10-digit
  social insurance number (mã số BHXH);
- `PASSPORT` (`.../sid/passport_number`): passport number;
- `PATIENT_INTERNAL_ID` (`.../sid/patient-internal-id`), `MRN` (`.../sid/MRN`): a facility's
  patient and medical record numbers;
- `VNEID` (`https://vnehr.org/fhir/sid/vneid`, vnehr's own: the IG has no NamingSystem for
  it): a VNeID account.

(`...` = `http://fhir.ehealth.gov.vn/core`.)

A VNeID account is identified by the citizen's personal identification number, so a `VNEID`
value has the form of a CCCD and is checked like one.

Every check returns `IdentifierIssue`s with a stable rule id (`cccd-province`,
`bhyt-group`, ...). Errors reject the resource (`raise_if_rejected`, an OperationOutcome
naming each rule); warnings do not. A facility that cannot vouch for an identifier marks it
with the extension `UNVERIFIED_EXTENSION` (valueBoolean true): its errors become warnings,
the identifier is kept, and it must never be used for deterministic matching
(`is_verified`). Identifiers of other systems are not checked: facilities use many.

Values are checked after `normalise_value` (spaces and dashes in a CCCD or BHYT number are
formatting, not errors); facility record numbers are opaque and checked as given.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from vnehr.errors import Issue, Unprocessable
from vnehr.identity.provinces import former_provinces

CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"
CMND = "http://fhir.ehealth.gov.vn/core/sid/citizen_id"
BHYT = "http://fhir.ehealth.gov.vn/core/sid/insurance_number"
PASSPORT = "http://fhir.ehealth.gov.vn/core/sid/passport_number"
VNEID = "https://vnehr.org/fhir/sid/vneid"
PATIENT_INTERNAL_ID = "http://fhir.ehealth.gov.vn/core/sid/patient-internal-id"
MRN = "http://fhir.ehealth.gov.vn/core/sid/MRN"
UNVERIFIED_EXTENSION = "https://vnehr.org/fhir/StructureDefinition/identifier-unverified"

KNOWN_SYSTEMS = frozenset({CCCD, CMND, BHYT, PASSPORT, VNEID, PATIENT_INTERNAL_ID, MRN})
RECORD_NUMBER_SYSTEMS = frozenset({PATIENT_INTERNAL_ID, MRN})
RECORD_NUMBER_MAX = 64

# Digit 4 of a personal identification number: century of birth and gender
# (Circular 07/2016/TT-BCA, Art. 7; kept by Circular 59/2021/TT-BCA).
CENTURY_GENDER: dict[str, tuple[int, str]] = {
    "0": (1900, "male"), "1": (1900, "female"),
    "2": (2000, "male"), "3": (2000, "female"),
    "4": (2100, "male"), "5": (2100, "female"),
    "6": (2200, "male"), "7": (2200, "female"),
    "8": (1800, "male"), "9": (1800, "female"),
}  # fmt: skip

# BHYT beneficiary groups (mã đối tượng, 2 letters) of Decision 1351/QĐ-BHXH (2015).
BHYT_GROUPS = frozenset({
    # paid by employee and employer
    "DN", "HX", "CH", "NN", "TK", "HC", "XK",
    # paid by the social insurance fund
    "HT", "TB", "NO", "CT", "XB", "TN", "CS",
    # paid by the state budget
    "QN", "CA", "CY", "XN", "MS", "CC", "CK", "CB", "KC", "HD", "TE", "BT", "HN", "DT", "DK",
    "XD", "TS", "TC", "TQ", "TA", "TY", "HG", "LS", "PV",
    # contribution supported by the state budget
    "CN", "HS", "SV", "GB",
    # household scheme
    "GD",
})  # fmt: skip
# Card province codes besides the 63 provinces: the social insurance of the Ministry of
# Defence (97) and of the People's Public Security (98), which issue the QN/CA/CY cards.
BHYT_EXTRA_PROVINCES = frozenset({"97", "98"})

_SEPARATORS = re.compile(r"[\s\-.]+")
_CARD = re.compile(r"[A-Z]{2}[0-9]{13}")
_PASSPORT = re.compile(r"(?=[A-Z0-9]*[0-9])[A-Z0-9]{6,9}")
_VN_PASSPORT = re.compile(r"[A-Z][0-9]{7}")
_REFERENCE_TYPE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?$")


@dataclass(frozen=True, slots=True)
class IdentifierIssue:
    """A problem with one identifier of a resource."""

    severity: str  # "error" | "warning"
    rule: str  # stable rule id, e.g. "cccd-province"
    message: str  # English, naming the rule
    index: int  # index of the identifier in <resource>.identifier
    expression: str  # e.g. "Patient.identifier[0].value"


@dataclass(frozen=True, slots=True)
class CccdFacts:
    """What a personal identification number says about its holder."""

    province: str  # the former (pre-2025) province code where the birth was registered
    current_province: str  # the code of the 2025 unit that province is part of
    gender: str  # "male" | "female"
    birth_year: int


@dataclass(frozen=True, slots=True)
class _Finding:
    """An issue before it is placed: severity, rule, message, element of the Identifier."""

    severity: str
    rule: str
    message: str
    element: str = "value"


def _error(rule: str, message: str, element: str = "value") -> _Finding:
    return _Finding("error", rule, message, element)


def _warning(rule: str, message: str) -> _Finding:
    return _Finding("warning", rule, message)


# -- normalisation -----------------------------------------------------------------------


def normalise_value(system: str, value: str) -> str:
    """The canonical form of `value` in `system`.

    National numbers (CCCD, CMND, VNeID) lose spaces, dashes and dots; BHYT and passport
    numbers also become upper case ("dn 4 01 0123456789" -> "DN4010123456789"). Facility
    record numbers and values of unknown systems are returned unchanged: they are opaque.
    """
    if system in (CCCD, CMND, VNEID):
        return _SEPARATORS.sub("", value)
    if system in (BHYT, PASSPORT):
        return _SEPARATORS.sub("", value).upper()
    return value


def normalise_patient_identifiers(patient: dict[str, Any]) -> dict[str, Any]:
    """A copy of `patient` whose identifiers of the known systems carry normalised values.

    The input is not modified; identifiers of other systems are copied as they are.
    """
    out = dict(patient)
    identifiers = patient.get("identifier")
    if isinstance(identifiers, list):
        out["identifier"] = [_normalised(i) for i in identifiers]
    return out


def _normalised(identifier: Any) -> Any:
    if not isinstance(identifier, dict):
        return identifier
    system, value = identifier.get("system"), identifier.get("value")
    if system not in KNOWN_SYSTEMS or not isinstance(value, str):
        return dict(identifier)
    return {**identifier, "value": normalise_value(system, value)}


# -- verification mark -------------------------------------------------------------------


def is_verified(identifier: dict[str, Any]) -> bool:
    """False when the facility marked the identifier unverified (`UNVERIFIED_EXTENSION`
    with valueBoolean true): such an identifier is kept but never matched on."""
    extensions = identifier.get("extension")
    if not isinstance(extensions, list):
        return True
    return not any(
        isinstance(e, dict)
        and e.get("url") == UNVERIFIED_EXTENSION
        and e.get("valueBoolean") is True
        for e in extensions
    )


# -- personal identification numbers (CCCD, 12-digit CMND, VNeID, BHYT since 2025) -------


def _is_digits(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isdigit()


def _pin_birth_year(value: str) -> int:
    """Birth year encoded by digits 4-6 (century digit, last two digits of the year)."""
    return CENTURY_GENDER[value[3]][0] + int(value[4:6])


def _pin_structure(value: str, prefix: str, label: str) -> list[_Finding]:
    """Rules `<prefix>-length`, `<prefix>-province`, `<prefix>-century`.

    12 digits: "0" + a 2-digit code of one of the 63 former provinces (where the birth was
    registered), a digit for gender and century, the last two digits of the birth year, six
    serial digits. The encoded birth year cannot be in the future.
    """
    if not _is_digits(value, 12):
        return [
            _error(
                f"{prefix}-length",
                f"{label} length: a personal identification number is 12 digits "
                f"(province, gender/century, birth year, serial); got {value!r}",
            )
        ]
    findings: list[_Finding] = []
    if value[0] != "0" or value[1:3] not in former_provinces():
        findings.append(
            _error(
                f"{prefix}-province",
                f"{label} province code: digits 1-3 {value[:3]!r} are not '0' followed by "
                "the code of one of the 63 provinces",
            )
        )
    year = _pin_birth_year(value)
    if year > date.today().year:
        findings.append(
            _error(
                f"{prefix}-century",
                f"{label} century digit: digits 4-6 {value[3:6]!r} encode birth year {year}, "
                "which is in the future",
            )
        )
    return findings


def _pin_consistency(
    value: str, prefix: str, label: str, birth_date: str | None, gender: str | None
) -> list[_Finding]:
    """Rules `<prefix>-birth-year`, `<prefix>-gender`: warnings, because the number is more
    often right than a hand-typed birthDate or gender, and neither is ours to correct."""
    findings: list[_Finding] = []
    year = _pin_birth_year(value)
    stated = _year_of(birth_date)
    if stated is not None and stated != year:
        findings.append(
            _warning(
                f"{prefix}-birth-year",
                f"{label} birth year: the number encodes {year}, birthDate says {stated}",
            )
        )
    encoded = CENTURY_GENDER[value[3]][1]
    if gender in ("male", "female") and gender != encoded:
        findings.append(
            _warning(
                f"{prefix}-gender",
                f"{label} gender: the number encodes {encoded}, gender says {gender}",
            )
        )
    return findings


def _pin_checks(
    value: str, prefix: str, label: str, birth_date: str | None, gender: str | None
) -> list[_Finding]:
    """Structure first; consistency with the resource only for a well-formed number."""
    return _pin_structure(value, prefix, label) or _pin_consistency(
        value, prefix, label, birth_date, gender
    )


def _year_of(birth_date: str | None) -> int | None:
    """The year of a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD); None if absent or malformed."""
    if isinstance(birth_date, str) and len(birth_date) >= 4 and _is_digits(birth_date[:4], 4):
        return int(birth_date[:4])
    return None


def cccd_facts(value: str) -> CccdFacts | None:
    """Province, 2025 unit, gender and birth year of a personal identification number (CCCD,
    12-digit CMND, VNeID); None when it is not a valid one (rules `cccd-length`,
    `cccd-province`, `cccd-century`). Spaces, dashes and dots are ignored."""
    value = normalise_value(CCCD, value)
    if _pin_structure(value, "cccd", "CCCD"):
        return None
    province = former_provinces()[value[1:3]]
    century, gender = CENTURY_GENDER[value[3]]
    return CccdFacts(province.code, province.current, gender, century + int(value[4:6]))


# -- the systems -------------------------------------------------------------------------

_Checker = Callable[[dict[str, Any], str, str | None, str | None], list[_Finding]]


def _check_cccd(
    identifier: dict[str, Any], value: str, birth_date: str | None, gender: str | None
) -> list[_Finding]:
    """CCCD: a 12-digit personal identification number."""
    return _pin_checks(value, "cccd", "CCCD", birth_date, gender)


def _check_vneid(
    identifier: dict[str, Any], value: str, birth_date: str | None, gender: str | None
) -> list[_Finding]:
    """VNeID: the account is the holder's personal identification number."""
    return _pin_checks(value, "vneid", "VNeID", birth_date, gender)


def _check_cmnd(
    identifier: dict[str, Any], value: str, birth_date: str | None, gender: str | None
) -> list[_Finding]:
    """CMND: 9 digits (rule `cmnd-length`). The 12-digit CMND issued from 2012 to 2016 has
    the structure of a CCCD, and its number became the holder's personal identification
    number, so 12 digits are accepted and checked like a CCCD (`cmnd-province`, ...)."""
    if _is_digits(value, 9):
        return []
    if _is_digits(value, 12):
        return _pin_checks(value, "cmnd", "CMND (12-digit)", birth_date, gender)
    return [
        _error(
            "cmnd-length",
            f"CMND length: an identity card number is 9 digits (or 12, with the structure of "
            f"a CCCD); got {value!r}",
        )
    ]


def _check_bhyt(
    identifier: dict[str, Any], value: str, birth_date: str | None, gender: str | None
) -> list[_Finding]:
    """BHYT: the 15-character card number; or, since the personal identification number
    serves as the insurance code (2025), a 12-digit CCCD (`bhyt-pin-*`); or the bare
    10-digit social insurance number (mã số BHXH). Anything else: `bhyt-length`."""
    if len(value) == 15:
        return _bhyt_card(value)
    if _is_digits(value, 12):
        return _pin_checks(
            value, "bhyt-pin", "BHYT (personal identification number)", birth_date, gender
        )
    if _is_digits(value, 10):
        return []
    return [
        _error(
            "bhyt-length",
            "BHYT length: an insurance number is a 15-character card number, a 12-digit "
            f"personal identification number or a 10-digit social insurance number; got {value!r}",
        )
    ]


def _bhyt_card(value: str) -> list[_Finding]:
    """Rules `bhyt-format`, `bhyt-group`, `bhyt-benefit-level`, `bhyt-province` of the
    15-character card: beneficiary group (2 letters, Decision 1351/QĐ-BHXH), benefit level
    (1-5), province code (2 digits), social insurance number (10 digits)."""
    if not _CARD.fullmatch(value):
        return [
            _error(
                "bhyt-format",
                "BHYT card format: 2 letters then 13 digits (group, benefit level, province, "
                f"social insurance number); got {value!r}",
            )
        ]
    findings: list[_Finding] = []
    if value[:2] not in BHYT_GROUPS:
        findings.append(
            _error(
                "bhyt-group",
                f"BHYT beneficiary group: {value[:2]!r} is not a group of Decision 1351/QĐ-BHXH",
            )
        )
    if value[2] not in "12345":
        findings.append(
            _error("bhyt-benefit-level", f"BHYT benefit level: {value[2]!r} is not 1-5")
        )
    province = value[3:5]
    if province not in former_provinces() and province not in BHYT_EXTRA_PROVINCES:
        findings.append(
            _error(
                "bhyt-province",
                f"BHYT province code: {province!r} is not the code of one of the 63 provinces",
            )
        )
    return findings


def _check_passport(
    identifier: dict[str, Any], value: str, birth_date: str | None, gender: str | None
) -> list[_Finding]:
    """Passports: 6-9 upper-case letters and digits, at least one digit (`passport-format`:
    what foreign passports have in common). A passport whose assigner is Vietnam (display
    naming Việt Nam, or identifier VNM) must be a letter and 7 digits (`passport-vn-format`,
    e.g. C1234567)."""
    if not _PASSPORT.fullmatch(value):
        return [
            _error(
                "passport-format",
                f"passport number format: 6-9 letters and digits; got {value!r}",
            )
        ]
    if _issued_by_vietnam(identifier) and not _VN_PASSPORT.fullmatch(value):
        return [
            _error(
                "passport-vn-format",
                f"Vietnamese passport number format: a letter and 7 digits; got {value!r}",
            )
        ]
    return []


def _issued_by_vietnam(identifier: dict[str, Any]) -> bool:
    assigner = identifier.get("assigner")
    if not isinstance(assigner, dict):
        return False
    display = assigner.get("display")
    if isinstance(display, str):
        folded = _fold(display)
        if "viet nam" in folded or "vietnam" in folded:
            return True
    logical = assigner.get("identifier")
    return isinstance(logical, dict) and logical.get("value") in ("VN", "VNM")


def _fold(text: str) -> str:
    """Lower case without diacritics ("Việt Nam" -> "viet nam")."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _check_record_number(
    identifier: dict[str, Any], value: str, birth_date: str | None, gender: str | None
) -> list[_Finding]:
    """Facility record numbers: at most 64 characters (`record-number-length`), no
    whitespace at either end (`record-number-whitespace`), and an assigner referring to the
    facility's Organization (`record-number-assigner`): a number means nothing without
    knowing whose it is."""
    findings: list[_Finding] = []
    if len(value) > RECORD_NUMBER_MAX:
        findings.append(
            _error(
                "record-number-length",
                f"record number length: at most {RECORD_NUMBER_MAX} characters; got {len(value)}",
            )
        )
    if value != value.strip():
        findings.append(
            _error(
                "record-number-whitespace",
                f"record number whitespace: no spaces at either end; got {value!r}",
            )
        )
    if not _names_organization(identifier.get("assigner")):
        findings.append(
            _error(
                "record-number-assigner",
                "record number assigner: a facility record number needs an assigner "
                "referring to the facility's Organization",
                element="assigner",
            )
        )
    return findings


def _names_organization(assigner: Any) -> bool:
    """Whether a Reference designates an Organization: `Organization/<id>` (relative or
    absolute), a Bundle-internal `urn:uuid:`/`urn:oid:` or contained `#id` reference whose
    `type` is not something else, or a logical reference (`identifier` with a value)."""
    if not isinstance(assigner, dict):
        return False
    declared = assigner.get("type")
    if declared is not None and declared != "Organization":
        return False
    reference = assigner.get("reference")
    if isinstance(reference, str) and reference:
        if reference.startswith(("urn:uuid:", "urn:oid:", "#")):
            return True
        match = _REFERENCE_TYPE.search(reference)
        return match is not None and match.group(1) == "Organization"
    logical = assigner.get("identifier")
    return isinstance(logical, dict) and isinstance(logical.get("value"), str)


_CHECKERS: dict[str, _Checker] = {
    CCCD: _check_cccd,
    CMND: _check_cmnd,
    BHYT: _check_bhyt,
    PASSPORT: _check_passport,
    VNEID: _check_vneid,
    PATIENT_INTERNAL_ID: _check_record_number,
    MRN: _check_record_number,
}


# -- entry points ------------------------------------------------------------------------


def check_identifier(
    identifier: dict[str, Any],
    index: int,
    *,
    birth_date: str | None,
    gender: str | None,
    res_type: str = "Patient",
) -> list[IdentifierIssue]:
    """The issues of one identifier (`<res_type>.identifier[index]`).

    Unknown systems have none. A known system needs a non-empty string value
    (`identifier-value`). Errors become warnings when the identifier is marked unverified.
    """
    system = identifier.get("system")
    checker = _CHECKERS.get(system) if isinstance(system, str) else None
    if system is None or checker is None:
        return []
    value = identifier.get("value")
    if not isinstance(value, str) or not value.strip():
        findings = [
            _error("identifier-value", f"identifier value: an identifier of {system} needs a value")
        ]
    else:
        findings = checker(identifier, normalise_value(system, value), birth_date, gender)
    verified = is_verified(identifier)
    return [_place(f, index, res_type, verified) for f in findings]


def _place(finding: _Finding, index: int, res_type: str, verified: bool) -> IdentifierIssue:
    severity, message = finding.severity, finding.message
    if severity == "error" and not verified:
        severity = "warning"
        message += " (identifier marked unverified: kept, never matched on)"
    expression = f"{res_type}.identifier[{index}].{finding.element}"
    return IdentifierIssue(severity, finding.rule, message, index, expression)


def check_patient_identifiers(patient: dict[str, Any]) -> list[IdentifierIssue]:
    """The issues of every identifier of a Patient (or Person, RelatedPerson, Practitioner),
    national numbers checked against its birthDate and gender."""
    identifiers = patient.get("identifier")
    if not isinstance(identifiers, list):
        return []
    res_type = patient.get("resourceType")
    birth_date, gender = patient.get("birthDate"), patient.get("gender")
    return [
        issue
        for index, identifier in enumerate(identifiers)
        if isinstance(identifier, dict)
        for issue in check_identifier(
            identifier,
            index,
            birth_date=birth_date if isinstance(birth_date, str) else None,
            gender=gender if isinstance(gender, str) else None,
            res_type=res_type if isinstance(res_type, str) else "Patient",
        )
    ]


# -- OperationOutcome --------------------------------------------------------------------


def outcome_issues(issues: Iterable[IdentifierIssue]) -> list[Issue]:
    """OperationOutcome issues (IssueType `value`) whose diagnostics start with the rule."""
    return [Issue(i.severity, "value", f"{i.rule}: {i.message}", (i.expression,)) for i in issues]


def raise_if_rejected(issues: Iterable[IdentifierIssue]) -> None:
    """Raise `Unprocessable` (422, the resource breaks a business rule) listing every issue,
    warnings included, when any issue is an error."""
    found = list(issues)
    errors = [i for i in found if i.severity == "error"]
    if errors:
        rules = ", ".join(dict.fromkeys(i.rule for i in errors))
        raise Unprocessable(
            diagnostics=f"invalid identifier ({rules})", issues=outcome_issues(found)
        )
