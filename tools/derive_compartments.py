"""Derive src/vnehr/fhir/definitions/r4/compartments.json from the official R4 package.

Regenerate (from the repository root) with:

    .venv/bin/python tools/derive_compartments.py \
        ../shared/data/fhir-r4-spec-examples-npm/hl7.fhir.r4.examples-4.0.1.tgz

The package (hl7.fhir.r4.examples 4.0.1, CC0) is read in place. Output: for each of the five
compartments of https://hl7.org/fhir/R4/compartmentdefinition.html (Patient, Encounter,
RelatedPerson, Practitioner, Device), the search parameters of each resource type that put
a resource in the compartment ({"Patient": {"Observation": ["subject", "performer"], ...}});
types with no parameter are left out. `{def}` (the compartment's own resource) is kept as is.
Deterministic (sorted keys).
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path

OUT = Path("src/vnehr/fhir/definitions/r4/compartments.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("package")
    args = parser.parse_args()
    out: dict[str, dict[str, list[str]]] = {}
    with tarfile.open(args.package) as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if not name.startswith("CompartmentDefinition-") or "example" in name:
                continue
            f = tar.extractfile(member)
            assert f is not None
            definition = json.load(f)
            code = definition["code"]
            out[code] = {
                r["code"]: list(r["param"]) for r in definition.get("resource", []) if r.get("param")
            }
    OUT.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {', '.join(sorted(out))}", file=sys.stderr)


if __name__ == "__main__":
    main()
