"""The per-parse state and the lexer callbacks: literal checks, comments, nesting depth.

Lark calls the callbacks of :data:`_LEXER_CALLBACKS` for each token; they read the parse
under way from :func:`_context` (one parse at a time, under ``_lock``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from lark import Token
from lark.lark import PostLex

from ..._diagnostics import Diagnostic, error
from ..._source import SourceFile, Span, span_at
from .. import _ast as ast
from ._literals import _BAD_ESCAPE_RE, _COMMENT_RE, KEYWORDS, MAX_DEPTH, MAX_ERRORS, classify_number, shorten


class FastToken:
    """A token of the fast path (:mod:`._fast`): what the tree builder reads of Lark's ``Token``."""

    __slots__ = ("end_pos", "start_pos", "type", "value")

    def __init__(self, type: str, value: str, start_pos: int, end_pos: int) -> None:
        self.type = type
        self.value = value
        self.start_pos = start_pos
        self.end_pos = end_pos


#: Lark's tokens and the fast path's: the tree builder reads only what both have (type, value, positions).
TOKENS: tuple[type[Any], ...] = (Token, FastToken)

_span = span_at  # the spans of a parse, made without the class call

# -- per-parse state --------------------------------------------------------------------


class _Abort(Exception):
    """Stops a parse: too deep (A003) or too many errors."""


@dataclass(slots=True)
class _Context:
    """What the lexer callbacks and tree builder of one parse need (one parse at a time)."""

    source: SourceFile
    text: str
    base: int = 0
    offsets: Sequence[int] | None = None  # offsets[i]: source offset of text[i] (escaped strings)
    fixed: Span | None = None  # every span is this one (no position information)
    expression: bool = False  # parsing `${...}`: syntax errors are A108 and stop the parse
    diagnostics: list[Diagnostic] = field(default_factory=list)
    comments: list[ast.Comment] = field(default_factory=list)
    reported: set[int] = field(default_factory=set)
    quiet_until: int = -1  # errors starting at or before this offset are consequences: not reported
    last_reported: int = -1  # offset of the last error reported
    depth: int = 0
    errors: int = 0
    simple: bool = False  # spans are plain token offsets (a whole file)

    def __post_init__(self) -> None:
        self.simple = self.fixed is None and self.offsets is None and self.base == 0

    def reset(self) -> None:
        """Forget what a parse found, to parse the same text again."""
        self.diagnostics.clear()
        self.comments.clear()
        self.reported.clear()
        self.quiet_until = self.last_reported = -1
        self.depth = self.errors = 0

    def span(self, start: int, end: int) -> Span:
        if self.simple:
            return _span(self.source, start, end)
        if self.fixed is not None:
            return self.fixed
        if self.offsets is not None:
            last = len(self.offsets) - 1
            return _span(self.source, self.offsets[min(start, last)], self.offsets[min(end, last)])
        return _span(self.source, self.base + start, self.base + end)

    def token_span(self, token: Any) -> Span:
        if self.simple:
            return _span(self.source, token.start_pos, token.end_pos)
        return self.span(token.start_pos, token.end_pos)

    def report(self, diagnostic: Diagnostic, at: int) -> None:
        """Record an error once per position; give up after MAX_ERRORS."""
        if at in self.reported:
            return
        self.reported.add(at)
        self.last_reported = max(self.last_reported, at)
        self.diagnostics.append(diagnostic)
        self.errors += 1
        end_of_line = self.text.find("\n", at)
        self.quiet_until = max(self.quiet_until, len(self.text) if end_of_line < 0 else end_of_line)
        if self.errors >= MAX_ERRORS:
            raise _Abort


_lock = threading.Lock()
_ctx: _Context | None = None


def _context() -> _Context:
    assert _ctx is not None, "parser used outside parse_ast/parse_expression"
    return _ctx


# -- lexer callbacks: literal checks, comments, nesting depth ------------------


def _on_string(token: Any) -> Any:
    if "\\" in token.value:
        ctx = _context()
        value: str = token.value
        end = len(value) - 1
        index = 1
        while (match := _BAD_ESCAPE_RE.match(value, index, end)) is not None:
            start = token.start_pos + match.start(1)
            index = match.end()
            ctx.report(
                error(
                    "A108" if ctx.expression else "A105",
                    f"unknown escape `{match.group(1)}` in string",
                    ctx.span(start, start + 2),
                    "not an escape",
                    help='the escapes are `\\"`, `\\\\`, `\\n` and `\\t`; write `\\\\` for a backslash',
                ),
                start,
            )
    return token


def _on_number(token: Any) -> Any:
    kind, _, problem = classify_number(token.value)
    if kind == "size" and _context().expression:
        kind, problem = "invalid", f"a size is not a value of an expression: `{shorten(token.value)}`"
    if kind == "invalid":
        ctx = _context()
        ctx.report(
            error(
                "A108" if ctx.expression else "A106",
                problem or f"invalid literal `{shorten(token.value)}`",
                ctx.token_span(token),
                "not a number or duration",
                help="numbers are like `3` or `2.5`; durations are an integer and a unit "
                "(`500ms`, `30s`, `5m`, `2h`, `1d`) or a sum like `1h30m`",
            ),
            token.start_pos,
        )
    return token


def _on_comment(token: Any) -> Any:
    ctx = _context()
    ctx.comments.append(ast.Comment(text=token.value.rstrip("\r"), span=ctx.token_span(token)))
    return token


def _on_newline(token: Any) -> Any:
    if "#" in token.value:
        ctx = _context()
        for match in _COMMENT_RE.finditer(token.value):
            start = token.start_pos + match.start()
            text = match.group(0).rstrip("\r")
            ctx.comments.append(ast.Comment(text=text, span=ctx.span(start, start + len(text))))
    return token


def _on_open(token: Any) -> Any:
    ctx = _context()
    ctx.depth += 1
    if ctx.depth > MAX_DEPTH:
        ctx.diagnostics.append(
            error(
                "A003",
                f"nesting deeper than {MAX_DEPTH} levels",
                ctx.token_span(token),
                "too deep",
                help="flatten the value or split the block",
            )
        )
        raise _Abort
    return token


def _on_close(token: Any) -> Any:
    ctx = _context()
    ctx.depth = max(0, ctx.depth - 1)
    return token


class _WordsEverywhere(PostLex):
    """Words and comparisons are lexed in every parser state, not only where they fit.

    The contextual lexer offers each state only the terminals it accepts. For this
    grammar that changes nothing on valid input, but at an error it cuts tokens short:
    after ``stage`` (only a NAME fits) ``after`` would be a name, so ``stage after {``
    would declare a stage called ``after``; at top level (no NAME fits) ``agentx {``
    would read as ``agent x {``; after an attribute name (only `=` fits) ``==`` would
    read as ``=`` ``=``. Keeping the keywords, NAME and COMPARE in every state's lexer
    (keywords are folded into NAME by Lark: no extra regex work) keeps tokens whole, so
    errors are reported on what the user wrote. The token stream passes through as is.
    """

    always_accept = (*KEYWORDS.values(), "NAME", "COMPARE")

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return stream


_LEXER_CALLBACKS: dict[str, Callable[[Token], Token]] = {
    "STRING": _on_string,
    "NUMBER": _on_number,
    "_NL": _on_newline,
    "COMMENT": _on_comment,
    "LBRACE": _on_open,
    "LBRACK": _on_open,
    "LPAR": _on_open,
    "RBRACE": _on_close,
    "RBRACK": _on_close,
    "RPAR": _on_close,
}

#: A callback of :data:`_LEXER_CALLBACKS` that does nothing unless the token's text holds
#: this string (each one starts with that test): the fast path (``_fast.py``) skips the
#: call, and the token it would be given, for the others (most newlines and strings).
_CALLBACK_ONLY_WITH: dict[str, str] = {"STRING": "\\", "_NL": "#"}
