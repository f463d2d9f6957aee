"""Query parameters -> the search IR (https://hl7.org/fhir/R4/search.html).

A name is `code[:modifier]`, a chain `code[:Type].name...`, or a reverse chain
`_has:Type:ref:name`. Values are split on unescaped `,` (OR); a repeated name is AND.
`\\,` `\\$` `\\|` `\\\\` escape. Parameters that are not known are collected as `unknown`
(the caller ignores and reports them, or rejects them under `Prefer: handling=strict`);
a malformed value (a bad date, number or prefix) is always an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from vnehr.errors import InvalidRequest
from vnehr.fhir.definitions import resource_types
from vnehr.fhir.instant import parse_range
from vnehr.fhir.text import fold, nfc
from vnehr.search import ir
from vnehr.search.registry import SearchParam, SearchParamRegistry

# Result parameters (https://hl7.org/fhir/R4/search.html#return) and transport parameters:
# read by the search interaction, never criteria.
RESULT_PARAMS = frozenset(
    {
        "_count",
        "_sort",
        "_total",
        "_summary",
        "_elements",
        "_include",
        "_revinclude",
        "_contained",
        "_containedType",
        "_format",
        "_pretty",
        "_cursor",
        "_type",
    }
)
_ROW_TYPES = frozenset({"token", "string", "date", "number", "quantity", "reference", "uri"})
MAX_CHAIN = 4


class UnknownParameter(Exception):
    """A parameter name (or modifier) this server does not know for the resource type."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(reason)
        self.name = name
        self.reason = reason


@dataclass
class Parsed:
    where: list[ir.Node] = field(default_factory=list)
    unknown: list[UnknownParameter] = field(default_factory=list)


def split_escaped(value: str, sep: str) -> list[str]:
    """Split on `sep` not escaped with a backslash; escapes are kept for the next split."""
    parts, start, i = [], 0, 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            i += 2
            continue
        if ch == sep:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return parts


def unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


class SearchParser:
    """Parses the criteria of one query for one resource type (or for several, system-wide)."""

    def __init__(self, registry: SearchParamRegistry, base_url: str | None = None) -> None:
        self.registry = registry
        self.types = resource_types()
        # The server's own base: an absolute reference under it is also a local one.
        self.base = base_url.rstrip("/") + "/" if base_url else None

    def parse(self, res_type: str, pairs: Sequence[tuple[str, str]]) -> Parsed:
        """The criteria among `pairs` (result parameters skipped), ANDed."""
        out = Parsed()
        for name, value in pairs:
            if name in RESULT_PARAMS:
                continue
            try:
                out.where.append(self.criterion(res_type, name, value))
            except UnknownParameter as exc:
                out.unknown.append(exc)
        return out

    def criterion(self, res_type: str, name: str, value: str, depth: int = 0) -> ir.Node:
        """One `name=value` on `res_type`."""
        if depth > MAX_CHAIN:
            raise InvalidRequest(f"Search chain '{name}' is longer than {MAX_CHAIN} links", (name,))
        if name.startswith("_has:"):
            return self._has(res_type, name, value, depth)
        head, dot, rest = name.partition(".")
        code, _, modifier = head.partition(":")
        if dot:
            return self._chain(res_type, name, code, modifier, rest, value, depth)
        if code == "_id":
            if modifier:
                raise UnknownParameter(name, f"Modifier ':{modifier}' is not supported on _id")
            ids = tuple(unescape(v) for v in split_escaped(value, ","))
            return ir.IdLeaf(res_type, ids)
        if code == "_lastUpdated":
            if modifier:
                raise UnknownParameter(name, f"Modifier ':{modifier}' is not supported on {code}")
            leaves: list[ir.Node] = []
            for text in split_escaped(value, ","):
                prefix, low, high = _date_value(name, unescape(text))
                leaves.append(ir.LastUpdatedLeaf(res_type, prefix, low, high))
            return _any(leaves)
        if code == "_list":
            return _any([ir.InList(res_type, unescape(v)) for v in split_escaped(value, ",")])
        param = self.registry.get(res_type, code)
        if param is None:
            raise UnknownParameter(name, f"Unknown search parameter '{code}' for {res_type}")
        p = ir.Param(res_type, code, param.type.value)
        if param.type.value not in _ROW_TYPES and param.type.value != "composite":
            # Not indexed (special): neither its values nor their absence can be searched.
            raise UnknownParameter(
                name, f"Search parameter '{code}' ({param.type}) is not supported"
            )
        if modifier == "missing":
            if value not in ("true", "false"):
                raise InvalidRequest(f"':missing' takes true or false, not {value!r}", (name,))
            return ir.Missing(p, value == "true")
        if param.type.value == "composite":
            return self._composite(name, p, param, modifier, value)
        values = split_escaped(value, ",")
        if any(v == "" for v in values):
            raise InvalidRequest(f"Search parameter '{name}' has an empty value", (name,))
        if param.type.value == "token" and modifier == "not":
            return ir.Not(_any([self._leaf(name, p, param, "", v) for v in values]))
        if param.type.value == "token" and modifier in ("in", "not-in"):
            found = _any([ir.InValueSet(p, unescape(v)) for v in values])
            return ir.Not(found) if modifier == "not-in" else found
        return _any([self._leaf(name, p, param, modifier, v) for v in values])

    # -- leaves
    def _leaf(self, name: str, p: ir.Param, param: SearchParam, modifier: str, raw: str) -> ir.Node:
        kind = p.type
        if kind == "token":
            return self._token(name, p, modifier, raw)
        if kind == "string":
            if modifier not in ("", "exact", "contains"):
                raise UnknownParameter(name, f"Modifier ':{modifier}' is not supported on strings")
            text = unescape(raw)
            if modifier == "exact":
                return ir.StringLeaf(p, nfc(text), "exact")
            return ir.StringLeaf(p, fold(text), "contains" if modifier else "start")
        if kind == "date":
            self._no_modifier(name, modifier, kind)
            prefix, low, high = _date_value(name, unescape(raw))
            return ir.DateLeaf(p, prefix, low, high)
        if kind == "number":
            self._no_modifier(name, modifier, kind)
            return _number_leaf(name, p, unescape(raw))
        if kind == "quantity":
            self._no_modifier(name, modifier, kind)
            return _quantity_leaf(name, p, raw)
        if kind == "reference":
            return self._reference(name, p, param, modifier, raw)
        # uri
        if modifier not in ("", "above", "below"):
            raise UnknownParameter(name, f"Modifier ':{modifier}' is not supported on uris")
        return ir.UriLeaf(p, unescape(raw), modifier or "eq")  # type: ignore[arg-type]

    def _no_modifier(self, name: str, modifier: str, kind: str) -> None:
        if modifier:
            raise UnknownParameter(name, f"Modifier ':{modifier}' is not supported on {kind}")

    def _token(self, name: str, p: ir.Param, modifier: str, raw: str) -> ir.Node:
        if modifier == "text":
            return ir.TokenTextLeaf(p, fold(unescape(raw)))
        if modifier == "of-type":
            parts = split_escaped(raw, "|")
            if len(parts) != 3 or not all(parts):
                raise InvalidRequest(f"':of-type' takes system|code|value, not {raw!r}", (name,))
            system, code, value = (unescape(x) for x in parts)
            of_type = ir.Param(p.res_type, f"{p.code}:of-type", "token")
            return ir.TokenLeaf(of_type, system, f"{code}|{value}")
        if modifier in ("above", "below"):
            parts = split_escaped(raw, "|")
            if len(parts) != 2 or not all(parts):
                raise InvalidRequest(
                    f"':{modifier}' on a token takes system|code, not {raw!r}", (name,)
                )
            system, code = (unescape(x) for x in parts)
            return ir.Subsumed(p, system, code, modifier)  # type: ignore[arg-type]
        if modifier:
            raise UnknownParameter(name, f"Modifier ':{modifier}' is not supported on tokens")
        parts = split_escaped(raw, "|")
        if len(parts) == 1:
            return ir.TokenLeaf(p, None, unescape(parts[0]))
        if len(parts) != 2:
            raise InvalidRequest(f"Invalid token {raw!r} for '{name}'", (name,))
        system, code = unescape(parts[0]), unescape(parts[1])
        if not system and not code:
            raise InvalidRequest(f"Invalid token {raw!r} for '{name}'", (name,))
        return ir.TokenLeaf(p, system, code or None)

    def _reference(
        self, name: str, p: ir.Param, param: SearchParam, modifier: str, raw: str
    ) -> ir.Node:
        text = unescape(raw)
        if modifier == "identifier":
            parts = split_escaped(raw, "|")
            ident = ir.Param(p.res_type, f"{p.code}:identifier", "token")
            if len(parts) == 1:
                return ir.TokenLeaf(ident, None, unescape(parts[0]))
            if len(parts) != 2:
                raise InvalidRequest(f"Invalid identifier {raw!r} for '{name}'", (name,))
            return ir.TokenLeaf(ident, unescape(parts[0]), unescape(parts[1]) or None)
        if modifier and modifier not in self.types:
            raise UnknownParameter(name, f"Modifier ':{modifier}' is not supported on references")
        if modifier and param.targets and modifier not in param.targets:
            raise InvalidRequest(f"'{p.code}' of {p.res_type} cannot refer to {modifier}", (name,))
        if "://" in text or text.startswith(("urn:", "#")):
            marker = text.find("/_history/")
            local = _local_part(text) if self.base and text.startswith(self.base) else None
            if local is not None:
                local_type, local_id = local
                if modifier and modifier != local_type:
                    return ir.Nothing(p.res_type)
                return ir.Or(
                    (
                        ir.ReferenceLeaf(p, None, None, text if marker < 0 else text[:marker]),
                        ir.ReferenceLeaf(p, local_type, local_id),
                    )
                )
            return ir.ReferenceLeaf(p, None, None, text.split("|")[0])
        segments = text.split("/")
        if len(segments) >= 4 and segments[-2] == "_history":
            segments = segments[:-2]
        if len(segments) == 1:
            only: str | None = param.targets[0] if len(param.targets) == 1 else None
            target_type: str | None = modifier or only
            return ir.ReferenceLeaf(p, target_type, segments[0])
        if len(segments) != 2 or not segments[1]:
            raise InvalidRequest(f"Invalid reference {raw!r} for '{name}'", (name,))
        target_type, target_id = segments
        if target_type not in self.types:
            raise InvalidRequest(f"Invalid reference {raw!r}: unknown type", (name,))
        if modifier and modifier != target_type:
            return ir.Nothing(p.res_type)
        return ir.ReferenceLeaf(p, target_type, target_id)

    def _composite(
        self, name: str, p: ir.Param, param: SearchParam, modifier: str, value: str
    ) -> ir.Node:
        if modifier:
            raise UnknownParameter(name, f"Modifier ':{modifier}' is not supported on composites")
        options = []
        for raw in split_escaped(value, ","):
            pieces = split_escaped(raw, "$")
            if len(pieces) != len(param.components):
                raise InvalidRequest(
                    f"'{name}' takes {len(param.components)} values joined with $, not {raw!r}",
                    (name,),
                )
            parts: list[ir.Leaf] = []
            for i, (piece, component) in enumerate(zip(pieces, param.components, strict=True)):
                definition = self.registry.by_url(component.definition)
                if definition is None:
                    raise UnknownParameter(name, f"'{name}' uses an unknown parameter")
                part = ir.Param(p.res_type, f"{p.code}#{i}", definition.type.value)
                leaf = self._leaf(name, part, definition, "", piece)
                if not isinstance(leaf, ir.ROW_LEAVES):
                    raise InvalidRequest(f"Invalid composite value {raw!r}", (name,))
                parts.append(leaf)
            options.append(ir.CompositeLeaf(p, tuple(parts)))
        return _any(options)

    # -- chains
    def _chain(
        self,
        res_type: str,
        name: str,
        code: str,
        modifier: str,
        rest: str,
        value: str,
        depth: int,
    ) -> ir.Node:
        param = self.registry.get(res_type, code)
        if param is None or param.type.value != "reference":
            raise UnknownParameter(name, f"'{code}' of {res_type} is not a reference parameter")
        p = ir.Param(res_type, code, "reference")
        targets = (modifier,) if modifier else param.targets
        if modifier and modifier not in self.types:
            raise UnknownParameter(name, f"Unknown resource type '{modifier}' in chain")
        inner_code = rest.partition(".")[0].partition(":")[0]
        options: list[ir.Node] = []
        for target in targets:
            if inner_code not in ("_id", "_lastUpdated", "_has") and (
                self.registry.get(target, inner_code) is None
            ):
                continue
            inner = self.criterion(target, rest, value, depth + 1)
            options.append(ir.Chain(p, target, inner))
        if not options:
            raise UnknownParameter(
                name, f"No target of '{code}' has a search parameter '{inner_code}'"
            )
        return _any(options)

    def _has(self, res_type: str, name: str, value: str, depth: int) -> ir.Node:
        parts = name.split(":", 3)
        if len(parts) != 4 or not all(parts):
            raise InvalidRequest(
                f"'_has' takes _has:Type:reference:parameter, not {name!r}", (name,)
            )
        _, source, ref_code, rest = parts
        if source not in self.types:
            raise UnknownParameter(name, f"Unknown resource type '{source}' in _has")
        ref = self.registry.get(source, ref_code)
        if ref is None or ref.type.value != "reference":
            raise UnknownParameter(name, f"'{ref_code}' of {source} is not a reference parameter")
        if ref.targets and res_type not in ref.targets:
            raise InvalidRequest(f"'{ref_code}' of {source} cannot refer to {res_type}", (name,))
        inner = self.criterion(source, rest, value, depth + 1)
        return ir.Has(res_type, ir.Param(source, ref_code, "reference"), inner)


def _any(nodes: Sequence[ir.Node]) -> ir.Node:
    return nodes[0] if len(nodes) == 1 else ir.Or(tuple(nodes))


def _local_part(url: str) -> tuple[str, str] | None:
    """(type, id) of an absolute RESTful url `.../Type/id[/_history/n]`, else None."""
    segments = url.split("?")[0].rstrip("/").split("/")
    if len(segments) >= 4 and segments[-2] == "_history":
        segments = segments[:-2]
    if len(segments) < 2:
        return None
    target_type, target_id = segments[-2], segments[-1]
    if target_type not in resource_types() or not target_id:
        return None
    return target_type, target_id


def split_prefix(text: str) -> tuple[ir.Prefix, str]:
    head = text[:2]
    if head in ir.PREFIXES and len(text) > 2 and not text[2].isalpha():
        return head, text[2:]  # type: ignore[return-value]
    return "eq", text


def _date_value(name: str, text: str) -> tuple[ir.Prefix, int, int]:
    prefix, rest = split_prefix(text)
    if rest[:2].isalpha():
        raise InvalidRequest(f"Invalid prefix in {text!r} for '{name}'", (name,))
    # A '+' in a timezone arrives as a space when the client did not encode it.
    rest = rest.replace(" ", "+")
    low, high = parse_range(rest, name)
    return prefix, low, high


def decimal_range(name: str, text: str) -> tuple[float, float, float]:
    """(value, low, high) of a search number: [low, high) from its significant digits."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise InvalidRequest(f"Invalid number {text!r} for '{name}'", (name,)) from None
    if not number.is_finite():
        raise InvalidRequest(f"Invalid number {text!r} for '{name}'", (name,))
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(exponent - 1)
    return float(number), float(number - half), float(number + half)


def _number_leaf(name: str, p: ir.Param, text: str) -> ir.NumberLeaf:
    prefix, rest = split_prefix(text)
    value, low, high = decimal_range(name, rest)
    return ir.NumberLeaf(p, prefix, value, low, high)


def _quantity_leaf(name: str, p: ir.Param, raw: str) -> ir.NumberLeaf:
    parts = split_escaped(raw, "|")
    if len(parts) not in (1, 3):
        raise InvalidRequest(f"Invalid quantity {raw!r} for '{name}'", (name,))
    prefix, rest = split_prefix(unescape(parts[0]))
    value, low, high = decimal_range(name, rest)
    if len(parts) == 1:
        return ir.NumberLeaf(p, prefix, value, low, high)
    system, code = unescape(parts[1]) or None, unescape(parts[2]) or None
    return ir.NumberLeaf(
        p, prefix, value, low, high, system, code, unit_only=system is None and code is not None
    )
