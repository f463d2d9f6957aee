"""Parsing a FHIRPath Patch path with fhirpathpy's grammar, rejecting what does not parse.

fhirpathpy's own `parse` recovers from syntax errors silently; a patch must not guess.
"""

from __future__ import annotations

import itertools
from typing import Any

from antlr4 import CommonTokenStream, InputStream, Token
from antlr4.error.ErrorListener import ErrorListener
from antlr4.tree.Tree import ParseTreeWalker
from fhirpathpy.parser.ASTPathListener import ASTPathListener
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from vnehr.errors import InvalidRequest

Node = dict[str, Any]  # a node of fhirpathpy's syntax tree


class _Errors(ErrorListener):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def syntaxError(
        self, recognizer: Any, symbol: Any, line: int, column: int, msg: str, e: Any
    ) -> None:
        self.messages.append(f"at character {column + 1}: {msg}")


def parse_path(text: str) -> Node:
    """The syntax tree of a FHIRPath expression; InvalidRequest when it is not one."""
    errors = _Errors()
    lexer = FHIRPathLexer(InputStream(text))
    lexer.removeErrorListeners()
    lexer.addErrorListener(errors)
    tokens = CommonTokenStream(lexer)
    tokens.fill()
    for before, token in itertools.pairwise(tokens.tokens):
        # `div` and `mod` are operators, but Narrative.div is an element: the official cases
        # (and other servers) write `Patient.text.div`, so a word after a dot is a name.
        if before.text == "." and token.text.isalpha() and token.type != FHIRPathLexer.IDENTIFIER:
            token.type = FHIRPathLexer.IDENTIFIER
    parser = FHIRPathParser(tokens)
    parser.removeErrorListeners()
    parser.addErrorListener(errors)
    listener = ASTPathListener()
    ParseTreeWalker().walk(listener, parser.entireExpression())
    if errors.messages or parser.getCurrentToken().type != Token.EOF:
        detail = errors.messages[0] if errors.messages else "unexpected trailing text"
        raise InvalidRequest(f"{text!r} is not a valid FHIRPath expression ({detail})")
    entire: Node = listener.parentStack[0]["children"][0]
    return entire["children"][0]
