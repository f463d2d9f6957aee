"""Readers of the national terminology content (vnehr.terminology.sources): the national lab
catalogue (CSV, Excel, FHIR), LOINC's Loinc.csv, and ICD-10 (vnehr's CSV, the Ministry's list,
the CDC tabular XML), on the data shipped with vnehr and on small files written here."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from vnehr.demo.conditions import ICD10 as DEMO_ICD10
from vnehr.demo.labs import CODED_TESTS, PANELS, TESTS
from vnehr.terminology.model import CodeSystemContent, Concept
from vnehr.terminology.sources.catalogue import (
    CATALOGUE_URL,
    GROUPS,
    LOINC_URL,
    SAMPLE_VERSION,
    CatalogueEntry,
    CatalogueError,
    is_loinc_code,
    loinc_check_digit,
    read_catalogue,
    read_catalogue_fhir,
    sample_catalogue,
)
from vnehr.terminology.sources.icd10 import (
    ICD10_CM_URL,
    ICD10_URL,
    Icd10Error,
    icd10_demo,
    icd10_kind,
    read_icd10,
    read_icd10_csv,
    read_icd10_moh,
    read_icd10cm_xml,
)
from vnehr.terminology.sources.loinc import (
    LoincError,
    loinc_version_from_path,
    read_loinc,
    shipped_loinc,
)

DATA = Path(__file__).parent / "data"
HEADER = "code,name_vi,name_en,group,loinc,loinc_display,unit,validity_days"
ROWS = [
    "HS0001,Định lượng Glucose máu,Plasma glucose,biochemistry,14749-6,,mmol/L,1",
    "HH0001,Huyết sắc tố (HGB),Haemoglobin,haematology,718-7,,g/L,7",
    "VS0001,HBsAg,HBsAg,microbiology,5196-1,,,180",
]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _by_code(content: CodeSystemContent) -> dict[str, Concept]:
    return {concept.code: concept for concept in content.concepts}


def _property(concept: Concept, code: str) -> Any:
    values = [
        v for p in concept.properties if p["code"] == code for k, v in p.items() if k != "code"
    ]
    return values[0] if values else None


def _designation(concept: Concept, language: str) -> str | None:
    return next((d["value"] for d in concept.designations if d["language"] == language), None)


# --- The national lab catalogue ----------------------------------------------------------


def test_sample_catalogue_has_every_row_of_the_shipped_file() -> None:
    catalogue = sample_catalogue()
    source = resources.files("vnehr.terminology").joinpath("data/lab_catalogue_sample.csv")
    rows = list(csv.DictReader(source.read_text("utf-8").splitlines()))
    concepts = list(catalogue.code_system.concepts)

    assert 140 <= len(concepts) <= 220
    assert [c.code for c in concepts] == [row["code"] for row in rows]
    header = catalogue.code_system.header
    assert header["url"] == CATALOGUE_URL
    assert header["version"] == SAMPLE_VERSION
    assert "mẫu" in header["title"]  # labelled a sample
    assert header["content"] == "complete"
    assert header["caseSensitive"] is True
    assert header["count"] == len(concepts)
    assert {p["code"]: p["type"] for p in header["property"]} == {
        "group": "code",
        "loinc": "code",
        "unit": "string",
        "validity-days": "integer",
    }
    assert {c.code[:2] for c in concepts} == {"HH", "HS", "VS", "GP", "HA"}
    assert {_property(c, "group") for c in concepts} == set(GROUPS)
    assert all(_designation(c, "en") and _designation(c, "vi") == c.display for c in concepts)


def test_every_loinc_code_of_the_sample_has_a_valid_check_digit() -> None:
    entries = sample_catalogue().entries
    assert all(entry.loinc and is_loinc_code(entry.loinc) for entry in entries)
    assert all(entry.loinc_display for entry in entries)
    assert all(entry.validity_days and entry.validity_days > 0 for entry in entries)


def test_the_sample_matches_the_shipped_loinc_subset_where_they_meet() -> None:
    loinc = {c.code: c.display for c in shipped_loinc().concepts}
    met = [e for e in sample_catalogue().entries if e.loinc in loinc]
    assert met  # potassium, blood/urine/sputum cultures, cytology
    assert all(e.loinc_display == loinc[e.loinc] for e in met)


def test_every_demo_lab_code_is_in_the_catalogue_map() -> None:
    catalogue = sample_catalogue()
    mapped = {
        element["target"][0]["code"]: element["code"]
        for element in catalogue.concept_map["group"][0]["element"]
    }
    demo = (
        {test.code for test in TESTS.values()}
        | {code for code, _, _ in CODED_TESTS.values()}
        | {PANELS["cbc"][0], PANELS["lipid"][0]}
    )
    assert demo - set(mapped) == set()
    units = {entry.loinc: entry.unit for entry in catalogue.entries}
    assert all(units[test.code] == test.ucum for test in TESTS.values())


def test_catalogue_value_sets_and_concept_map() -> None:
    catalogue = sample_catalogue()
    urls = {vs["url"]: vs for vs in catalogue.value_sets}
    assert len(urls) == len(GROUPS) + 1
    whole = urls["https://fhir.moh.gov.vn/ValueSet/lab-catalogue"]
    assert whole["compose"]["include"][0]["system"] == CATALOGUE_URL
    assert "filter" not in whole["compose"]["include"][0]
    for group in GROUPS:
        include = urls[f"https://fhir.moh.gov.vn/ValueSet/lab-catalogue-{group}"]["compose"][
            "include"
        ][0]
        assert include["system"] == CATALOGUE_URL
        assert include["filter"] == [{"property": "group", "op": "=", "value": group}]
    concept_map = catalogue.concept_map
    assert concept_map["resourceType"] == "ConceptMap"
    assert concept_map["sourceUri"] == whole["url"]
    (group,) = concept_map["group"]
    assert (group["source"], group["target"]) == (CATALOGUE_URL, LOINC_URL)
    assert len(group["element"]) == len(catalogue.entries)
    hba1c = next(e for e in group["element"] if e["target"][0]["code"] == "4548-4")
    assert hba1c["target"][0] == {
        "code": "4548-4",
        "equivalence": "equivalent",
        "display": "Hemoglobin A1c/Hemoglobin.total in Blood",
    }


def test_catalogue_url_is_configurable() -> None:
    catalogue = sample_catalogue("https://example.org/fhir/CodeSystem/xn")
    assert catalogue.code_system.header["url"] == "https://example.org/fhir/CodeSystem/xn"
    assert catalogue.concept_map["group"][0]["source"] == "https://example.org/fhir/CodeSystem/xn"
    assert catalogue.value_sets[0]["url"] == "https://example.org/fhir/ValueSet/xn"


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("2951-2", True),
        ("718-7", True),
        ("4548-4", True),
        ("98979-8", True),
        ("100007-4", True),
        ("2951-3", False),
        ("718-1", False),
        ("2951", False),
        ("LP14082-9", False),
    ],
)
def test_loinc_check_digit(code: str, valid: bool) -> None:
    assert is_loinc_code(code) is valid


def test_loinc_check_digit_values() -> None:
    assert loinc_check_digit("2951") == 2
    assert loinc_check_digit("14682") == 9
    assert loinc_check_digit("0") == 0


def test_every_code_of_the_shipped_loinc_subset_passes_the_check_digit() -> None:
    codes = [concept.code for concept in shipped_loinc().concepts]
    assert len(codes) > 300
    assert all(is_loinc_code(code) for code in codes)


def test_catalogue_csv_with_vietnamese_headers_and_group_names(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "danh-muc.csv",
        [
            "DANH MỤC CHỈ SỐ XÉT NGHIỆM (trích);;;;;",
            "STT;MÃ;Tên xét nghiệm;Nhóm;Mã LOINC;Đơn vị tính;Thời hạn hiệu lực (ngày)",
            "1;HS0001;Định lượng Glucose máu;Hoá sinh;14749-6;mmol/L;1",
            "2;HH0004;Huyết sắc tố;HUYẾT HỌC;718-7;g/L;7",
            ";;;;;;",
            "3;HA0001;Chụp X-quang ngực thẳng;Chẩn đoán hình ảnh;24648-8;;30",
        ],
    )
    catalogue = read_catalogue(path)
    assert [(e.code, e.group, e.loinc, e.unit, e.validity_days) for e in catalogue.entries] == [
        ("HS0001", "biochemistry", "14749-6", "mmol/L", 1),
        ("HH0004", "haematology", "718-7", "g/L", 7),
        ("HA0001", "imaging", "24648-8", None, 30),
    ]
    assert catalogue.code_system.header["version"] == "2025"


@pytest.mark.parametrize(
    ("rows", "line", "words"),
    [
        ([HEADER.replace(",group", ""), *ROWS], 1, "missing required column(s): group"),
        ([HEADER, ROWS[0], ROWS[1], ROWS[0]], 4, "duplicate code HS0001 (first on line 2)"),
        ([HEADER, ROWS[0], ROWS[1].replace("718-7", "718-6")], 3, "wrong check digit"),
        ([HEADER, ROWS[0], ROWS[1].replace("718-7", "718")], 3, "not of the form"),
        ([HEADER, ROWS[0], ROWS[2].replace("microbiology", "virology")], 3, "unknown group"),
        ([HEADER, ROWS[0], ROWS[1].replace("HH0001", "")], 3, "empty code"),
        ([HEADER, ROWS[0][:-1] + "one"], 2, "not a number of days"),
        ([HEADER], 1, "no indicators"),
    ],
)
def test_bad_catalogue_rows_are_named(
    tmp_path: Path, rows: list[str], line: int, words: str
) -> None:
    path = _write(tmp_path / "bad.csv", rows)
    with pytest.raises(CatalogueError) as caught:
        read_catalogue(path)
    assert caught.value.line == line
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"line {line}: ")


def test_catalogue_excel_round_trip(tmp_path: Path) -> None:
    entries = sample_catalogue().entries[:12]
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Danh mục"
    sheet.append(["DANH MỤC CHỈ SỐ XÉT NGHIỆM, CẬN LÂM SÀNG (bản mẫu)"])
    sheet.append([])
    sheet.append(
        ["Mã chỉ số", "Tên chỉ số", "Tên tiếng Anh", "Nhóm", "Mã LOINC", "Tên LOINC", "Đơn vị",
         "Số ngày hiệu lực"]
    )  # fmt: skip
    for e in entries:
        sheet.append(
            [e.code, e.name_vi, e.name_en, e.group, e.loinc, e.loinc_display, e.unit,
             e.validity_days]
        )  # fmt: skip
    book.save(tmp_path / "danh-muc.xlsx")

    read = read_catalogue(tmp_path / "danh-muc.xlsx", version="2025.1")
    assert [replace(e, line=None) for e in read.entries] == [replace(e, line=None) for e in entries]
    assert [e.line for e in read.entries] == list(range(4, 4 + len(entries)))
    assert read.code_system.header["version"] == "2025.1"


def test_catalogue_excel_errors_name_the_sheet_row(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["code", "name_vi", "group", "loinc", "unit"])
    sheet.append(["HS0001", "Glucose", "biochemistry", "14749-6", "mmol/L"])
    sheet.append(["HS0002", "Ure", "biochemistry", "22664-8", "mmol/L"])
    book.save(tmp_path / "bad.xlsx")
    with pytest.raises(CatalogueError) as caught:
        read_catalogue(tmp_path / "bad.xlsx")
    assert caught.value.line == 3
    assert "22664-7" in str(caught.value)  # the check digit it should have


def _fhir_code_system(content: CodeSystemContent) -> dict[str, Any]:
    concepts = [
        {
            "code": c.code,
            "display": c.display,
            "designation": c.designations,
            "property": [p for p in c.properties if p["code"] != "loinc"],
        }
        for c in content.concepts
    ]
    return {**content.header, "concept": concepts}


def test_catalogue_fhir_round_trip(tmp_path: Path) -> None:
    sample = sample_catalogue()
    code_system = tmp_path / "CodeSystem-lab-catalogue.json"
    code_system.write_text(json.dumps(_fhir_code_system(sample.code_system)), "utf-8")
    concept_map = tmp_path / "ConceptMap-lab-catalogue-to-loinc.json"
    concept_map.write_text(json.dumps(sample.concept_map), "utf-8")

    read = read_catalogue_fhir(code_system, concept_map)
    assert [replace(e, line=None) for e in read.entries] == [
        replace(e, line=None) for e in sample.entries
    ]
    assert read.code_system.header["version"] == SAMPLE_VERSION
    assert read.concept_map == sample.concept_map

    bundle = tmp_path / "catalogue.json"
    resources_ = [_fhir_code_system(sample.code_system), sample.concept_map]
    bundle.write_text(
        json.dumps(
            {"resourceType": "Bundle", "type": "collection",
             "entry": [{"resource": r} for r in resources_]}
        ),
        "utf-8",
    )  # fmt: skip
    assert read_catalogue(bundle).entries == read.entries


def test_catalogue_fhir_form_is_checked_like_the_table(tmp_path: Path) -> None:
    sample = sample_catalogue()
    concept_map = json.loads(json.dumps(sample.concept_map))
    concept_map["group"][0]["element"][1]["target"][0]["code"] = "6690-3"
    with pytest.raises(CatalogueError, match=r"concept #2 \(HH0002\).*6690-3.*6690-2"):
        read_catalogue_fhir(_fhir_code_system(sample.code_system), concept_map)
    broken = _fhir_code_system(sample.code_system)
    broken["concept"][3]["property"] = []
    with pytest.raises(CatalogueError, match=r"concept #4 .*group"):
        read_catalogue_fhir(broken, sample.concept_map)


def test_catalogue_entry_is_plain_data() -> None:
    entry = CatalogueEntry("X1", "Tên", "imaging", None, None)
    assert entry.validity_days is None and entry.line is None


# --- LOINC -------------------------------------------------------------------------------


def test_loinc_reader_on_the_shipped_subset() -> None:
    shipped = resources.files("vnehr.terminology").joinpath("data/loinc/Loinc.csv")
    with resources.as_file(shipped) as path:
        content = read_loinc(path, version="2.81")
        concepts = _by_code(content)
        rows = list(csv.DictReader(path.read_text("utf-8").splitlines()))

    header = content.header
    assert header["url"] == "http://loinc.org"
    assert header["version"] == "2.81"
    assert header["content"] == "not-present"
    assert "count" not in header  # the loader counts what it stores
    assert "LOINC" in header["copyright"]
    assert len(concepts) == len(rows)

    potassium = concepts["2823-3"]
    assert potassium.display == "Potassium [Moles/volume] in Serum or Plasma"
    assert _designation(potassium, "en-US") == "Potassium SerPl-sCnc"
    assert _property(potassium, "COMPONENT") == "Potassium"
    assert _property(potassium, "SYSTEM") == "Ser/Plas"
    assert _property(potassium, "SCALE_TYP") == "Qn"
    assert _property(potassium, "CLASS") == "CHEM"
    assert _property(potassium, "STATUS") == "ACTIVE"
    assert not potassium.inactive

    deprecated = {row["LOINC_NUM"] for row in rows if row["STATUS"] == "DEPRECATED"}
    assert deprecated and {c for c, x in concepts.items() if x.inactive} == deprecated
    discouraged = concepts["22760-3"]
    assert _property(discouraged, "STATUS") == "DISCOURAGED" and not discouraged.inactive

    # streamed: each iteration reads the file again, with the same result
    assert [c.code for c in content.concepts] == [c.code for c in content.concepts]


def test_loinc_version_from_the_release_path() -> None:
    assert loinc_version_from_path("/data/Loinc_2.80/LoincTable/Loinc.csv") == "2.80"
    assert loinc_version_from_path("/data/LoincTableCore_2.78/LoincTableCore.csv") == "2.78"
    assert loinc_version_from_path("/data/Loinc.csv") is None


def test_loinc_header_is_read_by_name(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "Loinc.csv",
        [
            '"STATUS","LONG_COMMON_NAME","LOINC_NUM","SHORTNAME"',
            '"ACTIVE","Sodium [Moles/volume] in Serum or Plasma","2951-2","Sodium SerPl-sCnc"',
            '"DEPRECATED","Old term","1234-5",""',
        ],
    )
    concepts = list(read_loinc(path).concepts)
    assert [(c.code, c.display, c.inactive) for c in concepts] == [
        ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", False),
        ("1234-5", "Old term", True),
    ]
    assert concepts[1].designations == []


def test_bad_loinc_files(tmp_path: Path) -> None:
    path = _write(tmp_path / "Loinc.csv", ['"LOINC_NUM","COMPONENT"', '"2951-2","Sodium"'])
    with pytest.raises(LoincError, match=r"line 1: missing required column.*LONG_COMMON_NAME"):
        read_loinc(path)
    path = _write(
        tmp_path / "Loinc.csv",
        ['"LOINC_NUM","LONG_COMMON_NAME"', '"2951-2","Sodium"', '"","Nameless"'],
    )
    with pytest.raises(LoincError, match="line 3: empty LOINC_NUM"):
        list(read_loinc(path).concepts)


# --- ICD-10 ------------------------------------------------------------------------------


def _ancestors(concepts: dict[str, Concept], code: str) -> list[str]:
    chain = []
    while concepts[code].parents:
        code = concepts[code].parents[0]
        chain.append(code)
    return chain


def test_every_demo_diagnosis_is_in_the_icd10_subset_up_to_its_chapter() -> None:
    content = icd10_demo()
    concepts = _by_code(content)
    assert content.header["url"] == ICD10_URL
    assert content.header["content"] == "fragment"
    assert content.header["count"] == len(concepts)
    for code, (vietnamese, english) in DEMO_ICD10.items():
        concept = concepts[code]
        assert concept.display == vietnamese
        assert _designation(concept, "en") == english
        chain = _ancestors(concepts, code)
        kinds = [icd10_kind(c) for c in chain]
        assert kinds[-1] == "chapter", code
        assert "block" in kinds, code
        if icd10_kind(code) == "code":
            assert kinds[0] == "category" and chain[0] == code.split(".")[0]
        assert concepts[chain[-1]].abstract and concepts[chain[-2]].abstract


def test_icd10_subset_hierarchy() -> None:
    concepts = _by_code(icd10_demo())
    assert len(concepts) > 200
    assert _ancestors(concepts, "E78.5") == ["E78", "E70-E90", "IV"]
    assert _ancestors(concepts, "C50.9") == ["C50", "C50-C50", "C00-C97", "II"]
    assert all(p in concepts for c in concepts.values() for p in c.parents)
    assert sum(1 for c in concepts.values() if icd10_kind(c.code) in ("category", "code")) > 100
    common = "A90 A91 B05 B08.4 B20 B24 C22 E11 I63 I64 J44 K35 N18 N39.0 O80 P07 R50 S06 T14 Z23"
    assert [code for code in common.split() if code not in concepts] == []
    chapter = concepts["IX"]
    assert chapter.abstract and _property(chapter, "notSelectable") is True
    assert _property(concepts["I10"], "kind") == "category"


@pytest.mark.parametrize(
    ("rows", "line", "words"),
    [
        (["code,parent,display_vi"], 1, "missing required column(s): display_en"),
        (["code,parent,display_vi,display_en", "IX,,Tuần hoàn,Circulatory",
          "I10,I10-I15,Tăng huyết áp,Hypertension"], 3, "parent I10-I15 is not in the list"),
        (["code,parent,display_vi,display_en", "IX,,Tuần hoàn,Circulatory",
          "IX,,Tuần hoàn,Circulatory"], 3, "duplicate code IX"),
        (["code,parent,display_vi,display_en", "IX,,Tuần hoàn,Circulatory",
          "I10.,IX,Tăng huyết áp,Hypertension"], 3, "not an ICD-10"),
        (["code,parent,display_vi,display_en", "I10,,Tăng huyết áp,Hypertension"], 2,
         "a chapter has no parent"),
    ],
)  # fmt: skip
def test_bad_icd10_csv_rows_are_named(
    tmp_path: Path, rows: list[str], line: int, words: str
) -> None:
    path = _write(tmp_path / "icd10.csv", rows)
    with pytest.raises(Icd10Error) as caught:
        read_icd10_csv(path)
    assert caught.value.line == line
    assert words in str(caught.value)


MOH_HEADER = [
    "STT", "MÃ CHƯƠNG", "CHAPTER NAME", "TÊN CHƯƠNG", "MÃ NHÓM CHÍNH", "MAIN GROUP NAME I",
    "TÊN NHÓM CHÍNH", "MÃ LOẠI", "TYPE NAME", "TÊN LOẠI", "MÃ BỆNH", "DISEASE NAME", "TÊN BỆNH",
]  # fmt: skip
MOH_ROWS = [
    ["1", "I", "Certain infectious and parasitic diseases", "Bệnh nhiễm trùng và ký sinh trùng",
     "A15-A19", "Tuberculosis", "Bệnh lao", "A15",
     "Respiratory tuberculosis, bacteriologically and histologically confirmed",
     "Lao hô hấp, có xác nhận về vi khuẩn học và mô học", "A15.0",
     "Tuberculosis of lung, confirmed by sputum microscopy with or without culture",
     "Lao phổi, xác định bằng soi đờm có hoặc không có nuôi cấy"],
    ["2", "I", "", "", "A15-A19", "", "", "A17", "Tuberculosis of nervous system",
     "Lao hệ thần kinh", "A170†", "Tuberculous meningitis", "Viêm màng não do lao"],
    ["3", "Chương 9", "Diseases of the circulatory system", "Bệnh của hệ tuần hoàn", "I10-I15",
     "Hypertensive diseases", "Bệnh lý tăng huyết áp", "I10", "Essential (primary) hypertension",
     "Bệnh tăng huyết áp vô căn", "I10", "Essential (primary) hypertension",
     "Bệnh tăng huyết áp vô căn (nguyên phát)"],
    ["4", "", "", "", "", "", "", "", "", "", "", "", ""],
]  # fmt: skip


def _check_moh(content: CodeSystemContent) -> None:
    concepts = _by_code(content)
    assert list(concepts) == ["I", "A15-A19", "A15", "A15.0", "A17", "A17.0", "IX", "I10-I15",
                              "I10"]  # fmt: skip
    assert _ancestors(concepts, "A17.0") == ["A17", "A15-A19", "I"]
    assert concepts["I10"].display == "Bệnh tăng huyết áp vô căn (nguyên phát)"
    assert _designation(concepts["A17.0"], "en") == "Tuberculous meningitis"
    assert concepts["I"].display == "Bệnh nhiễm trùng và ký sinh trùng"
    assert concepts["IX"].abstract and not concepts["I10"].abstract
    assert content.header["count"] == len(concepts)


def test_moh_icd10_list_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "icd10-byt.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["DANH MỤC MÃ BỆNH ICD-10 (trích)"])
        writer.writerow(MOH_HEADER)
        writer.writerows(MOH_ROWS)
    _check_moh(read_icd10_moh(path))
    _check_moh(read_icd10(path))


def test_moh_icd10_list_from_excel(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.create_sheet("ICD10")
    sheet.append(MOH_HEADER)
    for row in MOH_ROWS:
        sheet.append(row)
    book.save(tmp_path / "icd10-byt.xlsx")
    _check_moh(read_icd10_moh(tmp_path / "icd10-byt.xlsx", sheet="ICD10"))


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        ((1, 10, ""), 3, "empty disease code"),
        ((1, 12, ""), 3, "A17.0: empty Vietnamese name"),
        ((2, 7, "A15"), 4, "A15 is under I10-I15 here but under A15-A19 on line 2"),
        ((2, 10, "A15.0"), 4, "duplicate disease code A15.0 (first on line 2)"),
        ((1, 10, "tuberculosis"), 3, "is not an ICD-10 code"),
    ],
)
def test_bad_moh_icd10_rows_are_named(
    tmp_path: Path, change: tuple[int, int, str], line: int, words: str
) -> None:
    rows = [list(row) for row in MOH_ROWS]
    row, column, value = change
    rows[row][column] = value
    path = tmp_path / "icd10-byt.csv"
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows([MOH_HEADER, *rows])
    with pytest.raises(Icd10Error) as caught:
        read_icd10_moh(path)
    assert caught.value.line == line
    assert words in str(caught.value)


def test_moh_icd10_list_needs_codes_and_names(tmp_path: Path) -> None:
    path = _write(tmp_path / "icd10.csv", ["STT,Mã loại,Tên loại", "1,A00,Bệnh tả"])
    with pytest.raises(Icd10Error, match="line 1: missing required column"):
        read_icd10_moh(path)


def test_icd10cm_tabular_xml_excerpt() -> None:
    content = read_icd10cm_xml(DATA / "icd10cm_tabular_excerpt.xml")
    concepts = _by_code(content)
    header = content.header
    assert (header["url"], header["version"], header["language"]) == (ICD10_CM_URL, "2026", "en")
    assert header["count"] == len(concepts)
    assert [c for c in concepts if icd10_kind(c) == "chapter"] == ["I", "XIX"]
    assert _ancestors(concepts, "A00.1") == ["A00", "A00-A09", "I"]
    assert _ancestors(concepts, "B10.09") == ["B10.0", "B10", "B10-B10", "I"]
    assert concepts["A00.1"].display == "Cholera due to Vibrio cholerae 01, biovar eltor"
    assert concepts["B10-B10"].abstract and not concepts["B10"].abstract
    # 7th characters: only leaves are extended, padded with X
    assert "S02.0XXA" in concepts and "S02.101S" in concepts and "S02.1XXA" not in concepts
    assert _ancestors(concepts, "S02.0XXA")[:2] == ["S02.0", "S02"]
    assert concepts["S02.0XXS"].display == "Fracture of vault of skull, sequela"
    assert read_icd10(DATA / "icd10cm_tabular_excerpt.xml").header["url"] == ICD10_CM_URL


def test_malformed_icd10cm_xml(tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_text("<ICD10CM.tabular>\n<version>2026</version>\n<chapter>\n</ICD10CM.tabular>")
    with pytest.raises(Icd10Error) as caught:
        read_icd10cm_xml(path)
    assert caught.value.line == 4
