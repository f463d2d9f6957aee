"""The patients a resource is about: a Patient itself, and for other types the Patients their
Patient-compartment parameters reference (https://hl7.org/fhir/R4/compartmentdefinition-patient.html).

The parameters' expressions are compiled once per type by the search extractor's compiler
(vnehr.search.extract.paths), so finding them costs a walk over a few elements.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vnehr.search.extract.paths import Path, PathCompiler, PathError
from vnehr.search.extract.reference import parse, reference_type
from vnehr.search.query import compartments
from vnehr.search.registry import SearchParamRegistry


class PatientLinks:
    def __init__(self, registry: SearchParamRegistry) -> None:
        self.registry = registry
        self._compiler = PathCompiler(registry.choice_elements, registry.resource_types)
        self._params = compartments().get("Patient", {})
        self._paths: dict[str, tuple[Path, ...]] = {}

    def of(self, resource: Any) -> set[str]:
        """Ids of the Patients `resource` (a FHIR JSON object) belongs to."""
        found: set[str] = set()
        self._add(resource, found)
        return found

    def of_all(self, resources: Iterable[Any]) -> set[str]:
        found: set[str] = set()
        for resource in resources:
            self._add(resource, found)
        return found

    def _add(self, resource: Any, found: set[str]) -> None:
        if type(resource) is not dict:
            return
        res_type = resource.get("resourceType")
        if type(res_type) is not str:
            return
        if res_type == "Patient" and type(resource.get("id")) is str:
            found.add(resource["id"])
        paths = self._paths.get(res_type)
        if paths is None:
            paths = self._compiled(res_type)
        for path in paths:
            for node in _values(path, resource):
                if reference_type(node) == "Patient" and "reference" in node:
                    parsed = parse(node["reference"])
                    if parsed is not None and parsed[1]:
                        found.add(parsed[1])

    def named(self, res_type: str | None, query: Iterable[tuple[str, str]]) -> set[str]:
        """Patients a search names (`patient=1`, `subject=Patient/1`, `Patient?_id=1`): BALP
        records a query for the patient it asks about, whether or not it finds anything."""
        params = {"patient", *self._params.get(res_type or "", ())}
        found: set[str] = set()
        for key, value in query:
            name, _, modifier = key.partition(":")
            if res_type == "Patient" and name == "_id":
                found.update(v for v in value.split(",") if v)
                continue
            if name not in params or modifier not in ("", "Patient"):
                continue
            for item in value.split(","):
                kind, _, res_id = item.rpartition("/")
                typed = kind.endswith("Patient") or (not kind and (name == "patient" or modifier))
                if typed and res_id:
                    found.add(res_id)
        return found

    def _compiled(self, res_type: str) -> tuple[Path, ...]:
        paths = self._paths.get(res_type)
        if paths is None:
            made = []
            for code in self._params.get(res_type, ()):
                param = self.registry.get(res_type, code)
                if param is None or param.expression is None:
                    continue
                try:
                    made.append(self._compiler.compile(param.expression, res_type))
                except PathError:
                    continue
            paths = self._paths[res_type] = tuple(made)
        return paths


def _values(path: Path, resource: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for branch in path.branches:
        for key in branch.keys:
            value = resource.get(key)
            if value is None:
                continue
            values = value if type(value) is list else [value]
            out.extend(branch.walk(values) if branch.walk is not None else values)
    for walk in path.whole:
        out.extend(walk([resource]))
    return out
