"""FHIRPath syntax checking. fhirpathpy's own parser recovers silently from syntax errors (it
accepts ``Patient.name.where(use =`` or ``Patient.name[``), so callers that must refuse a bad
expression (FHIRPath Patch, custom SearchParameters) parse it here first with an error listener."""

from __future__ import annotations

from functools import cache
from typing import Any

import antlr4
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser


class _FirstError:
    """An ANTLR error listener that keeps the first syntax error."""

    def __init__(self) -> None:
        self.error: str | None = None

    def syntaxError(self, recognizer: Any, symbol: Any, line: int, column: int, msg: str, e: Any) -> None:
        self.error = self.error or f"column {column + 1}: {msg.split(' expecting {')[0][:120]}"

    def reportAmbiguity(self, *args: Any) -> None:
        pass

    def reportAttemptingFullContext(self, *args: Any) -> None:
        pass

    def reportContextSensitivity(self, *args: Any) -> None:
        pass


@cache
def syntax_error(expression: str) -> str | None:
    """The first syntax error of a FHIRPath expression, or None when it parses completely."""
    listener = _FirstError()
    try:
        lexer = FHIRPathLexer(antlr4.InputStream(expression))
        lexer.removeErrorListeners()
        lexer.addErrorListener(listener)
        tokens = antlr4.CommonTokenStream(lexer)
        parser = FHIRPathParser(tokens)
        parser.removeErrorListeners()
        parser.addErrorListener(listener)
        parser.expression()
    except Exception as exc:  # the lexer may raise on an unrecognisable character
        return listener.error or str(exc) or type(exc).__name__
    if listener.error is None and tokens.LA(1) != antlr4.Token.EOF:
        return f"unexpected {tokens.LT(1).text!r} at column {tokens.LT(1).column + 1}"
    return listener.error
