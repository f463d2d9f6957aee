"""Loading a published code system (and the value sets and maps that come with it) into a
store: `vnehr terminology load ...`.

Everything goes in one write transaction: the concepts into the terminology tables, the
CodeSystem resource (`content: not-present`, `count`: the concepts are in the tables, not in
the resource), and the ValueSets and ConceptMaps alongside. A load that fails (a bad row,
a killed process) leaves the previous version of the code system in place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vnehr.checks import check
from vnehr.errors import InvalidResource
from vnehr.storage.base import Store
from vnehr.storage.schema import TERMINOLOGY_TABLES
from vnehr.terminology import tables
from vnehr.terminology.model import CodeSystemContent, Json

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Loaded:
    code_system: str  # CodeSystem/id
    url: str
    version: str
    concepts: int
    resources: list[str] = field(default_factory=list)  # the other resources written


def resource_id(url: str, version: str | None) -> str:
    """A stable id from a canonical url and version: `loinc-2.78`, `icd-10`."""
    tail = url.rstrip("/").rsplit("/", 1)[-1] or "codesystem"
    if tail.endswith(".org") or tail.endswith(".com"):
        tail = tail.rsplit(".", 1)[0]
    raw = f"{tail}-{version}" if version else tail
    return re.sub(r"[^A-Za-z0-9\-.]", "-", raw)[:64].strip("-.") or "codesystem"


def load_code_system(
    store: Store,
    content: CodeSystemContent,
    *,
    others: Sequence[Json] = (),
    progress: Progress | None = None,
) -> Loaded:
    """Load `content` (and `others`: ValueSets, ConceptMaps) in one transaction."""
    header = dict(content.header)
    header["resourceType"] = "CodeSystem"
    url = header.get("url")
    if not isinstance(url, str) or not url:
        raise InvalidResource("The code system has no url", ("CodeSystem.url",))
    version = header.get("version") if isinstance(header.get("version"), str) else None
    res_id = header.get("id") if isinstance(header.get("id"), str) else None
    res_id = res_id or resource_id(url, version)
    written: list[str] = []
    with store.transaction() as txn:
        count = tables.write_code_system(txn, res_id, content, progress)
        header.update({"id": res_id, "content": "not-present", "count": count})
        header.pop("concept", None)
        header.pop("meta", None)
        for resource in [header, *others]:
            issues = [i for i in check(resource) if i.severity in ("error", "fatal")]
            if issues:
                raise InvalidResource(
                    f"{resource.get('resourceType')} {resource.get('url')}: "
                    f"{issues[0].diagnostics}",
                    issues[0].expression,
                )
            kind = str(resource["resourceType"])
            rid = str(resource.get("id") or resource_id(str(resource.get("url")), None))
            body = {**resource, "id": rid}
            previous = txn.current(kind, rid)
            txn.write(kind, rid, body, "PUT", previous)
            if resource is not header:
                written.append(f"{kind}/{rid}")
    store.refresh_statistics(TERMINOLOGY_TABLES)  # a bulk load changes them a lot
    return Loaded(f"CodeSystem/{res_id}", url, version or "", count, written)
