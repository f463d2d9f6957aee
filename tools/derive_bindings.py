"""Derive the terminology bindings of the R4 resources from the official FHIR R4 npm package.

Regenerate (from the repository root) with:

    .venv/bin/python tools/derive_bindings.py \
        ../shared/data/fhir-r4-spec-examples-npm/hl7.fhir.r4.examples-4.0.1.tgz

Output: src/vnehr/fhir/definitions/r4/bindings.json.gz. For every resource type and every
backbone element of one (named by its path, as in elements.json.gz: "Observation.component"),
the coded elements (types code, Coding, CodeableConcept) whose ElementDefinition.binding has
strength `required`, `extensible` or `preferred`, by JSON name, with the strength and the
value set canonical (without its `|4.0.1` version):

    {"Observation": {
        "category": ["preferred", "http://hl7.org/fhir/ValueSet/observation-category"],
        "interpretation": ["extensible", "http://hl7.org/fhir/ValueSet/observation-interpretation"],
        "status": ["required", "http://hl7.org/fhir/ValueSet/observation-status"], ...},
     "Observation.component": {...}, ...}

A choice element is listed under the JSON name of each coded type it allows
(`value[x]` -> `valueCodeableConcept`). Data types (Identifier.type, Address.use...) are not
listed: the table describes resources only. `example` bindings are left out (nothing to check).
The output is deterministic (sorted keys, gzip mtime 0): regenerating changes nothing unless
the package does. vnehr.terminology.bindings checks resources against it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from derive_definitions import OUT, write_gz

CODED = ("code", "Coding", "CodeableConcept")
STRENGTHS = ("required", "extensible", "preferred")


def read_structure_definitions(tgz: Path) -> list[dict[str, Any]]:
    """Every StructureDefinition of an npm package."""
    out: list[dict[str, Any]] = []
    with tarfile.open(tgz) as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if not member.isfile() or not name.startswith("StructureDefinition-"):
                continue
            if not name.endswith(".json"):
                continue
            f = tar.extractfile(member)
            if f is None:
                continue
            data = json.load(f)
            if isinstance(data, dict) and data.get("resourceType") == "StructureDefinition":
                out.append(data)
    return out


def is_resource_definition(sd: dict[str, Any]) -> bool:
    """A concrete resource of the specification itself, not a profile nor a logical model."""
    return (
        sd.get("kind") == "resource"
        and sd.get("derivation") == "specialization"
        and not sd.get("abstract")
        and "snapshot" in sd
    )


def resource_bindings(sd: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Bound coded elements of one resource and its backbone elements, keyed by type name."""
    elements = [e for e in sd["snapshot"]["element"] if ":" not in e.get("id", e["path"])]
    root = elements[0]["path"]
    name = sd["type"]
    out: dict[str, dict[str, list[str]]] = {}
    for el in elements[1:]:
        binding = el.get("binding") or {}
        strength = binding.get("strength")
        vs = binding.get("valueSet")
        if strength not in STRENGTHS or not isinstance(vs, str) or "contentReference" in el:
            continue
        if el.get("max") == "0":
            continue
        parent, elem = el["path"].rsplit(".", 1)
        owner = name if parent == root else name + parent[len(root) :]
        types = [t["code"] for t in el.get("type", []) if t.get("code") in CODED]
        if not types:
            continue
        entry = [strength, vs.split("|", 1)[0]]
        if elem.endswith("[x]"):
            for t in types:
                out.setdefault(owner, {})[elem[:-3] + t[:1].upper() + t[1:]] = entry
        else:
            out.setdefault(owner, {})[elem] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="hl7.fhir.r4.examples-4.0.1.tgz")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    table: dict[str, dict[str, list[str]]] = {}
    for sd in sorted(read_structure_definitions(args.package), key=lambda s: s["url"]):
        if is_resource_definition(sd):
            table.update(resource_bindings(sd))
    existing = set(json.loads((args.out / "resource_types.json").read_text(encoding="utf-8")))
    unknown = {key.split(".", 1)[0] for key in table} - existing
    if unknown:
        print(f"resource types not in resource_types.json: {sorted(unknown)}", file=sys.stderr)
        return 1
    size = write_gz(args.out / "bindings.json.gz", table)
    counts: dict[str, int] = dict.fromkeys(STRENGTHS, 0)
    for elements in table.values():
        for strength, _ in elements.values():
            counts[strength] += 1
    print(
        f"{len(table)} resources and backbone elements, "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f" bindings; bindings.json.gz {size} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
