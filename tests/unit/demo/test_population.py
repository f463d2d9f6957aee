"""The synthetic Vietnamese population: determinism, identifiers, names, bundles, validity."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from vnehr.demo import TODAY, facilities, population
from vnehr.demo import systems as sid
from vnehr.demo.identifiers import BHYT_BENEFIT, MOBILE_PREFIXES
from vnehr.demo.places import geography

Resource = dict[str, Any]
SEED = 20260101
REGISTRY = {"Organization", "Practitioner", "PractitionerRole"}


def _resources(bundles: list[Resource]) -> Iterator[Resource]:
    for bundle in bundles:
        for entry in bundle["entry"]:
            yield entry["resource"]


def _of_type(bundles: list[Resource], res_type: str) -> list[Resource]:
    return [r for r in _resources(bundles) if r["resourceType"] == res_type]


def _identifier(patient: Resource, system: str) -> str | None:
    return next((i["value"] for i in patient["identifier"] if i["system"] == system), None)


def _digest(bundles: list[Resource]) -> str:
    text = json.dumps(bundles, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def bundles() -> list[Resource]:
    return list(population(patients=2000, seed=SEED))


@pytest.fixture(scope="module")
def patients(bundles: list[Resource]) -> list[Resource]:
    return _of_type(bundles, "Patient")


def _by_patient(bundles: list[Resource]) -> Iterator[tuple[Resource, list[Resource]]]:
    """Each citizen with the resources of their record (a citizen is whole in one bundle)."""
    for bundle in bundles:
        current: list[Resource] = []
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "Patient":
                if current:
                    yield current[0], current
                current = [resource]
            elif current:
                current.append(resource)
        if current:
            yield current[0], current


# Determinism


def test_the_same_seed_gives_the_same_bytes() -> None:
    assert _digest(list(population(40, 7))) == _digest(list(population(40, 7)))


def test_the_same_seed_gives_the_same_bytes_in_another_process() -> None:
    """No dependence on hash randomisation, the clock or process state."""
    code = (
        "import hashlib, json; from vnehr.demo import population; "
        "b = list(population(25, 7)); "
        "print(hashlib.sha256(json.dumps(b, ensure_ascii=False, separators=(',', ':'))"
        ".encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == _digest(list(population(25, 7)))


def test_a_different_seed_gives_different_data() -> None:
    one, other = list(population(20, 1)), list(population(20, 2))
    assert _digest(one) != _digest(other)
    names = {p["name"][0]["text"] for p in _of_type(one, "Patient")}
    assert names != {p["name"][0]["text"] for p in _of_type(other, "Patient")}


def test_a_larger_population_extends_a_smaller_one() -> None:
    small = _of_type(list(population(10, 3)), "Patient")
    large = _of_type(list(population(30, 3)), "Patient")
    assert large[:10] == small


# Identifiers


def test_every_cccd_agrees_with_birth_date_sex_and_a_province_code(
    patients: list[Resource],
) -> None:
    province_codes = {f"0{f.code}" for f in geography().former}
    for patient in patients:
        number = _identifier(patient, sid.CCCD)
        assert number is not None and re.fullmatch(r"\d{12}", number), number
        born = date.fromisoformat(patient["birthDate"])
        female = patient["gender"] == "female"
        assert number[:3] in province_codes, number
        assert int(number[3]) == (born.year // 100 - 19) * 2 + female, (number, born)
        assert number[4:6] == f"{born.year % 100:02d}", (number, born)


def test_cccd_numbers_are_unique(patients: list[Resource]) -> None:
    numbers = [_identifier(p, sid.CCCD) for p in patients]
    assert len(set(numbers)) == len(numbers)


def test_bhyt_card_numbers_have_group_benefit_level_province_and_bhxh_number(
    patients: list[Resource],
) -> None:
    province_codes = {f.code for f in geography().former}
    cards = 0
    for patient in patients:
        card = _identifier(patient, sid.BHYT)
        if card is None:
            continue
        cards += 1
        assert re.fullmatch(r"[A-Z]{2}[1-5]\d{12}", card), card
        assert BHYT_BENEFIT[card[:2]] == int(card[2]), card
        assert card[3:5] in province_codes, card
        born = date.fromisoformat(patient["birthDate"])
        age = TODAY.year - born.year - ((TODAY.month, TODAY.day) < (born.month, born.day))
        assert (card[:2] == "TE") == (age < 6), (card, patient["birthDate"])
    assert cards > 0.9 * len(patients)


def test_mobile_numbers_have_vietnamese_prefixes(patients: list[Resource]) -> None:
    prefixes = {p[1:] for p, _ in MOBILE_PREFIXES}
    numbers = [
        t["value"]
        for p in patients
        for t in [*p.get("telecom", []), *(c for k in p.get("contact", []) for c in k["telecom"])]
    ]
    assert numbers
    for number in numbers:
        assert re.fullmatch(r"\+84\d{9}", number), number
        assert number[3:5] in prefixes, number


# Places and names


def test_the_data_file_holds_the_34_provinces_and_63_former_ones() -> None:
    geo = geography()
    assert len(geo.provinces) == 34 == len({p.code for p in geo.provinces})
    assert len(geo.former) == 63 == len({f.code for f in geo.former})
    assert {f.into for f in geo.former} == {p.code for p in geo.provinces}


def test_every_address_is_in_one_of_the_34_provinces(bundles: list[Resource]) -> None:
    provinces = {p.code: p for p in geography().provinces}
    for resource in _resources(bundles):
        for address in resource.get("address", []):
            coding = address["extension"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]
            province = provinces[coding["code"]]
            assert address["state"] == province.name == coding["display"]
            assert address["city"] in {w.name for w in province.wards}
            assert address["text"].endswith(f"{address['city']}, {province.name}")


def test_family_names_follow_the_national_distribution(patients: list[Resource]) -> None:
    families = Counter(p["name"][0]["family"] for p in patients)
    share = {name: n / len(patients) for name, n in families.items()}
    assert 0.33 < share["Nguyễn"] < 0.44
    assert 0.08 < share["Trần"] < 0.15
    assert 0.06 < share["Lê"] < 0.13
    assert 0.045 < share["Phạm"] < 0.095
    assert 0.03 < share.get("Hoàng", 0) + share.get("Huỳnh", 0) < 0.075
    assert 0.02 < share.get("Vũ", 0) + share.get("Võ", 0) < 0.06


def test_names_split_family_and_given_and_read_in_natural_order(
    patients: list[Resource],
) -> None:
    for patient in patients:
        name = patient["name"][0]
        assert name["text"] == " ".join([name["family"], *name["given"]])
        assert 2 <= len(name["given"]) <= 3
        assert unicodedata.is_normalized("NFC", name["text"])
    men = Counter(p["name"][0]["given"][0] for p in patients if p["gender"] == "male")
    women = Counter(p["name"][0]["given"][0] for p in patients if p["gender"] == "female")
    assert men["Văn"] > 0 and women["Thị"] > 0 and men["Thị"] == 0 and women["Văn"] == 0


# Facilities


def test_facilities_have_levels_provider_codes_and_addresses() -> None:
    orgs = facilities(SEED)
    codes = [o["identifier"][0]["value"] for o in orgs]
    assert len(set(codes)) == len(codes)
    provinces = {p.code for p in geography().provinces}
    levels = Counter()
    for org, code in zip(orgs, codes, strict=True):
        assert org["identifier"][0]["system"] == sid.PROVIDER_CODE
        assert re.fullmatch(r"\d{5}", code) and code[:2] in provinces
        level = next(e for e in org["extension"] if e["url"] == sid.FACILITY_LEVEL_EXTENSION)
        ownership = next(
            e for e in org["extension"] if e["url"] == sid.FACILITY_OWNERSHIP_EXTENSION
        )
        levels[(level["valueCoding"]["code"], ownership["valueCoding"]["code"])] += 1
        assert org["address"][0]["extension"][0]["extension"][0]["valueCodeableConcept"]
    for level in ("central", "provincial", "district", "commune"):
        assert levels[(level, "public")] > 0, levels
    assert sum(n for (_, owner), n in levels.items() if owner == "private") > 0


def test_facilities_are_the_same_as_in_the_bundles(bundles: list[Resource]) -> None:
    assert facilities(SEED) == _of_type(bundles, "Organization")


# Bundles


def test_every_reference_resolves_in_its_bundle_or_to_the_registry(
    bundles: list[Resource],
) -> None:
    registry = {f"{r['resourceType']}/{r['id']}" for r in _resources(bundles)}
    registry = {ref for ref in registry if ref.split("/")[0] in REGISTRY}

    def references(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            if isinstance(value.get("reference"), str):
                yield value["reference"]
            for item in value.values():
                yield from references(item)
        elif isinstance(value, list):
            for item in value:
                yield from references(item)

    for bundle in bundles:
        full_urls = {e["fullUrl"] for e in bundle["entry"]}
        for entry in bundle["entry"]:
            for ref in references(entry["resource"]):
                assert ref in full_urls or ref in registry, ref


def test_entries_are_puts_to_their_own_unique_ids(bundles: list[Resource]) -> None:
    ids = Counter()
    for bundle in bundles:
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
        for entry in bundle["entry"]:
            resource = entry["resource"]
            ids[resource["id"]] += 1
            assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
            assert entry["request"] == {
                "method": "PUT",
                "url": f"{resource['resourceType']}/{resource['id']}",
            }
    assert max(ids.values()) == 1


def test_bundles_hold_about_100_resources_and_whole_citizens(bundles: list[Resource]) -> None:
    sizes = []
    for bundle in bundles:
        entries = bundle["entry"]
        citizens = sum(e["resource"]["resourceType"] == "Patient" for e in entries)
        assert len(entries) <= 100 or citizens == 1
        if citizens:
            sizes.append(len(entries))
            first = entries[0]["resource"]["resourceType"]
            assert first == "Patient" or first in REGISTRY
    assert sum(sizes[:-1]) / len(sizes[:-1]) > 70
    registry_first = [e["resource"]["resourceType"] for e in bundles[0]["entry"]]
    assert set(registry_first) <= REGISTRY


# Clinical content


def test_nothing_happens_before_birth_or_after_today(bundles: list[Resource]) -> None:
    keys = ("effectiveDateTime", "occurrenceDateTime", "authoredOn", "recordedDate", "issued")
    for patient, record in _by_patient(bundles):
        born = patient["birthDate"]
        for resource in record[1:]:
            for key in keys:
                if key in resource:
                    assert born <= resource[key][:10] < TODAY.isoformat(), (key, resource)
            if "period" in resource:
                assert born <= resource["period"]["start"] <= resource["period"]["end"]
                assert resource["period"]["end"][:10] < TODAY.isoformat()


def test_diabetics_have_an_hba1c_series_and_metformin(bundles: list[Resource]) -> None:
    diabetics = 0
    for _, record in _by_patient(bundles):
        codes = {c["code"]["coding"][0]["code"] for c in record if c["resourceType"] == "Condition"}
        if "E11" not in codes:
            continue
        diabetics += 1
        hba1c = [
            r
            for r in record
            if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "4548-4"
        ]
        assert len(hba1c) >= 2
        drugs = {
            r["medicationCodeableConcept"]["coding"][0]["code"]
            for r in record
            if r["resourceType"] == "MedicationRequest"
        }
        assert "A10BA02" in drugs
    assert diabetics > 20


def test_hypertensive_adults_have_blood_pressure_panels(bundles: list[Resource]) -> None:
    hypertensive = 0
    for patient, record in _by_patient(bundles):
        codes = {c["code"]["coding"][0]["code"] for c in record if c["resourceType"] == "Condition"}
        if "I10" not in codes:
            continue
        hypertensive += 1
        assert patient["birthDate"] < f"{TODAY.year - 17}"
        panels = [
            r
            for r in record
            if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "85354-9"
        ]
        assert len(panels) >= 2
        components = {c["code"]["coding"][0]["code"] for c in panels[0]["component"]}
        assert components == {"8480-6", "8462-4"}
    assert hypertensive > 50


def test_young_children_have_epi_doses(bundles: list[Resource]) -> None:
    children = 0
    for patient, record in _by_patient(bundles):
        if (
            patient["birthDate"] > f"{TODAY.year - 5}"
            and patient["birthDate"] < f"{TODAY.year - 1}"
        ):
            children += 1
            vaccines = {
                r["vaccineCode"]["coding"][0]["code"]
                for r in record
                if r["resourceType"] == "Immunization"
            }
            assert vaccines & {"102", "178"}, patient["birthDate"]
    assert children > 50


def test_covid_reactions_point_at_a_fever_in_the_same_record(bundles: list[Resource]) -> None:
    reactions = 0
    for _, record in _by_patient(bundles):
        by_url = {f"urn:uuid:{r['id']}": r for r in record}
        for immunization in (r for r in record if r["resourceType"] == "Immunization"):
            for reaction in immunization.get("reaction", []):
                reactions += 1
                fever = by_url[reaction["detail"]["reference"]]
                assert fever["code"]["coding"][0]["code"] == "8310-5"
                assert fever["valueQuantity"]["value"] >= 37.5
    assert reactions > 20


def test_generated_resources_are_valid_fhir() -> None:
    """No error from the structural validator (warnings, e.g. dom-6 on narrative, allowed)."""
    validation = pytest.importorskip("vnehr.fhir.validation")
    problems = []
    for bundle in population(150, SEED):
        problems += [i for i in validation.validate(bundle) if i.severity in ("error", "fatal")]
    assert problems[:20] == []
