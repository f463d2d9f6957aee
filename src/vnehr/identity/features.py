"""A Patient reduced to what record matching compares: `MatchRecord`.

Everything that can be normalised once per record is normalised here, so that comparing
two records (done thousands of times per record at national scale) is string equality and
the odd Jaro–Winkler call: names are folded (NFC, lower case, accents and tone marks
removed, `đ` -> `d`, so Hoà/Hòa and Nguyễn/Nguyen are the same string), provinces are the
2025 units, phones are E.164, and identifiers are kept only when verified.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import phonenumbers

from vnehr.fhir.text import fold as _fold
from vnehr.identity.identifiers import BHYT, CCCD, CMND, is_verified
from vnehr.identity.provinces import current_code, current_provinces, former_provinces

# Identifier systems (VN Core IG NamingSystems). `citizen_id` is the old CMND (9 or 12
# digits), `national_id` the CCCD (12 digits), `insurance_number` the BHYT card.
CMND_SYSTEM = CMND
CCCD_SYSTEM = CCCD
BHYT_SYSTEM = BHYT
ADMINISTRATIVE_ADDRESS = (
    "http://fhir.ehealth.gov.vn/core/StructureDefinition/extension-administrative-address"
)

# Ward name prefixes (folded): the unit type says nothing about the person.
_WARD_PREFIXES = ("phuong ", "xa ", "thi tran ", "thi xa ", "p. ", "x. ", "tt. ", "p.", "x.")
_PROVINCE_PREFIXES = ("thanh pho ", "tinh ", "tp. ", "tp ")

# Mobile numbers renumbered on 15 September 2018 (11 -> 10 digits): old prefix -> new one.
# Records written before then still carry the old numbers.
# Names and wards repeat endlessly: fold each distinct string once.
fold = lru_cache(maxsize=1 << 16)(_fold)

_OLD_MOBILE_PREFIXES = {
    "0162": "032", "0163": "033", "0164": "034", "0165": "035", "0166": "036", "0167": "037",
    "0168": "038", "0169": "039",  # Viettel
    "0120": "070", "0121": "079", "0122": "077", "0126": "076", "0128": "078",  # MobiFone
    "0123": "083", "0124": "084", "0125": "085", "0127": "081", "0129": "082",  # VinaPhone
    "0186": "056", "0188": "058",  # Vietnamobile
    "0199": "059",  # Gmobile
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """The matching view of one Patient; all text folded, identifiers verified only."""

    record_id: str  # e.g. "Patient/123"
    family: str  # folded family name ("" if unknown)
    middle: str  # folded middle name(s), "" if none
    given: str  # folded given name: the last word, the name people are called by
    birth_date: str | None  # "YYYY-MM-DD", "YYYY-MM" or "YYYY" as given
    gender: str | None  # male | female | other; None when unknown
    province: str | None  # 2025 province unit code
    ward: str | None  # folded ward name without its "phuong"/"xa"/"thi tran" prefix
    phones: tuple[str, ...]  # E.164
    cccd: str | None  # verified CCCD, 12 digits
    cmnd: str | None  # verified CMND, 9 or 12 digits
    bhyt: str | None  # verified social insurance number (the last 10 digits of the card)
    unverified_ids: tuple[str, ...] = ()  # "system|value", never used deterministically
    # The words of the name as written, tone marks normalised (`tone_key`), in the order of
    # `name_tokens`; "" when the name was written without diacritics (nothing to tell).
    # Folding makes Hương and Hường one name; twins are given such pairs.
    marks: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "family": self.family,
            "middle": self.middle,
            "given": self.given,
            "birth_date": self.birth_date,
            "gender": self.gender,
            "province": self.province,
            "ward": self.ward,
            "phones": list(self.phones),
            "cccd": self.cccd,
            "cmnd": self.cmnd,
            "bhyt": self.bhyt,
            "unverified_ids": list(self.unverified_ids),
            "marks": self.marks,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MatchRecord:
        return cls(
            record_id=data["record_id"],
            family=data.get("family") or "",
            middle=data.get("middle") or "",
            given=data.get("given") or "",
            birth_date=data.get("birth_date"),
            gender=data.get("gender"),
            province=data.get("province"),
            ward=data.get("ward"),
            phones=tuple(data.get("phones") or ()),
            cccd=data.get("cccd"),
            cmnd=data.get("cmnd"),
            bhyt=data.get("bhyt"),
            unverified_ids=tuple(data.get("unverified_ids") or ()),
            marks=data.get("marks") or "",
        )

    @property
    def name_tokens(self) -> list[str]:
        """The words of the full name in the order recorded."""
        return [t for t in (self.family, *self.middle.split(), self.given) if t]


def record_from_patient(patient: dict[str, Any]) -> MatchRecord:
    """The match record of a FHIR Patient (any facility's shape: `name.text` alone, or
    family + given; old or new province codes; local or international phone numbers)."""
    name = _pick_name(patient.get("name") or [])
    family, middle, given = split_name(name)
    province, ward = _address(patient.get("address") or [])
    cccd, cmnd, bhyt, unverified = _identifiers(patient.get("identifier") or [])
    gender = patient.get("gender")
    return MatchRecord(
        record_id=f"Patient/{patient.get('id', '')}",
        family=family,
        middle=middle,
        given=given,
        birth_date=patient.get("birthDate") or None,
        gender=gender if gender in ("male", "female", "other") else None,
        province=province,
        ward=ward,
        phones=normalise_phones(
            t.get("value", "")
            for t in patient.get("telecom") or []
            if t.get("system") in ("phone", "sms")
        ),
        cccd=cccd,
        cmnd=cmnd,
        bhyt=bhyt,
        unverified_ids=unverified,
        marks=name_marks(name, family, middle, given),
    )


# -- names -------------------------------------------------------------------------------


def _pick_name(names: list[dict[str, Any]]) -> dict[str, Any]:
    for use in ("official", "usual", None):
        for name in names:
            found = name.get("use")
            if found == use or (use is None and found not in ("old", "maiden")):
                return name
    return names[0] if names else {}


def split_name(name: dict[str, Any]) -> tuple[str, str, str]:
    """(family, middle, given) of a HumanName, folded, in Vietnamese order.

    With `family` and `given` the family name is the first word of `family` (further words
    are taken as middle names) and the given name the last word of `given`. With `text`
    alone the words are read in Vietnamese order: family first, given last. A name written
    in Western order ("Lan Nguyen Thi") is parsed wrongly here on purpose: the comparator
    tries the rotations, the parser cannot know.
    """
    family_words = fold(name.get("family") or "").split()
    given_words = fold(" ".join(name.get("given") or [])).split()
    if family_words and given_words:
        words = family_words + given_words
    elif family_words and not given_words and not name.get("text"):
        return family_words[0], " ".join(family_words[1:]), ""
    else:
        words = fold(name.get("text") or "").split() or given_words
    words = [w.strip(".,;") for w in words]
    words = [w for w in words if w]
    if not words:
        return "", "", ""
    if len(words) == 1:
        return "", "", words[0]
    return words[0], " ".join(words[1:-1]), words[-1]


# Vietnamese tone marks (as combining characters after NFD): grave, acute, tilde, hook
# above, dot below. The other marks (circumflex, breve, horn) make other vowels.
_TONES = {"\u0300": "2", "\u0301": "1", "\u0303": "4", "\u0309": "3", "\u0323": "5"}


@lru_cache(maxsize=1 << 16)
def tone_key(word: str) -> str:
    """A word with its tone mark moved to the end as a digit: "Hoà", "Hòa" and "HÒA" ->
    "hoa2", "Hường" -> "hương2", "Hương" -> "hương". The tone belongs to the syllable, not
    to a letter, so where it is placed (old and new styles) does not matter."""
    tone = ""
    kept = []
    for c in unicodedata.normalize("NFD", word.lower()):
        if c in _TONES:
            tone = _TONES[c]
        else:
            kept.append(c)
    return unicodedata.normalize("NFC", "".join(kept)) + tone


def name_marks(name: dict[str, Any], family: str, middle: str, given: str) -> str:
    """`MatchRecord.marks` of a HumanName: its words as `tone_key`s, aligned with the folded
    (family, middle, given); "" if the name has no diacritics or the words do not align."""
    words = " ".join([name.get("family") or "", *(name.get("given") or [])]).split()
    if not name.get("family") or not name.get("given"):
        words = (name.get("text") or "").split() or words
    written = " ".join(words)
    if written.isascii():
        return ""
    keys = [tone_key(w.strip(".,;")) for w in words]
    keys = [k for k in keys if k]
    folded = [t for t in (family, *middle.split(), given) if t]
    if len(keys) != len(folded) or [fold(k.rstrip("12345")) for k in keys] != folded:
        return ""
    return " ".join(keys)


# -- address -----------------------------------------------------------------------------


def _address(addresses: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    if not addresses:
        return None, None
    home = next((a for a in addresses if a.get("use") == "home"), None)
    addr = home or next((a for a in addresses if a.get("use") not in ("old",)), addresses[0])
    state_code: str | None = None
    ward_text: str | None = None
    for ext in addr.get("extension") or []:
        if ext.get("url") != ADMINISTRATIVE_ADDRESS:
            continue
        for part in ext.get("extension") or []:
            concept = part.get("valueCodeableConcept") or {}
            codings = concept.get("coding") or [{}]
            if part.get("url") == "state":
                state_code = codings[0].get("code")
            elif part.get("url") == "ward":
                ward_text = concept.get("text") or codings[0].get("display")
    province = current_code(state_code) if state_code else None
    if province is None and addr.get("state"):
        province = province_by_name(addr["state"])
    return province, normalise_ward(ward_text or addr.get("city"))


def normalise_ward(text: str | None) -> str | None:
    """Folded ward name without its unit type: "Phường Hương Thủy" -> "huong thuy"."""
    if not text:
        return None
    folded = " ".join(fold(text).split())
    for prefix in _WARD_PREFIXES:
        if folded.startswith(prefix):
            folded = folded[len(prefix) :].strip()
            break
    return folded or None


def province_by_name(text: str) -> str | None:
    """The 2025 unit code of a province named in text, former or current ("Hà Giang")."""
    return _province_names().get(_strip_province(fold(text)))


def _strip_province(folded: str) -> str:
    folded = " ".join(folded.split())
    for prefix in _PROVINCE_PREFIXES:
        if folded.startswith(prefix):
            return folded[len(prefix) :]
    return folded


@cache
def _province_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for province in (*former_provinces().values(), *current_provinces().values()):
        names.setdefault(_strip_province(fold(province.name)), province.current)
    # Current units win over a former province of the same name that merged elsewhere.
    for province in current_provinces().values():
        names[_strip_province(fold(province.name))] = province.code
    return names


# -- phones ------------------------------------------------------------------------------


def normalise_phones(values: Iterable[str]) -> tuple[str, ...]:
    """Valid numbers in E.164, in order, without repeats; region VN for local numbers."""
    out: list[str] = []
    for value in values:
        e164 = normalise_phone(value)
        if e164 and e164 not in out:
            out.append(e164)
    return tuple(out)


def normalise_phone(value: str) -> str | None:
    """E.164 of a phone number ("0912 345 678" -> "+84912345678"); None if not valid.

    Pre-2018 11-digit mobile numbers are renumbered to their current 10-digit form.
    A number already in E.164 with 9 national digits (a mobile) is checked by its prefix,
    parsed once per prefix: parsing costs ~200 µs, most of a record's features.
    """
    if len(value) == 12 and value.startswith("+84") and value[1:].isdigit():
        return value if _valid_prefix(value[:6], value) else None
    digits = "".join(c for c in value if c.isdigit() or c == "+")
    if not digits:
        return None
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    if len(digits) == 11 and digits[:4] in _OLD_MOBILE_PREFIXES:
        digits = _OLD_MOBILE_PREFIXES[digits[:4]] + digits[4:]
    try:
        number = phonenumbers.parse(digits, "VN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_PREFIX_VALID: dict[str, bool] = {}


def _valid_prefix(prefix: str, example: str) -> bool:
    """Whether numbers of 9 national digits starting with `prefix` are valid (the validity
    of a Vietnamese mobile number depends on its network prefix only)."""
    valid = _PREFIX_VALID.get(prefix)
    if valid is None:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(example, "VN"))
        _PREFIX_VALID[prefix] = valid
    return valid


# -- identifiers -------------------------------------------------------------------------


def is_unverified(identifier: dict[str, Any]) -> bool:
    """True when the facility marked the identifier unverified (identifiers.is_verified)."""
    return not is_verified(identifier)


def social_insurance_number(value: str) -> str | None:
    """The 10-digit social insurance number (mã số BHXH) of a BHYT card number (15
    characters: group, benefit level, province, BHXH number) or of a bare BHXH number."""
    value = "".join(value.split()).upper()
    tail = value[-10:]
    if len(value) in (10, 15) and tail.isdigit():
        return tail
    return None


def _identifiers(
    identifiers: list[dict[str, Any]],
) -> tuple[str | None, str | None, str | None, tuple[str, ...]]:
    cccd: str | None = None
    cmnd: str | None = None
    bhyt: str | None = None
    unverified: list[str] = []
    for identifier in identifiers:
        system = identifier.get("system")
        raw = identifier.get("value")
        if not system or not raw:
            continue
        value = "".join(str(raw).split())
        if system == BHYT_SYSTEM:
            value = social_insurance_number(value) or value.upper()
        well_formed = (
            (system == CCCD_SYSTEM and len(value) == 12 and value.isdigit())
            or (system == CMND_SYSTEM and len(value) in (9, 12) and value.isdigit())
            or (system == BHYT_SYSTEM and len(value) == 10 and value.isdigit())
        )
        if is_unverified(identifier) or (
            system in (CCCD_SYSTEM, CMND_SYSTEM, BHYT_SYSTEM) and not well_formed
        ):
            unverified.append(f"{system}|{value}")
        elif system == CCCD_SYSTEM and cccd is None:
            cccd = value
        elif system == CMND_SYSTEM and cmnd is None:
            cmnd = value
        elif system == BHYT_SYSTEM and bhyt is None:
            bhyt = value
    return cccd, cmnd, bhyt, tuple(dict.fromkeys(unverified))
