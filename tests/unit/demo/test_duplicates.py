"""Duplicate registrations: ground truth, variants, identifiers, validity, determinism.

The master patient index is tuned and judged on these records, so a wrong label here is a
wrong precision or recall there: the tests check that each label means what it says.
"""

from __future__ import annotations

import csv
import json
import random
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from vnehr.demo import systems as sid
from vnehr.demo.duplicates import (
    CMND,
    IDENTIFIER_UNVERIFIED,
    VARIANTS,
    SourceRecord,
    old_tone_style,
    source_records,
    strip_accents,
    truth_pairs,
    typo,
)
from vnehr.demo.facilities import network
from vnehr.demo.places import geography

Resource = dict[str, Any]
SEED = 11
PEOPLE = 5000
FORMER_CODES = {f.code for f in geography().former} | {p.code for p in geography().provinces}


@pytest.fixture(scope="module")
def records() -> list[SourceRecord]:
    return list(source_records(PEOPLE, seed=SEED))


@pytest.fixture(scope="module")
def by_person(records: list[SourceRecord]) -> dict[int, list[SourceRecord]]:
    out: dict[int, list[SourceRecord]] = defaultdict(list)
    for r in records:
        out[r.person].append(r)
    return out


def _labels(record: SourceRecord) -> set[str]:
    return set(record.variant.split("+"))


def _values(patient: Resource, system: str) -> list[str]:
    return [i["value"] for i in patient["identifier"] if i["system"] == system]


def _true_birth_date(records: list[SourceRecord]) -> str:
    """The birth date as written on records that did not alter it."""
    dates = {
        r.patient["birthDate"] for r in records if not _labels(r) & {"year-only", "day-month-swap"}
    }
    assert len(dates) <= 1, dates
    return dates.pop() if dates else ""


def _home(record: SourceRecord) -> tuple[str, str, str]:
    """State code, ward (accent-free) and street line (accent-free) of the address."""
    address = record.patient["address"][0]
    state = address["extension"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
    return state, _fold(address["city"]), _fold(address["line"][0])


def _fold(text: str) -> str:
    return strip_accents(unicodedata.normalize("NFC", text)).lower()


def _levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


# Determinism and size


def test_the_same_seed_gives_the_same_records() -> None:
    assert list(source_records(300, seed=5)) == list(source_records(300, seed=5))
    other = [r.patient["id"] for r in source_records(300, seed=6)]
    assert other != [r.patient["id"] for r in source_records(300, seed=5)]


def test_more_people_extend_fewer() -> None:
    """Groups hold at most 4 people, so all but the last few people are the same."""
    small = [r for r in source_records(200, seed=5) if r.person < 196]
    large = [r for r in source_records(400, seed=5) if r.person < 196]
    assert small == large


def test_about_1_7_registrations_per_person(
    records: list[SourceRecord], by_person: dict[int, list[SourceRecord]]
) -> None:
    assert sorted(by_person) == list(range(PEOPLE))
    assert 1.6 <= len(records) / PEOPLE <= 1.8
    counts = Counter(len(rs) for rs in by_person.values())
    assert 0.5 <= counts[1] / PEOPLE <= 0.7
    assert 0.15 <= counts[2] / PEOPLE <= 0.3
    assert sum(n for k, n in counts.items() if k >= 5) >= PEOPLE * 0.01


def test_the_registrations_weights_are_used() -> None:
    records = list(source_records(100, seed=2, registrations=(0.0, 0.0, 1.0)))
    assert len(records) == 300
    assert set(Counter(r.person for r in records).values()) == {3}


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        source_records(2_000_000)
    with pytest.raises(ValueError):
        source_records(10, registrations=())
    with pytest.raises(ValueError):
        source_records(10, registrations=(1.0, -1.0))


# Variants


def test_every_variant_appears(records: list[SourceRecord]) -> None:
    seen = Counter(label for r in records for label in _labels(r))
    assert set(seen) == set(VARIANTS)
    assert seen["clean"] > len(records) / 2  # most records are right


def test_labels_are_known_and_in_order(records: list[SourceRecord]) -> None:
    for r in records:
        labels = r.variant.split("+")
        assert labels == sorted(labels, key=VARIANTS.index)
        assert len(set(labels)) == len(labels)
        assert "clean" not in labels or labels == ["clean"]


def test_first_registrations_are_mostly_clean_hospital_ones_with_cccd(
    by_person: dict[int, list[SourceRecord]],
) -> None:
    levels = {f.code: f.level for f in network(SEED).facilities}
    firsts = [rs[0] for rs in by_person.values()]
    with_cccd = sum(bool(_values(r.patient, sid.CCCD)) for r in firsts)
    at_hospital = sum(levels[r.facility_code] in ("provincial", "central") for r in firsts)
    errors = {"clean", "twin", "family-member", "common-name"}
    clean = sum(_labels(r) <= errors for r in firsts)
    assert with_cccd / len(firsts) > 0.85
    assert at_hospital / len(firsts) > 0.7
    assert clean / len(firsts) > 0.7
    later = [r for rs in by_person.values() for r in rs[1:]]
    assert sum("no-cccd" in _labels(r) for r in later) / len(later) > 0.15


def test_clean_records_agree_with_the_first(by_person: dict[int, list[SourceRecord]]) -> None:
    """A record labelled clean carries the same name, birth date, address and CCCD as a clean
    first registration of the same person."""
    checked = 0
    for rs in by_person.values():
        first = rs[0]
        if first.variant != "clean":
            continue
        for r in rs[1:]:
            if r.variant == "clean":
                for key in ("name", "birthDate", "gender", "address", "telecom"):
                    assert r.patient.get(key) == first.patient.get(key), key
                assert _values(r.patient, sid.CCCD) == _values(first.patient, sid.CCCD)
                checked += 1
    assert checked > 300


def test_records_of_one_person_agree_on_what_never_changes(
    by_person: dict[int, list[SourceRecord]],
) -> None:
    for rs in by_person.values():
        assert len({r.patient["gender"] for r in rs}) == 1
        assert len({r.patient["birthDate"][:4] for r in rs}) == 1
        _true_birth_date(rs)  # one full date on all records that did not alter it
        assert len({v for r in rs for v in _values(r.patient, sid.CCCD)}) <= 1
        assert len({v for r in rs for v in _values(r.patient, CMND)}) <= 1
        # The BHXH number (last 10 characters of the card) is lifelong; the group and
        # province before it may change.
        assert len({v[5:] for r in rs for v in _values(r.patient, sid.BHYT)}) <= 1


def test_identifiers_are_never_shared_by_two_people(records: list[SourceRecord]) -> None:
    for system in (sid.CCCD, CMND, sid.BHYT):
        owners: dict[str, set[int]] = defaultdict(set)
        for r in records:
            for value in _values(r.patient, system):
                owners[value[5:] if system == sid.BHYT else value].add(r.person)
        assert owners, system
        assert all(len(people) == 1 for people in owners.values()), system


def test_year_only_and_swapped_dates(by_person: dict[int, list[SourceRecord]]) -> None:
    swaps = years = 0
    for rs in by_person.values():
        truth = _true_birth_date(rs)
        for r in rs:
            labels, written = _labels(r), r.patient["birthDate"]
            if "year-only" in labels:
                assert re.fullmatch(r"\d{4}", written)
                years += 1
            elif "day-month-swap" in labels and truth:
                year, month, day = truth.split("-")
                assert written == f"{year}-{day}-{month}" != truth
                swaps += 1
            else:
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", written)
    assert swaps > 10 and years > 10


def test_no_accents_means_none(records: list[SourceRecord]) -> None:
    plain = [r for r in records if "no-accents" in _labels(r)]
    assert len(plain) > 200
    for r in plain:
        name, address = r.patient["name"][0], r.patient["address"][0]
        for text in (name["text"], name["family"], *name["given"], address["text"]):
            assert text.isascii(), text
    accented = [r for r in records if r.variant == "clean"]
    assert sum(not r.patient["name"][0]["text"].isascii() for r in accented) > 0.9 * len(accented)


def test_a_typo_is_one_small_edit(by_person: dict[int, list[SourceRecord]]) -> None:
    """Compared with a clean record of the person, a record whose only name change is the
    typo differs in its name by an edit of one or two letters (ch for tr)."""
    only_typo = {"typo", "no-cccd", "cmnd-only", "unverified-cccd", "no-bhyt", "moved"}
    checked = 0
    for rs in by_person.values():
        clean = next((r for r in rs if r.variant == "clean"), None)
        if clean is None:
            continue
        for r in rs:
            if "typo" in _labels(r) and _labels(r) <= only_typo:
                before, after = clean.patient["name"][0]["text"], r.patient["name"][0]["text"]
                assert 1 <= _levenshtein(before, after) <= 2, (before, after)
                checked += 1
    assert checked > 20


def test_name_structure_variants(by_person: dict[int, list[SourceRecord]]) -> None:
    seen: Counter[str] = Counter()
    for rs in by_person.values():
        clean = next((r for r in rs if r.variant == "clean"), None)
        if clean is None:
            continue
        true = clean.patient["name"][0]
        for r in rs:
            labels, name = _labels(r), r.patient["name"][0]
            if labels & {"typo", "uppercase", "no-accents", "decomposed", "tone-placement"}:
                continue
            if labels & {"short-name"} and not labels & {"reordered-name", "nickname"}:
                assert name["family"] == true["family"]
                assert name["given"][-1] == true["given"][-1]
                assert len(name["given"]) < len(true["given"])
                seen["short-name"] += 1
            if labels & {"reordered-name"} and not labels & {"short-name", "nickname"}:
                assert name != true
                assert sorted(name["text"].split()) == sorted(true["text"].split())
                seen["reordered-name"] += 1
            if labels & {"nickname"}:
                assert name["given"][-1] != true["given"][-1]
                seen["nickname"] += 1
    assert seen["short-name"] > 10 and seen["reordered-name"] > 5


def test_moved_records_live_in_another_province(by_person: dict[int, list[SourceRecord]]) -> None:
    moved = 0
    for rs in by_person.values():
        home = _home(rs[0])[0]
        for r in rs:
            if "moved" in _labels(r):
                assert _home(r)[0] != home
                moved += 1
            else:
                assert _home(r)[0] == home
    assert moved > 30


def test_unverified_cccds_are_marked(records: list[SourceRecord]) -> None:
    marked = 0
    for r in records:
        cards = [i for i in r.patient["identifier"] if i["system"] == sid.CCCD]
        flagged = [
            e
            for card in cards
            for e in card.get("extension", [])
            if e == {"url": IDENTIFIER_UNVERIFIED, "valueBoolean": True}
        ]
        assert bool(flagged) == ("unverified-cccd" in _labels(r))
        assert bool(cards) != bool(_labels(r) & {"no-cccd", "cmnd-only"})
        marked += bool(flagged)
    assert marked > 20


# Hard negatives


def test_twins_are_two_people_born_together(by_person: dict[int, list[SourceRecord]]) -> None:
    twins = sorted(p for p, rs in by_person.items() if "twin" in _labels(rs[0]))
    assert len(twins) >= 20
    assert len(twins) % 2 == 0
    for a, b in zip(twins[::2], twins[1::2], strict=True):
        assert (a % 2, b) == (0, a + 1)  # an aligned pair of people
        ra, rb = by_person[a], by_person[b]
        dates = {_true_birth_date(ra), _true_birth_date(rb)} - {""}  # "": only altered dates
        assert len(dates) <= 1
        assert ra[0].patient["birthDate"][:4] == rb[0].patient["birthDate"][:4]
        unmoved_a = [_home(r) for r in ra if "moved" not in _labels(r)]
        unmoved_b = [_home(r) for r in rb if "moved" not in _labels(r)]
        assert unmoved_a[0] == unmoved_b[0]
        assert (
            _fold(ra[0].patient["name"][0]["family"]) == _fold(rb[0].patient["name"][0]["family"])
            or _labels(ra[0]) & {"reordered-name"}
            or _labels(rb[0]) & {"reordered-name"}
        )
        cards = [_values(rs[0].patient, sid.CCCD) for rs in (ra, rb)]
        if cards[0] and cards[1] and ra[0].patient["gender"] == rb[0].patient["gender"]:
            assert int(cards[1][0]) == int(cards[0][0]) + 1  # consecutive serials
    # The records of a twin never carry the other twin's person number.
    assert all(r.person == p for p in twins for r in by_person[p])


def test_twins_have_different_given_names(by_person: dict[int, list[SourceRecord]]) -> None:
    twins = sorted(p for p, rs in by_person.items() if "twin" in _labels(rs[0]))
    similar = 0
    for a, b in zip(twins[::2], twins[1::2], strict=True):
        names = []
        for p in (a, b):
            clean = [r for r in by_person[p] if _labels(r) <= {"twin"}]
            names.append(clean[0].patient["name"][0]["given"][-1] if clean else None)
        if None not in names:
            assert names[0] != names[1]
            similar += _levenshtein(names[0], names[1]) <= 2
    assert similar >= 1


def test_families_share_address_and_phone(by_person: dict[int, list[SourceRecord]]) -> None:
    members = sorted(p for p, rs in by_person.items() if "family-member" in _labels(rs[0]))
    assert len(members) >= 40
    households: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    phones: dict[str, set[int]] = defaultdict(set)
    for p in members:
        households[_home(by_person[p][0])].add(p)
        for r in by_person[p]:
            for t in r.patient.get("telecom", []):
                phones[t["value"]].add(p)
    assert sum(len(people) >= 2 for people in households.values()) >= 15
    assert sum(len(people) >= 2 for people in phones.values()) >= 10


def test_namesakes_share_name_year_and_province(by_person: dict[int, list[SourceRecord]]) -> None:
    groups: dict[tuple[str, str, str, str], set[int]] = defaultdict(set)
    for p, rs in by_person.items():
        first = rs[0]
        if "common-name" in _labels(first) and _labels(first) <= {"common-name"}:
            key = (
                first.patient["name"][0]["text"],
                first.patient["birthDate"][:4],
                first.patient["gender"],
                _home(first)[0],
            )
            groups[key].add(p)
    shared = [people for people in groups.values() if len(people) >= 2]
    assert len(shared) >= 5
    for people in shared:
        dates = [_true_birth_date(by_person[p]) for p in people]
        assert len(set(dates)) == len(dates)  # born on different days


def test_truth_pairs() -> None:
    records = list(source_records(400, seed=3))
    pairs = truth_pairs(records)
    per_person = Counter(r.person for r in records)
    assert len(pairs) == sum(k * (k - 1) // 2 for k in per_person.values())
    for i, j in random.Random(0).sample(sorted(pairs), 50):
        assert i < j and records[i].person == records[j].person
    assert (0, len(records) - 1) not in pairs


# FHIR and identifiers


def test_every_patient_is_valid_fhir(records: list[SourceRecord]) -> None:
    validation = pytest.importorskip("vnehr.fhir.validation")
    problems = []
    for r in records:
        problems += [i for i in validation.validate(r.patient) if i.severity in ("error", "fatal")]
    assert problems[:20] == []


def test_patients_are_as_a_facility_sends_them(records: list[SourceRecord]) -> None:
    organizations = {f.code: f.id for f in network(SEED).facilities}
    numbers: set[tuple[str, str]] = set()
    for r in records:
        patient = r.patient
        assert patient["resourceType"] == "Patient" and "meta" not in patient
        internal = [i for i in patient["identifier"] if i["system"] == sid.PATIENT_INTERNAL_ID]
        assert len(internal) == 1
        reference = f"Organization/{organizations[r.facility_code]}"
        assert internal[0]["assigner"]["reference"] == reference
        assert patient["managingOrganization"]["reference"] == reference
        assert re.fullmatch(r"BN\d{8}", internal[0]["value"])
        numbers.add((reference, internal[0]["value"]))
    assert len(numbers) == len(records)  # a facility never reuses a record number
    assert len({r.patient["id"] for r in records}) == len(records)


def test_identifiers_are_well_formed(records: list[SourceRecord]) -> None:
    seen: Counter[str] = Counter()
    for r in records:
        patient = r.patient
        year = int(patient["birthDate"][:4])
        for identifier in patient["identifier"]:
            system, value = identifier["system"], identifier["value"]
            seen[system] += 1
            if system == sid.CCCD:
                assert re.fullmatch(r"0\d{11}", value)
                assert value[1:3] in FORMER_CODES
                century = (year // 100 - 19) * 2 + (patient["gender"] == "female")
                assert value[3] == str(century)
                assert value[4:6] == f"{year % 100:02d}"
            elif system == CMND:
                assert re.fullmatch(r"\d{9}", value)
                assert identifier["use"] == "old"
                assert year <= 2001
            elif system == sid.BHYT:
                assert re.fullmatch(r"[A-Z]{2}[1-5]\d{12}", value)
                assert value[3:5] in FORMER_CODES
        for telecom in patient.get("telecom", []):
            assert re.fullmatch(r"\+84[35789]\d{8}", telecom["value"])
    assert seen[CMND] > 100 and seen[sid.CCCD] > len(records) * 0.7


# Text helpers


def test_text_helpers() -> None:
    assert strip_accents("Nguyễn Đức Thủy") == "Nguyen Duc Thuy"
    assert old_tone_style("Hòa Thủy Hoàng Quỳnh") == "Hoà Thuỷ Hoàng Quỳnh"
    assert old_tone_style("HÒA") == "HOÀ"
    rng = random.Random(1)
    for word in ("Nguyễn", "Lan", "Trang", "Hùng", "An"):
        for _ in range(30):
            out = typo(rng, word)
            assert out != word and out
            assert _levenshtein(word, out) <= 2


def test_the_bench_script_writes_what_it_counts(tmp_path: Path) -> None:
    from bench.make_duplicates import write

    records, pairs, labels = write(120, 4, tmp_path)
    lines = (tmp_path / "patients.ndjson").read_text("utf-8").splitlines()
    with (tmp_path / "truth.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(lines) == len(rows) == records > 120
    assert [json.loads(line)["id"] for line in lines] == [row["record_id"] for row in rows]
    per_person = Counter(row["person"] for row in rows)
    assert pairs == sum(k * (k - 1) // 2 for k in per_person.values())
    assert sum(labels.values()) >= records
    organizations = (tmp_path / "organizations.ndjson").read_text("utf-8").splitlines()
    assert len(organizations) == len(network(4).facilities)
