"""Derive tests/conformance/data/fhir-patch/ from the official FHIR patch test cases.

Regenerate (from the repository root) with:

    .venv/bin/python tools/derive_patch_cases.py ../shared/data/fhir-patch-r4

fhir-patch-tests.xml (FHIRPath Patch cases written in FHIR XML) becomes fhir-patch-tests.json,
each case {name, mode, input, patch, output | error} in FHIR JSON; json-patch-tests.json and
SOURCE.txt are copied. The XML -> JSON conversion is the small part of
https://hl7.org/fhir/R4/json.html these cases need: `value` attributes typed by the R4
definitions, arrays for elements whose max > 1, primitive ids and extensions in `_name`
siblings, and the xhtml div as a string.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "conformance" / "data" / "fhir-patch"
FHIR = "{http://hl7.org/fhir}"
XHTML = "http://www.w3.org/1999/xhtml"
NUMBERS = {"integer": int, "positiveInt": int, "unsignedInt": int, "decimal": float}

sys.path.insert(0, str(ROOT / "src"))
from vnehr.fhir.patch import elements  # noqa: E402


def resource(node: ET.Element) -> dict[str, Any]:
    type_name = node.tag.removeprefix(FHIR)
    out: dict[str, Any] = {"resourceType": type_name}
    fill(out, node, type_name)
    return out


def fill(out: dict[str, Any], node: ET.Element, type_name: str) -> None:
    """Add the children of XML element `node`, of FHIR type `type_name`, to `out`."""
    for child in node:
        if child.tag == f"{{{XHTML}}}div":
            place(out, "div", xhtml(child), None, repeats=False)
            continue
        name = child.tag.removeprefix(FHIR)
        found = elements.element_of_key(type_name, name)
        child_type = found[1] if found else f"{type_name}.{name}"
        repeats = found[0].repeats if found else False
        inner = [c for c in child if c.tag.removeprefix(FHIR)[:1].isupper()]
        if child_type == "Resource" and len(inner) == 1:
            place(out, name, resource(inner[0]), None, repeats)
        elif child_type[:1].islower():  # a primitive
            extras: dict[str, Any] = {}
            if "id" in child.attrib:
                extras["id"] = child.attrib["id"]
            fill(extras, child, child_type)
            value = child.attrib.get("value")
            place(out, name, typed(value, child_type), extras or None, repeats)
        else:
            value_out: dict[str, Any] = {}
            for attribute in ("id", "url"):
                if attribute in child.attrib:
                    value_out[attribute] = child.attrib[attribute]
            fill(value_out, child, child_type)
            place(out, name, value_out, None, repeats)


def typed(value: str | None, type_name: str) -> Any:
    if value is None:
        return None
    if type_name == "boolean":
        return value == "true"
    return NUMBERS.get(type_name, str)(value)


def xhtml(div: ET.Element) -> str:
    div.tail = None
    return ET.tostring(div, encoding="unicode", default_namespace=XHTML)


def place(out: dict[str, Any], key: str, value: Any, extras: Any, repeats: bool) -> None:
    if not repeats:
        if value is not None:
            out[key] = value
        if extras is not None:
            out["_" + key] = extras
        return
    values, siblings = out.setdefault(key, []), out.get("_" + key)
    if extras is not None and siblings is None:
        siblings = out["_" + key] = [None] * len(values)
    values.append(value)
    if siblings is not None:
        siblings.append(extras)


def convert(cases_xml: Path) -> list[dict[str, Any]]:
    cases = []
    for case in ET.parse(cases_xml).getroot().iter("case"):
        entry: dict[str, Any] = {"name": case.attrib["name"], "mode": case.attrib.get("mode")}
        for part, key in (("input", "input"), ("diff", "patch"), ("output", "output")):
            holder = case.find(part)
            if holder is not None:
                entry[key] = resource(next(iter(holder)))
        error = case.find("error")
        if error is not None:
            entry["error"] = error.attrib.get("msg", "")
        cases.append(entry)
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the fhir-patch-r4 folder of ../shared/data")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    cases = convert(args.source / "fhir-patch-tests.xml")
    text = json.dumps(cases, indent=2, ensure_ascii=False) + "\n"
    (OUT / "fhir-patch-tests.json").write_text(text, encoding="utf-8")
    shutil.copyfile(args.source / "json-patch-tests.json", OUT / "json-patch-tests.json")
    origin = (args.source / "SOURCE.txt").read_text(encoding="utf-8").strip()
    (OUT / "SOURCE.txt").write_text(
        f"{origin}\n\njson-patch-tests.json is copied unchanged; fhir-patch-tests.json is "
        "fhir-patch-tests.xml converted to FHIR JSON by tools/derive_patch_cases.py.\n",
        encoding="utf-8",
    )
    print(f"{len(cases)} FHIRPath Patch cases -> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
