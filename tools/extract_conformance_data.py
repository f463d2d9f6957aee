"""Copy the validation conformance data the tests need into tests/conformance/data/.

Regenerate (from the repository root) with:

    .venv/bin/python tools/extract_conformance_data.py \
        --package ../shared/data/fhir-r4-spec-examples-npm/hl7.fhir.r4.examples-4.0.1.tgz \
        --cases ../shared/data/fhir-validator-cases-r4

Writes:

- r4-examples/examples.ndjson.gz: every example resource of the R4 package (one
  {"file", "resource"} object per line), leaving out the conformance resources
  (StructureDefinition, ValueSet, CodeSystem, SearchParameter, ... and the Bundles made only of
  them), which are the definitions, not examples. CC0.
- validator-cases/: inputs.json.gz, the JSON inputs (as text: some are deliberately not valid
  JSON) of the R4 cases of FHIR/fhir-test-cases that need no external packages, profiles or
  supporting files, and manifest.json recording for each the HL7 Java validator's errors
  (error/fatal issues of its expected OperationOutcome) and, when the case cannot be compared,
  why. Apache-2.0.

The tests read only these copies, never ../shared or /tmp.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "tests" / "conformance" / "data"

CONFORMANCE_TYPES = {
    "CapabilityStatement",
    "CodeSystem",
    "CompartmentDefinition",
    "ConceptMap",
    "ExampleScenario",
    "GraphDefinition",
    "ImplementationGuide",
    "MessageDefinition",
    "NamingSystem",
    "OperationDefinition",
    "SearchParameter",
    "StructureDefinition",
    "StructureMap",
    "TerminologyCapabilities",
    "ValueSet",
}

# Manifest keys meaning the case needs definitions from outside the R4 package.
EXTERNAL = (
    "profile",
    "profiles",
    "supporting",
    "supporting5",
    "packages",
    "ips",
    "logical",
    "fetcher",
    "matchetype",
    "certificate",
)
# Manifest keys switching on Java validator behaviour vnehr does not have (or need).
OPTIONS = (
    "validateContains",
    "security-checks",
    "for-publication",
    "examples",
    "noHtmlInMarkdown",
    "allow-comments",
    "no-experimental-content",
    "r5-bundle-relative-reference-policy",
    "allowed-extension-domain",
    "best-practice",
    "bundle-param",
    "assumeValidRestReferences",
    "validateReference",
    "language",
)
# Cases whose Java errors come from knowledge outside the R4 package, found by reading each
# outcome: SNOMED CT / ECL / terminology-server content, extension definitions the validator
# fetched from other packages (or could not find), and core profiles named in meta.profile.
CURATED = {
    "vs-bad-code": "terminology: SNOMED CT codes",
    "vs-bad-props": "terminology: SNOMED CT filter properties",
    "vs-bad-ecl": "terminology: SNOMED CT ECL",
    "vs-bad-ecl-us": "terminology: SNOMED CT ECL",
    "vs-params-2": "terminology: value set filter parameters (tx-advanced)",
    "vs-params-3": "terminology: value set filter parameters (tx-advanced)",
    "vs-params-4": "terminology: value set filter parameters (tx-advanced)",
    "cs-bad-props": "terminology: concept-properties code system (not in R4)",
    "pat-dob-ext": "extension definition not in the R4 package",
    "nested-questionnaire-nested-valueset": "extension definition not in the R4 package (SDC)",
    "patient-with-turvakielto": "extension definition not in the R4 package (Finnish base)",
    "obs-vs-1": "extension definition not in the R4 package; meta.profile (bp)",
    "maiden-name-extension": "validated against a later version of the extension (5.3.0)",
    "obs-temp-bad": "profile: declares the core bodytemp profile in meta.profile",
}
TX_SERVER = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-server"

EXAMPLES_SOURCE = """\
examples.ndjson.gz: the example resources of the FHIR R4 specification, from the npm package
hl7.fhir.r4.examples@4.0.1 (https://hl7.org/fhir/R4/, `npm pack hl7.fhir.r4.examples@4.0.1`),
one {"file", "resource"} object per line. The conformance resources of the package
(StructureDefinition, ValueSet, CodeSystem, SearchParameter, ...) are left out.
Licence: CC0-1.0 (public domain), as declared by the package.
Written by tools/extract_conformance_data.py; see docs/validation.md.
"""
CASES_SOURCE = """\
Test cases of the HL7 FHIR Java validator: github.com/FHIR/fhir-test-cases, folder validator/,
commit 2dee8a0f8fa0b948b4cd28f0edfc34a0322318fe (manifest-r4-selected.json, the input files
and the expected outcomes in outcomes/java). Licence: Apache-2.0 (LICENSE.txt).
inputs.json.gz maps each input file name to its text, unchanged; manifest.json is derived:
whether the Java validator reported an error or fatal issue, those issues, and why a case is
not compared. Written by tools/extract_conformance_data.py; see docs/validation.md.
"""


def write_examples(package: Path) -> int:
    lines = []
    with tarfile.open(package) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            name = member.name.rsplit("/", 1)[-1]
            if not member.isfile() or not name.endswith(".json"):
                continue
            if name in ("package.json", "ig-r4.json"):
                continue
            f = tar.extractfile(member)
            if f is None:
                continue
            res = json.load(f)
            rtype = res.get("resourceType")
            if rtype in CONFORMANCE_TYPES:
                continue
            entries = res.get("entry") or []
            if (
                rtype == "Bundle"
                and entries
                and all(
                    e.get("resource", {}).get("resourceType") in CONFORMANCE_TYPES for e in entries
                )
            ):
                continue
            line = {"file": name, "resource": res}
            lines.append(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
    out = DATA / "r4-examples"
    out.mkdir(parents=True, exist_ok=True)
    write_gz(out / "examples.ndjson.gz", "\n".join(lines) + "\n")
    (out / "SOURCE.txt").write_text(EXAMPLES_SOURCE)
    return len(lines)


def write_gz(path: Path, text: str) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(text.encode())
    path.write_bytes(buf.getvalue())


def java_errors(outcome: dict[str, Any]) -> tuple[list[str], bool]:
    """The error/fatal issues of an expected outcome, and whether any came from a tx server."""
    errors, tx = [], False
    for issue in outcome.get("issue", []):
        if issue.get("severity") not in ("error", "fatal"):
            continue
        text = issue.get("details", {}).get("text") or issue.get("diagnostics") or ""
        where = ", ".join(issue.get("expression", []))
        errors.append(f"{issue.get('code')} @ {where}: {text}")
        tx = tx or any(e.get("url") == TX_SERVER for e in issue.get("extension", []))
    return errors, tx


def write_cases(cases_dir: Path) -> int:
    manifest = json.loads((cases_dir / "manifest-r4-selected.json").read_text())
    out = DATA / "validator-cases"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cases_dir / "LICENSE.txt", out / "LICENSE.txt")
    rows = []
    inputs: dict[str, str] = {}
    for case in manifest["test-cases"]:
        file = case["file"]
        if not file.endswith(".json") or case.get("use-test") is False:
            continue
        if any(k in case for k in EXTERNAL):
            continue
        java = case.get("java")
        if isinstance(java, dict):
            errors = list(java.get("output", []))
            has_errors, tx = java.get("errorCount", 0) > 0, False
        elif isinstance(java, str) and (cases_dir / "outcomes" / java).exists():
            errors, tx = java_errors(json.loads((cases_dir / "outcomes" / java).read_text()))
            has_errors = bool(errors)
        else:
            continue
        options = [k for k in OPTIONS if k in case]
        if options:
            excluded = "option: " + ", ".join(options)
        elif tx:
            excluded = "terminology: errors reported by the terminology server"
        else:
            excluded = CURATED.get(case["name"])
        inputs[file] = (cases_dir / file).read_text(encoding="utf-8")
        rows.append(
            {
                "name": case["name"],
                "module": case.get("module"),
                "file": file,
                "javaHasErrors": has_errors,
                "javaErrors": errors,
                "excluded": excluded,
            }
        )
    (out / "manifest.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    write_gz(out / "inputs.json.gz", json.dumps(inputs, sort_keys=True, ensure_ascii=False))
    (out / "SOURCE.txt").write_text(CASES_SOURCE)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, required=True)
    parser.add_argument("--cases", type=Path, required=True)
    args = parser.parse_args(argv)
    examples = write_examples(args.package)
    cases = write_cases(args.cases)
    print(f"{examples} examples, {cases} validator cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
