"""JSON Patch and FHIRPath Patch: behaviour, error statuses and messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.people import BHYT, CCCD, lan
from vnehr.errors import InvalidRequest, Unprocessable
from vnehr.fhir.patch import apply_fhirpath_patch, apply_json_patch

BIRTH_TIME = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"


def op(kind: str, path: str, **parts: Any) -> dict[str, Any]:
    """One `operation` parameter; `value_x={"valueDate": ...}` or `value_parts=[...]`."""
    part: list[dict[str, Any]] = [
        {"name": "type", "valueCode": kind},
        {"name": "path", "valueString": path},
    ]
    if "name" in parts:
        part.append({"name": "name", "valueString": parts["name"]})
    if "value_x" in parts:
        part.append({"name": "value", **parts["value_x"]})
    if "value_parts" in parts:
        part.append({"name": "value", "part": parts["value_parts"]})
    for key in ("index", "source", "destination"):
        if key in parts:
            part.append({"name": key, "valueInteger": parts[key]})
    return {"name": "operation", "part": part}


def patch(resource: dict[str, Any], *operations: dict[str, Any]) -> dict[str, Any]:
    return apply_fhirpath_patch(
        resource, {"resourceType": "Parameters", "parameter": list(operations)}
    )


# JSON Patch


def test_json_patch_leaves_the_resource_and_the_patch_untouched() -> None:
    resource, ops = lan(), [{"op": "add", "path": "/telecom", "value": [{"value": "0912345678"}]}]
    before, ops_before = copy.deepcopy(resource), copy.deepcopy(ops)
    result = apply_json_patch(resource, ops)
    result["telecom"][0]["value"] = "changed"
    assert resource == before
    assert ops == ops_before


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ({"op": "remove", "path": "/gender"}, "array of operations"),
        ([{"path": "/gender"}], "operation 0"),
        ([{"op": "frobnicate", "path": "/gender"}], "Unknown operation"),
        ([{"op": "remove", "path": "gender"}], "must start with /"),
        ([{"op": "add", "path": "/gender"}], "needs a 'value'"),
        ([{"op": "move", "path": "/gender"}], "needs a 'from'"),
    ],
)
def test_a_malformed_json_patch_is_400(ops: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        apply_json_patch(lan(), ops)
    assert caught.value.status == 400


def test_a_malformed_operation_is_400_even_after_one_that_would_fail() -> None:
    ops = [{"op": "test", "path": "/gender", "value": "male"}, {"op": "add", "path": "/x"}]
    with pytest.raises(InvalidRequest, match="JSON Patch operation 1 \\(add /x\\)"):
        apply_json_patch(lan(), ops)


def test_a_failing_test_is_422_naming_the_operation_but_not_the_data() -> None:
    ops = [
        {"op": "replace", "path": "/gender", "value": "other"},
        {"op": "test", "path": "/name/0/family", "value": "Trần"},
    ]
    with pytest.raises(Unprocessable) as caught:
        apply_json_patch(lan(), ops)
    assert caught.value.status == 422
    assert "operation 1 (test /name/0/family)" in caught.value.diagnostics
    assert "Nguyễn" not in caught.value.diagnostics


def test_test_compares_json_types_strictly() -> None:
    resource = {**lan(), "active": True}
    with pytest.raises(Unprocessable, match="does not hold the tested value"):
        apply_json_patch(resource, [{"op": "test", "path": "/active", "value": 1}])


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "remove", "path": "/telecom"},
        {"op": "replace", "path": "/name/5", "value": {}},
        {"op": "add", "path": "/contact/0/name", "value": {}},
        {"op": "move", "from": "/photo", "path": "/telecom"},
    ],
)
def test_a_path_that_does_not_exist_is_422(operation: dict[str, Any]) -> None:
    with pytest.raises(Unprocessable) as caught:
        apply_json_patch(lan(), [operation])
    assert "Nguyễn" not in caught.value.diagnostics


def test_a_json_patch_must_leave_an_object() -> None:
    with pytest.raises(Unprocessable, match="not a JSON object"):
        apply_json_patch(lan(), [{"op": "replace", "path": "", "value": []}])


# FHIRPath Patch: malformed documents are 400


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"resourceType": "Patient"}, "must be a Parameters resource"),
        ({"resourceType": "Parameters", "parameter": [{"name": "op"}]}, "named 'operation'"),
        ({"resourceType": "Parameters", "parameter": [op("upsert", "Patient")]}, "unknown type"),
        ({"resourceType": "Parameters", "parameter": [op("replace", "Patient.gender")]}, "value"),
        ({"resourceType": "Parameters", "parameter": [op("add", "Patient")]}, "name, value"),
        ({"resourceType": "Parameters", "parameter": [op("insert", "Patient.name")]}, "index"),
        ({"resourceType": "Parameters", "parameter": [op("delete", "Patient..name")]}, "FHIRPath"),
        ({"resourceType": "Parameters", "parameter": [op("delete", "Patient.name)")]}, "FHIRPath"),
    ],
)
def test_a_malformed_fhirpath_patch_is_400(parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        apply_fhirpath_patch(lan(), parameters)
    assert caught.value.status == 400


def test_an_unknown_part_is_400() -> None:
    bad = op("delete", "Patient.gender")
    bad["part"].append({"name": "comment", "valueString": "why"})
    with pytest.raises(InvalidRequest, match="unknown part 'comment'"):
        patch(lan(), bad)


def test_a_function_patch_cannot_follow_is_400() -> None:
    with pytest.raises(InvalidRequest, match=r"children\(\) is not supported"):
        patch(lan(), op("delete", "Patient.name.children()"))


def test_messages_name_the_operation_and_its_path() -> None:
    with pytest.raises(Unprocessable) as caught:
        patch(
            lan(),
            op("delete", "Patient.gender"),
            op("replace", "Patient.photo", value_x={"valueAttachment": {}}),
        )
    assert caught.value.diagnostics.startswith(
        "FHIRPath Patch operation 1 (replace Patient.photo): the path matches no element"
    )
    assert caught.value.outcome()["issue"][0]["expression"] == ["Parameters.parameter[1]"]


# FHIRPath Patch: what each operation does


def test_the_input_and_the_parameters_are_left_untouched() -> None:
    resource = lan()
    parameters = {
        "resourceType": "Parameters",
        "parameter": [op("add", "Patient", name="telecom", value_x={"valueContactPoint": {}})],
    }
    before, parameters_before = copy.deepcopy(resource), copy.deepcopy(parameters)
    result = apply_fhirpath_patch(resource, parameters)
    result["telecom"][0]["value"] = "0912345678"
    assert resource == before
    assert parameters == parameters_before


def test_replace_needs_exactly_one_element() -> None:
    with pytest.raises(Unprocessable, match="matches 2 elements; replace needs exactly one"):
        patch(lan(), op("replace", "Patient.identifier.value", value_x={"valueString": "x"}))
    with pytest.raises(Unprocessable, match="matches no element"):
        patch(lan(), op("replace", "Patient.maritalStatus", value_x={"valueString": "x"}))


def test_replace_with_where_changes_the_matching_element_only() -> None:
    path = f"Patient.identifier.where(system = '{BHYT}').value"
    result = patch(lan(), op("replace", path, value_x={"valueString": "DN4010999999999"}))
    assert [i["value"] for i in result["identifier"]] == ["001185012345", "DN4010999999999"]


def test_where_compares_dates_as_dates() -> None:
    resource = {**lan(), "identifier": [{"value": "a", "period": {"start": "2020-05-01"}}]}
    path = "Patient.identifier.where(period.start > @2020-01-01T00:00:00).value"
    assert patch(resource, op("delete", path))["identifier"] == [
        {"period": {"start": "2020-05-01"}}
    ]


def test_delete_of_nothing_is_fine_but_of_two_is_422() -> None:
    assert patch(lan(), op("delete", "Patient.telecom")) == lan()
    with pytest.raises(Unprocessable, match="matches 2 elements; delete removes one"):
        patch(lan(), op("delete", "Patient.identifier"))


def test_delete_removes_what_it_leaves_empty() -> None:
    result = patch(
        lan(), op("delete", "Patient.address[0].city"), op("delete", "Patient.address.country")
    )
    assert "address" not in result


def test_add_sets_a_single_element_once() -> None:
    result = patch(lan(), op("add", "Patient", name="active", value_x={"valueBoolean": True}))
    assert result["active"] is True
    with pytest.raises(Unprocessable, match="gender already has a value"):
        patch(lan(), op("add", "Patient", name="gender", value_x={"valueCode": "male"}))


def test_add_appends_to_a_list_and_makes_one_when_missing() -> None:
    phone = {"valueContactPoint": {"system": "phone", "value": "0912345678"}}
    result = patch(lan(), op("add", "Patient", name="telecom", value_x=phone))
    assert result["telecom"] == [phone["valueContactPoint"]]
    result = patch(lan(), op("add", "Patient.name[0]", name="given", value_x={"valueString": "B"}))
    assert result["name"][0]["given"] == ["Thị", "Lan", "B"]


def test_add_names_a_choice_by_the_type_of_its_value() -> None:
    when = {"valueDateTime": "2024-01-02T03:04:05+07:00"}
    result = patch(lan(), op("add", "Patient", name="deceased", value_x=when))
    assert result["deceasedDateTime"] == when["valueDateTime"]
    with pytest.raises(Unprocessable, match="deceased cannot hold a String"):
        patch(lan(), op("add", "Patient", name="deceased", value_x={"valueString": "yes"}))
    with pytest.raises(Unprocessable, match="deceased already has a value"):
        patch(
            {**lan(), "deceasedBoolean": False},
            op("add", "Patient", name="deceased", value_x=when),
        )


def test_replace_changes_the_type_of_a_choice() -> None:
    resource = {**lan(), "deceasedBoolean": False}
    result = patch(resource, op("replace", "Patient.deceased", value_x={"valueDateTime": "2024"}))
    assert result["deceasedDateTime"] == "2024"
    assert "deceasedBoolean" not in result


def test_add_builds_an_anonymous_element_from_parts() -> None:
    parts = [
        {"name": "name", "valueHumanName": {"family": "Trần", "given": ["Văn", "Đức"]}},
        {"name": "telecom", "valueContactPoint": {"system": "phone", "value": "0987654321"}},
        {"name": "gender", "valueCode": "male"},
    ]
    result = patch(lan(), op("add", "Patient", name="contact", value_parts=parts))
    assert result["contact"] == [
        {
            "name": {"family": "Trần", "given": ["Văn", "Đức"]},
            "telecom": [{"system": "phone", "value": "0987654321"}],
            "gender": "male",
        }
    ]


def test_a_primitive_keeps_its_extensions_in_step() -> None:
    resource = lan()
    resource["name"][0]["_given"] = [None, {"extension": [{"url": "x", "valueString": "y"}]}]
    result = patch(resource, op("delete", "Patient.name[0].given[0]"))
    assert result["name"][0]["given"] == ["Lan"]
    assert result["name"][0]["_given"] == [{"extension": [{"url": "x", "valueString": "y"}]}]
    result = patch(
        resource, op("insert", "Patient.name[0].given", index=0, value_x={"valueString": "B"})
    )
    assert result["name"][0]["given"] == ["B", "Thị", "Lan"]
    assert result["name"][0]["_given"][0] is None


def test_an_extension_can_be_added_to_and_removed_from_a_primitive() -> None:
    parts = [
        {"name": "url", "valueUri": BIRTH_TIME},
        {"name": "value", "valueDateTime": "1985-03-12T06:30:00+07:00"},
    ]
    added = patch(lan(), op("add", "Patient.birthDate", name="extension", value_parts=parts))
    assert added["birthDate"] == "1985-03-12"
    assert added["_birthDate"] == {
        "extension": [{"url": BIRTH_TIME, "valueDateTime": "1985-03-12T06:30:00+07:00"}]
    }
    removed = patch(added, op("delete", f"Patient.birthDate.extension('{BIRTH_TIME}')"))
    assert removed == lan()


def test_only_an_extension_or_id_can_be_added_to_a_primitive() -> None:
    with pytest.raises(Unprocessable, match="is a primitive"):
        patch(lan(), op("add", "Patient.gender", name="text", value_x={"valueString": "x"}))


def test_insert_checks_its_index_and_that_the_path_names_a_list() -> None:
    value = {"valueIdentifier": {"system": CCCD, "value": "079214000123"}}
    result = patch(lan(), op("insert", "Patient.identifier", index=1, value_x=value))
    assert result["identifier"][1] == value["valueIdentifier"]
    result = patch(
        lan(), op("insert", "Patient.telecom", index=0, value_x={"valueContactPoint": {}})
    )
    assert result["telecom"] == [{}]
    with pytest.raises(Unprocessable, match="index 3 is outside the list of 2"):
        patch(lan(), op("insert", "Patient.identifier", index=3, value_x=value))
    with pytest.raises(Unprocessable, match="birthDate is not a list"):
        patch(lan(), op("insert", "Patient.birthDate", index=0, value_x={"valueDate": "2000"}))


def test_move_reorders_a_list() -> None:
    result = patch(lan(), op("move", "Patient.name[0].given", source=1, destination=0))
    assert result["name"][0]["given"] == ["Lan", "Thị"]
    with pytest.raises(Unprocessable, match="destination 2 is outside the list of 2"):
        patch(lan(), op("move", "Patient.identifier", source=0, destination=2))


def test_the_narrative_div_can_be_patched() -> None:
    resource = {**lan(), "text": {"status": "generated", "div": "<div>a</div>"}}
    div = '<div xmlns="http://www.w3.org/1999/xhtml">Nguyễn Thị Lan</div>'
    result = patch(resource, op("replace", "Patient.text.div", value_x={"valueString": div}))
    assert result["text"]["div"] == div


def test_the_resource_itself_cannot_be_deleted_or_replaced() -> None:
    with pytest.raises(Unprocessable, match="resource itself"):
        patch(lan(), op("delete", "Patient"))
    with pytest.raises(Unprocessable, match="resource itself"):
        patch(lan(), op("replace", "Patient", value_x={"valueString": "x"}))


def test_removing_the_only_extension_of_a_valueless_primitive_removes_it() -> None:
    resource = lan()
    resource["name"][0]["given"] = ["Lan", None]
    resource["name"][0]["_given"] = [None, {"extension": [{"url": "x", "valueString": "y"}]}]
    result = patch(resource, op("delete", "Patient.name[0].given.extension.first()"))
    assert result["name"][0]["given"] == ["Lan"]
    assert "_given" not in result["name"][0]


def test_contained_resources_are_found_by_type_and_id() -> None:
    org = {"resourceType": "Organization", "id": "bv", "name": "Bệnh viện Bạch Mai"}
    resource = {**lan(), "contained": [org, {"resourceType": "Practitioner", "id": "bs"}]}
    path = "Patient.contained.ofType(Organization).name"
    result = patch(resource, op("replace", path, value_x={"valueString": "BV Bạch Mai"}))
    assert result["contained"][0]["name"] == "BV Bạch Mai"
    result = patch(resource, op("delete", "Patient.contained.where(id = 'bs')"))
    assert result["contained"] == [org]
    medication = {"resourceType": "Medication", "id": "metformin"}
    result = patch(
        resource, op("add", "Patient", name="contained", value_x={"resource": medication})
    )
    assert result["contained"][2] == medication


def test_single_with_many_matches_is_422() -> None:
    with pytest.raises(Unprocessable, match=r"single\(\) found 2 elements"):
        patch(lan(), op("delete", "Patient.identifier.single()"))
