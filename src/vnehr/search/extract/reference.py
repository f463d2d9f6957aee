"""Reference parameter values -> idx_reference rows (https://hl7.org/fhir/R4/search.html#reference).

`Patient/123` (and `Patient/123/_history/2`) gives type and id; an absolute URL or a canonical
(`|version` dropped) gives the url. Contained (`#x`) references and `urn:` references, which
the transaction layer rewrites before indexing, give nothing; nor does a display alone. A
Reference.identifier gives a token row of `<code>:identifier` (system, value), what the
`:identifier` modifier searches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vnehr.search.extract.repeats import unique_tail
from vnehr.search.index_rows import IndexRows

# What add_rows returns when two of the rows it added may be equal: the bit of its list.
REPEATS = 32


Parsed = tuple[str | None, str | None, str | None]

# The same references recur in every resource of a patient (Patient/x, Encounter/y): their
# parsed forms and types are remembered. Plain dicts, emptied when full.
CACHE_SIZE = 16384
UNINDEXED: Parsed = (None, None, None)  # cached "not indexable"
PARSED: dict[str, Parsed] = {}
TYPES: dict[str, tuple[str | None]] = {}  # reference -> (reference_type,)


def parse(reference: str) -> Parsed | None:
    """(type, id, url) for a Reference.reference or a canonical, or None if not indexable."""
    found = PARSED.get(reference)
    if found is None:
        if len(PARSED) >= CACHE_SIZE:
            PARSED.clear()
        found = PARSED[reference] = _parse(reference) or UNINDEXED
    return None if found is UNINDEXED else found


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


def identifier_row(code: str, reference: dict[str, Any], rows: IndexRows) -> None:
    """`<code>:identifier`: a token row (system, value) of Reference.identifier."""
    identifier = reference.get("identifier")
    if type(identifier) is dict and type(identifier.get("value")) is str:
        rows.tokens.append(
            (f"{code}:identifier", identifier.get("system"), identifier["value"], None)
        )


def reference_type(node: Any) -> str | None:
    """The type a Reference points to: from `reference` (relative or absolute), else `type`."""
    if type(node) is not dict:
        return None
    reference = node.get("reference")
    if type(reference) is str:
        found = TYPES.get(reference)
        if found is None:
            if len(TYPES) >= CACHE_SIZE:
                TYPES.clear()
            found = TYPES[reference] = (_reference_type(reference),)
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


def add_rows_for(targets: frozenset[str] | None) -> Callable[[str, Any, IndexRows], int]:
    """add_rows for a parameter with these target types (None: any).

    Only a resource found in place of a reference (`Bundle.entry[0].resource` for Bundle's
    `composition` and `message`) is checked against them: a Bundle whose first entry is a
    Patient has no `composition`.
    """

    def add_rows(code: str, values: Any, rows: IndexRows) -> int:
        """Rows of `values`: a list of values, or one value as found in the resource.

        REPEATS if two of the rows added may be equal (the Extractor then removes the
        repeats), else 0.
        """
        if type(values) is list:
            if len(values) != 1:
                out = rows.references
                start = len(out)
                for value in values:
                    if type(value) is not list:
                        add_rows(code, value, rows)
                return unique_tail(out, start, REPEATS)
            values = values[0]
        if type(values) is dict:
            reference = values.get("reference")
            if "identifier" in values:
                identifier_row(code, values, rows)
            if type(reference) is str:
                parsed = PARSED.get(reference) or parse(reference)
                if parsed is not None and parsed is not UNINDEXED:
                    kind, id_, url = parsed
                    rows.references.append((code, kind, id_, url))
            elif (
                "resourceType" in values
                and type(values.get("id")) is str
                and (targets is None or values["resourceType"] in targets)
            ):
                rows.references.append((code, values["resourceType"], values["id"], None))
        elif type(values) is str:  # canonical or uri
            parsed = parse(values)
            if parsed is not None:
                kind, id_, url = parsed
                rows.references.append((code, kind, id_, url))
            elif values.startswith("urn:") and not values.startswith("urn:uuid:"):
                rows.references.append((code, None, None, values.partition("|")[0]))
        return 0

    return add_rows


add_rows = add_rows_for(None)


def fan_out(
    entries: tuple[tuple[str, str | None], ...],
    flags: int,
    otherwise: Callable[[Any, IndexRows], int],
) -> Callable[[Any, IndexRows], int]:
    """Rows of one Reference for several parameters: (code, None) takes it as it is, (code,
    T) only if it is to a T (where(resolve() is T)). Returns `flags`. Other values (lists,
    references without `reference`) go to `otherwise`, which does the same the long way.
    """

    def add_rows(value: Any, rows: IndexRows) -> int:
        if type(value) is dict:
            reference = value.get("reference")
            if type(reference) is str:
                parsed = PARSED.get(reference) or parse(reference)
                if parsed is None or parsed is UNINDEXED:
                    return flags
                kind, id_, url = parsed
                # A relative reference is to its type; an absolute one, to its last but one
                # segment (reference_type).
                to = kind if kind is not None else reference_type(value)
                out = rows.references
                for code, target in entries:
                    if target is None or target == to:
                        out.append((code, kind, id_, url))
                        if "identifier" in value:
                            identifier_row(code, value, rows)
                return flags
        return otherwise(value, rows)

    return add_rows
