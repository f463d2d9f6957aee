"""Derive vnehr's compact R4 definition tables from the official FHIR R4 npm package.

Regenerate (from the repository root) with:

    .venv/bin/python tools/derive_definitions.py \
        ../shared/data/fhir-r4-spec-examples-npm/hl7.fhir.r4.examples-4.0.1.tgz

The expansions package (hl7.fhir.r4.expansions-4.0.1.tgz) is picked up from the same folder
when present (it supplies the ISO 4217 currency list, the only required binding to a code
system the examples package does not carry). Output, in src/vnehr/fhir/definitions/r4/:

- elements.json.gz: primitive types (JSON kind, regex) and, for every resource and complex data
  type (and every backbone element, named by its path, e.g. "Patient.contact"), the element
  table: JSON name -> types, min, max, choice flag, core profiles (SimpleQuantity), Reference
  targets, required binding; and
  the invariants (key, severity, human text, FHIRPath expression, element they sit on).
- valuesets.json.gz: for every ValueSet used by a required binding that can be expanded from
  the package alone, the allowed codes per code system.
- extensions.json.gz: for every extension the specification defines, its allowed value types
  (or "complex" for extensions made of nested extensions).
- codesystems.json.gz: the codes of every code system the package holds in full, so that a
  Coding naming one of them can be checked whatever the binding (as the HL7 validator does).

resource_types.json is checked, not rewritten: it is the list other modules already use.
The output is deterministic (sorted keys, gzip mtime 0), so regenerating it changes nothing
unless the package does. See docs/validation.md.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "src" / "vnehr" / "fhir" / "definitions" / "r4"

FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
SYSTEM_TYPES = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Time": "time",
}
JSON_KIND = {
    "boolean": "boolean",
    "integer": "integer",
    "positiveInt": "integer",
    "unsignedInt": "integer",
    "decimal": "number",
}
# Handled by the walker itself, not as FHIRPath: ele-1 (no empty elements), ext-1 (value or
# nested extensions), dom-2..5 (contained rules) and ref-1 (local references resolve).
NATIVE_INVARIANTS = {"ele-1", "ext-1", "dom-2", "dom-3", "dom-4", "dom-5", "ref-1"}
# Code systems the examples package lacks but whose expansion the expansions package holds.
EXPANSION_ONLY_SYSTEMS = {"urn:iso:std:iso:4217"}


def read_package(tgz: Path) -> dict[str, dict[str, Any]]:
    """Every JSON resource of an npm package, keyed by file name."""
    out: dict[str, dict[str, Any]] = {}
    with tarfile.open(tgz) as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if not member.isfile() or not name.endswith(".json") or name == "package.json":
                continue
            f = tar.extractfile(member)
            if f is None:
                continue
            data = json.load(f)
            if isinstance(data, dict) and "resourceType" in data:
                out[name] = data
    return out


def type_code(t: dict[str, Any]) -> str:
    code: str = t["code"]
    for ext in t.get("extension", []):
        if ext.get("url") == FHIR_TYPE_EXT:
            return str(ext.get("valueUrl") or ext.get("valueUri"))
    return SYSTEM_TYPES.get(code, code)


def is_base_definition(sd: dict[str, Any]) -> bool:
    """Resources and data types of the specification itself, not profiles or extensions."""
    if "snapshot" not in sd or sd["kind"] == "logical":
        return False
    if sd.get("derivation") == "constraint":
        # Age, Count, Distance, Duration, MoneyQuantity, SimpleQuantity are used as types.
        return sd["kind"] == "complex-type" and sd["type"] != "Extension"
    return True


def primitive_table(sd: dict[str, Any]) -> dict[str, Any]:
    name = sd["id"]
    entry: dict[str, Any] = {"json": JSON_KIND.get(name, "string")}
    for el in sd["snapshot"]["element"]:
        if el["path"] == f"{name}.value":
            for t in el.get("type", []):
                for ext in t.get("extension", []):
                    if ext["url"] == REGEX_EXT:
                        entry["regex"] = ext["valueString"]
    return entry


def element_types(el: dict[str, Any], sd: dict[str, Any]) -> list[str]:
    if "contentReference" in el:
        return [el["contentReference"].lstrip("#")]
    if el["path"] == f"{sd['type']}.id" and sd["kind"] == "resource":
        # R4 types Resource.id as a System.String; its format is nonetheless `id`.
        return ["id"]
    return [type_code(t) for t in el.get("type", [])]


def element_profiles(el: dict[str, Any]) -> dict[str, str]:
    """Type -> the core profile its values must meet (Quantity -> SimpleQuantity)."""
    out = {}
    for t in el.get("type", []):
        profiles = t.get("profile", [])
        if len(profiles) == 1 and profiles[0].startswith(SD_PREFIX):
            out[type_code(t)] = profiles[0][len(SD_PREFIX) :]
    return out


def type_table(sd: dict[str, Any], required_vs: set[str]) -> dict[str, dict[str, Any]]:
    """Tables for the type and each of its backbone elements, keyed by type name or path."""
    elements = [e for e in sd["snapshot"]["element"] if ":" not in e.get("id", e["path"])]
    root = elements[0]["path"]
    name = sd["id"] if sd.get("derivation") == "constraint" else sd["type"]
    paths = {e["path"] for e in elements}
    parents = {p.rsplit(".", 1)[0] for p in paths if "." in p}
    tables: dict[str, dict[str, Any]] = {}

    def key_of(path: str) -> str:
        return name if path == root else name + path[len(root) :]

    own_url = sd["url"]
    constraint_type = sd.get("derivation") == "constraint"
    for el in elements:
        path = el["path"]
        if path == root:
            table = tables.setdefault(
                name,
                {"kind": sd["kind"], "elements": {}, "invariants": []},
            )
            if sd.get("abstract"):
                table["abstract"] = True
            if sd.get("baseDefinition"):
                table["base"] = sd["baseDefinition"].rsplit("/", 1)[-1]
            target = table
            on = ""
        else:
            parent, elem = path.rsplit(".", 1)
            owner = tables[key_of(parent)]
            choice = elem.endswith("[x]")
            json_name = elem[:-3] if choice else elem
            types = (
                [key_of(path)]
                if path in parents and "contentReference" not in el
                else element_types(el, sd)
            )
            entry: dict[str, Any] = {
                "types": types,
                "min": el["min"],
                "max": -1 if el["max"] == "*" else int(el["max"]),
            }
            if choice:
                entry["choice"] = True
            profiles = element_profiles(el)
            if profiles:
                entry["profiles"] = profiles
            targets = sorted(
                {
                    p.rsplit("/", 1)[-1]
                    for t in el.get("type", [])
                    if t["code"] == "Reference"
                    for p in t.get("targetProfile", [])
                }
            )
            if targets and "Resource" not in targets:
                entry["targets"] = targets
            binding = el.get("binding", {})
            if binding.get("strength") == "required" and binding.get("valueSet"):
                vs = binding["valueSet"].split("|")[0]
                entry["binding"] = vs
                required_vs.add(vs)
            owner["elements"][json_name] = entry
            if path in parents and "contentReference" not in el:
                tables[key_of(path)] = {"kind": "backbone", "elements": {}, "invariants": []}
            target = owner
            on = json_name
        for c in el.get("constraint", []):
            source = c.get("source")
            inherited = source is not None and source != own_url
            if c["key"] in NATIVE_INVARIANTS or (inherited and not constraint_type):
                continue
            inv = {
                "key": c["key"],
                "severity": c["severity"],
                "human": c["human"],
                "expression": c.get("expression", ""),
            }
            if path != root and path in parents and "contentReference" not in el:
                tables[key_of(path)]["invariants"].append(inv)
            else:
                target["invariants"].append({**inv, "on": on} if on else inv)
    for table in tables.values():
        if not table["invariants"]:
            del table["invariants"]
    return tables


def codes_of_system(cs: dict[str, Any]) -> list[str]:
    out: list[str] = []

    def walk(concepts: list[dict[str, Any]]) -> None:
        for c in concepts:
            out.append(c["code"])
            walk(c.get("concept", []))

    walk(cs.get("concept", []))
    return out


def codes_of_expansion(vs: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}

    def walk(contains: list[dict[str, Any]]) -> None:
        for c in contains:
            if "code" in c and "system" in c:
                out.setdefault(c["system"], set()).add(c["code"])
            walk(c.get("contains", []))

    walk(vs.get("expansion", {}).get("contains", []))
    return out


def expand(
    url: str,
    valuesets: dict[str, dict[str, Any]],
    codesystems: dict[str, dict[str, Any]],
    expansions: dict[str, dict[str, Any]],
) -> dict[str, list[str]] | None:
    """The codes of a value set, per system; None when it needs anything outside the package."""
    vs = valuesets.get(url)
    if vs is None or "compose" not in vs:
        return None
    allowed: dict[str, set[str]] = {}
    for inc in vs["compose"].get("include", []):
        system = inc.get("system")
        if inc.get("valueSet") or inc.get("filter") or not system:
            return None
        if inc.get("concept"):
            allowed.setdefault(system, set()).update(c["code"] for c in inc["concept"])
        elif system in codesystems and codesystems[system].get("content") == "complete":
            allowed.setdefault(system, set()).update(codes_of_system(codesystems[system]))
        elif system in EXPANSION_ONLY_SYSTEMS and url in expansions:
            codes = codes_of_expansion(expansions[url]).get(system)
            if not codes:
                return None
            allowed.setdefault(system, set()).update(codes)
        else:
            return None
    for exc in vs["compose"].get("exclude", []):
        system = exc.get("system")
        if not exc.get("concept") or system not in allowed:
            return None
        allowed[system] -= {c["code"] for c in exc["concept"]}
    return {s: sorted(c) for s, c in sorted(allowed.items())}


def extension_table(sd: dict[str, Any]) -> list[str] | str:
    """Allowed value[x] types of an extension definition, or "complex"."""
    for el in sd["snapshot"]["element"]:
        if el["path"] == "Extension.value[x]" and ":" not in el.get("id", ""):
            if el["max"] == "0":
                return "complex"
            return sorted(type_code(t) for t in el.get("type", []))
    return "complex"


def write_gz(path: Path, data: Any) -> int:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    path.write_bytes(buf.getvalue())
    return len(buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="hl7.fhir.r4.examples-4.0.1.tgz")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    resources = read_package(args.package)
    expansions_tgz = args.package.parent / "hl7.fhir.r4.expansions-4.0.1.tgz"
    expansions: dict[str, dict[str, Any]] = {}
    if expansions_tgz.exists():
        for res in read_package(expansions_tgz).values():
            if res["resourceType"] == "ValueSet":
                expansions[res["url"]] = res

    sds = [r for r in resources.values() if r["resourceType"] == "StructureDefinition"]
    primitives: dict[str, Any] = {}
    types: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    required_vs: set[str] = set()
    for sd in sorted(sds, key=lambda s: s["url"]):
        if sd.get("type") == "Extension" and sd.get("derivation") == "constraint":
            if "snapshot" in sd:
                extensions[sd["url"]] = extension_table(sd)
            continue
        if not is_base_definition(sd):
            continue
        if sd["kind"] == "primitive-type":
            primitives[sd["id"]] = primitive_table(sd)
        types.update(type_table(sd, required_vs))

    valuesets = {r["url"]: r for r in resources.values() if r["resourceType"] == "ValueSet"}
    codesystems = {r["url"]: r for r in resources.values() if r["resourceType"] == "CodeSystem"}
    expanded: dict[str, Any] = {}
    for url in sorted(required_vs):
        codes = expand(url, valuesets, codesystems, expansions)
        if codes is not None:
            expanded[url] = codes

    systems: dict[str, Any] = {}
    for url, cs in sorted(codesystems.items()):
        if cs.get("content") != "complete":
            continue
        codes = codes_of_system(cs)
        if cs.get("caseSensitive") is False:
            systems[url] = {"codes": sorted({c.lower() for c in codes}), "caseInsensitive": True}
        else:
            systems[url] = {"codes": sorted(set(codes))}

    resource_types = sorted(
        name for name, t in types.items() if t["kind"] == "resource" and not t.get("abstract")
    )
    existing = json.loads((args.out / "resource_types.json").read_text())
    if sorted(existing) != resource_types:
        print("resource_types.json differs from the package's resource list", file=sys.stderr)
        return 1

    sizes = {
        "elements.json.gz": write_gz(
            args.out / "elements.json.gz",
            {"fhirVersion": "4.0.1", "primitives": primitives, "types": types},
        ),
        "valuesets.json.gz": write_gz(args.out / "valuesets.json.gz", expanded),
        "extensions.json.gz": write_gz(args.out / "extensions.json.gz", extensions),
        "codesystems.json.gz": write_gz(args.out / "codesystems.json.gz", systems),
    }
    print(
        f"{len(types)} types, {len(primitives)} primitives, {len(expanded)}/{len(required_vs)} "
        f"required value sets expanded, {len(extensions)} extensions, "
        f"{len(systems)} code systems; "
        + ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in sizes.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
