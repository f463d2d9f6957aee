"""The patients a resource belongs to: the Patient compartment's parameters."""

from __future__ import annotations

from vnehr.audit.patients import PatientLinks
from vnehr.search.registry import r4_registry

LINKS = PatientLinks(r4_registry())


def test_a_patient_belongs_to_itself_and_to_the_patients_it_links() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "lan",
        "link": [{"other": {"reference": "Patient/lan2"}}],
    }
    assert LINKS.of(patient) == {"lan", "lan2"}


def test_an_observation_belongs_to_its_subject_and_to_a_patient_performer() -> None:
    obs = {
        "resourceType": "Observation",
        "subject": {"reference": "Patient/lan"},
        "performer": [{"reference": "Practitioner/duc"}, {"reference": "Patient/lan-self"}],
    }
    assert LINKS.of(obs) == {"lan", "lan-self"}


def test_only_references_to_patients_count() -> None:
    encounter = {"resourceType": "Encounter", "subject": {"reference": "Group/ward-3"}}
    assert LINKS.of(encounter) == set()
    immunization = {"resourceType": "Immunization", "patient": {"reference": "Patient/duc"}}
    assert LINKS.of(immunization) == {"duc"}


def test_absolute_and_versioned_references_name_the_patient() -> None:
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/lan/_history/3"},
        "asserter": {"reference": "Patient/lan"},
    }
    assert LINKS.of(condition) == {"lan"}


def test_resources_outside_the_compartment_and_junk_belong_to_no_one() -> None:
    assert LINKS.of({"resourceType": "Organization", "id": "org-a"}) == set()
    assert LINKS.of({"resourceType": "Observation", "subject": "Patient/lan"}) == set()
    assert LINKS.of("not a resource") == set()
    assert LINKS.of({"id": "no-type"}) == set()


def test_an_audit_event_belongs_to_the_patient_it_names() -> None:
    event = {
        "resourceType": "AuditEvent",
        "entity": [
            {"what": {"reference": "Patient/lan"}},
            {"what": {"reference": "Observation/1"}},
        ],
    }
    assert LINKS.of(event) == {"lan"}


def test_a_search_names_the_patients_it_asks_about() -> None:
    query = [
        ("subject", "Patient/lan,Group/ward-3"),
        ("performer", "Practitioner/duc"),
        ("patient", "duc"),
        ("subject:Patient", "minh"),
        ("code", "http://loinc.org|4548-4"),
    ]
    assert LINKS.named("Observation", query) == {"lan", "duc", "minh"}
    assert LINKS.named("Observation", [("subject", "ward-3")]) == set()  # a bare id: any type
    assert LINKS.named("Patient", [("_id", "lan,duc")]) == {"lan", "duc"}
    assert LINKS.named(None, [("patient", "Patient/lan")]) == {"lan"}
