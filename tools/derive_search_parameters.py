"""Derive src/vnehr/fhir/definitions/r4/search_parameters.json from the official R4 package.

Regenerate (from the repository root) with:

    .venv/bin/python tools/derive_search_parameters.py \
        ../shared/data/fhir-r4-spec-examples-npm/hl7.fhir.r4.examples-4.0.1.tgz

The package (hl7.fhir.r4.examples 4.0.1, CC0) is read in place; nothing is extracted. Output:

- "search_parameters": every SearchParameter of the core specification, one per line, with
  url, code, type, base, expression, target and component (empty fields left out; a target
  list of Reference(Any) is written "*" and given once, as "any_targets"). The
  `experimental` ones are left out: they are the examples (SearchParameter-example*) and the
  parameters defined by extension packages (patient-extensions-Patient-age, ...), which the
  core search-parameters list does not carry either. Expressions are kept whole; the registry
  keeps, per resource type, the union members that apply to it.
- "choice_elements": for every choice element ([x]) of a resource or complex data type, its
  path without [x] and the allowed types, so that the path compiler turns
  `Observation.effective` into effectiveDateTime | effectivePeriod | ... The open type list
  (Extension.value[x] and its like) is written once, as "open_types", and referred to as "*".

The output is deterministic (sorted), so regenerating it changes nothing unless the package does.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

OUT = (
    Path(__file__).resolve().parent.parent
    / "src"
    / "vnehr"
    / "fhir"
    / "definitions"
    / "r4"
    / "search_parameters.json"
)
DEFAULT_PACKAGE = (
    Path(__file__).resolve().parent.parent.parent
    / "shared"
    / "data"
    / "fhir-r4-spec-examples-npm"
    / "hl7.fhir.r4.examples-4.0.1.tgz"
)
# Only the data types an element of a resource can be; the open list has more than this many.
OPEN_TYPES_MIN = 30


def read_package(tgz: Path, prefixes: tuple[str, ...]) -> list[dict[str, Any]]:
    """The JSON resources of an npm package whose file names start with one of `prefixes`."""
    out: list[dict[str, Any]] = []
    with tarfile.open(tgz) as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if not member.isfile() or not name.endswith(".json") or not name.startswith(prefixes):
                continue
            f = tar.extractfile(member)
            if f is not None:
                out.append(json.load(f))
    return out


def search_parameter(sp: dict[str, Any], any_targets: list[str]) -> dict[str, Any]:
    """The compact record of one SearchParameter; Reference(Any) targets are written "*"."""
    record: dict[str, Any] = {
        "url": sp["url"],
        "code": sp["code"],
        "type": sp["type"],
        "base": sorted(sp["base"]),
    }
    if sp.get("expression"):
        record["expression"] = sp["expression"]
    if sp.get("target"):
        targets = sorted(sp["target"])
        record["target"] = "*" if targets == any_targets else targets
    if sp.get("component"):
        record["component"] = [
            {"definition": c["definition"], "expression": c["expression"]} for c in sp["component"]
        ]
    return record


def reference_any(sps: list[dict[str, Any]]) -> list[str]:
    """The target list of Reference(Any): the longest one (every type but Parameters)."""
    return max((sorted(sp.get("target", [])) for sp in sps), key=len)


def choice_elements(sds: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Choice element path -> type codes (or "*" for the open list), and the open list."""
    choices: dict[str, list[str]] = {}
    for sd in sds:
        if sd.get("derivation") != "specialization" or sd.get("kind") not in (
            "resource",
            "complex-type",
        ):
            continue
        for element in sd["snapshot"]["element"]:
            path = element["path"]
            if path.endswith("[x]"):
                choices[path[:-3]] = [t["code"] for t in element.get("type", [])]
    open_lists = {tuple(t) for t in choices.values() if len(t) >= OPEN_TYPES_MIN}
    if len(open_lists) != 1:
        raise SystemExit(f"expected one open type list, found {len(open_lists)}")
    open_types = list(open_lists.pop())
    table: dict[str, Any] = {}
    for path in sorted(choices):
        types = choices[path]
        table[path] = "*" if types == open_types else types
    return table, open_types


def write(
    out: Path,
    params: list[dict[str, Any]],
    any_targets: list[str],
    choices: dict[str, Any],
    open_types: list[str],
) -> None:
    def line(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)

    lines = ["{", '"fhirVersion": "4.0.1",', f'"any_targets": {line(any_targets)},']
    lines.append(f'"open_types": {line(open_types)},')
    lines.append('"choice_elements": {')
    items = [f"{line(path)}: {line(types)}" for path, types in choices.items()]
    lines.append(",\n".join(items))
    lines.append("},")
    lines.append('"search_parameters": [')
    lines.append(",\n".join(line(p) for p in params))
    lines.append("]")
    lines.append("}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, nargs="?", default=DEFAULT_PACKAGE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    resources = read_package(args.package, ("SearchParameter-", "StructureDefinition-"))
    sps = [
        r
        for r in resources
        if r.get("resourceType") == "SearchParameter" and not r.get("experimental")
    ]
    any_targets = reference_any(sps)
    params = sorted((search_parameter(sp, any_targets) for sp in sps), key=lambda p: p["url"])
    urls = [p["url"] for p in params]
    if len(set(urls)) != len(urls):
        print("duplicate SearchParameter urls", file=sys.stderr)
        return 1
    sds = [r for r in resources if r.get("resourceType") == "StructureDefinition"]
    choices, open_types = choice_elements(sds)
    write(args.out, params, any_targets, choices, open_types)
    size = args.out.stat().st_size
    print(
        f"{len(params)} search parameters, {len(choices)} choice elements; "
        f"{args.out.name} {size / 1024:.0f} KiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
