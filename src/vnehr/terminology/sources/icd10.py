"""ICD-10 as a CodeSystem with its hierarchy chapter -> block -> category -> subcategory.

Three published shapes are read:

- our demo subset (data/icd10_vi_demo.csv: `code, parent, display_vi, display_en`), the WHO
  ICD-10 in the Ministry of Health's Vietnamese edition, `http://hl7.org/fhir/sid/icd-10`;
- the Ministry's list as CSV or Excel, one row per disease code with its chapter, main group
  (block), optional sub-groups and category on the same row (`Mã chương`, `Tên chương`,
  `Mã nhóm chính`, `Tên nhóm chính`, `Mã loại`, `Tên loại`, `Mã bệnh`, `Tên bệnh`, English
  names; headers matched without regard to case or accents);
- the CDC's tabular XML of ICD-10-CM (`icd10cm-tabular-*.xml`),
  `http://hl7.org/fhir/sid/icd-10-cm`.

Chapters are coded by their Roman numeral (`IX`) and blocks by their range (`I10-I15`; a block
of one category is `C50-C50`, as WHO writes it). Both are not selectable (`abstract`, property
`notSelectable`); every concept has a `kind` property: chapter, block, category or code. The
display is Vietnamese where the source has it, with `vi` and `en` designations. Bad input
raises `Icd10Error` naming the line at fault.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from vnehr.terminology.model import CodeSystemContent, Concept, Json
from vnehr.terminology.sources.catalogue import (
    column_value,
    find_columns,
    header_key,
    table_rows,
)

ICD10_URL = "http://hl7.org/fhir/sid/icd-10"
ICD10_CM_URL = "http://hl7.org/fhir/sid/icd-10-cm"
NOT_SELECTABLE = "http://hl7.org/fhir/concept-properties#notSelectable"
KINDS = ("chapter", "block", "category", "code")
_DEMO = "data/icd10_vi_demo.csv"

_CHAPTER = re.compile(r"[IVXL]+")
# ICD-10-CM also has categories with letters after the first (C4A, M1A, QA0).
_BLOCK = re.compile(r"[A-Z][0-9A-Z]{2}-[A-Z][0-9A-Z]{2}")
_CATEGORY = re.compile(r"[A-Z][0-9A-Z]{2}")
_CODE = re.compile(r"[A-Z][0-9A-Z]{2}\.[0-9A-Z]{1,4}")
_ROMAN = (
    (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
)  # fmt: skip


class Icd10Error(ValueError):
    """An ICD-10 source that cannot be read; `line` is the 1-based line at fault, if any."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.message = message
        self.line = line


def roman(number: int) -> str:
    """The Roman numeral of a chapter number (1..39): 9 -> "IX"."""
    if not 0 < number < 40:
        raise ValueError(f"no chapter {number}")
    out = []
    for value, letters in _ROMAN:
        while number >= value:
            out.append(letters)
            number -= value
    return "".join(out)


def icd10_kind(code: str) -> str | None:
    """What an ICD-10 code names: "chapter" (IX), "block" (I10-I15), "category" (I10) or
    "code" (E78.5); None for anything else."""
    if _CHAPTER.fullmatch(code):
        return "chapter"
    if _BLOCK.fullmatch(code):
        return "block"
    if _CATEGORY.fullmatch(code):
        return "category"
    if _CODE.fullmatch(code):
        return "code"
    return None


def icd10_header(
    *,
    url: str = ICD10_URL,
    version: str | None = None,
    count: int | None = None,
    content: str = "complete",
    language: str = "vi",
) -> Json:
    """The ICD-10 CodeSystem resource without concepts."""
    cm = url == ICD10_CM_URL
    header: Json = {
        "resourceType": "CodeSystem",
        "id": "icd-10-cm" if cm else "icd-10",
        "url": url,
    }
    if version:
        header["version"] = version
    header.update(
        {
            "name": "ICD10CM" if cm else "ICD10",
            "title": "ICD-10-CM"
            if cm
            else "Phân loại thống kê quốc tế về bệnh tật và vấn đề sức khỏe liên quan, "
            "phiên bản lần thứ 10 (ICD-10)",
            "status": "active",
            "publisher": "National Center for Health Statistics (CDC)"
            if cm
            else "World Health Organization; Bộ Y tế (bản tiếng Việt)",
            "language": language,
            "caseSensitive": True,
            "hierarchyMeaning": "is-a",
            "content": content,
        }
    )
    if count is not None:
        header["count"] = count
    header["property"] = [
        {"code": "kind", "description": "chapter | block | category | code", "type": "code"},
        {"code": "notSelectable", "uri": NOT_SELECTABLE, "type": "boolean"},
    ]
    return header


def _concept(code: str, kind: str, parent: str | None, vi: str | None, en: str | None) -> Concept:
    designations: list[Json] = []
    if vi:
        designations.append({"language": "vi", "value": vi})
    if en:
        designations.append({"language": "en", "value": en})
    properties: list[Json] = [{"code": "kind", "valueCode": kind}]
    abstract = kind in ("chapter", "block")
    if abstract:
        properties.append({"code": "notSelectable", "valueBoolean": True})
    return Concept(
        code=code,
        display=vi or en,
        designations=designations,
        properties=properties,
        parents=[parent] if parent else [],
        abstract=abstract,
    )


def _check_tree(concepts: list[Concept], lines: dict[str, int]) -> None:
    """Every parent is a concept of the list and no code is its own ancestor."""
    parents = {c.code: (c.parents[0] if c.parents else None) for c in concepts}
    for concept in concepts:
        seen = {concept.code}
        parent = parents[concept.code]
        while parent is not None:
            if parent not in parents:
                raise Icd10Error(
                    f"{concept.code}: parent {parent} is not in the list", lines.get(concept.code)
                )
            if parent in seen:
                raise Icd10Error(f"{concept.code}: its parents loop", lines.get(concept.code))
            seen.add(parent)
            parent = parents[parent]


# --- Our demo subset: code, parent, display_vi, display_en -------------------------------

_DEMO_COLUMNS = {
    name: frozenset({header_key(name)}) for name in ("code", "parent", "display_vi", "display_en")
}


def read_icd10_csv(
    path: str | Path,
    *,
    url: str = ICD10_URL,
    version: str | None = None,
    content: str = "fragment",
) -> CodeSystemContent:
    """ICD-10 from a CSV of `code, parent, display_vi, display_en` (data/icd10_vi_demo.csv);
    parents must be in the file and chapters have none."""
    rows = table_rows(path)
    _, columns = find_columns(rows, _DEMO_COLUMNS, tuple(_DEMO_COLUMNS), Icd10Error)
    concepts: list[Concept] = []
    lines: dict[str, int] = {}
    for line, cells in rows:
        if not any(cells):
            continue
        code = column_value(cells, columns, "code")
        parent = column_value(cells, columns, "parent") or None
        vi = column_value(cells, columns, "display_vi")
        en = column_value(cells, columns, "display_en") or None
        if not code:
            raise Icd10Error("empty code", line)
        kind = icd10_kind(code)
        if kind is None:
            raise Icd10Error(f"{code!r} is not an ICD-10 chapter, block, category or code", line)
        if code in lines:
            raise Icd10Error(f"duplicate code {code} (first on line {lines[code]})", line)
        if not vi:
            raise Icd10Error(f"{code}: empty Vietnamese display", line)
        if (kind == "chapter") != (parent is None):
            raise Icd10Error(f"{code}: a chapter has no parent and every other code has one", line)
        lines[code] = line
        concepts.append(_concept(code, kind, parent, vi, en))
    if not concepts:
        raise Icd10Error("the file has no codes")
    _check_tree(concepts, lines)
    header = icd10_header(url=url, version=version, count=len(concepts), content=content)
    return CodeSystemContent(header=header, concepts=concepts)


def icd10_demo() -> CodeSystemContent:
    """The shipped ICD-10 demo subset (data/icd10_vi_demo.csv): the demo's diagnoses and about
    a hundred codes common in Viet Nam, each with its ancestors up to the chapter."""
    source = resources.files("vnehr.terminology").joinpath(_DEMO)
    with resources.as_file(source) as path:
        return read_icd10_csv(path)


# --- The Ministry of Health's list (CSV or Excel) ----------------------------------------


def _keys(*names: str) -> frozenset[str]:
    return frozenset(header_key(name) for name in names)


MOH_COLUMNS: dict[str, frozenset[str]] = {
    "chapter": _keys("mã chương", "chương", "chapter", "chapter code"),
    "chapter_vi": _keys("tên chương"),
    "chapter_en": _keys("chapter name", "tên chương tiếng anh"),
    "block": _keys("mã nhóm chính", "mã nhóm", "block", "block code", "main group code"),
    "block_vi": _keys("tên nhóm chính", "tên nhóm"),
    "block_en": _keys("main group name", "main group name i", "block name"),
    "sub1": _keys("mã nhóm phụ 1", "mã nhóm phụ"),
    "sub1_vi": _keys("tên nhóm phụ 1", "tên nhóm phụ"),
    "sub1_en": _keys("sub group name i", "sub group name 1", "sub group name"),
    "sub2": _keys("mã nhóm phụ 2"),
    "sub2_vi": _keys("tên nhóm phụ 2"),
    "sub2_en": _keys("sub group name ii", "sub group name 2"),
    "category": _keys("mã loại", "category", "category code"),
    "category_vi": _keys("tên loại"),
    "category_en": _keys("type name", "category name", "tên loại tiếng anh"),
    "code": _keys(
        "mã bệnh", "mã icd", "mã icd10", "mã icd-10", "mã bệnh icd", "mã bệnh icd-10",
        "disease code", "code",
    ),
    "name_vi": _keys("tên bệnh", "tên bệnh tiếng việt", "tên icd", "tên icd-10"),
    "name_en": _keys("tên tiếng anh", "tên bệnh tiếng anh", "disease name", "english name"),
}  # fmt: skip
MOH_LEVELS = (
    ("chapter", "chapter"), ("block", "block"), ("sub1", "block"), ("sub2", "block"),
    ("category", "category"),
)  # fmt: skip


def _chapter_code(text: str) -> str:
    """`Chương IX`, `9`, `ix` -> `IX`; anything else (a range `I00-I99`) as written."""
    bare = re.sub(r"^(chương|chuong|chapter)\s*", "", text.strip(), flags=re.I).strip()
    if bare.isdigit():
        return roman(int(bare))
    return bare.upper() if _CHAPTER.fullmatch(bare.upper()) else bare


def _disease_code(text: str) -> str:
    """`A17.0†`, `g01*`, `A000` -> `A17.0`, `G01`, `A00.0`."""
    code = re.sub(r"[\s†*+]", "", text).upper()
    if re.fullmatch(r"[A-Z][0-9A-Z]{3,6}", code):
        code = f"{code[:3]}.{code[3:]}"
    return code


@dataclass(slots=True)
class _Node:
    code: str
    kind: str
    parent: str | None
    line: int
    vi: str | None = None
    en: str | None = None


def read_icd10_moh(
    path: str | Path,
    *,
    sheet: str | None = None,
    url: str = ICD10_URL,
    version: str | None = None,
) -> CodeSystemContent:
    """ICD-10 from the Ministry of Health's list, CSV or Excel (.xlsx): one row per disease
    code with its chapter, main group, sub-groups and category codes and names."""
    rows = table_rows(path, sheet=sheet)
    _, columns = find_columns(rows, MOH_COLUMNS, ("code", "name_vi"), Icd10Error)
    nodes: dict[str, _Node] = {}
    diseases: set[str] = set()
    for line, cells in rows:
        if not any(column_value(cells, columns, name) for name in columns):
            continue  # blank, or only a running number (STT)

        def cell(name: str, cells: list[str] = cells) -> str:
            return column_value(cells, columns, name)

        parent: str | None = None
        for level, kind in MOH_LEVELS:
            code = cell(level)
            if not code:
                continue
            code = _chapter_code(code) if kind == "chapter" else _disease_code(code)
            if kind == "block" and _CATEGORY.fullmatch(code):
                code = f"{code}-{code}"  # a block of one category
            node = nodes.get(code)
            if node is None:
                node = nodes[code] = _Node(code, kind, parent, line)
            elif node.parent != parent:
                raise Icd10Error(
                    f"{code} is under {parent} here but under {node.parent} on line {node.line}",
                    line,
                )
            node.vi = node.vi or cell(f"{level}_vi") or None
            node.en = node.en or cell(f"{level}_en") or None
            parent = code
        text = cell("code")
        if not text:
            raise Icd10Error("empty disease code", line)
        code = _disease_code(text)
        if icd10_kind(code) not in ("category", "code"):
            raise Icd10Error(f"{text!r} is not an ICD-10 code", line)
        if code in diseases:
            raise Icd10Error(
                f"duplicate disease code {code} (first on line {nodes[code].line})", line
            )
        diseases.add(code)
        name = cell("name_vi")
        if not name:
            raise Icd10Error(f"{code}: empty Vietnamese name", line)
        if code == parent:  # a category without subdivisions is its own disease row
            nodes[code].vi = name
            nodes[code].en = cell("name_en") or nodes[code].en
            continue
        if code in nodes:
            raise Icd10Error(
                f"{code} is both a disease code and a group (line {nodes[code].line})", line
            )
        nodes[code] = _Node(
            code, icd10_kind(code) or "code", parent, line, name, cell("name_en") or None
        )
    if not diseases:
        raise Icd10Error("the list has no disease codes")
    concepts = [_concept(n.code, n.kind, n.parent, n.vi, n.en) for n in nodes.values()]
    _check_tree(concepts, {n.code: n.line for n in nodes.values()})
    header = icd10_header(url=url, version=version, count=len(concepts))
    return CodeSystemContent(header=header, concepts=concepts)


# --- ICD-10-CM tabular XML (CDC) ---------------------------------------------------------


@dataclass(slots=True)
class _Frame:
    tag: str
    depth: int
    code: str | None = None
    name: str | None = None
    desc: str | None = None
    emitted: bool = False
    has_children: bool = False
    seventh: list[tuple[str, str]] | None = None  # sevenChrDef: (character, meaning)


def _tabular_concepts(path: Path) -> tuple[str | None, list[Concept]]:
    version: str | None = None
    concepts: list[Concept] = []
    seen: set[str] = set()
    blocks: dict[str, str] = {}  # section id -> block code (from the chapter's sectionIndex)
    frames: list[_Frame] = []
    depth = 0

    def parent_code() -> str | None:
        return next((f.code for f in reversed(frames[:-1]) if f.emitted), None)

    def add(code: str, kind: str, parent: str | None, display: str | None) -> None:
        if code in seen:
            raise Icd10Error(f"duplicate code {code}")
        seen.add(code)
        concepts.append(_concept(code, kind, parent, None, display))

    def emit_seventh(frame: _Frame) -> None:
        # A leaf under a sevenChrDef is extended by each 7th character, padded with X
        # (S02.0 + A -> S02.0XXA); the extended codes are the selectable ones.
        seventh = next((f.seventh for f in reversed(frames) if f.seventh is not None), None)
        if frame.tag != "diag" or frame.has_children or not seventh or frame.code is None:
            return
        bare = frame.code.replace(".", "").ljust(6, "X")
        for char, meaning in seventh:
            full = bare + char
            add(f"{full[:3]}.{full[3:]}", "code", frame.code, f"{frame.desc}, {meaning}")

    def emit(frame: _Frame) -> None:
        kind = {"chapter": "chapter", "section": "block"}.get(frame.tag) or icd10_kind(
            frame.code or ""
        )
        if frame.code is None or kind is None:
            raise Icd10Error(f"{frame.tag} {frame.code!r} under {parent_code()} has no valid code")
        add(frame.code, kind, parent_code(), frame.desc)
        frame.emitted = True

    try:
        for event, element in ET.iterparse(path, events=("start", "end")):
            if event == "start":
                depth += 1
                if element.tag in ("chapter", "section", "diag"):
                    if frames:
                        frames[-1].has_children = True
                    frame = _Frame(element.tag, depth)
                    if element.tag == "section":
                        section = element.get("id", "")
                        frame.code = blocks.get(section) or (
                            section if "-" in section else f"{section}-{section}"
                        )
                    frames.append(frame)
                elif element.tag == "sectionRef":
                    first, last = element.get("first"), element.get("last")
                    if first and last:
                        blocks[element.get("id", "")] = f"{first}-{last}"
                continue
            depth -= 1
            tag = element.tag
            text = " ".join((element.text or "").split())
            if tag == "version" and depth == 1:
                version = text or None
            elif tag in ("name", "desc") and frames and frames[-1].depth == depth:
                frame = frames[-1]
                if tag == "name":
                    frame.name = text
                    frame.code = (
                        roman(int(text)) if frame.tag == "chapter" and text.isdigit() else text
                    )
                else:
                    frame.desc = text
                    if not frame.emitted:
                        emit(frame)
            elif tag == "sevenChrDef" and frames and frames[-1].depth == depth:
                frames[-1].seventh = [
                    (ext.get("char", ""), " ".join((ext.text or "").split()))
                    for ext in element.iter("extension")
                    if ext.get("char")
                ]
            elif tag in ("chapter", "section", "diag"):
                frame = frames[-1]
                if not frame.emitted:
                    emit(frame)
                emit_seventh(frame)
                frames.pop()
                element.clear()
    except ET.ParseError as exc:
        raise Icd10Error(f"not well-formed XML: {exc}", exc.position[0]) from exc
    return version, concepts


def read_icd10cm_xml(
    path: str | Path, *, url: str = ICD10_CM_URL, version: str | None = None
) -> CodeSystemContent:
    """ICD-10-CM from the CDC's tabular XML (`icd10cm-tabular-*.xml`); the version defaults
    to the file's `<version>`. Codes with a 7th character (`sevenChrDef`) are spelt out."""
    path = Path(path)
    found, concepts = _tabular_concepts(path)
    if not concepts:
        raise Icd10Error("the file has no chapters or codes")
    header = icd10_header(url=url, version=version or found, count=len(concepts), language="en")
    return CodeSystemContent(header=header, concepts=concepts)


def read_icd10(
    path: str | Path,
    *,
    version: str | None = None,
    url: str | None = None,
    sheet: str | None = None,
) -> CodeSystemContent:
    """ICD-10 from any of its shapes: the CDC tabular XML (.xml), vnehr's CSV (`code, parent,
    display_vi, display_en`) or the Ministry's list (CSV or Excel .xlsx)."""
    path = Path(path)
    if path.suffix.lower() == ".xml":
        return read_icd10cm_xml(path, url=url or ICD10_CM_URL, version=version)
    rows = table_rows(path, sheet=sheet)
    header = next((cells for _, cells in rows if any(cells)), [])
    rows.close()
    if {key for keys in _DEMO_COLUMNS.values() for key in keys} <= {header_key(c) for c in header}:
        return read_icd10_csv(path, url=url or ICD10_URL, version=version)
    return read_icd10_moh(path, sheet=sheet, url=url or ICD10_URL, version=version)
