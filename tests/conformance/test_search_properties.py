"""Property tests: on random resources and random queries, the SQL of both backends finds what
vnehr.search.match (the in-memory matcher over the same IR and the same index rows) finds,
in the same order, page by page forwards and backwards.

Each example wipes the database, writes a few Patients, Organizations and Observations
drawn from small pools of values (so that queries hit), then draws queries whose values come
from the same pools (every parameter type, modifier and prefix, OR within a parameter, AND
across parameters, chains, _has, _sort). A second test searches the R4 specification's
examples (data/r4-examples) with queries made from their own index rows.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import BACKENDS
from vnehr.app import Server, create_server
from vnehr.fhir import json as fhir_json
from vnehr.fhir.definitions import resource_types
from vnehr.fhir.instant import from_micros
from vnehr.search import ir
from vnehr.search.compile.sql import Cursor, decode_cursor
from vnehr.search.match import Corpus
from vnehr.search.query import Unknown, build_query, strict_query
from vnehr.search.registry import SearchParamRegistry
from vnehr.settings import Settings
from vnehr.storage.schema import INDEX_TABLES

EXAMPLES = Path(__file__).parent / "data" / "r4-examples" / "examples.ndjson.gz"
PROPERTIES = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- pools of values, shared by resources and queries

CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
FAMILIES = ["Nguyễn", "Nguyen", "Trần", "Tran", "Lê", "Đặng", "Dang", "Bùi"]
GIVENS = ["Văn", "Van", "Thị", "Đức", "Duc", "Anh", "Lan"]
NAME_QUERIES = ["nguyen", "Nguyễn", "ng", "đ", "D", "van", "Văn", "tran", "an", "uy", "ức"]
NAME_QUERIES += ["Nguyễn Văn", "nguyen van duc", "Trần Thị Lan", "Bùi"]
ORG_NAMES = ["Bệnh viện Bạch Mai", "Chợ Rẫy", "Bach Mai Hospital"]
ORG_QUERIES = ["benh", "bach", "Bệnh viện", "cho", "Chợ Rẫy", "hospital", "mai"]
IDENTIFIER_SYSTEMS = [CCCD, "urn:x", None]
IDENTIFIER_VALUES = ["001", "002", "A-1", "a-1"]
TAGS = [("urn:tags", "vip"), ("urn:tags", "test"), ("urn:other", "vip")]
CODINGS = [
    (LOINC, "4548-4", "Hemoglobin A1c"),
    (LOINC, "2339-0", "Glucose"),
    (SNOMED, "4548-4", None),
    (None, "4548-4", None),
    (LOINC, "85354-9", "Blood pressure panel"),
]
CODE_TEXTS = ["HbA1c", "Đường huyết", "Glucose máu", "huyết áp"]
TEXT_QUERIES = ["hemo", "glu", "duong", "Đường", "huyết", "blood", "h", "hba1c"]
UNITS = [
    (UCUM, "%", "%"),
    (UCUM, "mmol/L", "mmol/L"),
    (None, None, "percent"),
    (UCUM, "mm[Hg]", "mmHg"),
]
NUMBERS = [5, 7.2, 7.25, 10, 100, 0.5, -1, 120]
NUMBER_QUERIES = ["5", "7.2", "7.25", "7", "10", "1e2", "100.0", "0.5", "-1", "0", "120", "7.20"]
STRINGS = ["Bình thường", "binh thuong", "Cao", "cao huyết áp"]
STATUSES = ["final", "preliminary", "amended"]
GENDERS = ["male", "female", "other", "unknown"]
PREFIXES = list(ir.PREFIXES)
N_PATIENTS, N_ORGS = 4, 2
SYSTEM_TYPES = ("Observation", "Patient")


@st.composite
def fhir_date(draw: st.DrawFn, *, times: bool = True) -> str:
    """A date or dateTime of any precision, around 2020."""
    year = draw(st.sampled_from([2019, 2020, 2021]))
    precision = draw(
        st.sampled_from(["year", "month", "day", "time"] if times else ["year", "month", "day"])
    )
    if precision == "year":
        return str(year)
    month = draw(st.sampled_from([1, 2, 12]))
    if precision == "month":
        return f"{year}-{month:02d}"
    day = draw(st.sampled_from([1, 15, 28]))
    if precision == "day":
        return f"{year}-{month:02d}-{day:02d}"
    clock = draw(st.sampled_from(["00:00:00", "10:30:00", "23:59:59", "10:30"]))
    zone = draw(st.sampled_from(["Z", "+07:00", "-05:00"]))
    return f"{year}-{month:02d}-{day:02d}T{clock}{zone}"


def _maybe(draw: st.DrawFn, strategy: st.SearchStrategy[Any]) -> Any:
    return draw(strategy) if draw(st.booleans()) else None


@st.composite
def patient(draw: st.DrawFn, i: int) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Patient", "id": f"p{i}"}
    if (gender := _maybe(draw, st.sampled_from(GENDERS))) is not None:
        out["gender"] = gender
    if (birth := _maybe(draw, fhir_date(times=False))) is not None:
        out["birthDate"] = birth
    if draw(st.booleans()):
        name: dict[str, Any] = {"family": draw(st.sampled_from(FAMILIES))}
        givens = draw(st.lists(st.sampled_from(GIVENS), max_size=2))
        if givens:
            name["given"] = givens
        if draw(st.booleans()):
            name["text"] = " ".join([name["family"], *givens])
        out["name"] = [name]
    identifiers = []
    for _ in range(draw(st.integers(0, 2))):
        ident = {"value": draw(st.sampled_from(IDENTIFIER_VALUES))}
        if (system := draw(st.sampled_from(IDENTIFIER_SYSTEMS))) is not None:
            ident["system"] = system
        identifiers.append(ident)
    if identifiers:
        out["identifier"] = identifiers
    if (active := _maybe(draw, st.booleans())) is not None:
        out["active"] = active
    if (org := _maybe(draw, st.integers(0, N_ORGS))) is not None:
        out["managingOrganization"] = {"reference": f"Organization/org{org}"}
    tags = draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True))
    if tags:
        out["meta"] = {"tag": [{"system": s, "code": c} for s, c in tags]}
    return out


@st.composite
def observation(draw: st.DrawFn, i: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": draw(st.sampled_from(STATUSES)),
    }
    code: dict[str, Any] = {}
    codings = draw(st.lists(st.sampled_from(CODINGS), max_size=2, unique=True))
    if codings:
        code["coding"] = [
            {k: v for k, v in (("system", s), ("code", c), ("display", d)) if v is not None}
            for s, c, d in codings
        ]
    if not codings or draw(st.booleans()):
        code["text"] = draw(st.sampled_from(CODE_TEXTS))
    out["code"] = code
    subject = draw(
        st.sampled_from(
            [
                *(f"Patient/p{k}" for k in range(N_PATIENTS + 1)),
                "Group/g1",
                None,
                "http://other.example/fhir/Patient/p1",
            ]
        )
    )
    if subject is not None:
        out["subject"] = {"reference": subject}
    effective = draw(st.sampled_from(["dateTime", "period", None]))
    if effective == "dateTime":
        out["effectiveDateTime"] = draw(fhir_date())
    elif effective == "period":
        start, end = _maybe(draw, fhir_date()), _maybe(draw, fhir_date())
        if start is not None and end is not None and start > end:
            start, end = end, start
        period = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
        if period:
            out["effectivePeriod"] = period
    value = draw(st.sampled_from(["quantity", "string", None]))
    if value == "quantity":
        quantity: dict[str, Any] = {"value": draw(st.sampled_from(NUMBERS))}
        system, unit_code, unit = draw(st.sampled_from(UNITS))
        for key, v in (("system", system), ("code", unit_code), ("unit", unit)):
            if v is not None:
                quantity[key] = v
        if draw(st.integers(0, 4)) == 0:
            quantity["comparator"] = draw(st.sampled_from(["<", ">="]))
        out["valueQuantity"] = quantity
    elif value == "string":
        out["valueString"] = draw(st.sampled_from(STRINGS))
    tags = draw(st.lists(st.sampled_from(TAGS), max_size=1))
    if tags:
        out["meta"] = {"tag": [{"system": s, "code": c} for s, c in tags]}
    return out


@st.composite
def resources(draw: st.DrawFn) -> list[dict[str, Any]]:
    orgs = [
        {"resourceType": "Organization", "id": f"org{k}", "name": draw(st.sampled_from(ORG_NAMES))}
        for k in range(draw(st.integers(0, N_ORGS)))
    ]
    patients = [draw(patient(k)) for k in range(draw(st.integers(1, N_PATIENTS)))]
    observations = [draw(observation(k)) for k in range(draw(st.integers(1, 6)))]
    out = orgs + patients + observations
    return draw(st.permutations(out))


# -- queries: (name, value) pairs of one resource type


def _token(draw: st.DrawFn, system: str | None, code: str) -> str:
    form = draw(st.sampled_from(["code", "system|code", "|code", "system|"]))
    if form == "code" or (system is None and form != "|code"):
        return code
    if form == "|code":
        return f"|{code}"
    return f"{system}|{code}" if form == "system|code" else f"{system}|"


def _date_value(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(PREFIXES)) + draw(fhir_date())


def _values(draw: st.DrawFn, one: Callable[[], str] | list[str]) -> str:
    """One value, or two joined with a comma (OR): drawn by `one`, or from a pool."""
    if isinstance(one, list):
        pool = one

        def one() -> str:
            return draw(st.sampled_from(pool))

    return ",".join(one() for _ in range(draw(st.integers(1, 2))))


@st.composite
def patient_criterion(draw: st.DrawFn, last_updated: list[str]) -> tuple[str, str]:
    kind = draw(
        st.sampled_from(
            [
                "gender",
                "birthdate",
                "name",
                "identifier",
                "active",
                "organization",
                "chain",
                "_id",
                "_tag",
                "has",
                "missing",
                "_lastUpdated",
            ]
        )
    )
    gender = [*GENDERS, "http://hl7.org/fhir/administrative-gender|male"]
    match kind:
        case "gender":
            modifier = draw(st.sampled_from(["", ":not"]))
            return f"gender{modifier}", _values(draw, gender)
        case "birthdate":
            return "birthdate", _values(draw, lambda: _date_value(draw))
        case "name":
            param = draw(st.sampled_from(["name", "family", "given"]))
            modifier = draw(st.sampled_from(["", ":contains", ":exact"]))
            return param + modifier, _values(draw, NAME_QUERIES)
        case "identifier":

            def one() -> str:
                system = draw(st.sampled_from(IDENTIFIER_SYSTEMS))
                return _token(draw, system, draw(st.sampled_from(IDENTIFIER_VALUES)))

            return "identifier", _values(draw, one)
        case "active":
            return "active", draw(st.sampled_from(["true", "false"]))
        case "organization":
            refs = [f"Organization/org{k}" for k in range(N_ORGS + 1)]
            return "organization", _values(draw, [*refs, "org1"])
        case "chain":
            return "organization.name", _values(draw, ORG_QUERIES)
        case "_id":
            return "_id", _values(draw, [f"p{k}" for k in range(N_PATIENTS + 1)])
        case "_tag":
            modifier = draw(st.sampled_from(["", ":not"]))
            return f"_tag{modifier}", _values(
                draw, lambda: _token(draw, *draw(st.sampled_from(TAGS)))
            )
        case "has":
            inner = draw(st.sampled_from(["status", "code", "value-quantity"]))
            if inner == "status":
                value = draw(st.sampled_from(STATUSES))
            elif inner == "code":
                system, code, _ = draw(st.sampled_from(CODINGS))
                value = _token(draw, system, code)
            else:
                value = draw(st.sampled_from(PREFIXES)) + draw(st.sampled_from(NUMBER_QUERIES))
            return f"_has:Observation:subject:{inner}", value
        case "missing":
            param = draw(
                st.sampled_from(["gender", "birthdate", "name", "identifier", "organization"])
            )
            return f"{param}:missing", draw(st.sampled_from(["true", "false"]))
        case _:
            if not last_updated:
                return "_lastUpdated", _date_value(draw)
            moment = draw(st.sampled_from(last_updated))
            return "_lastUpdated", draw(st.sampled_from(PREFIXES)) + moment


@st.composite
def observation_criterion(draw: st.DrawFn, last_updated: list[str]) -> tuple[str, str]:
    kind = draw(
        st.sampled_from(
            [
                "code",
                "text",
                "status",
                "value-quantity",
                "date",
                "subject",
                "chain",
                "string",
                "composite",
                "missing",
                "_id",
                "_lastUpdated",
            ]
        )
    )
    match kind:
        case "code":
            modifier = draw(st.sampled_from(["", ":not"]))

            def one() -> str:
                system, code, _ = draw(st.sampled_from(CODINGS))
                return _token(draw, system, code)

            return f"code{modifier}", _values(draw, one)
        case "text":
            return "code:text", _values(draw, TEXT_QUERIES)
        case "status":
            return "status", _values(draw, STATUSES)
        case "value-quantity":

            def quantity() -> str:
                number = draw(st.sampled_from(PREFIXES)) + draw(st.sampled_from(NUMBER_QUERIES))
                system, code, unit = draw(st.sampled_from(UNITS))
                unit_form = draw(st.sampled_from(["", "system|code", "||code", "||unit"]))
                if unit_form == "system|code" and system is not None:
                    return f"{number}|{system}|{code}"
                if unit_form == "||code" and code is not None:
                    return f"{number}||{code}"
                if unit_form == "||unit":
                    return f"{number}||{unit}"
                return number

            return "value-quantity", _values(draw, quantity)
        case "date":
            return "date", _values(draw, lambda: _date_value(draw))
        case "subject":
            param = draw(st.sampled_from(["subject", "subject:Patient", "patient"]))
            ids = [f"p{k}" for k in range(N_PATIENTS + 1)]
            refs = ids + [f"Patient/{i}" for i in ids] if param == "subject" else ids
            if param == "subject":
                refs += ["Group/g1", "http://other.example/fhir/Patient/p1"]
            return param, _values(draw, refs)
        case "chain":
            inner = draw(st.sampled_from(["gender", "name", "organization.name", "birthdate"]))
            if inner == "gender":
                value = draw(st.sampled_from(GENDERS))
            elif inner == "name":
                value = draw(st.sampled_from(NAME_QUERIES))
            elif inner == "birthdate":
                value = _date_value(draw)
            else:
                value = draw(st.sampled_from(ORG_QUERIES))
            return f"subject:Patient.{inner}", value
        case "string":
            modifier = draw(st.sampled_from(["", ":contains", ":exact"]))
            return f"value-string{modifier}", draw(st.sampled_from([*STRINGS, "binh", "huyết"]))
        case "composite":
            system, code, _ = draw(st.sampled_from(CODINGS))
            number = draw(st.sampled_from(PREFIXES)) + draw(st.sampled_from(NUMBER_QUERIES))
            return "code-value-quantity", f"{_token(draw, system, code)}${number}"
        case "missing":
            param = draw(
                st.sampled_from(["subject", "date", "value-quantity", "code", "value-string"])
            )
            return f"{param}:missing", draw(st.sampled_from(["true", "false"]))
        case "_id":
            return "_id", _values(draw, [f"o{k}" for k in range(7)])
        case _:
            if not last_updated:
                return "_lastUpdated", _date_value(draw)
            moment = draw(st.sampled_from(last_updated))
            return "_lastUpdated", draw(st.sampled_from(PREFIXES)) + moment


SORTS = {
    "Patient": ["birthdate", "family", "name", "given", "gender", "identifier", "organization"],
    "Observation": ["date", "value-quantity", "code", "status", "subject", "value-string"],
}


def system_criterion(draw: st.DrawFn, last_updated: list[str]) -> tuple[str, str]:
    """A criterion every type has, for a search of several types."""
    kind = draw(st.sampled_from(["_id", "_tag", "_lastUpdated"]))
    if kind == "_id":
        ids = [f"{p}{k}" for p in "po" for k in range(3)]
        return "_id", _values(draw, ids)
    if kind == "_tag":
        modifier = draw(st.sampled_from(["", ":not"]))
        return f"_tag{modifier}", _token(draw, *draw(st.sampled_from(TAGS)))
    moment = draw(st.sampled_from(last_updated))
    return "_lastUpdated", draw(st.sampled_from(PREFIXES)) + moment


@st.composite
def query(draw: st.DrawFn, last_updated: list[str]) -> tuple[str, list[tuple[str, str]]]:
    """(type, pairs); the type "*" is a search of Patients and Observations together."""
    res_type = draw(st.sampled_from(["Patient", "Observation", "*"]))
    if res_type == "*":
        pairs = [system_criterion(draw, last_updated) for _ in range(draw(st.integers(0, 2)))]
        keys = draw(
            st.lists(st.sampled_from(["_id", "_lastUpdated", "_tag", "identifier"]), max_size=2)
        )
        if keys:
            signed = [("-" if draw(st.booleans()) else "") + key for key in keys]
            pairs.append(("_sort", ",".join(signed)))
        return res_type, pairs
    criterion = patient_criterion if res_type == "Patient" else observation_criterion
    pairs = draw(st.lists(criterion(last_updated), max_size=2))
    keys = draw(st.lists(st.sampled_from([*SORTS[res_type], "_id", "_lastUpdated"]), max_size=2))
    if keys:
        signed = [("-" if draw(st.booleans()) else "") + key for key in keys]
        pairs.append(("_sort", ",".join(signed)))
    return res_type, pairs


# -- the store of each backend


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('properties') / 'vnehr.db'}"
    else:
        url = request.getfixturevalue("pg_database")
    srv = create_server(Settings(database_url=url, dev=True))
    wipe(srv)
    yield srv
    wipe(srv)
    srv.close()


def wipe(srv: Server) -> None:
    store: Any = srv.store
    with store.inner.transaction() as txn:
        for table in ("resources", "resource_versions", *INDEX_TABLES):
            txn.conn.execute(f"DELETE FROM {table}")


def load(srv: Server, items: list[dict[str, Any]]) -> Corpus:
    """Write `items` in order; the matcher's corpus of what was stored."""
    store: Any = srv.store
    corpus = Corpus(store.inner.indexer)
    for stored in store.inner.bulk_write(json.loads(json.dumps(items))):
        corpus.add(fhir_json.loads(stored.content))
    return corpus


def registry(srv: Server) -> SearchParamRegistry:
    return srv.router.ctx.registry


def refs(found: list[dict[str, Any]]) -> list[str]:
    return [f"{r['resourceType']}/{r['id']}" for r in found]


def searched(srv: Server, q: ir.Query, page_size: int) -> list[str]:
    """Every match, following cursors page by page; then checks the backward walk."""
    store = srv.store
    pages: list[list[str]] = []
    cursor = None
    keys_of_last: Any = None
    while True:
        page = store.search(q, count=page_size, cursor=cursor)
        pages.append([f"{v.res_type}/{v.res_id}" for v in page.versions])
        if not page.more:
            keys_of_last = page.keys
            break
        assert page.keys
        # Through the cursor's text, as a `next` link carries it.
        cursor = decode_cursor(Cursor(page.keys[-1], backwards=False).encode(), q.sort)
        assert len(pages) < 100
    # Back from the last page to the first, as `previous` links go.
    back = [pages[-1]]
    keys = keys_of_last
    while keys and len(back) < len(pages):
        cursor = decode_cursor(Cursor(keys[0], backwards=True).encode(), q.sort)
        page = store.search(q, count=page_size, cursor=cursor)
        back.append([f"{v.res_type}/{v.res_id}" for v in page.versions])
        keys = page.keys
    assert list(reversed(back)) == pages
    return [ref for p in pages for ref in p]


def parsed(srv: Server, res_type: str, pairs: list[tuple[str, str]]) -> ir.Query:
    """The query of a type search, or of a system search of Patients and Observations."""
    if res_type == "*":
        return build_query(registry(srv), SYSTEM_TYPES, pairs, Unknown(strict=True))
    return strict_query(registry(srv), res_type, pairs)


def stamps(corpus: Corpus) -> list[str]:
    return [item.resource["meta"]["lastUpdated"] for item in corpus]


@PROPERTIES
@given(items=resources(), data=st.data())
def test_sql_and_matcher_agree_on_random_queries(
    server: Server, items: list[dict[str, Any]], data: st.DataObject
) -> None:
    wipe(server)
    corpus = load(server, items)
    for _ in range(4):
        res_type, pairs = data.draw(query(stamps(corpus)), label="query")
        q = parsed(server, res_type, pairs)
        expected = refs(corpus.search(q))
        event("matches" if expected else "no match")
        page = server.store.search(q, count=1000, total=True)
        assert [f"{v.res_type}/{v.res_id}" for v in page.versions] == expected, pairs
        assert page.total == len(expected)
        size = data.draw(st.integers(1, 3), label="page size")
        assert searched(server, q, size) == expected, pairs


def test_the_generated_queries_find_something(server: Server) -> None:
    """The pools make queries that match: the property above compares non-empty results."""
    items = [
        {"resourceType": "Organization", "id": "org0", "name": "Bệnh viện Bạch Mai"},
        {"resourceType": "Patient", "id": "p0", "gender": "female", "birthDate": "2020-02",
         "name": [{"family": "Nguyễn", "given": ["Văn", "Đức"]}],
         "managingOrganization": {"reference": "Organization/org0"}},
        {"resourceType": "Observation", "id": "o0", "status": "final",
         "code": {"coding": [{"system": LOINC, "code": "4548-4"}]},
         "subject": {"reference": "Patient/p0"}, "effectiveDateTime": "2020-02-15",
         "valueQuantity": {"value": 7.2, "system": UCUM, "code": "%", "unit": "%"}},
    ]  # fmt: skip
    wipe(server)
    corpus = load(server, items)
    for res_type, pairs in [
        ("Patient", [("name", "nguyen van duc"), ("organization.name", "benh vien")]),
        ("Patient", [("_has:Observation:subject:code", f"{LOINC}|4548-4")]),
        ("Observation", [("code-value-quantity", "4548-4$gt7"), ("date", "ge2020-02")]),
        ("Observation", [("subject:Patient.organization.name", "benh"), ("_sort", "-date")]),
    ]:
        q = strict_query(registry(server), res_type, pairs)
        expected = refs(corpus.search(q))
        assert expected == [f"{res_type}/{'p0' if res_type == 'Patient' else 'o0'}"]
        assert searched(server, q, 1) == expected


# -- the specification's examples, searched by their own index rows


TYPES = frozenset(resource_types())
SPEC_TYPES = (
    "Patient",
    "Practitioner",
    "Organization",
    "Observation",
    "Encounter",
    "Condition",
    "Procedure",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
    "DiagnosticReport",
    "CarePlan",
)


@cache
def spec_examples() -> list[dict[str, Any]]:
    with gzip.open(EXAMPLES, "rt", encoding="utf-8") as f:
        rows = [json.loads(line)["resource"] for line in f]
    return [r for r in rows if r["resourceType"] in SPEC_TYPES]


@pytest.fixture(scope="module")
def spec_corpus(server: Server) -> Corpus:
    wipe(server)
    return load(server, spec_examples())


def _instant(micros: int, precision: str) -> str:
    m = from_micros(micros)
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"
    return text[: {"year": 4, "month": 7, "day": 10, "seconds": 20}[precision]]


def _escape(value: str) -> str:
    for ch in "\\,|$":
        value = value.replace(ch, "\\" + ch)
    return value


@st.composite
def row_criterion(draw: st.DrawFn, corpus: Corpus, res_type: str) -> tuple[str, str] | None:
    """A criterion made of an index row of some resource of `res_type`."""
    items = [i for i in corpus if i.res_type == res_type]
    item = draw(st.sampled_from(items))
    rows = item.rows
    kinds = [
        (kind, row)
        for kind in ("tokens", "strings", "dates", "quantities", "references", "uris")
        for row in getattr(rows, kind)
        if ":" not in row[0] and not row[0].startswith("#")  # a modifier's, a contained one's
    ]
    if not kinds:
        return None
    kind, row = draw(st.sampled_from(kinds))
    code = row[0]
    match kind:
        case "tokens":
            _, system, value, text = row
            if value is None:
                return (
                    (f"{code}:text", _escape(text[: draw(st.integers(1, len(text)))]))
                    if text
                    else None
                )
            modifier = draw(st.sampled_from(["", ":not"]))
            if system is None:
                return code + modifier, draw(
                    st.sampled_from([_escape(value), "|" + _escape(value)])
                )
            form = draw(st.sampled_from(["code", "system|code", "system|"]))
            token = {"code": _escape(value), "system|code": f"{_escape(system)}|{_escape(value)}",
                     "system|": f"{_escape(system)}|"}[form]  # fmt: skip
            return code + modifier, token
        case "strings":
            _, folded, exact = row
            modifier = draw(st.sampled_from(["", ":contains", ":exact"]))
            if modifier == ":exact":
                return code + modifier, _escape(exact)
            start = draw(st.integers(0, len(folded) - 1)) if modifier else 0
            return code + modifier, _escape(
                folded[start : draw(st.integers(start + 1, len(folded)))]
            )
        case "dates":
            _, low, high = row
            moment = draw(st.sampled_from([low, high]))
            if not -62_135_596_800_000_000 < moment < 253_402_300_799_999_999:
                return None
            precision = draw(st.sampled_from(["year", "month", "day", "seconds"]))
            return code, draw(st.sampled_from(PREFIXES)) + _instant(moment, precision)
        case "quantities":
            value = row[1]
            number = repr(float(value)).removesuffix(".0")
            return code, draw(st.sampled_from(PREFIXES)) + number
        case "references":
            _, target_type, target_id, url = row
            if url is not None:
                return code, _escape(url)
            if target_type not in TYPES:
                return None  # not a resource type: the parser rejects it
            return code, draw(st.sampled_from([f"{target_type}/{target_id}", target_id]))
        case _:
            _, uri = row
            modifier = draw(st.sampled_from(["", ":below", ":above"]))
            return code + modifier, _escape(uri)


@PROPERTIES
@given(data=st.data())
def test_sql_and_matcher_agree_on_the_specification_examples(
    server: Server, spec_corpus: Corpus, data: st.DataObject
) -> None:
    res_type = data.draw(st.sampled_from(SPEC_TYPES), label="type")
    pairs = [
        c
        for c in data.draw(st.lists(row_criterion(spec_corpus, res_type), min_size=1, max_size=2))
        if c is not None
    ]
    if data.draw(st.booleans(), label="sorted"):
        keys = ["_id", "-_lastUpdated"] + [
            f"{sign}{c.partition(':')[0]}" for c, _ in pairs for sign in ("", "-")
        ]
        pairs.append(
            ("_sort", ",".join(data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=2))))
        )
    q = strict_query(registry(server), res_type, pairs)
    expected = refs(spec_corpus.search(q))
    event("matches" if expected else "no match")
    page = server.store.search(q, count=1000)
    assert [f"{v.res_type}/{v.res_id}" for v in page.versions] == expected, pairs
    assert searched(server, q, data.draw(st.integers(1, 4), label="page size")) == expected
