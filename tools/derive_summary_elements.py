"""Derive src/vnehr/fhir/definitions/r4/summary_elements.json from the R4 package.

For each resource type: the top-level elements marked isSummary, and those with min >= 1.
Usage: python tools/derive_summary_elements.py path/to/hl7.fhir.r4.examples-4.0.1.tgz
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

OUT = Path(__file__).parent.parent / "src/vnehr/fhir/definitions/r4/summary_elements.json"


def main(tgz: str) -> None:
    out: dict[str, dict[str, list[str]]] = {}
    with tarfile.open(tgz) as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if not (name.startswith("StructureDefinition-") and name.endswith(".json")):
                continue
            f = tar.extractfile(member)
            assert f is not None
            sd = json.load(f)
            if sd.get("kind") != "resource" or sd.get("derivation") != "specialization":
                continue
            summary, mandatory = [], []
            for el in sd["snapshot"]["element"]:
                parts = el["path"].split(".")
                if len(parts) != 2:
                    continue
                base = parts[1].replace("[x]", "")
                names = [base]
                if parts[1].endswith("[x]"):
                    names = [base + t["code"][0].upper() + t["code"][1:] for t in el["type"]]
                if el.get("isSummary"):
                    summary.extend(names)
                if el.get("min", 0) >= 1:
                    mandatory.extend(names)
            out[sd["type"]] = {"summary": summary, "mandatory": mandatory}
    OUT.write_text(json.dumps(out, separators=(",", ":"), sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
