"""Writing code systems and concept maps into the terminology tables (migration 0007).

A code system's concepts go to `tx_concepts` with their is-a links (`tx_edges`), every
ancestor (`tx_closure`), the folded words of their displays (`tx_words`) and their property
values (`tx_properties`); a ConceptMap's source -> target pairs go to `tx_map_elements`.
Everything is written in the caller's write transaction: a failed load rolls back and leaves
the previous content in place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from vnehr.errors import InvalidResource
from vnehr.fhir.instant import now_micros
from vnehr.fhir.text import fold
from vnehr.storage.base import WriteTransaction
from vnehr.terminology.model import CodeSystemContent, Concept, Json

BATCH = 5000
_WORD = re.compile(r"[^\W_]+")
HIERARCHY_PROPERTIES = ("parent", "subsumedBy")
NOT_SELECTABLE = "notSelectable"
NOT_SELECTABLE_URI = "http://hl7.org/fhir/concept-properties#notSelectable"
Progress = Callable[[int], None]

_CONCEPT_COLUMNS = ("cid", "sid", "ckey", "code", "display", "inactive", "abstract", "detail")


def property_value(prop: Json) -> str | None:
    """A concept property's value as text (codes, strings, numbers, booleans, Coding codes)."""
    for key, value in prop.items():
        if not key.startswith("value"):
            continue
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict):
            code = value.get("code")
            return code if isinstance(code, str) else None
        return str(value)
    return None


def words(*texts: str | None) -> set[str]:
    """The folded words of displays and designations (`Huyết sắc tố` -> huyet, sac, to)."""
    out: set[str] = set()
    for text in texts:
        if text:
            out.update(_WORD.findall(fold(text)))
    return out


def concepts_of(resource: Json) -> list[Concept]:
    """The concepts of a CodeSystem resource: nesting and `parent`/`subsumedBy` properties
    give the is-a links; `status` retired/deprecated or `inactive` true make a concept
    inactive; `notSelectable` true makes it abstract."""
    out: list[Concept] = []
    not_selectable = {NOT_SELECTABLE} | {
        str(p["code"])
        for p in resource.get("property") or []
        if isinstance(p, dict) and p.get("uri") == NOT_SELECTABLE_URI and p.get("code")
    }

    def walk(items: Any, parent: str | None, path: str) -> None:
        if not isinstance(items, list):
            return
        for i, item in enumerate(items):
            where = f"{path}[{i}]"
            if not isinstance(item, dict):
                continue
            code = item.get("code")
            if not isinstance(code, str) or not code:
                raise InvalidResource("A concept has no code", (f"{where}.code",))
            props = [p for p in item.get("property") or [] if isinstance(p, dict)]
            parents = [parent] if parent else []
            parents += [
                v
                for p in props
                if p.get("code") in HIERARCHY_PROPERTIES
                and (v := property_value(p)) is not None
                and v not in parents
            ]
            status = {p.get("code"): property_value(p) for p in props}
            out.append(
                Concept(
                    code=code,
                    display=item.get("display") if isinstance(item.get("display"), str) else None,
                    definition=item.get("definition")
                    if isinstance(item.get("definition"), str)
                    else None,
                    designations=[d for d in item.get("designation") or [] if isinstance(d, dict)],
                    properties=[p for p in props if p.get("code") not in HIERARCHY_PROPERTIES],
                    parents=parents,
                    inactive=status.get("status") in ("retired", "deprecated", "inactive")
                    or status.get("inactive") == "true",
                    abstract=any(status.get(c) == "true" for c in not_selectable)
                    or status.get("abstract") == "true",
                )
            )
            walk(item.get("concept"), code, f"{where}.concept")

    walk(resource.get("concept"), None, "CodeSystem.concept")
    return out


def header_of(resource: Json) -> Json:
    return {k: v for k, v in resource.items() if k != "concept"}


def _next_key(txn: WriteTransaction, column: str, table: str) -> int:
    row = txn.rows(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")
    return int(row[0][0]) + 1


def drop_code_system(txn: WriteTransaction, res_id: str) -> None:
    """Remove a CodeSystem resource's rows (it was deleted or is being replaced)."""
    found = txn.rows("SELECT sid FROM tx_systems WHERE res_id = ?", [res_id])
    for (sid,) in found:
        for table in ("tx_words", "tx_properties", "tx_closure", "tx_edges", "tx_concepts"):
            txn.run(f"DELETE FROM {table} WHERE sid = ?", [sid])
        txn.run("DELETE FROM tx_systems WHERE sid = ?", [sid])


def update_header(txn: WriteTransaction, res_id: str, header: Json) -> bool:
    """A CodeSystem written without concepts (`content: not-present`) whose concepts were
    loaded: keep them, follow its url and version. False if nothing was loaded for it."""
    found = txn.rows("SELECT sid FROM tx_systems WHERE res_id = ?", [res_id])
    if not found:
        return False
    txn.run(
        "UPDATE tx_systems SET url = ?, version = ? WHERE res_id = ?",
        [header.get("url") or "", header.get("version") or "", res_id],
    )
    return True


def write_code_system(
    txn: WriteTransaction,
    res_id: str,
    content: CodeSystemContent,
    progress: Progress | None = None,
) -> int:
    """Replace the concepts stored for CodeSystem `res_id` with `content`: the number of
    concepts. Raises InvalidResource (nothing written) on a duplicate code, a parent that
    is not a code of the system, or an is-a cycle."""
    header = content.header
    url = header.get("url")
    if not isinstance(url, str) or not url:
        raise InvalidResource(
            "A CodeSystem needs a url to be used for terminology", ("CodeSystem.url",)
        )
    txn.lock("vnehr-terminology")  # one writer of the key counters at a time
    drop_code_system(txn, res_id)
    sid = _next_key(txn, "sid", "tx_systems")
    first_cid = cid = _next_key(txn, "cid", "tx_concepts")
    case_sensitive = header.get("caseSensitive") is not False
    cids: dict[str, int] = {}
    parents: dict[int, list[str]] = {}
    batch: list[tuple[Any, ...]] = []
    word_rows: list[tuple[Any, ...]] = []
    prop_rows: list[tuple[Any, ...]] = []
    for n, concept in enumerate(content.concepts, 1):
        ckey = concept.code if case_sensitive else concept.code.lower()
        if ckey in cids:
            raise InvalidResource(
                f"Code {concept.code!r} appears twice in code system {url}", ("CodeSystem.concept",)
            )
        cids[ckey] = cid
        if concept.parents:
            parents[cid] = concept.parents
        detail = {
            k: v
            for k, v in (
                ("definition", concept.definition),
                ("designation", concept.designations),
                ("property", concept.properties),
            )
            if v
        }
        batch.append(
            (
                cid,
                sid,
                ckey,
                concept.code,
                concept.display,
                concept.inactive,
                concept.abstract,
                json.dumps(detail, ensure_ascii=False) if detail else None,
            )
        )
        texts = [concept.display, *(d.get("value") for d in concept.designations)]
        word_rows += [(sid, w, cid) for w in words(concept.code, *texts)]
        for prop in concept.properties:
            value = property_value(prop)
            if isinstance(prop.get("code"), str) and value is not None:
                prop_rows.append((sid, prop["code"], value, cid))
        cid += 1
        if len(batch) >= BATCH:
            _flush(txn, batch, word_rows, prop_rows)
            if progress:
                progress(n)
    _flush(txn, batch, word_rows, prop_rows)
    edges = _edges(cids, parents, case_sensitive, url)
    txn.write_rows("tx_edges", ("sid", "parent", "child"), [(sid, p, c) for p, c in edges])
    closure = [(sid, a, d) for d, a in _closure(edges, url)]
    for start in range(0, len(closure), BATCH * 4):
        txn.write_rows(
            "tx_closure", ("sid", "ancestor", "descendant"), closure[start : start + BATCH * 4]
        )
    txn.write_rows(
        "tx_systems",
        (
            "sid",
            "res_id",
            "url",
            "version",
            "content",
            "case_sensitive",
            "supplements",
            "concepts",
            "first_cid",
            "loaded",
        ),
        [
            (
                sid,
                res_id,
                url,
                header.get("version") or "",
                header.get("content") or "complete",
                case_sensitive,
                header.get("supplements"),
                cid - first_cid,
                first_cid,
                now_micros(),
            )
        ],
    )
    if progress:
        progress(cid - first_cid)
    return cid - first_cid


def _flush(
    txn: WriteTransaction,
    batch: list[tuple[Any, ...]],
    word_rows: list[tuple[Any, ...]],
    prop_rows: list[tuple[Any, ...]],
) -> None:
    txn.write_rows("tx_concepts", _CONCEPT_COLUMNS, batch)
    txn.write_rows("tx_words", ("sid", "word", "cid"), word_rows)
    txn.write_rows("tx_properties", ("sid", "property", "value", "cid"), prop_rows)
    batch.clear()
    word_rows.clear()
    prop_rows.clear()


def _edges(
    cids: dict[str, int], parents: dict[int, list[str]], case_sensitive: bool, url: str
) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for child, codes in parents.items():
        for code in codes:
            parent = cids.get(code if case_sensitive else code.lower())
            if parent is None:
                raise InvalidResource(
                    f"Parent {code!r} of a concept is not a code of code system {url}",
                    ("CodeSystem.concept",),
                )
            out.append((parent, child))
    return out


def _closure(edges: list[tuple[int, int]], url: str) -> Iterator[tuple[int, int]]:
    """(descendant, ancestor) for every pair linked by one or more is-a steps."""
    up: dict[int, list[int]] = {}
    for parent, child in edges:
        up.setdefault(child, []).append(parent)
    done: dict[int, frozenset[int]] = {}

    def ancestors(start: int) -> frozenset[int]:
        # Iterative depth-first walk; a concept met again on the current path is a cycle.
        stack: list[tuple[int, Iterator[int]]] = [(start, iter(up.get(start, ())))]
        on_path = {start}
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                on_path.discard(node)
                found: set[int] = set()
                for p in up.get(node, ()):
                    found.add(p)
                    found |= done[p]
                done[node] = frozenset(found)
                continue
            if nxt in done:
                continue
            if nxt in on_path:
                raise InvalidResource(
                    f"The is-a hierarchy of code system {url} has a cycle", ("CodeSystem.concept",)
                )
            on_path.add(nxt)
            stack.append((nxt, iter(up.get(nxt, ()))))
        return done[start]

    for child in up:
        for ancestor in ancestors(child) if child not in done else done[child]:
            yield child, ancestor


# -- concept maps
_ELEMENT_COLUMNS = (
    "mid",
    "source_system",
    "source_version",
    "source_code",
    "source_display",
    "target_system",
    "target_version",
    "target_code",
    "target_display",
    "equivalence",
    "comment",
)


def drop_concept_map(txn: WriteTransaction, res_id: str) -> None:
    for (mid,) in txn.rows("SELECT mid FROM tx_maps WHERE res_id = ?", [res_id]):
        txn.run("DELETE FROM tx_map_elements WHERE mid = ?", [mid])
        txn.run("DELETE FROM tx_maps WHERE mid = ?", [mid])


# An R5 ConceptMap's `relationship` as an R4 `equivalence`.
_EQUIVALENCE_OF = {
    "related-to": "relatedto",
    "equivalent": "equivalent",
    "source-is-narrower-than-target": "narrower",
    "source-is-broader-than-target": "wider",
    "not-related-to": "disjoint",
}


def map_elements(resource: Json) -> Iterable[tuple[Any, ...]]:
    """A ConceptMap's (source system, version, code, display, target system, version, code,
    display, equivalence, comment) pairs; InvalidResource on a broken element."""
    for g, group in enumerate(resource.get("group") or []):
        if not isinstance(group, dict):
            continue
        source = group.get("source")
        target = group.get("target")
        where = f"ConceptMap.group[{g}]"
        if not isinstance(source, str) or not source:
            raise InvalidResource(
                "A ConceptMap group needs its source system", (f"{where}.source",)
            )
        for e, element in enumerate(group.get("element") or []):
            if not isinstance(element, dict):
                continue
            code = element.get("code")
            at = f"{where}.element[{e}]"
            if not isinstance(code, str) or not code:
                raise InvalidResource("A ConceptMap element needs a source code", (f"{at}.code",))
            for t, item in enumerate(element.get("target") or []):
                if not isinstance(item, dict):
                    continue
                equivalence = (
                    item.get("equivalence")
                    or _EQUIVALENCE_OF.get(str(item.get("relationship")))
                    or "equivalent"
                )
                tcode = item.get("code")
                if equivalence != "unmatched" and (not isinstance(tcode, str) or not tcode):
                    raise InvalidResource(
                        f"The target of {code!r} has no code (only an 'unmatched' target may"
                        " leave it out)",
                        (f"{at}.target[{t}].code",),
                    )
                if equivalence != "unmatched" and not target:
                    raise InvalidResource(
                        "A ConceptMap group with targets needs its target system",
                        (f"{where}.target",),
                    )
                yield (
                    source,
                    group.get("sourceVersion"),
                    code,
                    element.get("display"),
                    target,
                    group.get("targetVersion"),
                    tcode,
                    item.get("display"),
                    equivalence,
                    item.get("comment"),
                )


def write_concept_map(txn: WriteTransaction, res_id: str, resource: Json) -> int:
    """Replace the stored pairs of ConceptMap `res_id`: the number of pairs."""
    rows = list(map_elements(resource))
    txn.lock("vnehr-terminology")
    drop_concept_map(txn, res_id)
    mid = _next_key(txn, "mid", "tx_maps")
    source = resource.get("sourceUri") or resource.get("sourceCanonical")
    target = resource.get("targetUri") or resource.get("targetCanonical")
    txn.write_rows(
        "tx_maps",
        ("mid", "res_id", "url", "version", "source", "target"),
        [(mid, res_id, resource.get("url"), resource.get("version") or "", source, target)],
    )
    txn.write_rows("tx_map_elements", _ELEMENT_COLUMNS, [(mid, *row) for row in rows])
    return len(rows)
