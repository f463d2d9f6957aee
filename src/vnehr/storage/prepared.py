"""A resource made ready for storage away from the write lane: serialised in two parts
(its meta fields and its body, without the server's versionId/lastUpdated) plus its index rows.

The writer only splices in the id, version and timestamp, so the expensive work (parsing,
validation, index extraction, serialisation) can run in other processes (`vnehr load`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from vnehr.fhir import json as fhir_json
from vnehr.search.index_hash import value_hash
from vnehr.search.index_rows import IndexRows
from vnehr.storage.base import Indexer

_HEAD = ("resourceType", "id", "meta")
_SERVER_META = ("versionId", "lastUpdated")


class PreparedResource(NamedTuple):
    """A named tuple, so that sending one between processes costs a tuple's pickling."""

    res_type: str
    res_id: str | None  # the id the resource carries, if any
    meta_rest: bytes  # b"" or b',"profile":[...]': the meta fields the server keeps as sent
    body_rest: bytes  # b"" or b',"name":[...]': every element after resourceType, id, meta
    rows: dict[str, list[tuple[Any, ...]]]  # index table -> (param code, *columns) rows


def _members(value: dict[str, Any]) -> bytes:
    if not value:
        return b""
    return b"," + fhir_json.dumps(value)[1:-1]


def prepare(resource: dict[str, Any], indexer: Indexer) -> PreparedResource:
    """Serialise and index a (validated) resource; its id is not checked here."""
    meta = resource.get("meta")
    extra = (
        {k: v for k, v in meta.items() if k not in _SERVER_META} if isinstance(meta, dict) else {}
    )
    body = {k: v for k, v in resource.items() if k not in _HEAD}
    res_id = resource.get("id")
    return PreparedResource(
        res_type=resource["resourceType"],
        res_id=res_id if isinstance(res_id, str) else None,
        meta_rest=_members(extra),
        body_rest=_members(body),
        rows=table_rows(resource["resourceType"], indexer(resource)),
    )


_FIELDS = {
    "idx_token": "tokens",
    "idx_string": "strings",
    "idx_date": "dates",
    "idx_number": "numbers",
    "idx_quantity": "quantities",
    "idx_reference": "references",
    "idx_uri": "uris",
    "idx_composite": "composites",
}


def table_rows(res_type: str, rows: IndexRows) -> dict[str, list[tuple[Any, ...]]]:
    """Index rows per table, as (param code, *columns), with the lookup hash of the
    exact-match types (token: the code; reference: the target id or url; uri: the uri)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table, field in _FIELDS.items():
        values = getattr(rows, field)
        if not values:
            continue
        if table == "idx_token":
            out[table] = [
                (*r, value_hash(f"{res_type}.{r[0]}", r[2]) if r[2] is not None else None)
                for r in values
            ]
        elif table == "idx_reference":
            out[table] = [(*r, _maybe_hash(f"{res_type}.{r[0]}", r[2] or r[3])) for r in values]
        elif table == "idx_uri":
            out[table] = [(*r, value_hash(f"{res_type}.{r[0]}", r[1])) for r in values]
        elif table == "idx_composite":
            # (code, first value, *rest) -> (code, hv, *rest): the first value is hashed.
            out[table] = [(r[0], value_hash(f"{res_type}.{r[0]}", r[1]), *r[2:]) for r in values]
        else:
            out[table] = list(values)
    return out


def _maybe_hash(param: str, value: str | None) -> int | None:
    return None if value is None else value_hash(param, value)


def assemble(prepared: PreparedResource, res_id: str, version: int, last_updated: str) -> bytes:
    """The stored JSON: resourceType, id and meta (server fields first), then the body."""
    return b"".join(
        (
            b'{"resourceType":"',
            prepared.res_type.encode(),
            b'","id":"',
            res_id.encode(),
            b'","meta":{"versionId":"',
            str(version).encode(),
            b'","lastUpdated":"',
            last_updated.encode(),
            b'"',
            prepared.meta_rest,
            b"}",
            prepared.body_rest,
            b"}",
        )
    )
