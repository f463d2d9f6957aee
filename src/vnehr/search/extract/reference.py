"""Reference parameter values -> idx_reference rows (https://hl7.org/fhir/R4/search.html#reference).

`Patient/123` (and `Patient/123/_history/2`) gives type and id; an absolute URL or a canonical
(`|version` dropped) gives the url. Contained (`#x`) references and `urn:` references, which
the transaction layer rewrites before indexing, give nothing; nor do references made of an
identifier or a display only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vnehr.search.index_rows import IndexRows, ReferenceRow


Parsed = tuple[str | None, str | None, str | None]

# The same references recur in every resource of a patient (Patient/x, Encounter/y): their
# parsed forms and types are remembered. Plain dicts, emptied when full.
CACHE_SIZE = 16384
_NONE: Parsed = (None, None, None)  # cached "not indexable" / "no type"
_PARSED: dict[str, Parsed] = {}
_TYPES: dict[str, tuple[str | None]] = {}


def parse(reference: str) -> Parsed | None:
    """(type, id, url) for a Reference.reference or a canonical, or None if not indexable."""
    found = _PARSED.get(reference)
    if found is None:
        if len(_PARSED) >= CACHE_SIZE:
            _PARSED.clear()
        found = _PARSED[reference] = _parse(reference) or _NONE
    return None if found is _NONE else found


def _parse(reference: str) -> Parsed | None:
    if not reference or reference[0] == "#" or reference.startswith("urn:"):
        return None
    if "://" in reference:
        return None, None, reference.partition("|")[0]
    if "?" in reference:  # a conditional reference left unresolved
        return None
    parts = reference.split("/")
    if (len(parts) == 2 or (len(parts) == 4 and parts[2] == "_history")) and parts[1]:
        kind = parts[0]
        if kind[:1].isupper() and kind.isalpha():
            return kind, parts[1], None
    return None


def reference_type(node: Any) -> str | None:
    """The type a Reference points to: from `reference` (relative or absolute), else `type`."""
    if type(node) is not dict:
        return None
    reference = node.get("reference")
    if type(reference) is str:
        found = _TYPES.get(reference)
        if found is None:
            if len(_TYPES) >= CACHE_SIZE:
                _TYPES.clear()
            found = _TYPES[reference] = (_reference_type(reference),)
        return found[0]
    kind = node.get("type")
    return kind if type(kind) is str else None


def _reference_type(reference: str) -> str | None:
    if not reference or reference[0] == "#" or reference.startswith("urn:"):
        return None
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return parts[-2] if len(parts) >= 2 else None


def add_rows(code: str, values: Any, rows: IndexRows) -> None:
    """Rows of `values`: a list of values, or one value as found in the resource."""
    _add_rows(code, values, rows, None)


def add_rows_for(targets: frozenset[str]) -> Callable[[str, Any, IndexRows], None]:
    """add_rows for a parameter with these target types.

    Only a resource found in place of a reference (`Bundle.entry[0].resource` for Bundle's
    `composition` and `message`) is checked against them: a Bundle whose first entry is a
    Patient has no `composition`.
    """

    def add_rows(code: str, values: Any, rows: IndexRows) -> None:
        _add_rows(code, values, rows, targets)

    return add_rows


def _add_rows(code: str, values: Any, rows: IndexRows, targets: frozenset[str] | None) -> None:
    out: list[ReferenceRow] = rows.references
    cache = _PARSED
    for value in values if type(values) is list else (values,):
        if type(value) is dict:
            reference = value.get("reference")
            if type(reference) is str:
                parsed = cache.get(reference) or parse(reference)
                if parsed is None or parsed is _NONE:
                    continue
            elif "resourceType" in value and type(value.get("id")) is str:
                if targets is not None and value["resourceType"] not in targets:
                    continue
                parsed = value["resourceType"], value["id"], None
            else:
                continue
        elif type(value) is str:  # canonical or uri
            parsed = parse(value)
            if parsed is None:
                if value.startswith("urn:") and not value.startswith("urn:uuid:"):
                    parsed = None, None, value.partition("|")[0]
                else:
                    continue
        else:
            continue
        kind, id_, url = parsed
        out.append((code, kind, id_, url))
