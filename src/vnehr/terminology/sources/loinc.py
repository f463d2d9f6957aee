"""LOINC from its release table `Loinc.csv` (LoincTable/Loinc.csv of the LOINC release), as the
`http://loinc.org` CodeSystem.

Each row is one concept: the display is LONG_COMMON_NAME, SHORTNAME (and DisplayName, where
the release has it) are designations, and the six axes (COMPONENT, PROPERTY, TIME_ASPCT,
SYSTEM, SCALE_TYP, METHOD_TYP), CLASS, CLASSTYPE and STATUS are properties. DEPRECATED terms
are inactive; DISCOURAGED and TRIAL ones stay active with their STATUS kept as a property.
Columns are found by name in the header, not by position.

The full table has about 100,000 rows, so the concepts are streamed: `read_loinc` returns a
header and an iterable that reads the file again each time it is iterated, one row at a time.
The header therefore has no `count`; the loader that stores the concepts fills it in.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from vnehr.terminology.model import CodeSystemContent, Concept, Json

LOINC_URL = "http://loinc.org"
LOINC_COPYRIGHT = (
    "This material contains content from LOINC (http://loinc.org). LOINC is copyright © "
    "Regenstrief Institute, Inc. and the Logical Observation Identifiers Names and Codes "
    "(LOINC) Committee and is available at no cost under the license at "
    "http://loinc.org/license. LOINC® is a registered United States trademark of "
    "Regenstrief Institute, Inc."
)
# Loinc.csv column -> (property code, FHIR value type); codes keep LOINC's column names.
PROPERTIES: dict[str, tuple[str, str]] = {
    "COMPONENT": ("COMPONENT", "string"),
    "PROPERTY": ("PROPERTY", "code"),
    "TIME_ASPCT": ("TIME_ASPCT", "code"),
    "SYSTEM": ("SYSTEM", "string"),
    "SCALE_TYP": ("SCALE_TYP", "code"),
    "METHOD_TYP": ("METHOD_TYP", "string"),
    "CLASS": ("CLASS", "code"),
    "CLASSTYPE": ("CLASSTYPE", "code"),
    "STATUS": ("STATUS", "code"),
}
DESIGNATIONS = ("SHORTNAME", "DisplayName")
REQUIRED_COLUMNS = ("LOINC_NUM", "LONG_COMMON_NAME")
INACTIVE_STATUSES = frozenset({"DEPRECATED"})
_SHIPPED = "data/loinc/Loinc.csv"
_VALUE_KEY = {"string": "valueString", "code": "valueCode"}
_VERSION_IN_PATH = re.compile(r"loinc[_\- ]?(?:table[_\- ]?core[_\- ]?)?v?(\d+\.\d+)", re.I)


class LoincError(ValueError):
    """A Loinc.csv that cannot be read; `line` is the 1-based line at fault, if any."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.message = message
        self.line = line


def loinc_version_from_path(path: str | Path) -> str | None:
    """The LOINC release named by a path (`Loinc_2.80/LoincTable/Loinc.csv` -> "2.80")."""
    for part in reversed(Path(path).parts):
        match = _VERSION_IN_PATH.search(part)
        if match:
            return match[1]
    return None


def loinc_header(version: str | None = None) -> Json:
    """The LOINC CodeSystem resource without concepts (`content: not-present`, no count)."""
    header: Json = {"resourceType": "CodeSystem", "id": "loinc", "url": LOINC_URL}
    if version:
        header["version"] = version
    header.update(
        {
            "name": "LOINC",
            "title": "Logical Observation Identifiers Names and Codes (LOINC)",
            "status": "active",
            "publisher": "Regenstrief Institute, Inc.",
            "copyright": LOINC_COPYRIGHT,
            "caseSensitive": False,
            "content": "not-present",
            "property": [
                {"code": code, "type": kind, "description": f"LOINC {column}"}
                for column, (code, kind) in PROPERTIES.items()
            ],
        }
    )
    return header


def _open_text(source: Path | Traversable) -> io.TextIOWrapper:
    # csv wants newline="" (quoted fields may hold line breaks); Traversable.open has no newline.
    return io.TextIOWrapper(source.open("rb"), encoding="utf-8-sig", newline="")


class LoincConcepts:
    """The concepts of a Loinc.csv, read lazily and again on each iteration."""

    def __init__(self, source: Path | Traversable) -> None:
        self.source = source

    def __iter__(self) -> Iterator[Concept]:
        with _open_text(self.source) as file:
            yield from iter_loinc_concepts(file)


def iter_loinc_concepts(lines: Iterable[str]) -> Iterator[Concept]:
    """The concepts of an open Loinc.csv (comma-separated, quoted, header first), one row at a
    time."""
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise LoincError("the file is empty", 1) from None
    columns = {name.strip(): index for index, name in enumerate(header)}
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise LoincError(f"missing required column(s): {', '.join(missing)}", 1)
    code_at = columns["LOINC_NUM"]
    name_at = columns["LONG_COMMON_NAME"]
    properties = [
        (columns[c], code, kind) for c, (code, kind) in PROPERTIES.items() if c in columns
    ]
    designations = [(columns[c], c) for c in DESIGNATIONS if c in columns]
    status_at = columns.get("STATUS")
    needed = 1 + max(
        [code_at, name_at, *(i for i, _, _ in properties), *(i for i, _ in designations)]
    )
    line = reader.line_num + 1
    for row in reader:
        if not any(cell.strip() for cell in row):
            line = reader.line_num + 1
            continue
        if len(row) < needed:
            raise LoincError(f"{len(row)} fields where the header has {len(header)}", line)
        code = row[code_at].strip()
        if not code:
            raise LoincError("empty LOINC_NUM", line)
        display = row[name_at].strip() or None
        status = row[status_at].strip().upper() if status_at is not None else ""
        yield Concept(
            code=code,
            display=display,
            designations=[
                {
                    "language": "en-US",
                    "use": {"system": LOINC_URL, "code": use},
                    "value": row[index].strip(),
                }
                for index, use in designations
                if row[index].strip()
            ],
            properties=[
                {"code": prop, _VALUE_KEY[kind]: row[index].strip()}
                for index, prop, kind in properties
                if row[index].strip()
            ],
            inactive=status in INACTIVE_STATUSES,
        )
        line = reader.line_num + 1


def read_loinc(path: str | Path, *, version: str | None = None) -> CodeSystemContent:
    """LOINC from its release table Loinc.csv; `version` defaults to the release named in the
    path (`Loinc_2.80/...`). The concepts are streamed and the header has no count."""
    path = Path(path)
    if not path.is_file():
        raise LoincError(f"no such file: {path}")
    _check_header(path)
    header = loinc_header(version or loinc_version_from_path(path))
    return CodeSystemContent(header=header, concepts=LoincConcepts(path))


def shipped_loinc(version: str | None = None) -> CodeSystemContent:
    """The LOINC subset shipped in data/loinc/Loinc.csv (from the HL7 terminology test suite;
    LOINC licence in data/loinc/NOTICE.txt), read like a full Loinc.csv."""
    source = resources.files("vnehr.terminology").joinpath(_SHIPPED)
    _check_header(source)
    return CodeSystemContent(header=loinc_header(version), concepts=LoincConcepts(source))


def _check_header(source: Path | Traversable) -> None:
    with _open_text(source) as file:
        header_line = file.readline()
    if not header_line:
        raise LoincError("the file is empty", 1)
    names = {name.strip() for name in next(csv.reader([header_line]))}
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise LoincError(f"missing required column(s): {', '.join(missing)}", 1)
