"""A FHIRPath parser for search parameter expressions: text -> syntax tree.

https://hl7.org/fhirpath/N1/ (the grammar and operator precedence). The whole expression
grammar is parsed; `paths` decides which of it compiles to plain Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Binary",
    "Call",
    "FhirPathSyntaxError",
    "Ident",
    "Index",
    "Literal",
    "Member",
    "Node",
    "TypeOp",
    "Unary",
    "Var",
    "parse",
]


class FhirPathSyntaxError(ValueError):
    """The text is not a FHIRPath expression."""


@dataclass(frozen=True, slots=True)
class Ident:
    """An identifier at the start of a path: a type name or an element of the focus."""

    name: str


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | bool | int | float | None


@dataclass(frozen=True, slots=True)
class Var:
    """`%resource`, `%context`, `$this`, ..."""

    name: str


@dataclass(frozen=True, slots=True)
class Member:
    base: Node
    name: str


@dataclass(frozen=True, slots=True)
class Call:
    """A function invocation; `base` is None when applied to the focus (`where(...)`)."""

    base: Node | None
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Index:
    base: Node
    index: Node


@dataclass(frozen=True, slots=True)
class TypeOp:
    """`base is Type` / `base as Type`."""

    op: str
    base: Node
    type_name: str


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node


Node = Ident | Literal | Var | Member | Call | Index | TypeOp | Binary | Unary

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<delimited>`(?:[^`\\]|\\.)*`)
    | (?P<number>\d+(?:\.\d+)?)
    | (?P<var>[%$](?:[A-Za-z_][A-Za-z0-9_]*|'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`))
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>!=|!~|<=|>=|[|.()\[\],=~<>+\-*/&])
    )""",
    re.VERBOSE,
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "/": "/", "\\": "\\", "f": "\f", "n": "\n"}
_ESCAPES |= {"r": "\r", "t": "\t"}

# Binary operators from lowest to highest precedence (FHIRPath N1 §"Operator precedence").
_LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"implies"}),
    frozenset({"or", "xor"}),
    frozenset({"and"}),
    frozenset({"in", "contains"}),
    frozenset({"=", "~", "!=", "!~"}),
    frozenset({"<", ">", "<=", ">="}),
    frozenset({"|"}),
    frozenset({"is", "as"}),
    frozenset({"+", "-", "&"}),
    frozenset({"*", "/", "div", "mod"}),
)
_TYPE_LEVEL = 7


def _unescape(body: str) -> str:
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and i + 5 < len(body):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FhirPathSyntaxError(f"Unexpected {text[pos : pos + 10]!r} in {text!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FhirPathSyntaxError(f"Unexpected end of {self.text!r}")
        self.pos += 1
        return token

    def expect(self, op: str) -> None:
        kind, value = self.next()
        if kind != "op" or value != op:
            raise FhirPathSyntaxError(f"Expected {op!r}, found {value!r} in {self.text!r}")

    def at(self, value: str) -> bool:
        token = self.peek()
        return token is not None and token[0] in ("op", "ident") and token[1] == value

    def expression(self, level: int = 0) -> Node:
        if level == len(_LEVELS):
            return self.unary()
        left = self.expression(level + 1)
        while True:
            token = self.peek()
            if token is None or token[0] not in ("op", "ident") or token[1] not in _LEVELS[level]:
                return left
            self.pos += 1
            if level == _TYPE_LEVEL:
                left = TypeOp(token[1], left, self.type_name())
            else:
                left = Binary(token[1], left, self.expression(level + 1))

    def type_name(self) -> str:
        parts = [self.identifier()]
        while self.at("."):
            self.pos += 1
            parts.append(self.identifier())
        return ".".join(parts)

    def identifier(self) -> str:
        kind, value = self.next()
        if kind == "ident":
            return value
        if kind == "delimited":
            return _unescape(value[1:-1])
        raise FhirPathSyntaxError(f"Expected an identifier, found {value!r} in {self.text!r}")

    def unary(self) -> Node:
        if self.at("+") or self.at("-"):
            op = self.next()[1]
            return Unary(op, self.unary())
        return self.postfix(self.term())

    def term(self) -> Node:
        kind, value = self.next()
        if kind == "op" and value == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if kind == "string":
            return Literal(_unescape(value[1:-1]))
        if kind == "number":
            return Literal(float(value) if "." in value else int(value))
        if kind == "var":
            return Var(value)
        if kind in ("ident", "delimited"):
            name = value if kind == "ident" else _unescape(value[1:-1])
            if kind == "ident" and name in ("true", "false"):
                return Literal(name == "true")
            if self.at("("):
                return Call(None, name, self.arguments())
            return Ident(name)
        raise FhirPathSyntaxError(f"Unexpected {value!r} in {self.text!r}")

    def arguments(self) -> tuple[Node, ...]:
        self.expect("(")
        args: list[Node] = []
        if self.at(")"):
            self.pos += 1
            return ()
        while True:
            args.append(self.expression())
            if self.at(","):
                self.pos += 1
                continue
            self.expect(")")
            return tuple(args)

    def postfix(self, node: Node) -> Node:
        while True:
            if self.at("."):
                self.pos += 1
                name = self.identifier()
                node = Call(node, name, self.arguments()) if self.at("(") else Member(node, name)
            elif self.at("["):
                self.pos += 1
                index = self.expression()
                self.expect("]")
                node = Index(node, index)
            else:
                return node


def parse(text: str) -> Node:
    """The syntax tree of a FHIRPath expression; FhirPathSyntaxError if it is not one."""
    parser = _Parser(text)
    node = parser.expression()
    rest = parser.peek()
    if rest is not None:
        raise FhirPathSyntaxError(f"Unexpected {rest[1]!r} in {text!r}")
    return node
