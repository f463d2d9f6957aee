"""The national catalogue of laboratory and paraclinical indicators (Ministry of Health,
QĐ 1227/QĐ-BYT, 2025) as a CodeSystem, its ValueSets and its ConceptMap to LOINC.

The catalogue is published as a table (CSV or Excel .xlsx) with a code, a Vietnamese name, a
group (haematology, biochemistry, microbiology, pathology, imaging), a LOINC code and a UCUM
unit per indicator, optionally an English name, the LOINC long common name and a validity
window in days; column headers may be English or Vietnamese (`Mã`, `Tên xét nghiệm`, `Nhóm`,
`Mã LOINC`, `Đơn vị`...), matched without regard to case or accents. It is also exchanged in
FHIR form, a CodeSystem and a ConceptMap to LOINC. Every reader returns the same `Catalogue`:
the CodeSystem (`content: complete`; properties `group`, `loinc`, `unit`, `validity-days`;
Vietnamese display with `vi` and `en` designations), one ValueSet per group and one for the
whole catalogue (intensional, `group =` filters), and the ConceptMap catalogue -> LOINC.

Bad input raises `CatalogueError` naming the line (row) at fault; nothing is returned from a
table with any bad row. The table helpers here (`table_rows`, `header_key`, `find_columns`)
are shared with the ICD-10 list reader.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from vnehr.terminology.model import CodeSystemContent, Concept, Json

CATALOGUE_URL = "https://fhir.moh.gov.vn/CodeSystem/lab-catalogue"
CATALOGUE_VERSION = "2025"  # QĐ 1227/QĐ-BYT, 2025
SAMPLE_VERSION = "2025-sample"
LOINC_URL = "http://loinc.org"
LOINC_ALL_CODES = "http://loinc.org/vs"  # LOINC's implicit ValueSet of all its codes

GROUPS = ("haematology", "biochemistry", "microbiology", "pathology", "imaging")
GROUP_TITLES = {
    "haematology": "Huyết học",
    "biochemistry": "Hoá sinh",
    "microbiology": "Vi sinh",
    "pathology": "Giải phẫu bệnh",
    "imaging": "Chẩn đoán hình ảnh",
}
_SAMPLE = "data/lab_catalogue_sample.csv"
_HEADER_SCAN = 20  # rows searched for the header (published sheets put titles above it)
_LOINC_NUMBER = re.compile(r"(\d{1,7})-(\d)")


class CatalogueError(ValueError):
    """A catalogue that cannot be read; `line` is the 1-based line (row) at fault, if any."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One indicator of the catalogue, as read from its row."""

    code: str
    name_vi: str
    group: str
    loinc: str | None
    unit: str | None
    name_en: str | None = None
    loinc_display: str | None = None
    validity_days: int | None = None
    line: int | None = None


@dataclass(slots=True)
class Catalogue:
    """The catalogue as FHIR: its CodeSystem, ValueSets and ConceptMap to LOINC."""

    code_system: CodeSystemContent
    value_sets: list[Json]
    concept_map: Json
    entries: tuple[CatalogueEntry, ...]


# --- LOINC codes -------------------------------------------------------------------------


def loinc_check_digit(number: str) -> int:
    """The mod-10 check digit of the part of a LOINC code before the hyphen.

    LOINC's algorithm: from the right, double the digits in odd positions, add up the digits
    of the results and the digits in even positions, and take what is missing to the next
    multiple of ten (`2951` -> 2, `2951-2`).
    """
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            digit = digit // 10 + digit % 10
        total += digit
    return (10 - total % 10) % 10


def is_loinc_code(code: str) -> bool:
    """Whether `code` is a well-formed LOINC code (`nnnnn-n`) whose check digit is right."""
    match = _LOINC_NUMBER.fullmatch(code)
    return match is not None and loinc_check_digit(match[1]) == int(match[2])


def _check_loinc(code: str, line: int | None, where: str = "") -> None:
    match = _LOINC_NUMBER.fullmatch(code)
    if not match:
        raise CatalogueError(f"{where}LOINC code {code!r} is not of the form nnnnn-n", line)
    expected = loinc_check_digit(match[1])
    if expected != int(match[2]):
        raise CatalogueError(
            f"{where}LOINC code {code} has a wrong check digit (expected {match[1]}-{expected})",
            line,
        )


# --- Tables: CSV and Excel ---------------------------------------------------------------


def header_key(text: str) -> str:
    """A column header reduced for matching: lower case, no accents (đ -> d), words only."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain.lower()).split())


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


Rows = Generator[tuple[int, list[str]], None, None]


def _csv_rows(path: Path) -> Rows:
    with path.open(encoding="utf-8-sig", newline="") as file:
        first = file.readline()
        delimiter = max(",;\t", key=first.count)
        file.seek(0)
        reader = csv.reader(file, delimiter=delimiter)
        start = 1
        for cells in reader:
            yield start, [cell.strip() for cell in cells]
            start = reader.line_num + 1


def _xlsx_rows(path: Path, sheet: str | None) -> Rows:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise CatalogueError(f"{path.name} has no sheet {sheet!r}")
        worksheet = workbook[sheet] if sheet is not None else workbook.worksheets[0]
        for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
            yield number, [_cell_text(value) for value in values]
    finally:
        workbook.close()


def table_rows(path: str | Path, *, sheet: str | None = None) -> Rows:
    """The rows of a CSV (UTF-8; `,`, `;` or tab separated) or Excel .xlsx table, each with its
    1-based line (row) number; `sheet` picks an Excel sheet (default: the first)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_rows(path, sheet)
    if suffix in (".csv", ".tsv", ".txt"):
        return _csv_rows(path)
    raise CatalogueError(f"{path.name}: not a CSV or Excel (.xlsx) table")


def _matching_field(text: str, aliases: Mapping[str, frozenset[str]]) -> str | None:
    # A bilingual header ("Mã LOINC / LOINC code", "Đơn vị (Unit)") matches by any of its parts.
    for candidate in (text, *re.split(r"[/()\[\]\n|]", text)):
        key = header_key(candidate)
        for name, keys in aliases.items():
            if key in keys:
                return name
    return None


def find_columns(
    rows: Iterator[tuple[int, list[str]]],
    aliases: Mapping[str, frozenset[str]],
    required: Iterable[str],
    error: Callable[[str, int | None], Exception] = CatalogueError,
) -> tuple[int, dict[str, int]]:
    """The header row of a table and the column index of each field found in it.

    The header is the first of the leading rows that has every required column; rows above it
    (titles, notes) are skipped. Without one, `error(message, line)` names the missing columns.
    """
    required = tuple(required)
    best: tuple[int, dict[str, int]] | None = None
    scanned = 0
    for line, cells in rows:
        if not any(cells):
            continue
        columns: dict[str, int] = {}
        for index, cell in enumerate(cells):
            name = _matching_field(cell, aliases) if cell else None
            if name is not None and name not in columns:
                columns[name] = index
        if all(name in columns for name in required):
            return line, columns
        if best is None or len(columns) > len(best[1]):
            best = (line, columns)
        scanned += 1
        if scanned >= _HEADER_SCAN:
            break
    if best is None:
        raise error("the table is empty", None)
    missing = ", ".join(name for name in required if name not in best[1])
    raise error(f"missing required column(s): {missing}", best[0])


def column_value(cells: list[str], columns: Mapping[str, int], name: str) -> str:
    """The stripped cell of field `name` in a row, "" where the column is absent or short."""
    index = columns.get(name)
    return cells[index].strip() if index is not None and index < len(cells) else ""


# --- The catalogue table -----------------------------------------------------------------


def _keys(*names: str) -> frozenset[str]:
    return frozenset(header_key(name) for name in names)


COLUMNS: dict[str, frozenset[str]] = {
    "code": _keys(
        "code", "mã", "mã chỉ số", "mã xét nghiệm", "mã chỉ số xét nghiệm", "mã dịch vụ",
        "mã kỹ thuật", "mã cận lâm sàng", "mã danh mục",
    ),
    "name_vi": _keys(
        "name_vi", "name", "tên", "tên chỉ số", "tên xét nghiệm", "tên chỉ số xét nghiệm",
        "tên dịch vụ", "tên kỹ thuật", "tên cận lâm sàng", "tên tiếng việt",
    ),
    "group": _keys(
        "group", "nhóm", "nhóm chỉ số", "nhóm xét nghiệm", "phân nhóm", "nhóm cận lâm sàng",
        "chuyên khoa",
    ),
    "loinc": _keys("loinc", "mã loinc", "loinc code", "loinc_num", "mã chuẩn loinc"),
    "unit": _keys("unit", "đơn vị", "đơn vị tính", "đơn vị đo", "ucum", "đơn vị ucum"),
    "name_en": _keys("name_en", "english name", "tên tiếng anh", "tên tiếng anh chỉ số"),
    "loinc_display": _keys(
        "loinc_display", "loinc name", "tên loinc", "long common name",
        "loinc long common name", "tên đầy đủ loinc",
    ),
    "validity_days": _keys(
        "validity_days", "validity", "số ngày hiệu lực", "thời hạn hiệu lực",
        "thời hạn hiệu lực (ngày)", "hiệu lực (ngày)", "thời gian hiệu lực",
        "thời gian có giá trị", "số ngày có giá trị",
    ),
}  # fmt: skip
REQUIRED_COLUMNS = ("code", "name_vi", "group", "loinc", "unit")

_GROUP_NAMES = {
    header_key(name): group
    for group, names in {
        "haematology": ("haematology", "hematology", "huyết học", "HH"),
        "biochemistry": ("biochemistry", "chemistry", "hoá sinh", "hóa sinh", "HS"),
        "microbiology": ("microbiology", "vi sinh", "vi sinh - ký sinh trùng", "VS"),
        "pathology": ("pathology", "giải phẫu bệnh", "GPB", "GP"),
        "imaging": ("imaging", "radiology", "chẩn đoán hình ảnh", "CĐHA", "HA"),
    }.items()
    for name in names
}


def catalogue_group(text: str) -> str | None:
    """The catalogue group named by `text` in English or Vietnamese ("Hoá sinh" ->
    "biochemistry"), or None."""
    return _GROUP_NAMES.get(header_key(text))


def _entries(rows: Iterator[tuple[int, list[str]]]) -> list[CatalogueEntry]:
    header_line, columns = find_columns(rows, COLUMNS, REQUIRED_COLUMNS)
    entries: list[CatalogueEntry] = []
    first_line: dict[str, int] = {}
    for line, cells in rows:
        if not any(column_value(cells, columns, name) for name in columns):
            continue  # blank, or only a running number (STT)

        def cell(name: str, cells: list[str] = cells) -> str:
            return column_value(cells, columns, name)

        code = cell("code")
        if not code:
            raise CatalogueError("empty code", line)
        if code in first_line:
            raise CatalogueError(f"duplicate code {code} (first on line {first_line[code]})", line)
        first_line[code] = line
        name = cell("name_vi")
        if not name:
            raise CatalogueError(f"{code}: empty Vietnamese name", line)
        group = catalogue_group(cell("group"))
        if group is None:
            raise CatalogueError(
                f"{code}: unknown group {cell('group')!r} (one of {', '.join(GROUPS)})", line
            )
        loinc = cell("loinc") or None
        if loinc is not None:
            _check_loinc(loinc, line, f"{code}: ")
        days_text = cell("validity_days")
        days: int | None = None
        if days_text:
            try:
                value = float(days_text)
            except ValueError:
                value = -1.0
            if value < 0 or not value.is_integer():
                raise CatalogueError(
                    f"{code}: validity days {days_text!r} is not a number of days", line
                )
            days = int(value)
        entries.append(
            CatalogueEntry(
                code=code,
                name_vi=name,
                group=group,
                loinc=loinc,
                unit=cell("unit") or None,
                name_en=cell("name_en") or None,
                loinc_display=cell("loinc_display") or None,
                validity_days=days,
                line=line,
            )
        )
    if not entries:
        raise CatalogueError("the table has no indicators", header_line)
    return entries


def read_catalogue(
    path: str | Path,
    *,
    url: str | None = None,
    version: str | None = None,
    sheet: str | None = None,
) -> Catalogue:
    """The national lab catalogue from its published table, CSV or Excel (.xlsx), or from a
    FHIR JSON file (a CodeSystem, or a Bundle with the CodeSystem and its ConceptMap)."""
    if Path(path).suffix.lower() == ".json":
        resource = _load_json(path, None)
        if resource.get("resourceType") == "Bundle":
            found = {
                str(entry["resource"].get("resourceType")): entry["resource"]
                for entry in resource.get("entry") or []
                if isinstance(entry.get("resource"), dict)
            }
            if "CodeSystem" not in found:
                raise CatalogueError("the Bundle has no CodeSystem")
            return read_catalogue_fhir(found["CodeSystem"], found.get("ConceptMap"), url=url)
        return read_catalogue_fhir(resource, url=url)
    entries = _entries(table_rows(path, sheet=sheet))
    return build_catalogue(entries, url=url or CATALOGUE_URL, version=version or CATALOGUE_VERSION)


def sample_catalogue(url: str | None = None) -> Catalogue:
    """The shipped SAMPLE of the catalogue (data/lab_catalogue_sample.csv), not the official
    list; its CodeSystem version is `2025-sample`."""
    source = resources.files("vnehr.terminology").joinpath(_SAMPLE)
    with resources.as_file(source) as path:
        entries = _entries(table_rows(path))
    title = "Danh mục chỉ số xét nghiệm, cận lâm sàng (bản mẫu, không phải danh mục chính thức)"
    return build_catalogue(entries, url=url or CATALOGUE_URL, version=SAMPLE_VERSION, title=title)


# --- The FHIR form -----------------------------------------------------------------------


def _load_json(source: str | Path | Json, kind: str | None) -> Json:
    if isinstance(source, dict):
        resource = source
    else:
        try:
            resource = json.loads(Path(source).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise CatalogueError(f"cannot read {source}: {exc}") from exc
    if not isinstance(resource, dict) or (kind and resource.get("resourceType") != kind):
        raise CatalogueError(f"expected a {kind or 'FHIR'} resource")
    return resource


def _flat_concepts(concepts: list[Json]) -> Iterator[Json]:
    for concept in concepts:
        yield concept
        yield from _flat_concepts(concept.get("concept") or [])


def _property(concept: Json, code: str) -> Any:
    for prop in concept.get("property") or []:
        if prop.get("code") == code:
            for key, value in prop.items():
                if key.startswith("value"):
                    return value
    return None


def _loinc_targets(concept_map: Json, system: str) -> dict[str, tuple[str, str | None]]:
    targets: dict[str, tuple[str, str | None]] = {}
    for group in concept_map.get("group") or []:
        if group.get("target") != LOINC_URL or group.get("source", system) != system:
            continue
        for element in group.get("element") or []:
            for target in element.get("target") or []:
                if target.get("equivalence", "equivalent") in ("equivalent", "equal"):
                    targets.setdefault(element.get("code"), (target["code"], target.get("display")))
    return targets


def read_catalogue_fhir(
    code_system: str | Path | Json,
    concept_map: str | Path | Json | None = None,
    *,
    url: str | None = None,
) -> Catalogue:
    """The national lab catalogue from its FHIR form: a CodeSystem JSON file (with concepts)
    and, optionally, a ConceptMap JSON file to LOINC (else the `loinc` concept property)."""
    system = _load_json(code_system, "CodeSystem")
    mapping = _load_json(concept_map, "ConceptMap") if concept_map is not None else {}
    system_url = url or system.get("url") or CATALOGUE_URL
    targets = _loinc_targets(mapping, str(system.get("url") or system_url)) if mapping else {}
    entries: list[CatalogueEntry] = []
    seen: set[str] = set()
    for number, concept in enumerate(_flat_concepts(system.get("concept") or []), start=1):
        code = str(concept.get("code") or "").strip()
        where = f"concept #{number}" + (f" ({code})" if code else "")
        if not code:
            raise CatalogueError(f"{where}: empty code")
        if code in seen:
            raise CatalogueError(f"{where}: duplicate code {code}")
        seen.add(code)
        name = str(concept.get("display") or "").strip()
        if not name:
            raise CatalogueError(f"{where}: no display")
        group = catalogue_group(str(_property(concept, "group") or ""))
        if group is None:
            raise CatalogueError(f"{where}: unknown or missing group")
        loinc, loinc_display = targets.get(code, (_property(concept, "loinc"), None))
        if loinc is not None:
            _check_loinc(str(loinc), None, f"{where}: ")
        english = next(
            (
                d.get("value")
                for d in concept.get("designation") or []
                if str(d.get("language", "")).lower().startswith("en")
            ),
            None,
        )
        days = _property(concept, "validity-days")
        if days is not None and (not isinstance(days, int) or days < 0):
            raise CatalogueError(f"{where}: validity-days {days!r} is not a number of days")
        entries.append(
            CatalogueEntry(
                code=code,
                name_vi=name,
                group=group,
                loinc=str(loinc) if loinc is not None else None,
                unit=_property(concept, "unit"),
                name_en=english,
                loinc_display=loinc_display,
                validity_days=days,
            )
        )
    if not entries:
        raise CatalogueError("the CodeSystem has no concepts")
    return build_catalogue(
        entries,
        url=system_url,
        version=str(system.get("version") or CATALOGUE_VERSION),
        title=system.get("title"),
    )


# --- FHIR resources ----------------------------------------------------------------------


def _base_and_id(url: str) -> tuple[str, str]:
    head, _, tail = url.rstrip("/").rpartition("/")
    resource_id = re.sub(r"[^A-Za-z0-9.\-]", "-", tail)[:64] or "lab-catalogue"
    base = head[: -len("/CodeSystem")] if head.endswith("/CodeSystem") else head
    return base, resource_id


def _concept(entry: CatalogueEntry) -> Concept:
    designations: list[Json] = [{"language": "vi", "value": entry.name_vi}]
    if entry.name_en:
        designations.append({"language": "en", "value": entry.name_en})
    properties: list[Json] = [{"code": "group", "valueCode": entry.group}]
    if entry.loinc:
        properties.append({"code": "loinc", "valueCode": entry.loinc})
    if entry.unit:
        properties.append({"code": "unit", "valueString": entry.unit})
    if entry.validity_days is not None:
        properties.append({"code": "validity-days", "valueInteger": entry.validity_days})
    return Concept(
        code=entry.code,
        display=entry.name_vi,
        designations=designations,
        properties=properties,
    )


def build_catalogue(
    entries: Iterable[CatalogueEntry],
    *,
    url: str = CATALOGUE_URL,
    version: str = CATALOGUE_VERSION,
    title: str | None = None,
) -> Catalogue:
    """The CodeSystem, ValueSets and ConceptMap of catalogue entries already checked."""
    entries = tuple(entries)
    base, resource_id = _base_and_id(url)
    header: Json = {
        "resourceType": "CodeSystem",
        "id": resource_id,
        "url": url,
        "version": version,
        "name": "LabCatalogue",
        "title": title or "Danh mục chỉ số xét nghiệm, cận lâm sàng (QĐ 1227/QĐ-BYT)",
        "status": "active",
        "publisher": "Bộ Y tế (Ministry of Health of Viet Nam)",
        "language": "vi",
        "caseSensitive": True,
        "valueSet": f"{base}/ValueSet/{resource_id}",
        "content": "complete",
        "count": len(entries),
        "filter": [
            {
                "code": "group",
                "description": "Indicators of one group of the catalogue",
                "operator": ["="],
                "value": " | ".join(GROUPS),
            }
        ],
        "property": [
            {
                "code": "group",
                "description": f"Group of the catalogue: {', '.join(GROUPS)}",
                "type": "code",
            },
            {"code": "loinc", "description": "The equivalent LOINC code", "type": "code"},
            {"code": "unit", "description": "The UCUM unit of the result", "type": "string"},
            {
                "code": "validity-days",
                "description": "Days a result stays valid for re-use by another facility",
                "type": "integer",
            },
        ],
    }
    whole = {
        "resourceType": "ValueSet",
        "id": resource_id,
        "url": f"{base}/ValueSet/{resource_id}",
        "version": version,
        "name": "LabCatalogue",
        "title": header["title"],
        "status": "active",
        "compose": {"include": [{"system": url, "version": version}]},
    }
    value_sets = [whole]
    for group in GROUPS:
        value_sets.append(
            {
                "resourceType": "ValueSet",
                "id": f"{resource_id}-{group}",
                "url": f"{base}/ValueSet/{resource_id}-{group}",
                "version": version,
                "name": f"LabCatalogue{group.capitalize()}",
                "title": f"{header['title']}: {GROUP_TITLES[group]}",
                "status": "active",
                "compose": {
                    "include": [
                        {
                            "system": url,
                            "version": version,
                            "filter": [{"property": "group", "op": "=", "value": group}],
                        }
                    ]
                },
            }
        )
    elements = []
    for entry in entries:
        if not entry.loinc:
            continue
        target: Json = {"code": entry.loinc, "equivalence": "equivalent"}
        if entry.loinc_display:
            target["display"] = entry.loinc_display
        elements.append({"code": entry.code, "display": entry.name_vi, "target": [target]})
    concept_map: Json = {
        "resourceType": "ConceptMap",
        "id": f"{resource_id}-to-loinc",
        "url": f"{base}/ConceptMap/{resource_id}-to-loinc",
        "version": version,
        "name": "LabCatalogueToLoinc",
        "title": f"{header['title']} → LOINC",
        "status": "active",
        "sourceUri": whole["url"],
        "targetUri": LOINC_ALL_CODES,
        "group": [
            {"source": url, "sourceVersion": version, "target": LOINC_URL, "element": elements}
        ],
    }
    code_system = CodeSystemContent(header=header, concepts=[_concept(e) for e in entries])
    return Catalogue(code_system, value_sets, concept_map, entries)
