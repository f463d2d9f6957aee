"""Record matching of the master patient index: features, comparators, deterministic rules,
Fellegi–Sunter grades, blocking keys, the rules file and weight learning."""

from __future__ import annotations

import dataclasses
import math
import random
import re
from pathlib import Path
from typing import Any

import pytest

from vnehr.identity.features import (
    BHYT_SYSTEM,
    CCCD_SYSTEM,
    CMND_SYSTEM,
    MatchRecord,
    normalise_phone,
    record_from_patient,
)
from vnehr.identity.identifiers import UNVERIFIED_EXTENSION
from vnehr.identity.matching import RulesError, blocking_keys, compare, load_rules
from vnehr.identity.matching.blocking import candidate_pairs
from vnehr.identity.matching.rules import default_rules_text, parse_rules, write_rules
from vnehr.identity.matching.training import em_rules, learn_rules, tune_thresholds

Resource = dict[str, Any]
ADMIN = "http://fhir.ehealth.gov.vn/core/StructureDefinition/extension-administrative-address"
RULES = load_rules()


def patient(
    *,
    id: str = "p",
    text: str | None = None,
    family: str | None = None,
    given: list[str] | None = None,
    birth: str | None = None,
    gender: str | None = None,
    province: str | None = None,
    ward: str | None = None,
    phone: str | None = None,
    cccd: str | None = None,
    cmnd: str | None = None,
    bhyt: str | None = None,
    unverified: tuple[str, ...] = (),
) -> Resource:
    """A Patient as a facility sends it; `unverified` names the systems marked unverified."""
    name: Resource = {"use": "official"}
    if text:
        name["text"] = text
    if family:
        name["family"] = family
    if given:
        name["given"] = given
    resource: Resource = {"resourceType": "Patient", "id": id, "name": [name]}
    identifiers = []
    for system, value in ((CCCD_SYSTEM, cccd), (CMND_SYSTEM, cmnd), (BHYT_SYSTEM, bhyt)):
        if value:
            ident: Resource = {"system": system, "value": value}
            if system in unverified:
                ident["extension"] = [{"url": UNVERIFIED_EXTENSION, "valueBoolean": True}]
            identifiers.append(ident)
    if identifiers:
        resource["identifier"] = identifiers
    if birth:
        resource["birthDate"] = birth
    if gender:
        resource["gender"] = gender
    if phone:
        resource["telecom"] = [{"system": "phone", "value": phone}]
    if province or ward:
        parts = []
        if province:
            parts.append({"url": "state", "valueCodeableConcept": {"coding": [{"code": province}]}})
        if ward:
            parts.append({"url": "ward", "valueCodeableConcept": {"text": ward}})
        resource["address"] = [{"use": "home", "extension": [{"url": ADMIN, "extension": parts}]}]
    return resource


def rec(**kwargs: Any) -> MatchRecord:
    return record_from_patient(patient(**kwargs))


# The person of the issue: Nguyễn Thị Lan, born 12 March 1985, living in Hoàn Kiếm, Hà Nội.
LAN = {
    "family": "Nguyễn",
    "given": ["Thị", "Lan"],
    "birth": "1985-03-12",
    "gender": "female",
    "province": "01",
    "ward": "Phường Hoàn Kiếm",
    "phone": "+84912345678",
}


# -- features ----------------------------------------------------------------------------


def test_features_of_a_hospital_record() -> None:
    r = rec(id="1", **LAN, cccd="001185012345", bhyt="GD4010123456789")
    assert (r.family, r.middle, r.given) == ("nguyen", "thi", "lan")
    assert r.record_id == "Patient/1"
    assert (r.birth_date, r.gender, r.province, r.ward) == (
        "1985-03-12",
        "female",
        "01",
        "hoan kiem",
    )
    assert r.phones == ("+84912345678",)
    assert (r.cccd, r.cmnd, r.bhyt) == ("001185012345", None, "0123456789")
    assert MatchRecord.from_json(r.to_json()) == r


def test_name_text_alone_is_read_in_vietnamese_order() -> None:
    r = rec(text="NGUYỄN  Thị Ngọc Lan")
    assert (r.family, r.middle, r.given) == ("nguyen", "thi ngoc", "lan")
    assert rec(text="Lan").given == "lan"
    assert rec(text="Lan").family == ""


def test_unverified_and_malformed_identifiers_are_not_used_deterministically() -> None:
    r = rec(cccd="001185012345", cmnd="12345", unverified=(CCCD_SYSTEM,))
    assert r.cccd is None and r.cmnd is None
    assert r.unverified_ids == (f"{CCCD_SYSTEM}|001185012345", f"{CMND_SYSTEM}|12345")


def test_former_province_code_and_name_map_to_the_2025_unit() -> None:
    # Hà Giang (02) was merged into Tuyên Quang (08) on 1 July 2025.
    assert rec(province="02").province == "08"
    assert rec(province="08").province == "08"
    by_name = record_from_patient({"address": [{"state": "Tỉnh Hà Giang"}]})
    assert by_name.province == "08"
    assert rec(province="02", ward="Phường Hà Giang 1").ward == "ha giang 1"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0912 345 678", "+84912345678"),
        ("+84912345678", "+84912345678"),
        ("84 912 345 678", "+84912345678"),
        ("0912.345.678", "+84912345678"),
        ("01689 123 456", "+84389123456"),  # renumbered in 2018: 0168 -> 038
        ("024 3825 1234", "+842438251234"),  # Hà Nội landline
        ("12345", None),
        ("", None),
    ],
)
def test_phone_normalisation(raw: str, e164: str | None) -> None:
    assert normalise_phone(raw) == e164


def test_tone_mark_placement_and_case_do_not_matter() -> None:
    new, old = rec(text="Nguyễn Thị Hòa"), rec(text="NGUYỄN THỊ HOÀ")
    assert new.given == old.given == "hoa"
    assert new.marks == old.marks
    result = compare(
        dataclasses.replace(new, birth_date="1990-01-02"),
        dataclasses.replace(old, birth_date="1990-01-02"),
        RULES,
    )
    assert result.levels["given"] == "exact"


# -- the example of the issue ------------------------------------------------------------


def test_commune_record_with_year_only_is_probable_without_more() -> None:
    commune = rec(id="c", text="Nguyen Thi Lan", birth="1985", gender="female")
    hospital = rec(id="h", **LAN, cccd="001185012345")
    result = compare(commune, hospital, RULES)
    assert result.levels["birth_date"] == "partial"
    assert (result.levels["family"], result.levels["given"]) == ("exact", "exact")
    assert result.grade == "probable"
    assert result.reason is None


def test_commune_record_with_same_address_and_phone_is_linked() -> None:
    commune = rec(
        text="Nguyen Thi Lan",
        birth="1985",
        gender="female",
        province="01",
        ward="P. Hoan Kiem",
        phone="0912 345 678",
    )
    hospital = rec(**LAN, cccd="001185012345")
    result = compare(commune, hospital, RULES)
    assert result.levels["phone"] == "agree"
    assert result.levels["ward"] == "exact"
    assert result.grade in ("probable", "certain")
    bare = compare(rec(text="Nguyen Thi Lan", birth="1985", gender="female"), hospital, RULES)
    assert result.score > bare.score


def test_grade_is_symmetric() -> None:
    a = rec(text="Lan Nguyen Thi", birth="1985-12-03", gender="female", province="01")
    b = rec(**LAN)
    assert compare(a, b, RULES).score == pytest.approx(compare(b, a, RULES).score)


# -- deterministic rules -----------------------------------------------------------------


def test_different_cccds_are_different_people_whatever_the_names() -> None:
    a = rec(**LAN, cccd="001185012345")
    b = rec(**LAN, cccd="001185012346")
    result = compare(a, b, RULES)
    assert result.grade == "no-match"
    assert result.score == -math.inf
    assert result.reason == "different CCCDs"


def test_same_cccd_is_the_same_person_whatever_the_names() -> None:
    a = rec(text="Nguyễn Thị Lan", birth="1985-03-12", cccd="001185012345")
    b = rec(text="Trần Văn Hùng", birth="1960-01-01", gender="male", cccd="001185012345")
    result = compare(a, b, RULES)
    assert (result.grade, result.score, result.reason) == ("certain", math.inf, "same CCCD")


def test_cmnd_links_to_cccd() -> None:
    both = rec(**LAN, cccd="001185012345", cmnd="012345678")
    cmnd_only = rec(text="Nguyen Thi Lan", cmnd="012345678")
    cccd_only = rec(text="Nguyen Thi Lan", cccd="001185012345")
    assert compare(both, cmnd_only, RULES).reason == "same CMND"
    assert compare(both, cmnd_only, RULES).grade == "certain"
    # Without the index's knowledge the CMND-only and CCCD-only records are not decided ...
    assert compare(cmnd_only, cccd_only, RULES).reason is None
    # ... with it they are, both ways.
    links = {"012345678": "001185012345"}
    linked = compare(cmnd_only, cccd_only, RULES, cmnd_links=links)
    assert (linked.grade, linked.reason) == ("certain", "CMND linked to CCCD")
    other = rec(text="Nguyen Thi Lan", cccd="001185099999")
    assert compare(cmnd_only, other, RULES, cmnd_links=links).grade == "no-match"


def test_twelve_digit_cmnd_is_the_cccd_number() -> None:
    old_card = rec(text="Nguyen Thi Lan", cmnd="001185012345")
    new_card = rec(text="Nguyễn Thị Lan", cccd="001185012345")
    assert compare(old_card, new_card, RULES).reason == "CMND linked to CCCD"
    assert "cccd:001185012345" in blocking_keys(old_card)


def test_unverified_cccd_is_evidence_but_never_decides() -> None:
    typed = rec(text="Tran Van Hung", birth="1960", cccd="001185012345", unverified=(CCCD_SYSTEM,))
    scanned = rec(**LAN, cccd="001185012345")
    result = compare(typed, scanned, RULES)
    assert result.levels["unverified_id"] == "agree"
    assert result.reason != "same CCCD"
    assert result.grade != "certain"
    mistyped = dataclasses.replace(typed, unverified_ids=(f"{CCCD_SYSTEM}|001185012354",))
    assert compare(mistyped, scanned, RULES).levels["unverified_id"] == "disagree"
    assert compare(mistyped, rec(**LAN), RULES).levels["unverified_id"] == "missing"
    same_person = rec(**LAN, cccd="001185012345", unverified=(CCCD_SYSTEM,))
    assert compare(same_person, scanned, RULES).score > compare(rec(**LAN), scanned, RULES).score


# -- look-alikes -------------------------------------------------------------------------


def test_twins_are_never_certain() -> None:
    shared = {k: v for k, v in LAN.items() if k != "given"}
    lan = rec(given=["Thị", "Lan"], **shared)
    hoa = rec(given=["Thị", "Hoa"], **shared)
    result = compare(lan, hoa, RULES)
    assert result.levels["given"] == "disagree"
    assert result.grade not in ("certain", "probable")
    assert result.reason is not None and "given name" in result.reason


def test_twins_with_names_differing_by_a_tone_mark_are_not_certain() -> None:
    shared = {k: v for k, v in LAN.items() if k != "given"}
    huong = rec(given=["Thị", "Hương"], **shared)
    huong2 = rec(given=["Thị", "Hường"], **shared)
    result = compare(huong, huong2, RULES)
    assert result.levels["given"] == "diacritics"
    assert result.grade != "certain"
    # Written without diacritics on one side the names cannot be told apart.
    plain = rec(text="Nguyen Thi Huong", **shared)
    assert compare(plain, huong2, RULES).levels["given"] == "exact"


def test_similar_given_names_are_not_certain() -> None:
    shared = {k: v for k, v in LAN.items() if k != "given"}
    result = compare(
        rec(given=["Thị", "Thu"], **shared), rec(given=["Thị", "Thủy"], **shared), RULES
    )
    assert result.levels["given"] == "jw_high"
    assert result.grade != "certain"


def test_family_members_sharing_phone_and_address_do_not_match() -> None:
    home = {"province": "01", "ward": "Phường Hoàn Kiếm", "phone": "0912345678"}
    mother = rec(text="Nguyễn Thị Lan", birth="1985-03-12", gender="female", **home)
    daughter = rec(text="Trần Thị Mai", birth="2010-07-01", gender="female", **home)
    sister = rec(text="Nguyễn Thị Hoa", birth="1988-05-20", gender="female", **home)
    assert compare(mother, daughter, RULES).grade == "no-match"
    assert compare(mother, sister, RULES).grade == "no-match"


def test_same_name_other_birth_date_and_place_is_no_match() -> None:
    a = rec(**LAN)
    b = rec(text="Nguyễn Thị Lan", birth="1972-11-30", gender="female", province="79")
    assert compare(a, b, RULES).grade == "no-match"


# -- tolerated errors --------------------------------------------------------------------


def test_western_name_order_is_tolerated() -> None:
    result = compare(rec(text="Lan Nguyen Thi", birth="1985-03-12"), rec(**LAN), RULES)
    assert result.levels["name_order"] == "reordered"
    assert (result.levels["family"], result.levels["middle"], result.levels["given"]) == (
        "exact",
        "exact",
        "exact",
    )
    family_last = compare(rec(text="Thi Lan NGUYEN", birth="1985-03-12"), rec(**LAN), RULES)
    assert family_last.levels["name_order"] == "reordered"


@pytest.mark.parametrize(
    ("birth", "level"),
    [
        ("1985-03-12", "exact"),
        ("1985-12-03", "swapped"),
        ("1985-03-13", "typo"),
        ("1958-03-12", "typo"),  # two adjacent digits exchanged
        ("1985-03-28", "year_month"),
        ("1985", "partial"),
        ("1985-03", "partial"),
        ("1985-07-01", "same_year"),
        ("1990-06-25", "disagree"),
        (None, "missing"),
    ],
)
def test_birth_date_levels(birth: str | None, level: str) -> None:
    assert compare(rec(text="A B", birth=birth), rec(**LAN), RULES).levels["birth_date"] == level


def test_typical_duplicate_variants_are_at_least_probable() -> None:
    hospital = rec(**LAN, cccd="001185012345")
    address = {"province": "01", "ward": "Hoàn Kiếm", "phone": "0912345678"}
    variants = [
        rec(text="NGUYEN THI LAN", birth="1985-03-12", gender="female", **address),
        rec(text="Nguyễn Thị Lan", birth="1985-12-03", gender="female", **address),
        rec(text="Nguyen Lan", birth="1985-03-12", gender="female", **address),
        rec(text="Nguyen Thi Lna", birth="1985-03-12", gender="female", **address),
        rec(text="Lan Nguyen Thi", birth="1985", gender="female", **address),
        rec(text="Nguyễn Thị Lan", birth="1985-03-12", gender="female", province="02"),
    ]
    for variant in variants:
        assert compare(variant, hospital, RULES).grade in ("certain", "probable"), variant


# -- blocking ----------------------------------------------------------------------------


def test_blocking_keys_are_few_and_never_a_family_name_alone() -> None:
    r = rec(**LAN, cccd="001185012345", cmnd="012345678", bhyt="GD4010123456789")
    r = dataclasses.replace(r, phones=("+84912345678", "+84987654321"))
    keys = blocking_keys(r)
    assert len(keys) <= 8
    assert len(set(keys)) == len(keys)
    assert {"cccd:001185012345", "cmnd:012345678", "bhxh:0123456789"} <= set(keys)
    assert "phone:+84912345678" in keys
    assert all("|" in k for k in keys if k.split(":")[0] in ("fgy", "gdm", "fn", "tok"))
    assert rec(text="Nguyen").given == "nguyen"
    assert blocking_keys(rec(text="Nguyen")) == []


def test_blocking_keys_are_shared_by_typical_duplicate_variants() -> None:
    hospital = rec(**LAN, cccd="001185012345")
    variants = {
        "no ids, accents or phone": rec(text="Nguyen Thi Lan", birth="1985-03-12"),
        "year only": rec(text="Nguyen Thi Lan", birth="1985"),
        "day/month swapped": rec(text="Nguyễn Thị Lan", birth="1985-12-03"),
        "family typo": rec(text="Nguyen Thi Lan", birth="1985-03-12"),
        "given typo": rec(text="Nguyễn Thị Lna", birth="1985-03-12"),
        "family typo, year typo": rec(text="Ngyuen Thi Lan", birth="1986-03-12"),
        "middle dropped, moved": rec(text="Nguyen Lan", birth="1985-03-12", province="79"),
        "reordered": rec(text="Lan Nguyen Thi", birth="1985-12-03"),
        "only the phone": rec(text="Bé Lan", birth="2000-01-01", phone="0912 345 678"),
        "only the CCCD": rec(text="X", cccd="001185012345"),
    }
    keys = set(blocking_keys(hospital))
    for label, variant in variants.items():
        assert keys & set(blocking_keys(variant)), label


def test_blocking_keys_use_regional_family_spellings() -> None:
    north = rec(text="Hoàng Văn Nam", birth="1970-01-02")
    south = rec(text="Huỳnh Văn Nam", birth="1970")
    assert set(blocking_keys(north)) & set(blocking_keys(south))
    result = compare(north, south, RULES)
    assert result.levels["family"] == "variant"


def test_candidate_pairs() -> None:
    records = [rec(**LAN), rec(text="Nguyen Thi Lan", birth="1985"), rec(text="Tran Van Hung")]
    assert candidate_pairs(records) == {(0, 1)}


# -- the rules file ----------------------------------------------------------------------


def test_packaged_rules() -> None:
    assert RULES.certain > RULES.probable > RULES.possible
    weights = RULES.weights
    for field in ("family", "middle", "given", "birth_date"):
        assert weights[field]["exact"] > 0 > weights[field]["disagree"]
        assert weights[field]["missing"] == 0
    # A different given name outweighs a shared family name.
    assert -weights["given"]["disagree"] > weights["family"]["exact"]
    assert load_rules(None) is load_rules()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("version: 1", "version: 2"), "version"),
        (("  certain: 25", "  certain: 5"), "certain >= probable"),
        (("    exact: {m: 0.95, u: 0.08}", "    exact: {m: 1.5, u: 0.08}"), "fields.family.exact"),
        (("    variant: {m: 0.01, u: 0.002}  # Hoàng/Huỳnh, Vũ/Võ\n", ""), "fields.family"),
        (("  - when: {given: disagree}\n", "  - when: {given: different}\n"), "caps[1].when.given"),
        (("fields:", "fields:\n  shoe_size:\n    exact: {m: 0.5, u: 0.5}"), "shoe_size"),
        (("  possible: 11", "  possible: eleven"), "thresholds.possible"),
        (("version: 1", "version: [1"), "not valid YAML"),
    ],
)
def test_bad_rules_file_is_reported(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = default_rules_text()
    assert change[0] in text
    bad = tmp_path / "rules.yaml"
    bad.write_text(text.replace(change[0], change[1], 1), "utf-8")
    with pytest.raises(RulesError, match=re.escape(message)) as info:
        load_rules(bad)
    assert str(bad) in str(info.value)


def test_missing_rules_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")


# -- training ----------------------------------------------------------------------------

FAMILIES = ("nguyen", "tran", "le", "pham", "hoang", "phan", "vu", "dang", "bui", "do")
MIDDLES = ("van", "thi", "minh", "ngoc", "duc", "thanh")
GIVENS = ("lan", "hung", "mai", "nam", "hoa", "tuan", "linh", "anh", "dung", "huong", "son")


def _person(rng: random.Random, i: int) -> MatchRecord:
    return MatchRecord(
        record_id=f"Patient/{i}",
        family=rng.choice(FAMILIES),
        middle=rng.choice(MIDDLES),
        given=rng.choice(GIVENS),
        birth_date=f"{rng.randint(1950, 2010)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        gender=rng.choice(("male", "female")),
        province=rng.choice(("01", "79", "48")),
        ward=rng.choice(("a", "b", "c", "d")),
        phones=(f"+8491{rng.randrange(10**7):07d}",),
        cccd=None,
        cmnd=None,
        bhyt=None,
    )


def _variant(rng: random.Random, r: MatchRecord) -> MatchRecord:
    """The same person with a few registration errors."""
    changes: dict[str, Any] = {"record_id": r.record_id + "-dup"}
    if rng.random() < 0.1:
        changes["given"] = r.given[:-1] + "x"
    if rng.random() < 0.1 and r.birth_date:
        changes["birth_date"] = r.birth_date[:4]
    if rng.random() < 0.2:
        changes["phones"] = ()
    return dataclasses.replace(r, **changes)


def _labelled(seed: int, people: int) -> list[tuple[MatchRecord, MatchRecord, bool]]:
    rng = random.Random(seed)
    records = [_person(rng, i) for i in range(people)]
    pairs = [(r, _variant(rng, r), True) for r in records]
    pairs += [(records[i], records[i + 1], False) for i in range(people - 1)]
    return pairs


def test_training_learns_weights_in_the_right_direction(tmp_path: Path) -> None:
    flat = parse_rules(default_rules_text().replace("m: 0.95, u: 0.03", "m: 0.5, u: 0.5"), "flat")
    assert flat.weights["given"]["exact"] == 0
    learnt = learn_rules(_labelled(1, 2000), flat)
    w = learnt.weights
    assert w["given"]["exact"] > 3
    assert w["given"]["disagree"] < -3
    assert w["birth_date"]["exact"] > 5
    assert w["birth_date"]["partial"] > 0
    assert w["phone"]["agree"] > 5
    assert w["gender"]["disagree"] < -3
    # Fields the data never compares keep the weights they had.
    assert learnt.fields["bhxh"] == flat.fields["bhxh"]
    assert (learnt.certain, learnt.caps) == (flat.certain, flat.caps)

    out = tmp_path / "learnt.yaml"
    write_rules(learnt, out)
    reread = load_rules(out)
    assert reread.weights["given"]["exact"] == pytest.approx(w["given"]["exact"], abs=1e-3)
    assert "# Family name (họ)" in out.read_text("utf-8")  # the documentation survives


def test_threshold_tuning_separates_held_out_pairs() -> None:
    learnt = learn_rules(_labelled(1, 2000), RULES)
    tuned = tune_thresholds(_labelled(2, 2000), learnt, certain_precision=0.999)
    assert tuned.certain >= tuned.probable >= tuned.possible
    held_out = _labelled(3, 2000)
    certain = [same for a, b, same in held_out if compare(a, b, tuned).grade == "certain"]
    matches = sum(same for _, _, same in held_out)
    assert sum(certain) / len(certain) >= 0.99
    assert sum(certain) / matches >= 0.8


def test_em_without_labels_finds_the_direction_of_the_weights() -> None:
    flat = parse_rules(
        default_rules_text()
        .replace("exact: {m: 0.9, u: 0.0005}", "exact: {m: 0.6, u: 0.3}")
        .replace("agree: {m: 0.6, u: 0.005}", "agree: {m: 0.6, u: 0.4}"),
        "flat",
    )
    unlabelled = [(a, b) for a, b, _ in _labelled(4, 2000)]
    learnt = em_rules(unlabelled, flat)
    w = learnt.weights
    assert w["birth_date"]["exact"] > 5
    assert w["phone"]["agree"] > 3
    assert w["given"]["exact"] > 1
    assert w["given"]["disagree"] < -1
