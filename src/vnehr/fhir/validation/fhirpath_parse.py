"""A parser for the FHIRPath used by R4 invariants: https://hl7.org/fhirpath/N1/grammar.html

Produces a small AST (frozen dataclasses) for `fhirpath_compile`. Covers the whole expression
grammar (literals except quantities, operators with their precedence, invocations, indexers,
`is`/`as`), which is more than the R4 invariants use; anything else raises `FhirPathSyntaxError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal


class FhirPathSyntaxError(ValueError):
    """The expression is not FHIRPath this parser understands."""


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | int | Decimal | bool | None  # None: the empty collection `{}`


@dataclass(frozen=True, slots=True)
class Variable:
    name: str  # "this", "index", "total" for $-variables; "%name" for environment variables


@dataclass(frozen=True, slots=True)
class Member:
    base: Node | None  # None: the focus
    name: str


@dataclass(frozen=True, slots=True)
class Call:
    base: Node | None
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Index:
    base: Node
    index: Node


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class TypeTest:
    op: str  # "is" | "as"
    operand: Node
    type_name: str


Node = Literal | Variable | Member | Call | Index | Unary | Binary | TypeTest

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^'\\]|\\.)*')
    | (?P<num>\d+(?:\.\d+)?)
    | (?P<date>@[0-9T:.+\-Z]+)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<qident>`(?:[^`\\]|\\.)*`)
    | (?P<var>\$[a-z]+|%[A-Za-z_][A-Za-z0-9_\-]*|%`[^`]*`|%'[^']*')
    | (?P<op><=|>=|!=|!~|[-+*/&|=~<>.,()\[\]{}])
    )""",
    re.VERBOSE,
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n"}
_ESCAPES |= {"r": "\r", "t": "\t"}

# Binding powers, lowest first (https://hl7.org/fhirpath/N1/#operator-precedence).
_INFIX = {
    "implies": 1,
    "or": 2,
    "xor": 2,
    "and": 3,
    "in": 4,
    "contains": 4,
    "=": 5,
    "~": 5,
    "!=": 5,
    "!~": 5,
    "<": 6,
    "<=": 6,
    ">": 6,
    ">=": 6,
    "|": 7,
    "is": 8,
    "as": 8,
    "+": 9,
    "-": 9,
    "&": 9,
    "*": 10,
    "/": 10,
    "div": 10,
    "mod": 10,
}
_UNARY = 11


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u" and i + 5 < len(text):
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FhirPathSyntaxError(f"unexpected text at {pos}: {text[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    out.append(("end", ""))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i]

    def next(self) -> tuple[str, str]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        _, val = self.next()
        if val != value:
            raise FhirPathSyntaxError(f"expected {value!r}, found {val!r}")

    def expression(self, min_bp: int = 0) -> Node:
        left = self.prefix()
        while True:
            kind, val = self.peek()
            if kind not in ("op", "ident") or val not in _INFIX:
                return left
            bp = _INFIX[val]
            if bp <= min_bp:
                return left
            self.next()
            if val in ("is", "as"):
                left = TypeTest(val, left, self.type_name())
                continue
            # `implies` is right-associative; everything else is left-associative.
            right = self.expression(bp - 1 if val == "implies" else bp)
            left = Binary(val, left, right)

    def type_name(self) -> str:
        kind, val = self.next()
        if kind not in ("ident", "qident"):
            raise FhirPathSyntaxError(f"expected a type name, found {val!r}")
        name = val.strip("`")
        while self.peek()[1] == ".":
            self.next()
            name += "." + self.next()[1].strip("`")
        return name

    def prefix(self) -> Node:
        kind, val = self.peek()
        if kind == "op" and val in ("+", "-"):
            self.next()
            return self.postfix(Unary(val, self.expression(_UNARY)))
        return self.postfix(self.term())

    def term(self) -> Node:
        kind, val = self.next()
        if kind == "str":
            return Literal(_unescape(val[1:-1]))
        if kind == "num":
            return Literal(Decimal(val) if "." in val else int(val))
        if kind == "date":
            return Literal(val[1:])
        if kind == "var":
            if val.startswith("$"):
                return Variable(val[1:])
            return Variable("%" + val[1:].strip("`'"))
        if kind == "op" and val == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if kind == "op" and val == "{":
            self.expect("}")
            return Literal(None)
        if kind == "ident" and val in ("true", "false"):
            return Literal(val == "true")
        if kind in ("ident", "qident"):
            return self.invocation(None, val.strip("`") if kind == "qident" else val)
        raise FhirPathSyntaxError(f"unexpected {val!r}")

    def invocation(self, base: Node | None, name: str) -> Node:
        if self.peek()[1] == "(":
            self.next()
            args: list[Node] = []
            if self.peek()[1] != ")":
                args.append(self.expression())
                while self.peek()[1] == ",":
                    self.next()
                    args.append(self.expression())
            self.expect(")")
            return Call(base, name, tuple(args))
        return Member(base, name)

    def postfix(self, node: Node) -> Node:
        while True:
            val = self.peek()[1]
            if val == ".":
                self.next()
                kind, name = self.next()
                if kind not in ("ident", "qident"):
                    raise FhirPathSyntaxError(f"expected a name after '.', found {name!r}")
                node = self.invocation(node, name.strip("`"))
            elif val == "[":
                self.next()
                index = self.expression()
                self.expect("]")
                node = Index(node, index)
            else:
                return node


def parse(text: str) -> Node:
    """The AST of a FHIRPath expression."""
    parser = _Parser(text)
    node = parser.expression()
    if parser.peek()[0] != "end":
        raise FhirPathSyntaxError(f"unexpected {parser.peek()[1]!r} after the expression")
    return node
