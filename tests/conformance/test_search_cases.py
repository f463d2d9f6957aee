"""The search conformance cases of search_cases/*.yaml, run on both backends through the API.

Each file loads resources (inline, or `example: <file>` from the R4 specification's
examples in data/r4-examples, CC0) with PUT, optionally deletes some, then runs its cases:

    - name: what the case shows
      query: Patient?name=nguyen&_sort=birthdate   # as typed: the runner URL-encodes
      expect: [p2, p1]           # the matches, in order, over every page (`next` links)
      unordered: true            # compare `expect` as a set (the order is not specified)
      include: [Patient/p1]      # search.mode=include entries, as a set
      total: 2                   # Bundle.total (`absent`: no total)
      pages: [2, 1]              # the number of matches on each page
      status: 400                # an error instead of a Bundle
      lenient: true              # no `Prefer: handling=strict`
      outcome: true              # an OperationOutcome entry reports ignored parameters
      xfail: why                 # a known gap
      xfail_unindexed: Type.code # a known gap while the resources have no rows of Type.code

Ids without a type are of the searched type; `{lu:Type/id}` in a query is that resource's
meta.lastUpdated. Every 200 case is also answered by vnehr.search.match (the in-memory
matcher over the same IR), which must agree with the expected matches as well.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from tests.conftest import BACKENDS
from vnehr.app import create_app
from vnehr.search.extract import Extractor
from vnehr.search.match import Corpus
from vnehr.search.query import Unknown, build_query, compartments
from vnehr.search.registry import SearchParamRegistry, r4_registry
from vnehr.settings import Settings

HERE = Path(__file__).parent
CASES_DIR = HERE / "search_cases"
EXAMPLES = HERE / "data" / "r4-examples" / "examples.ndjson.gz"
JSON = {"Content-Type": "application/fhir+json"}
STRICT = {"Prefer": "handling=strict"}
_CASE_KEYS = {
    "name",
    "query",
    "expect",
    "unordered",
    "include",
    "total",
    "pages",
    "status",
    "lenient",
    "outcome",
    "xfail",
    "xfail_unindexed",
}


class _Loader(yaml.SafeLoader):
    """YAML without timestamps: `2020-03-15` stays the FHIR date text it is."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@cache
def spec_examples() -> dict[str, dict[str, Any]]:
    with gzip.open(EXAMPLES, "rt", encoding="utf-8") as f:
        return {row["file"]: row["resource"] for row in map(json.loads, f)}


@cache
def registry() -> SearchParamRegistry:
    """The R4 parameters, as each server has them (no custom SearchParameter here)."""
    return r4_registry()


@cache
def extractor() -> Extractor:
    return Extractor(registry())


@dataclass
class CaseFile:
    name: str
    resources: list[dict[str, Any]]
    delete: list[str]
    cases: list[dict[str, Any]] = field(default_factory=list)


def _resource(item: dict[str, Any]) -> dict[str, Any]:
    if "example" in item:
        resource = json.loads(json.dumps(spec_examples()[item["example"]]))
        if "id" in item:
            resource["id"] = item["id"]
        return resource
    return item


@cache
def case_files() -> list[CaseFile]:
    out = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        resources = [_resource(r) for r in data.get("resources", [])]
        f = CaseFile(path.stem, resources, list(data.get("delete", [])), list(data["cases"]))
        names = [c["name"] for c in f.cases]
        assert len(names) == len(set(names)), f"{path.name}: case names repeat"
        for case in f.cases:
            where = f"{path.name}: {case['name']}"
            assert set(case) <= _CASE_KEYS, f"{where}: {set(case) - _CASE_KEYS}"
            assert ("status" in case) != ("expect" in case), f"{where}: expect or status"
        out.append(f)
    return out


def _unindexed(f: CaseFile, param: str) -> bool:
    """Whether no resource of the file has an index row of `param` ("Type.code")."""
    res_type, _, code = param.partition(".")
    lists = ("tokens", "strings", "dates", "numbers", "quantities", "references", "uris")
    for resource in f.resources:
        if resource["resourceType"] == res_type:
            rows = extractor().extract(json.loads(json.dumps(resource)))
            for kind in (*lists, "composites"):
                if any(row[0] == code for row in getattr(rows, kind)):
                    return False
    return True


def _params() -> list[Any]:
    out = []
    for backend in BACKENDS:
        for f in case_files():
            for case in f.cases:
                marks = []
                if "xfail" in case:
                    marks.append(pytest.mark.xfail(reason=case["xfail"], strict=True))
                elif "xfail_unindexed" in case and _unindexed(f, case["xfail_unindexed"]):
                    reason = f"{case['xfail_unindexed']} is not indexed yet"
                    marks.append(pytest.mark.xfail(reason=reason, strict=True))
                out.append(
                    pytest.param(
                        backend, f, case, id=f"{backend}-{f.name}-{case['name']}", marks=marks
                    )
                )
    return out


# -- one loaded database per (backend, case file): the cases of a file only read


@dataclass
class Loaded:
    client: TestClient
    corpus: Corpus
    last_updated: dict[str, str]


class Databases:
    """Loads the resources of a case file on a backend, keeping the current one open."""

    def __init__(self, request: pytest.FixtureRequest, tmp: pytest.TempPathFactory) -> None:
        self.request = request
        self.tmp = tmp
        self.key: tuple[str, str] | None = None
        self.loaded: Loaded | None = None
        self._exit: Any = None

    def get(self, backend: str, f: CaseFile) -> Loaded:
        if self.key == (backend, f.name) and self.loaded is not None:
            return self.loaded
        self.close()
        if backend == "sqlite":
            url = f"sqlite:///{self.tmp.mktemp(f.name) / 'vnehr.db'}"
        else:
            url = self.request.getfixturevalue("pg_database")
            _truncate_pg(url)
        # The master patient index off: its golden Persons would join the Patient
        # compartments and histories these cases spell out (tests/api/test_identity.py).
        client = TestClient(create_app(Settings(database_url=url, dev=True, mpi=False)))
        client.__enter__()
        self._exit = client
        self.key = (backend, f.name)
        self.loaded = _load(client, f)
        return self.loaded

    def close(self) -> None:
        if self._exit is not None:
            self._exit.__exit__(None, None, None)
        self._exit = self.loaded = self.key = None


def _truncate_pg(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT string_agg(tablename, ', ') FROM pg_tables WHERE schemaname = 'public' "
            "AND (tablename LIKE 'idx\\_%' OR tablename IN ('resources', 'resource_versions'))"
        ).fetchone()
        if tables and tables[0]:
            conn.execute(f"TRUNCATE {tables[0]} RESTART IDENTITY")


def _load(client: TestClient, f: CaseFile) -> Loaded:
    corpus = Corpus(extractor().extract)
    stamps: dict[str, str] = {}
    for resource in f.resources:
        path = f"/fhir/{resource['resourceType']}/{resource['id']}"
        r = client.put(path, json=resource, headers=JSON)
        assert r.status_code in (200, 201), f"{f.name}: PUT {path}: {r.text}"
        stored = client.get(path).json()
        corpus.add(stored)
        stamps[f"{stored['resourceType']}/{stored['id']}"] = stored["meta"]["lastUpdated"]
    for ref in f.delete:
        r = client.delete(f"/fhir/{ref}")
        assert r.status_code in (200, 204), f"{f.name}: DELETE {ref}: {r.text}"
        res_type, _, res_id = ref.partition("/")
        corpus.remove(res_type, res_id)
    return Loaded(client, corpus, stamps)


@pytest.fixture(scope="module")
def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Databases]:
    dbs = Databases(request, tmp_path_factory)
    yield dbs
    dbs.close()


# -- running a case


def _split(query: str, stamps: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
    query = re.sub(r"\{lu:([^}]+)\}", lambda m: stamps[m.group(1)], query)
    path, _, rest = query.partition("?")
    pairs = []
    for part in rest.split("&") if rest else []:
        name, _, value = part.partition("=")
        pairs.append((name, value))
    return path, pairs


def _ref(entry: dict[str, Any]) -> str:
    return f"{entry['resource']['resourceType']}/{entry['resource']['id']}"


def _full(ids: list[str], default_type: str | None) -> list[str]:
    out = []
    for i in ids:
        if "/" not in i:
            assert default_type is not None, f"{i}: give the type in a system search"
            i = f"{default_type}/{i}"
        out.append(i)
    return out


def _search_types(
    path: str, pairs: list[tuple[str, str]]
) -> tuple[tuple[str, ...], tuple[str, str] | None, str | None]:
    """(types, compartment, the type of bare ids) of a search path, as the API reads it."""
    segments = [s for s in path.split("/") if s]
    if len(segments) == 3:
        kind, owner, target = segments
        if target == "*":
            types = tuple(sorted({kind, *compartments()[kind]}))
            return types, (kind, owner), None
        return (target,), (kind, owner), target
    if segments:
        return (segments[0],), None, segments[0]
    raw = dict(pairs).get("_type", "")
    types = tuple(t for t in raw.split(",") if t)
    return types, None, types[0] if len(types) == 1 else None


# Result parameters left out when the same query is counted.
_NOT_COUNTED = {"_count", "_sort", "_include", "_revinclude", "_elements", "_summary", "_total"}


def _pages(
    client: TestClient, path: str, pairs: list[tuple[str, str]], headers: dict[str, str]
) -> tuple[int, list[dict[str, Any]]]:
    r = client.get(f"/fhir/{path}", params=pairs, headers=headers)
    if r.status_code != 200:
        return r.status_code, [r.json()]
    pages = [r.json()]
    while (nxt := _link(pages[-1], "next")) is not None:
        assert len(pages) < 50, "too many pages"
        r = client.get(nxt, headers=headers)
        assert r.status_code == 200, r.text
        pages.append(r.json())
    return 200, pages


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    for link in bundle.get("link", []):
        if link["relation"] == relation:
            return str(link["url"])
    return None


def _matches(bundle: dict[str, Any]) -> list[str]:
    return [_ref(e) for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


@pytest.mark.parametrize(("backend", "f", "case"), _params())
def test_search_case(databases: Databases, backend: str, f: CaseFile, case: dict[str, Any]) -> None:
    db = databases.get(backend, f)
    path, pairs = _split(case["query"], db.last_updated)
    headers = {} if case.get("lenient") else STRICT
    status, pages = _pages(db.client, path, pairs, headers)
    if "status" in case:
        assert status == case["status"], pages[0]
        assert pages[0]["resourceType"] == "OperationOutcome"
        return
    assert status == 200, pages[0]
    types, compartment, default_type = _search_types(path, pairs)
    found = [ref for page in pages for ref in _matches(page)]
    expected = _full(case.get("expect", []), default_type)
    if case.get("unordered"):
        assert sorted(found) == sorted(expected)
    else:
        assert found == expected
    if "pages" in case:
        assert [len(_matches(p)) for p in pages] == case["pages"]
    if len(pages) > 1:
        # The `previous` links walk the same pages back.
        back = [pages[-1]]
        while (prev := _link(back[-1], "previous")) is not None:
            back.append(db.client.get(prev, headers=headers).json())
        assert [_matches(p) for p in reversed(back)] == [_matches(p) for p in pages]
    included = sorted(
        _ref(e) for p in pages for e in p.get("entry", []) if e["search"]["mode"] == "include"
    )
    assert included == sorted(_full(case.get("include", []), default_type))
    if "total" in case:
        assert pages[0].get("total", "absent") == case["total"]
    params = dict(pairs)
    if params.get("_summary") != "count" and params.get("_count") != "0":
        # Counting the same query (its own statement) finds as many as the pages list.
        counted = [(k, v) for k, v in pairs if k not in _NOT_COUNTED] + [("_summary", "count")]
        r = db.client.get(f"/fhir/{path}", params=counted, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(found)
    outcomes = [e for e in pages[0].get("entry", []) if e["search"]["mode"] == "outcome"]
    assert bool(outcomes) == bool(case.get("outcome")), outcomes
    # The in-memory matcher, over the same resources and the same IR, agrees.
    criteria = [(k, v) for k, v in pairs if k not in ("_count", "_cursor")]
    query = build_query(
        registry(),
        types,
        criteria,
        Unknown(strict=not case.get("lenient")),
        compartment,
        "http://testserver/fhir",
    )
    by_matcher = [f"{r['resourceType']}/{r['id']}" for r in db.corpus.search(query)]
    if params.get("_summary") == "count" or params.get("_count") == "0":
        assert len(by_matcher) == pages[0]["total"]  # counted, not listed
    elif case.get("unordered"):
        assert sorted(by_matcher) == sorted(expected)
    else:
        assert by_matcher == expected


def test_the_cases_cover_every_file() -> None:
    files = case_files()
    assert {f.name for f in files} >= {
        "token",
        "missing",
        "composite",
        "string",
        "date",
        "number",
        "quantity",
        "reference",
        "uri",
        "common",
        "sort_paging",
        "include",
        "compartment_system",
        "escaping",
        "spec_examples",
    }
    assert all(f.cases for f in files)
