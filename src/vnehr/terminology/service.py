"""The terminology service as the rest of vnehr uses it: a `Session` over the stored code
systems, value sets and concept maps (plus, for one request, resources sent along as
`tx-resource`).

Resources sent with a request are indexed inside a write transaction that is rolled back at
the end of the request: the same SQL serves them, and nothing of them stays.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from vnehr.errors import Gone, Issue, NotFound
from vnehr.search.query import strict_query
from vnehr.search.registry import SearchParamRegistry
from vnehr.storage.base import Store, StoredVersion, WriteTransaction
from vnehr.terminology import tables
from vnehr.terminology.bindings import check_bindings, reachable_value_sets
from vnehr.terminology.code_systems import CodeSystems, Rows, latest_first, version_matches
from vnehr.terminology.expansion import (
    Evaluator,
    Options,
    builtin_value_set,
)
from vnehr.terminology.local_codes import CODED, add_national_codings
from vnehr.terminology.model import CodeSystemContent, Json
from vnehr.terminology.systems import CATALOGUE_URL

TRANSIENT = "tx-resource:"
VALUE_SET_TTL = 2.0  # seconds


class _RollBack(Exception):
    """Ends the transaction holding a request's transient resources."""


@dataclass(frozen=True, slots=True)
class Match:
    """One translation of a code through a ConceptMap."""

    equivalence: str
    system: str | None
    code: str | None
    display: str | None
    source: str | None  # the ConceptMap's url
    comment: str | None = None
    map_version: str | None = None  # the ConceptMap's version

    @property
    def origin(self) -> str | None:
        """The ConceptMap's canonical (url|version)."""
        if self.source and self.map_version:
            return f"{self.source}|{self.map_version}"
        return self.source


class Terminology:
    """The terminology service of one store."""

    def __init__(
        self,
        store: Store,
        registry: SearchParamRegistry,
        *,
        national: Sequence[str] = (CATALOGUE_URL,),
        map_local_codes: bool = True,
    ) -> None:
        self.store = store
        self.registry = registry
        self.national = tuple(national)
        self.map_local_codes = map_local_codes
        # Value sets by url for binding checks on write: looked up again after
        # VALUE_SET_TTL seconds (a changed ValueSet is used within that time, in every process).
        self._value_sets: dict[str, tuple[float, Json | None]] = {}

    # A commit hook (search/custom.TrackedStore): a ValueSet written in this process is used
    # by the binding checks at once (other processes: within VALUE_SET_TTL).
    types = frozenset({"ValueSet"})

    def before_commit(self, txn: WriteTransaction, changed: list[StoredVersion]) -> None:
        self._value_sets.clear()

    def cached_value_set(self, session: Session, url: str) -> Json | None:
        now = time.monotonic()
        hit = self._value_sets.get(url)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = session.find_value_set(url, cached=False)
        if len(self._value_sets) > 10_000:
            self._value_sets.clear()
        self._value_sets[url] = (now + VALUE_SET_TTL, found)
        return found

    def check_bindings(self, resource: Json) -> list[Issue]:
        """Issues for codes outside the value sets the resource's elements are bound to
        (terminology/bindings.py): warnings for extensible and preferred bindings, errors
        for required bindings to stored value sets."""
        rt = resource.get("resourceType")
        urls = reachable_value_sets(rt) if isinstance(rt, str) else None
        if "contained" in resource:
            urls = None  # contained resources reach other bindings
        if urls is not None:  # the common case first, without a session
            now = time.monotonic()
            hits = [self._value_sets.get(url) for url in urls]
            if all(hit is not None and hit[0] > now and hit[1] is None for hit in hits):
                return []
        with self.session(cached=True) as session:
            # None of the value sets it could be checked against is held: nothing to do
            # (each looked up at most once per VALUE_SET_TTL).
            if urls is not None and all(self.cached_value_set(session, u) is None for u in urls):
                return []
            return check_bindings(session, resource)

    def add_national_codings(self, resource: Json) -> int:
        """Local codes of a resource being written get their national codings (in place)."""
        if not self.map_local_codes or resource.get("resourceType") not in CODED:
            return 0
        return add_national_codings(self.store.rows, resource, self.national)

    @contextmanager
    def session(self, transient: Sequence[Json] = (), cached: bool = False) -> Iterator[Session]:
        if not transient:
            yield Session(self, self.store.rows, {}, {}, cached)
            return
        value_sets: dict[str, list[Json]] = {}
        maps: dict[str, list[Json]] = {}
        headers: dict[str, Json] = {}
        try:
            with self.store.transaction() as txn:
                for resource in transient:
                    kind = resource.get("resourceType")
                    res_id = f"{TRANSIENT}{uuid.uuid4().hex}"
                    if kind == "CodeSystem" and resource.get("content") != "not-present":
                        content = CodeSystemContent(
                            tables.header_of(resource), tables.concepts_of(resource)
                        )
                        tables.write_code_system(txn, res_id, content)
                        headers[res_id] = content.header
                    elif kind == "ValueSet" and isinstance(resource.get("url"), str):
                        value_sets.setdefault(resource["url"], []).append(resource)
                    elif kind == "ConceptMap":
                        tables.write_concept_map(txn, res_id, resource)
                        if isinstance(resource.get("url"), str):
                            maps.setdefault(resource["url"], []).append(resource)
                yield Session(self, txn.rows, value_sets, maps, headers=headers)
                raise _RollBack
        except _RollBack:
            pass


class Session:
    def __init__(
        self,
        service: Terminology,
        rows: Rows,
        value_sets: dict[str, list[Json]],
        maps: dict[str, list[Json]],
        cached: bool = False,
        headers: dict[str, Json] | None = None,
    ) -> None:
        self._headers = headers or {}
        self.cached = cached
        self.service = service
        self.rows = rows
        self.systems = CodeSystems(rows, getattr(service.store, "unindexed", lambda e: e))
        self._value_sets = value_sets
        self._maps = maps

    def evaluator(self, options: Options | None = None) -> Evaluator:
        evaluator = Evaluator(self.systems, self.find_value_set, options or Options())
        evaluator.header = self.header
        return evaluator

    # -- value sets and maps by canonical url (`url|version`), or `ValueSet/id`
    def find_value_set(self, url: str, cached: bool | None = None) -> Json | None:
        if self.cached if cached is None else cached:
            return self.service.cached_value_set(self, url)
        return self._find("ValueSet", url, self._value_sets) or builtin_value_set(url)

    def header(self, res_id: str) -> Json:
        """The CodeSystem resource (without concepts) a stored code system came from."""
        if res_id in self._headers:
            return self._headers[res_id]
        if res_id.startswith(TRANSIENT):
            return {}
        try:
            found = self.service.store.read("CodeSystem", res_id).resource()
        except (NotFound, Gone):
            found = {}
        self._headers[res_id] = {k: v for k, v in found.items() if k != "concept"}
        return self._headers[res_id]

    def find_concept_map(self, url: str) -> Json | None:
        return self._find("ConceptMap", url, self._maps)

    def _find(self, res_type: str, url: str, transient: dict[str, list[Json]]) -> Json | None:
        if url.startswith(f"{res_type}/"):
            try:
                return self.service.store.read(res_type, url.split("/", 1)[1]).resource()
            except (NotFound, Gone):
                return None
        canonical, _, version = url.partition("|")
        candidates = list(transient.get(canonical, []))
        query = strict_query(self.service.registry, res_type, [("url", canonical)])
        page = self.service.store.search(query, count=50)
        candidates += [v.resource() for v in page.versions]
        if version:
            candidates = [
                c for c in candidates if version_matches(version, str(c.get("version") or ""))
            ]
        if not candidates:
            return None
        if version:
            return candidates[0]
        # The latest version (transient first: they are listed first and sort stably).
        return sorted(candidates, key=lambda c: latest_first(str(c.get("version") or "")))[0]

    # -- concept maps
    def translate(
        self,
        system: str,
        code: str,
        *,
        map_url: str | None = None,
        target_system: str | None = None,
        reverse: bool = False,
    ) -> list[Match]:
        """The targets of `system#code` (with `reverse`: the sources mapped to it)."""
        near, far = ("target", "source") if reverse else ("source", "target")
        where = [f"e.{near}_system = ?", f"e.{near}_code = ?"]
        args: list[Any] = [system, code]
        if map_url:
            canonical, _, version = map_url.partition("|")
            where.append("m.url = ?")
            args.append(canonical)
            if version:
                where.append("m.version = ?")
                args.append(version)
        if target_system:
            where.append(f"e.{far}_system = ?")
            args.append(target_system)
        found = self.rows(
            f"SELECT e.equivalence, e.{far}_system, e.{far}_code, e.{far}_display, m.url, "
            f"e.comment, m.version FROM tx_map_elements e JOIN tx_maps m ON m.mid = e.mid "
            f"WHERE {' AND '.join(where)} ORDER BY m.mid, e.target_code",
            args,
        )
        out = []
        for equivalence, msystem, mcode, display, url, comment, version in found:
            if reverse:
                equivalence = _REVERSED.get(equivalence, equivalence)
            out.append(Match(equivalence, msystem, mcode, display, url, comment, version or None))
        return out


# The equivalence of the reverse mapping: source `wider` than target means target `narrower`.
_REVERSED = {
    "wider": "narrower",
    "narrower": "wider",
    "subsumes": "specializes",
    "specializes": "subsumes",
}
