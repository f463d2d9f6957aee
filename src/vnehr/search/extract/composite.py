"""Composite parameter values -> idx_composite rows (https://hl7.org/fhir/R4/search.html#composite).

A composite parameter pairs values that sit in one element: `code-value-quantity` is an
Observation's code with its own value, `component-code-value-quantity` a component's code with
that component's value, never with another component's. The composite's expression gives the
elements (the Observation itself, each `component`, each `useContext`); each component's
expression, read from an element, gives values that the converter of the component's
definition (token.add_rows, quantity.add_rows...) turns into the rows the plain index has; an
element gives one row per combination of its components' rows. A component expression rooted
at `%resource` (MolecularSequence's chromosome, for each variant) is read from the resource.

The columns (storage.schema.COMPOSITE_COLUMNS), by the component's place and type:

- first: a token gives its code (hashed into `hv`), c1_system and c1_code (a row of text alone
  cannot be searched for: none); a reference its target id or url (hashed), c1_system = the
  target type, c1_code = the id or url; a uri the uri (hashed) and c1_code.
- second: a number or a quantity gives c2_low/c2_high, its value's precision range centred
  exactly on the value (`centred`: compile/composite.py takes the midpoint as the value, as
  compile/number.py takes idx_quantity.value), and a quantity's unit system, code and unit as
  written in c2_system, c2_code, c2_text; a date its range in µs; a token c2_system/c2_code; a
  string c2_text (folded); a reference c2_system = the target type, c2_code = the id or url; a
  uri c2_code.
- third (MolecularSequence's coordinates): a number's (or quantity's) c3_low/c3_high, centred
  as the second's; a date's range.

A parameter whose component expressions do not compile to Python (fhirpathpy evaluates
resources, not their elements), whose components are unknown or of a type its place cannot
hold, is not indexed (PathError).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from vnehr.search.extract import date, number, quantity, reference, string, token, uri
from vnehr.search.extract.paths import Path, PathError, Walker
from vnehr.search.index_rows import CompositeRow, IndexRows
from vnehr.search.registry import ParamType, SearchParam, SearchParamRegistry, split_union

__all__ = ["Composite", "CompositeRows", "centred", "compile_composite", "element_type"]

Converter = Callable[[str, Any, IndexRows], int]
# A converter's row (code first) -> the columns of the component's place, None if of no use.
Mapper = Callable[[tuple[Any, ...]], tuple[Any, ...] | None]
# (expression, resource type or element type path) -> the compiled Path
CompilePath = Callable[[str, str], Path]

# R4 gives the components of DocumentReference-relationship each other's expressions: its
# relatesto (a reference) reads `code`, its relation (a token) `target`.
_ERRATA = {
    "http://hl7.org/fhir/SearchParameter/DocumentReference-relationship": (
        ("code", "target"),
        ("target", "code"),
    ),
}
_NO_THIRD: list[tuple[Any, ...]] = [(None, None)]  # the c3 columns of two components


def centred(value: float, low: float, high: float) -> tuple[float, float]:
    """The precision range [low, high] of `value`, such that (low + high) / 2 in doubles (as
    both databases compute it) is exactly `value`: the ends are moved by an ulp where the
    rounding of the sum needs it. A side opened by a comparator (`<5`) or widened by a Range
    mirrors the other, so that the midpoint is the value idx_quantity keeps."""
    half = min(value - low, high - value)
    low, high = value - half, value + half
    for _ in range(4):
        middle = (low + high) / 2
        if middle == value:
            return low, high
        high = math.nextafter(high, -math.inf if middle > value else math.inf)
    return value, value


# -- a converter's rows as columns (index_rows documents the rows)


def _token_first(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    value = row[2]
    return None if value is None else (value, row[1], value)


def _reference_first(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    target = row[2] if row[2] is not None else row[3]
    return None if target is None else (target, row[1], target)


def _uri_first(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    return row[1], None, row[1]


def _number_second(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    return (*centred(row[1], row[2], row[3]), None, None, None)


def _quantity_second(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    return (*centred(row[1], row[2], row[3]), row[4], row[5], row[6])


def _date_second(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    return row[1], row[2], None, None, None


def _token_second(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if row[1] is None and row[2] is None:
        return None  # a text alone
    return None, None, row[1], row[2], None


def _string_second(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    return None, None, None, None, row[1]


def _reference_second(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    return None, None, row[1], row[2] if row[2] is not None else row[3], None


def _uri_second(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    return None, None, None, row[1], None


def _number_third(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    return centred(row[1], row[2], row[3])


def _date_third(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
    return row[1], row[2]


# By component type: its converter, the IndexRows list that fills, and its rows as the first,
# second and third component (None: the type cannot be there).
_KINDS: dict[ParamType, tuple[Converter, str, tuple[Mapper | None, ...]]] = {
    ParamType.TOKEN: (token.add_rows, "tokens", (_token_first, _token_second, None)),
    ParamType.REFERENCE: (
        reference.add_rows,
        "references",
        (_reference_first, _reference_second, None),
    ),
    ParamType.URI: (uri.add_rows, "uris", (_uri_first, _uri_second, None)),
    ParamType.NUMBER: (number.add_rows, "numbers", (None, _number_second, _number_third)),
    ParamType.QUANTITY: (quantity.add_rows, "quantities", (None, _quantity_second, _number_third)),
    ParamType.DATE: (date.add_rows, "dates", (None, _date_second, _date_third)),
    ParamType.STRING: (string.add_rows, "strings", (None, _string_second, None)),
}


class _Part:
    """One component: where its values are, and how they become columns."""

    __slots__ = (
        "columns",
        "convert",
        "from_element",
        "from_resource",
        "key",
        "keys",
        "native",
        "rows",
    )

    def __init__(
        self,
        relative: list[Path],
        absolute: list[Path],
        convert: Converter,
        rows: str,
        columns: Mapper,
    ) -> None:
        self.from_element = _reader(relative) if relative else None
        self.from_resource = _reader(absolute) if absolute else None
        self.convert = convert
        self.rows = rows
        self.columns = columns
        self.native = all(p.native for p in absolute)  # relative ones must be
        # The keys of the element (or of the resource) one of which its values need.
        self.keys = _keys(relative + absolute)
        # The one key of the element whose value its values are (`code`): looked up directly.
        self.key = _only_key(relative) if not absolute else None

    def values(self, element: Any, focus: list[Any]) -> list[Any]:
        key = self.key
        if key is not None:
            value = element.get(key) if type(element) is dict else None
            if value is None:
                return []
            return value if type(value) is list else [value]
        found = self.from_element([element]) if self.from_element is not None else []
        if self.from_resource is not None:
            found = found + self.from_resource(focus)
        return found

    def made(self, values: list[Any], rows: IndexRows) -> list[tuple[Any, ...]]:
        """The columns of the rows the converter makes of `values`: added to `rows` (the
        resource's), read back and taken away again."""
        out: list[Any] = getattr(rows, self.rows)
        start = len(out)
        self.convert("", values, rows)
        made = [c for c in map(self.columns, out[start:]) if c is not None]
        del out[start:]
        return made


class _Member:
    """A union member of a composite's expression: its elements, read from [resource], their
    components, and the codes of the parameters it makes rows for (with the same member and
    components, `Observation` makes the same rows for code-value-quantity and for
    combo-code-value-quantity: once, copied under both codes)."""

    __slots__ = ("codes", "elements", "keys", "parts", "sig")

    def __init__(
        self,
        elements: Walker,
        parts: tuple[_Part, ...],
        keys: frozenset[str] | None,
        sig: Hashable,
        codes: tuple[str, ...],
    ) -> None:
        self.elements = elements
        self.parts = parts
        self.keys = keys  # the keys of the resource one of which it needs; None: unknown
        self.sig = sig  # what makes its rows: equal for members that make the same rows
        self.codes = codes

    def also_for(self, code: str) -> _Member:
        return _Member(self.elements, self.parts, self.keys, self.sig, (*self.codes, code))

    def add_rows(self, focus: list[Any], rows: IndexRows, made: list[CompositeRow]) -> None:
        parts, codes = self.parts, self.codes
        for element in self.elements(focus):
            found = []
            for part in parts:
                values = part.values(element, focus)
                if not values:
                    break
                found.append(values)
            else:
                firsts = parts[0].made(found[0], rows)
                seconds = parts[1].made(found[1], rows)
                thirds = parts[2].made(found[2], rows) if len(parts) == 3 else _NO_THIRD
                for first in firsts:
                    for second in seconds:
                        for third in thirds:
                            tail = first + second + third
                            for code in codes:
                                made.append((code, *tail))


class Composite:
    """One composite parameter compiled for one resource type."""

    __slots__ = ("code", "members", "native")

    def __init__(self, code: str, members: tuple[_Member, ...], native: bool) -> None:
        self.code = code
        self.members = members
        self.native = native  # no fhirpathpy


class CompositeRows:
    """The rows of the composite parameters of one resource type. A member runs when the
    resource has one of the keys it needs (its element's, or for the resource itself its
    value's: an Observation with a valueQuantity runs none of code-value-concept's)."""

    def __init__(self, composites: Iterable[Composite]) -> None:
        members: dict[Hashable, _Member] = {}
        for found in composites:
            for member in found.members:
                known = members.get(member.sig)
                members[member.sig] = member if known is None else known.also_for(found.code)
        self.members = tuple(members.values())

    def add_rows(self, resource: dict[str, Any], rows: IndexRows) -> None:
        focus = [resource]
        made: list[CompositeRow] = []
        for member in self.members:
            keys = member.keys
            if keys is None or not keys.isdisjoint(resource):
                member.add_rows(focus, rows, made)
        if len(made) > 1:
            made = list(dict.fromkeys(made))  # a value in two elements (combo-...)
        rows.composites.extend(made)


def compile_composite(
    param: SearchParam,
    resource_type: str,
    registry: SearchParamRegistry,
    compile_path: CompilePath,
) -> Composite:
    """The extraction of composite `param` for `resource_type`; PathError if it has none."""
    if param.expression is None:
        raise PathError("a composite without an expression")
    if not 2 <= len(param.components) <= 3:
        raise PathError(f"{len(param.components)} components: two or three are indexed")
    definitions = []
    for component in param.components:
        definition = registry.by_url(component.definition)
        if definition is None:
            raise PathError(f"unknown component {component.definition}")
        definitions.append(definition)
    expressions = tuple(c.expression for c in param.components)
    swapped = _ERRATA.get(param.url)
    if swapped is not None and expressions == swapped[0]:
        expressions = swapped[1]
    components = tuple(
        (d.type, d.targets, e) for d, e in zip(definitions, expressions, strict=True)
    )
    native = True
    members = []
    for member in split_union(param.expression):
        path = compile_path(member, resource_type)
        context = element_type(member, resource_type)
        parts = tuple(
            _part(place, definition, expression, context, compile_path)
            for place, (definition, expression) in enumerate(
                zip(definitions, expressions, strict=True)
            )
        )
        native = native and path.native and all(part.native for part in parts)
        # The resource itself (`Observation`): the keys of its last component (the value).
        keys = parts[-1].keys if member.strip() == resource_type else _keys([path])
        needs = None if keys is None else frozenset(keys)
        sig = (member.strip(), components)
        members.append(_Member(_reader([path]), parts, needs, sig, (param.code,)))
    return Composite(param.code, tuple(members), native)


def _part(
    place: int,
    definition: SearchParam,
    expression: str,
    context: str,
    compile_path: CompilePath,
) -> _Part:
    """Component `place` (0-based), read at element type `context`."""
    kind = _KINDS.get(definition.type)
    columns = kind[2][place] if kind is not None else None
    if kind is None or columns is None:
        raise PathError(f"a {definition.type} cannot be component {place + 1} of a composite")
    convert, rows, _ = kind
    if definition.type is ParamType.REFERENCE and definition.targets:
        convert = reference.add_rows_for(frozenset(definition.targets))
    resource_type = context.partition(".")[0]
    relative: list[Path] = []
    absolute: list[Path] = []
    for member in split_union(expression):
        if member.lstrip("( ").startswith("%"):  # %resource, %rootResource
            absolute.append(compile_path(member, resource_type))
            continue
        path = compile_path(member, context)
        if not path.native:
            raise PathError(f"component expression {member!r} does not compile to Python")
        relative.append(path)
    return _Part(relative, absolute, convert, rows, columns)


# A union member's leading path, and whether a function call follows it.
_LEADING_PATH = re.compile(r"[(\s]*([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)\s*(\()?")


def element_type(member: str, resource_type: str) -> str:
    """The type path of the elements a composite's union member reaches, to compile its
    components at: `Observation.component` for `Observation.component`, `ValueSet.useContext`
    for `useContext`; a function (`.where(...)`) keeps its focus' type."""
    match = _LEADING_PATH.match(member)
    if match is None:
        return resource_type  # `%resource`, `$this`
    names = [name.strip() for name in match.group(1).split(".")]
    if match.group(2):
        names.pop()  # a function, not an element
    if names and names[0] in (resource_type, "Resource", "DomainResource"):
        names[0] = resource_type
    else:
        names.insert(0, resource_type)
    return ".".join(names)


def _reader(paths: Sequence[Path]) -> Walker:
    """What `paths` reach from a focus of nodes: their branches' keys of each node, then their
    walks, and their walkers of the whole focus."""
    branches = tuple((b.keys, b.walk) for p in paths for b in p.branches)
    whole = tuple(w for p in paths for w in p.whole)

    def read(focus: list[Any]) -> list[Any]:
        out: list[Any] = []
        for keys, walk in branches:
            found = _children(focus, keys)
            if found:
                out.extend(walk(found) if walk is not None else found)
        for walk_whole in whole:
            out.extend(walk_whole(focus))
        return out

    return read


def _keys(paths: Sequence[Path]) -> tuple[str, ...] | None:
    """The keys of the focus node that what `paths` reach is under; None if they read more."""
    if any(p.whole for p in paths):
        return None
    return tuple(key for p in paths for b in p.branches for key in b.keys)


def _only_key(paths: Sequence[Path]) -> str | None:
    """The key when `paths` are a key of the focus node and nothing more."""
    if len(paths) != 1 or paths[0].whole or len(paths[0].branches) != 1:
        return None
    branch = paths[0].branches[0]
    return branch.keys[0] if branch.walk is None and len(branch.keys) == 1 else None


def _children(focus: list[Any], keys: tuple[str, ...]) -> list[Any]:
    out: list[Any] = []
    for node in focus:
        if type(node) is dict:
            for key in keys:
                value = node.get(key)
                if value is not None:
                    if type(value) is list:
                        out.extend(value)
                    else:
                        out.append(value)
    return out
