"""Parsing ``.alfred`` text into the syntax tree of :mod:`._ast`, with error recovery.

One Lark LALR parser is built per process from ``grammar/alfred.lark`` and cached on disk
by Lark (``cache=True``), so start-up stays fast. The tree is built directly by a
transformer run inside the LALR parser: no parse tree is materialised, and spans come
from the tokens (``propagate_positions`` would cost more than the parse). The lexer is
Lark's contextual lexer (words kept whole in every state by :class:`_WordsEverywhere`; literal
checks and comments in :data:`_LEXER_CALLBACKS`), and the LALR loop runs over a
pre-digested table (:func:`_install_fast_loop`): a 10,000-stage, 1 MB file parses and
lowers in about 1.1 s of CPU.

Errors never raise: they become diagnostics. After a syntax error the parser
resynchronises (it closes blocks that were left open, or drops the rest of the line, or
skips to the next top-level keyword) and keeps going, up to :data:`MAX_ERRORS` errors.
"""

from __future__ import annotations

import gc
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lark import PostLex

from .._diagnostics import Diagnostic, Label, error
from .._expr import Binary, Expr, Literal, Ref, Template, Unary
from .._resources import grammar_path
from .._source import SourceFile, Span
from .._values import MAX_INT_DIGITS, parse_duration, parse_size, suggest
from . import _ast as ast

__all__ = [
    "KEYWORDS",
    "MAX_DEPTH",
    "MAX_ERRORS",
    "classify_number",
    "parse_ast",
    "parse_expression",
    "parse_template",
    "unescape",
]

#: Reserved words: never names of agents, workflows, stages, params or aliases.
KEYWORDS: dict[str, str] = {
    word: word.upper()
    for word in (
        "import", "agent", "workflow", "param", "defaults", "stage", "use", "as", "after", "on",
        "true", "false", "and", "or", "not",
    )
}
_KEYWORD_TYPES = frozenset(KEYWORDS.values())
#: Keywords that start a block or a workflow item: a sign that a `}` is missing before them.
_ITEM_KEYWORDS = frozenset({"IMPORT", "AGENT", "WORKFLOW", "PARAM", "DEFAULTS", "STAGE", "USE", "ON"})
# The start of a declaration, where a parse that lost its way at top level starts again
# (not `agent = x` inside a stage, which also starts with a top-level keyword).
_DECLARATION_RE = re.compile(
    r'^[ \t]*(?:import[ \t]+"|(?:agent|workflow)[ \t]+[A-Za-z_][A-Za-z0-9_-]*[ \t]*\{)', re.MULTILINE
)
_OPENERS = {"LBRACE": "RBRACE", "LBRACK": "RBRACK", "LPAR": "RPAR"}
_CLOSERS = frozenset(_OPENERS.values())
_CLOSER_TEXT = {"RBRACE": "}", "RBRACK": "]", "RPAR": ")", "_NL": "\n"}
_VALUE_STARTS = frozenset({"STRING", "NUMBER", "TRUE", "FALSE", "NAME", "LPAR", "LBRACK", "LBRACE", "NOT"})

MAX_ERRORS = 50
MAX_DEPTH = 100

_WORDS = {
    "NAME": "a name", "STRING": "a string", "NUMBER": "a number", "COMPARE": "a comparison",
    "_NL": "a new line", "$END": "the end of the file", "LBRACE": "`{`", "RBRACE": "`}`",
    "LBRACK": "`[`", "RBRACK": "`]`", "LPAR": "`(`", "RPAR": "`)`", "EQUAL": "`=`", "COMMA": "`,`",
    "COLON": "`:`", "DOT": "`.`",
}
# Continuations of a value that are noise in "expected ..." once the value could end here.
_CONTINUATIONS = frozenset({"DOT", "COMPARE", "AND", "OR"})

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_ESCAPE_RE = re.compile(r"\\(.)")
# The next unknown escape: valid text and escapes are skipped inside the regex engine.
# The group is possessive for memory (see NUMBER in alfred.lark), but the match does not
# depend on it: the captured escape is never a known one, so backtracking finds the same.
_BAD_ESCAPE_RE = re.compile(r'(?:[^\\]++|\\["\\nt])*+(\\[^"\\nt\n])')
_INT_RE = re.compile(r"-?[0-9]+")
_FLOAT_RE = re.compile(r"-?(?:[0-9]+\.[0-9]+(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)")
_DURATION_RE = re.compile(r"(?:[0-9]+(?:ms|s|m|h|d))+")
_DURATION_PART_RE = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNIT_RANK = {"d": 4, "h": 3, "m": 2, "s": 1, "ms": 0}
_SIZE_RE = re.compile(r"[0-9]+(?:B|[KMGT]i?B)")
_COMMENT_RE = re.compile(r"#[^\n]*")
_BLANK_RE = re.compile(r"[ \t\f\r]*+")
_BLANK_OR_COMMENT_RE = re.compile(r"[ \t\f\r]*+(?:#.*+)?")
_NOT_TOKEN_START_RE = re.compile(r"[^A-Za-z0-9_\s\"{}\[\]()=,.:;#<>!\-]*+")


def unescape(raw: str) -> str:
    """The value of a string literal from the text between its quotes.

    Escapes pair left to right, as ``str.split`` does: once the ``\\\\`` pairs are split
    out, each piece holds only single backslashes, so plain replaces are exact (and run in
    C: a callback per escape took seconds on a string of a million escapes). Unknown
    escapes stay as written (they are reported as A105).
    """
    if "\\" not in raw:
        return raw
    return "\\".join(
        piece.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t") if "\\" in piece else piece
        for piece in raw.split("\\\\")
    )


def shorten(text: str, limit: int = 30) -> str:
    """``text`` cut to about ``limit`` characters with ``...``, for quoting in a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@lru_cache(maxsize=1024)
def classify_number(raw: str) -> tuple[str, int | float | None, str | None]:
    """Sort a number-like literal: ``("int"|"float"|"duration"|"size"|"invalid", value, problem)``.

    A duration's value is its length in seconds, a size's (``100MB``, ``10KiB``) its bytes.
    """
    if _INT_RE.fullmatch(raw):
        if len(raw) > MAX_INT_DIGITS:  # Python refuses to convert longer digit strings
            return "invalid", None, (
                f"integer literal `{shorten(raw)}` is too long: {len(raw.lstrip('+-'))} digits, "
                f"at most {MAX_INT_DIGITS}"
            )
        return "int", int(raw), None
    if _FLOAT_RE.fullmatch(raw):
        return "float", float(raw), None
    body = raw[1:] if raw.startswith("-") else raw
    if _DURATION_RE.fullmatch(body):
        if raw.startswith("-"):
            return "invalid", None, f"a duration cannot be negative: `{shorten(raw)}`"
        # The token is any run of amounts and units; here its order is checked for a precise
        # message, then the one duration parser gives its value.
        last_rank = 99
        for amount, unit in _DURATION_PART_RE.findall(body):
            if len(amount) > MAX_INT_DIGITS:
                return "invalid", None, f"duration `{shorten(raw)}` is too long"
            rank = _UNIT_RANK[unit]
            if rank >= last_rank:
                return "invalid", None, (
                    f"invalid duration `{shorten(raw)}`: "
                    "units must go from largest to smallest, each once (like `1h30m`)"
                )
            last_rank = rank
        return "duration", parse_duration(body), None
    if _SIZE_RE.fullmatch(raw):
        return "size", parse_size(raw), None
    return "invalid", None, f"invalid number or duration `{shorten(raw)}`"


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

    def span(self, start: int, end: int) -> Span:
        if self.simple:
            return Span(self.source, start, end)
        if self.fixed is not None:
            return self.fixed
        if self.offsets is not None:
            last = len(self.offsets) - 1
            return Span(self.source, self.offsets[min(start, last)], self.offsets[min(end, last)])
        return Span(self.source, self.base + start, self.base + end)

    def token_span(self, token: Any) -> Span:
        if self.simple:
            return Span(self.source, token.start_pos, token.end_pos)
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


# -- the tree builder (runs inside the LALR parser) ---------------------------------------


def _cover(first: Any, last: Any) -> Span:
    """The span from the start of ``first`` to the end of ``last`` (tokens or nodes)."""
    ctx = _context()
    if ctx.simple:
        start: int = first.start_pos if isinstance(first, Token) else first.span.start  # type: ignore[assignment]
        end: int = last.end_pos if isinstance(last, Token) else last.span.end  # type: ignore[assignment]
        return Span(ctx.source, start, end)
    start_span = ctx.token_span(first) if isinstance(first, Token) else first.span
    end_span = ctx.token_span(last) if isinstance(last, Token) else last.span
    return start_span.cover(end_span)


def _value(item: Any) -> ast.Value:
    """A value from the parser stack: literal tokens become nodes here (not in own rules)."""
    if not isinstance(item, Token):
        value: ast.Value = item
        return value
    kind = item.type
    span = _context().token_span(item)
    if kind == "STRING":
        raw = item.value[1:-1]
        return ast.String(raw=raw, value=unescape(raw), span=span)
    if kind == "NUMBER":
        number_kind, number, _ = classify_number(item.value)
        if number_kind == "duration":
            assert number is not None
            return ast.Duration(raw=item.value, seconds=number, span=span)
        if number_kind == "size":  # kept as written, like a duration: `max_log` reads it
            return ast.Number(raw=item.value, value=None, span=span)
        return ast.Number(raw=item.value, value=number, span=span)
    if kind == "TRUE" or kind == "FALSE":
        return ast.Bool(value=kind == "TRUE", span=span)
    return ast.Name(name=item.value, span=span)


def _as_expr(item: Any) -> Expr:
    """An operand of an operator: bare names are references, AST literals become Literal."""
    value = _value(item)
    if isinstance(value, ast.Name):
        return Ref(parts=(value.name,), span=value.span)
    if isinstance(value, ast.String | ast.Bool):
        return Literal(value=value.value, span=value.span)
    if isinstance(value, ast.Number):
        return Literal(value=value.value, span=value.span)
    if isinstance(value, ast.Duration):
        return Literal(value=value.seconds, span=value.span)
    assert isinstance(value, Literal | Ref | Unary | Binary)
    return value


def _key(token: Any) -> str:
    return unescape(token.value[1:-1]) if token.type == "STRING" else token.value


#: Binding power of binary operators; `not` binds between `and` and the comparisons.
_POWER = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4}
_NOT_POWER = 3


def _climb(items: list[Any], index: int, min_power: int) -> tuple[Expr, int]:
    """Precedence climbing over the flat operator sequence of an ``operation``."""
    first = items[index]
    if isinstance(first, Token) and first.type == "NOT":
        operand, index = _climb(items, index + 1, _NOT_POWER)
        left: Expr = Unary(op="not", operand=operand, span=_cover(first, operand))
    else:
        left = _as_expr(first)
        index += 1
    compared = False
    while index < len(items):
        operator = items[index]
        power = _POWER[operator.value]
        if power < min_power:
            break
        if power == 4 and compared:
            # Comparisons do not chain: `a == b == c` is an error, not `(a == b) == c`.
            ctx = _context()
            ctx.report(
                error("A108" if ctx.expression else "A102", "comparisons cannot be chained",
                      ctx.token_span(operator), "second comparison",
                      help="combine them with `and`: `a < b and b < c`"),
                operator.start_pos,
            )
        compared = power == 4
        right, index = _climb(items, index + 1, power + 1)
        left = Binary(op=operator.value, left=left, right=right, span=_cover(left, right))
    return left, index


class _Builder(Transformer[Token, Any]):
    """Builds :mod:`._ast` nodes; one method per grammar rule (children as a list)."""

    def file(self, children: list[Any]) -> ast.File:
        ctx = _context()
        return ast.File(items=tuple(children), span=ctx.span(0, len(ctx.text)))

    def expression(self, children: list[Any]) -> Any:
        return _as_expr(children[0])

    def import_(self, children: list[Any]) -> ast.Import:
        keyword, path = children
        ctx = _context()
        string = ast.String(raw=path.value[1:-1], value=unescape(path.value[1:-1]), span=ctx.token_span(path))
        return ast.Import(path=string, span=ctx.span(keyword.start_pos, path.end_pos))

    def _attrs_of(self, children: list[Any]) -> tuple[ast.Attribute, ...]:
        return tuple(child for child in children if isinstance(child, ast.Attribute))

    def agent(self, children: list[Any]) -> ast.Agent:
        ctx = _context()
        keyword, name = children[0], children[1]
        return ast.Agent(
            name=name.value,
            name_span=ctx.token_span(name),
            attributes=self._attrs_of(children[3:-1]),
            span=ctx.span(keyword.start_pos, children[-1].end_pos),
        )

    def workflow(self, children: list[Any]) -> ast.Workflow:
        ctx = _context()
        keyword, name = children[0], children[1]
        return ast.Workflow(
            name=name.value,
            name_span=ctx.token_span(name),
            items=tuple(child for child in children[3:-1] if not isinstance(child, Token)),
            span=ctx.span(keyword.start_pos, children[-1].end_pos),
        )

    def param(self, children: list[Any]) -> ast.Param:
        ctx = _context()
        keyword, name, _colon, type_name, _equal, default = children
        return ast.Param(
            name=name.value,
            name_span=ctx.token_span(name),
            type=type_name.value,
            type_span=ctx.token_span(type_name),
            default=None if default is None else _value(default),
            span=_cover(keyword, default if default is not None else type_name),
        )

    def defaults(self, children: list[Any]) -> ast.Defaults:
        ctx = _context()
        return ast.Defaults(
            attributes=self._attrs_of(children[2:-1]),
            span=ctx.span(children[0].start_pos, children[-1].end_pos),
        )

    def stage(self, children: list[Any]) -> ast.Stage:
        ctx = _context()
        keyword, name, after = children[0], children[1], children[2]
        return ast.Stage(
            name=name.value,
            name_span=ctx.token_span(name),
            after=after or (),
            attributes=self._attrs_of(children[4:-1]),
            span=ctx.span(keyword.start_pos, children[-1].end_pos),
        )

    def use(self, children: list[Any]) -> ast.Use:
        ctx = _context()
        keyword, template, arguments, _as, alias, after = children
        return ast.Use(
            template=template.value,
            template_span=ctx.token_span(template),
            arguments=arguments or (),
            alias=alias.value,
            alias_span=ctx.token_span(alias),
            after=after or (),
            span=_cover(keyword, after[-1] if after else alias),
        )

    def arguments(self, children: list[Any]) -> tuple[ast.Attribute, ...]:
        return self._attrs_of(children)

    def binding(self, children: list[Any]) -> ast.Attribute:
        return self.attribute(children)

    def hook(self, children: list[Any]) -> ast.Hook:
        ctx = _context()
        keyword, event = children[0], children[1]
        return ast.Hook(
            event=event.value,
            event_span=ctx.token_span(event),
            attributes=self._attrs_of(children[3:-1]),
            span=ctx.span(keyword.start_pos, children[-1].end_pos),
        )

    def after(self, children: list[Any]) -> tuple[ast.Target, ...]:
        ctx = _context()
        return tuple(
            ast.Target(name=child.value, span=ctx.token_span(child)) if isinstance(child, Token) else child
            for child in children[1:]
            if not isinstance(child, Token) or child.type == "NAME"
        )

    def dotted(self, children: list[Any]) -> ast.Target:
        names = [child.value for child in children if child.type != "DOT"]
        return ast.Target(name=".".join(names), span=_cover(children[0], children[-1]))

    def attribute(self, children: list[Any]) -> ast.Attribute:
        key, _equal, value = children
        ctx = _context()
        return ast.Attribute(
            name=_key(key),
            name_span=ctx.token_span(key),
            value=_value(value),
            span=_cover(key, value),
        )

    def sequence(self, children: list[Any]) -> ast.ListValue:
        items = tuple(
            _value(child) for child in children[1:-1] if not isinstance(child, Token) or child.type != "COMMA"
        )
        return ast.ListValue(items=items, span=_context().span(children[0].start_pos, children[-1].end_pos))

    def mapping(self, children: list[Any]) -> ast.MapValue:
        entries = tuple(child for child in children if isinstance(child, ast.Entry))
        return ast.MapValue(entries=entries, span=_cover(children[0], children[-1]))

    def entry(self, children: list[Any]) -> ast.Entry:
        key, _equal, value = children
        ctx = _context()
        return ast.Entry(
            key=_key(key), key_span=ctx.token_span(key), value=_value(value), span=_cover(key, value)
        )

    def operation(self, children: list[Any]) -> Expr:
        """Group a flat ``[not]* operand (op [not]* operand)*`` sequence by precedence."""
        if len(children) > 2 * MAX_DEPTH:
            # Each operator adds a level to the tree that later passes walk recursively.
            ctx = _context()
            ctx.diagnostics.append(
                error(
                    "A003",
                    f"expression with more than {MAX_DEPTH} operators",
                    _cover(children[0], children[-1]),
                    "too long",
                    help="split the condition into several params or stages",
                )
            )
            raise _Abort
        expr, _ = _climb(children, 0, 0)
        return expr

    def reference(self, children: list[Any]) -> Ref:
        parts = tuple(child.value for child in children if child.type != "DOT")
        return Ref(parts=parts, span=_cover(children[0], children[-1]))

    def group(self, children: list[Any]) -> Any:
        return _value(children[1])


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


@lru_cache(maxsize=1)
def _parser() -> Lark:
    lark = Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        postlex=_WordsEverywhere(),
        lexer_callbacks=_LEXER_CALLBACKS,
        start=["file", "expression"],
        transformer=_Builder(),
        maybe_placeholders=True,
        propagate_positions=False,
        cache=True,
    )
    _install_fast_loop(lark)
    return lark


def _install_fast_loop(lark: Lark) -> None:
    """Replace Lark's LALR main loop by the same loop over a pre-digested table.

    Lark calls ``ParserState.feed_token`` per token and looks up each rule's size, name
    and callback per reduction; here the table holds them directly. Errors fall back to
    ``feed_token``, so recovery (``on_error``, the interactive parser) is Lark's own.
    """
    from lark.parsers.lalr_analysis import Shift
    from lark.parsers.lalr_interactive_parser import InteractiveParser

    core = lark.parser.parser.parser  # ParsingFrontend -> LALR_Parser -> _Parser
    tables: dict[int, dict[Any, dict[str, tuple[bool, Any]]]] = {}

    def digest(conf: Any) -> dict[Any, dict[str, tuple[bool, Any]]]:
        table = tables.get(id(conf.states))
        if table is None:
            callbacks = conf.callbacks
            table = {
                state: {
                    kind: (True, arg)
                    if action is Shift
                    else (False, (len(arg.expansion), arg.origin.name, callbacks[arg]))
                    for kind, (action, arg) in actions.items()
                }
                for state, actions in conf.states.items()
            }
            tables[id(conf.states)] = table
        return table

    def parse_from_state(state: Any, last_token: Any = None) -> Any:
        table = digest(state.parse_conf)
        state_stack = state.state_stack
        value_stack = state.value_stack
        token = last_token
        try:
            for token in state.lexer.lex(state):
                kind = token.type
                while True:
                    entry = table[state_stack[-1]].get(kind)
                    if entry is None:
                        state.feed_token(token)  # raises UnexpectedToken with Lark's details
                        break
                    shift, arg = entry
                    if shift:
                        state_stack.append(arg)
                        value_stack.append(token)
                        break
                    size, name, callback = arg
                    if size:
                        children = value_stack[-size:]
                        del state_stack[-size:]
                        del value_stack[-size:]
                    else:
                        children = []
                    value = callback(children)
                    state_stack.append(table[state_stack[-1]][name][1])
                    value_stack.append(value)
            end = Token.new_borrow_pos("$END", "", token) if token else Token("$END", "", 0, 1, 1)
            return state.feed_token(end, True)
        except UnexpectedInput as exc:
            exc.interactive_parser = InteractiveParser(core, state, state.lexer)
            raise

    core.parse_from_state = parse_from_state


# -- error recovery ----------------------------------------------------------------------


def _synthetic(kind: str, at: Any) -> Any:
    """A token the user left out (a closing `}`), placed where the parser noticed."""
    text = _CLOSER_TEXT.get(kind, "")
    return Token(kind, text, at.start_pos, at.line, at.column, at.line, at.column, at.start_pos)


def _try_feed(state: Any, tokens: Sequence[Token]) -> bool:
    """Would the parser accept these tokens? (Probes a shallow copy; the builder is pure.)"""
    probe = state.copy(deepcopy_values=False)
    try:
        for token in tokens:
            probe.feed_token(token, token.type == "$END")
    except UnexpectedInput:
        return False
    except Exception:
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Open:
    """A construct whose closer is missing: what to call it and where it started."""

    closer: str
    description: str
    span: Span
    kind: str  # "list", "paren", "map", "defaults", or the block keyword: "agent", "workflow", "stage", "on"


def _open_constructs(state: Any) -> list[_Open]:
    """The constructs left open on the parser stack, innermost first."""
    ctx = _context()
    values: list[Any] = state.value_stack
    found: list[_Open] = []
    for index in range(len(values) - 1, -1, -1):
        value = values[index]
        if not isinstance(value, Token) or value.type not in _OPENERS:
            continue
        where = ctx.token_span(value)
        if value.type == "LBRACK":
            found.append(_Open("RBRACK", "the list", where, "list"))
            continue
        if value.type == "LPAR":
            found.append(_Open("RPAR", "the `(`", where, "paren"))
            continue
        previous = values[index - 1] if index >= 1 else None
        before = values[index - 2] if index >= 2 else None
        if isinstance(previous, tuple) and isinstance(before, Token):  # stage NAME after ... {
            previous, before = before, values[index - 3] if index >= 3 else None
        if isinstance(previous, Token) and previous.type == "DEFAULTS":
            found.append(_Open("RBRACE", "`defaults`", ctx.token_span(previous), "defaults"))
        elif (
            isinstance(previous, Token)
            and previous.type == "NAME"
            and isinstance(before, Token)
            and before.type in {"AGENT", "WORKFLOW", "STAGE", "ON"}
        ):
            if before.type == "ON":
                description = f"`on {shorten(previous.value)}`"
            else:
                description = f"{before.value} `{shorten(previous.value)}`"
            found.append(_Open("RBRACE", description, ctx.token_span(before), before.type.lower()))
        else:
            found.append(_Open("RBRACE", "the map", where, "map"))
    return found


def _unclosed(ctx: _Context, opened: _Open, at: Any, found: str) -> Diagnostic:
    closer = _CLOSER_TEXT[opened.closer]
    line, column = opened.span.line, opened.span.column
    return error(
        "A108" if ctx.expression else "A103",
        f"expected `{closer}` to close {opened.description} opened at {line}:{column}",
        ctx.span(at.start_pos, max(at.end_pos, at.start_pos)),
        f"expected `{closer}` before {found}",
        secondary=(Label(opened.span, f"{opened.description} opened here"),),
        help=f"add the missing `{closer}`",
    )


def _describe_found(token: Any, expression: bool = False) -> str:
    if token.type == "$END":
        return "the end of the interpolation" if expression else "the end of the file"
    if token.type == "_NL":
        return "the end of the line" if token.value.lstrip(" \t\f\r").startswith("\n") else "`;`"
    if token.type == "STRING":
        return "a string"
    return f"`{shorten(token.value)}`"


#: Tokens that may start an attribute or map entry (the key): a dozen kinds, said in words.
_KEY_STARTS = frozenset({"NAME", "STRING"} | _KEYWORD_TYPES)
_DECLARATIONS = frozenset({"IMPORT", "AGENT", "WORKFLOW"})
_WHAT_A_BLOCK_HOLDS = {
    "workflow": "an attribute, `stage`, `param`, `use`, `defaults` or `on`",
    "map": "an entry (`key = value`) or `}`",
}


def _describe_expected(expected: set[str], innermost: _Open | None = None, expression: bool = False) -> str:
    """What the parser could take here, in words a user reads ("a value", "a declaration")."""
    kinds = set(expected)
    if expression:
        kinds.discard("_NL")  # a newline is allowed inside `${...}`, never what is missing
    if "_NL" in kinds or "RBRACE" in kinds:
        kinds -= _CONTINUATIONS
    # The start of an item: the list of every token that could start one is noise.
    if innermost is None and kinds >= _DECLARATIONS:
        return "a declaration (`import`, `agent` or `workflow`)"
    if innermost is not None and kinds >= _KEY_STARTS - _CONTINUATIONS:
        return _WHAT_A_BLOCK_HOLDS.get(innermost.kind, "an attribute (`name = value`) or `}`")
    words: list[str] = []
    if "NUMBER" in kinds:  # numbers only start values
        words.append("a value")
        kinds -= _VALUE_STARTS
    for kind in sorted(kinds, key=lambda k: (k == "$END", k == "_NL", k)):
        if kind in _KEYWORD_TYPES:
            words.append(f"`{kind.lower()}`")
        elif kind == "$END" and expression:
            words.append("the end of the interpolation")
        else:
            words.append(_WORDS.get(kind, f"`{kind}`"))
    if not words:
        return "something else"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _starts_line(text: str, offset: int) -> bool:
    line_start = text.rfind("\n", 0, offset) + 1
    return _BLANK_RE.match(text, line_start).end() >= offset  # type: ignore[union-attr]


def _skip_to(lexer_state: Any, target: int) -> None:
    """Move the lexer forward to ``target`` (recovery drops the text in between)."""
    counter = lexer_state.line_ctr
    if target > counter.char_pos:
        counter.feed(lexer_state.text.text[counter.char_pos : target])


def _close_for(state: Any, token: Any, then: Sequence[Token] = ()) -> list[Token] | None:
    """The closers (and newlines) to insert so that ``token`` (and ``then``) fit, or None.

    A breadth-first search over short sequences of "close the innermost construct" and
    "end the line"; at least one closer is needed: a bare newline is not a missing `}`.
    """
    frontier: list[list[Token]] = [[]]
    for _ in range(6):
        next_frontier: list[list[Token]] = []
        for inserted in frontier:
            options = []
            closer = _open_constructs_of(state, inserted)
            if closer is not None:
                options.append(_synthetic(closer, token))
            if not inserted or inserted[-1].type != "_NL":
                options.append(_synthetic("_NL", token))
            for option in options:
                candidate = [*inserted, option]
                if not _try_feed(state, candidate):
                    continue
                closes = any(t.type in _CLOSERS for t in candidate)
                if closes and _try_feed(state, [*candidate, token, *then]):
                    return candidate
                next_frontier.append(candidate)
        frontier = next_frontier
    return None


def _open_constructs_of(state: Any, inserted: list[Token]) -> str | None:
    """The closer of the innermost construct still open after feeding ``inserted``."""
    probe = state.copy(deepcopy_values=False)
    try:
        for token in inserted:
            probe.feed_token(token)
    except Exception:
        return None
    opened = _open_constructs(probe)
    return opened[0].closer if opened else None


def _feed(state: Any, tokens: Sequence[Token]) -> None:
    for token in tokens:
        state.feed_token(token, token.type == "$END")


def _on_unexpected_characters(ctx: _Context, exc: Any) -> bool:
    text = ctx.text
    position = exc.pos_in_stream
    lexer_state = exc.interactive_parser.lexer_thread.state
    if text[position] == '"':
        end_of_line = text.find("\n", position)
        end_of_line = len(text) if end_of_line < 0 else end_of_line
        content = text[position + 1 : end_of_line].rstrip("\r")
        if position <= ctx.quiet_until and not ctx.expression:  # `1.0.0"`: one error is enough
            _recover_unterminated(exc.interactive_parser.parser_state, position, content)
            _skip_to(lexer_state, position + 1 + len(content))
            return True
        ctx.report(
            error(
                "A108" if ctx.expression else "A104",
                "unterminated string",
                ctx.span(position, position + 1 + len(content)),
                "this string is not closed on its line",
                help='add the closing `"`; a string cannot span lines (write `\\n` for a newline)',
            ),
            position,
        )
        if ctx.expression:
            return False
        _recover_unterminated(exc.interactive_parser.parser_state, position, content)
        _skip_to(lexer_state, position + 1 + len(content))
        return True
    found = _NOT_TOKEN_START_RE.match(text, position + 1)
    end = found.end() if found is not None else position + 1
    characters = text[position : min(end, position + 40)]
    shown = characters if characters.isprintable() else characters.encode("unicode_escape").decode("ascii")
    if end - position > len(characters):
        shown += "..."
    plural = "s" if end - position > 1 else ""
    if position <= ctx.quiet_until and not ctx.expression:
        # A consequence of an error reported on this line: drop the rest of the line, as
        # panic mode does (one `@` at a time cost 50 µs each on a line of millions).
        end_of_line = text.find("\n", position)
        end_of_line = len(text) if end_of_line < 0 else end_of_line
        closer, _ = _line_brackets(text, position, end_of_line)
        if closer is None or not _opened_on_line(exc.interactive_parser.parser_state, text, position):
            closer = end_of_line
        _skip_to(lexer_state, closer)
        return True
    if position > ctx.quiet_until:
        ctx.report(
            error(
                "A108" if ctx.expression else "A101",
                f"unexpected character{plural} `{shorten(shown)}`",
                ctx.span(position, end),
                "not part of the language here",
                help="remove it, or put it inside a string",
            ),
            position,
        )
    if ctx.expression:
        return False
    _skip_to(lexer_state, end)
    return True


def _recover_unterminated(state: Any, position: int, content: str) -> None:
    """Go on after a string left open at ``position``, as if it ended with its line.

    The string is read as closed (so the attribute holding it survives). A closer it
    swallowed (`run = "x }`) still closes its construct, so the block is not reported
    as unclosed later. If what the line started cannot end at the newline (`use t(a =
    "x) as b`), the line's items are dropped, keeping blocks the line opened.
    """
    text = _context().text
    line_start = text.rfind("\n", 0, position) + 1
    quote = Token("STRING", '"' + content.replace('"', "") + '"', position, 0, 0)
    quote.end_pos = position + 1 + len(content)
    if _try_feed(state, [quote]):
        state.feed_token(quote)
    # The closers still needed: those of the open constructs that the rest of the file
    # does not close. `run = "echo }` followed by the stage's `}` swallowed nothing.
    # (They count even when the string had no place: `(service = auth") as x`.)
    needed = len(_open_constructs(state))
    missing = needed - _closers_ahead(text, quote.end_pos or 0, needed)
    for kind in _unmatched_closers(content)[: max(missing, 0)]:
        closer = _synthetic(kind, quote)
        if not _try_feed(state, [closer]):
            break
        state.feed_token(closer)
        missing -= 1
    # `run = ["a", "b` then `}`: the list opened on this line was meant to end on it.
    for opened in _open_constructs(state)[: max(missing, 0)]:
        closer = _synthetic(opened.closer, quote)
        same_line = opened.span.start >= line_start and opened.closer != "RBRACE"
        if not same_line or not _try_feed(state, [closer]):
            break
        state.feed_token(closer)
    if not _try_feed(state, [_synthetic("_NL", quote)]):
        _drop_line(state, line_start)


def _start_of(value: Any) -> int | None:
    """Source offset where a value on the parser stack starts (None if unknown)."""
    if isinstance(value, Token):
        return value.start_pos
    span = getattr(value, "span", None)
    if isinstance(span, Span):
        return span.start
    if isinstance(value, tuple) and value:
        return _start_of(value[0])
    return None


def _drop_line(state: Any, line_start: int) -> None:
    """Pop what the current line put on the parser stack, down to a block it opened."""
    values = state.value_stack
    stack = state.state_stack
    while len(stack) > 1 and values:
        value = values[-1]
        start = _start_of(value)
        if start is None or start < line_start or (isinstance(value, Token) and value.type == "LBRACE"):
            return
        stack.pop()
        values.pop()


# Strings (closed or not), comments and brackets: what a bracket count must see.
_BRACKETS_RE = re.compile(r'"(?:[^"\\\n]++|\\.)*+"?|#[^\n]*+|[{}\[\]()]')
_ESCAPE_OR_BRACKET_RE = re.compile(r"\\.|[{}\[\]()]")
_LOOKAHEAD = 1_000_000
_OPENER_OF = {"}": "{", "]": "[", ")": "("}
_CLOSER_KIND = {"}": "RBRACE", "]": "RBRACK", ")": "RPAR"}


def _unmatched_closers(content: str) -> list[str]:
    """The closers in the text of an unterminated string that close nothing opened in it."""
    opened: list[str] = []
    found: list[str] = []
    for match in _ESCAPE_OR_BRACKET_RE.finditer(content):
        char = match.group()
        if char in "{[(":
            opened.append(char)
        elif char in _OPENER_OF:
            if opened and opened[-1] == _OPENER_OF[char]:
                opened.pop()
            elif not opened:
                found.append(_CLOSER_KIND[char])
    return found


def _closers_ahead(text: str, start: int, limit: int) -> int:
    """How many closers from ``start`` on close something opened before it (at most ``limit``).

    Only the next MB is read (recovery may ask up to MAX_ERRORS times); beyond it, the
    file is assumed to close everything.
    """
    depth = 0
    count = 0
    if limit <= 0:
        return 0
    stop = min(len(text), start + _LOOKAHEAD)
    for match in _BRACKETS_RE.finditer(text, start, stop):
        char = match.group()
        if len(char) != 1 or char in "\"#":
            continue
        if char in "{[(":
            depth += 1
        elif depth:
            depth -= 1
        else:
            count += 1
            if count >= limit:
                break
    return count if stop == len(text) else limit


def _line_brackets(text: str, start: int, stop: int) -> tuple[int | None, list[int]]:
    """Scan ``text[start:stop]``: the first closer that closes nothing opened in it (or
    None), and the openers it leaves open."""
    opened: list[int] = []
    for match in _BRACKETS_RE.finditer(text, start, stop):
        char = match.group()
        if len(char) != 1 or char in "\"#":
            continue
        if char in "{[(":
            opened.append(match.start())
        elif opened:
            if text[opened[-1]] == _OPENER_OF[char]:
                opened.pop()
        else:
            return match.start(), []
    return None, opened


def _end_of_block(text: str, opener: int) -> int:
    """The offset just after the bracket that closes the one at ``opener`` (or the end)."""
    depth = 0
    for match in _BRACKETS_RE.finditer(text, opener):
        char = match.group()
        if len(char) != 1 or char in "\"#":
            continue
        depth += 1 if char in "{[(" else -1
        if depth == 0:
            return match.end()
    return len(text)


def _on_unexpected_token(ctx: _Context, exc: Any) -> bool:
    token: Any = exc.token
    parser = exc.interactive_parser
    state = parser.parser_state
    text = ctx.text
    table = state.parse_conf.states
    expected = {kind for kind in table[state.position] if kind.isupper() or kind == "$END" or kind == "_NL"}
    found = _describe_found(token, ctx.expression)
    at: int = token.start_pos if token.type != "$END" else len(text)
    if token.type == "$END":
        token = _synthetic("$END", token)
        token.start_pos = token.end_pos = len(text)

    # A keyword where a name belongs: report it, then read it as the name it was meant to be.
    if token.type in _KEYWORD_TYPES and "NAME" in expected and not ctx.expression:
        ctx.report(
            error(
                "A107",
                f"`{token.value}` is a keyword and cannot be used as a name",
                ctx.token_span(token),
                "keyword",
                help=f"choose another name, such as `{token.value}_`",
            ),
            at,
        )
        name = Token("NAME", token.value, token.start_pos, token.line, token.column, token.end_line,
                     token.end_column, token.end_pos)
        state.feed_token(name)
        return True

    opened = _open_constructs(state)
    # A block keyword or a new line where something is still open: a closer is missing.
    starts_item = token.type in _ITEM_KEYWORDS or _starts_line(text, token.start_pos)
    if opened and (token.type == "$END" or starts_item):
        inserted = _close_for(state, token)
        if inserted is not None and any(t.type in _CLOSERS for t in inserted):
            # A list or `(` with an error inside lost its closer to that error's recovery.
            consequence = opened[0].closer != "RBRACE" and ctx.last_reported > opened[0].span.start
            if not consequence:
                ctx.report(_unclosed(ctx, opened[0], token, found), at)
            if ctx.expression:
                return False
            _feed(state, inserted)
            if token.type != "$END":
                state.feed_token(token)
            return True
    # `stage b {` inside an unclosed stage: `stage` was read as an attribute name.
    keyword: Any = state.value_stack[-1] if state.value_stack else None
    if (
        opened
        and getattr(keyword, "type", None) in _ITEM_KEYWORDS
        and expected == {"EQUAL"}
        and _starts_line(text, keyword.start_pos)
        and _opens_block_if_needed(text, keyword)
    ):
        backed_up = state.copy(deepcopy_values=False)
        backed_up.state_stack.pop()
        backed_up.value_stack.pop()
        inserted = _close_for(backed_up, keyword, [token])
        if inserted is not None and any(t.type in _CLOSERS for t in inserted) and _try_feed(
            backed_up, [*inserted, keyword, token]
        ):
            ctx.report(_unclosed(ctx, _open_constructs(backed_up)[0], keyword, f"`{keyword.value}`"),
                       keyword.start_pos)
            state.state_stack[:] = backed_up.state_stack
            state.value_stack[:] = backed_up.value_stack
            _feed(state, [*inserted, keyword, token])
            return True

    if at > ctx.quiet_until or token.type == "$END":
        ctx.report(_unexpected(ctx, token, expected, found, state), at)
    if ctx.expression:
        return False

    if token.type == "$END":
        _finish(state, token)
        return True

    # `stage build` (or `inputs =`) at the end of a line: the `{` is missing and the
    # block follows; for a value, only if the rest of the file has a `}` to spare.
    if token.type == "_NL" and "LBRACE" in expected:
        needed = len(opened) + 1
        if "NUMBER" not in expected or _closers_ahead(text, token.start_pos, needed) >= needed:
            brace = _synthetic("LBRACE", token)
            if _try_feed(state, [brace, token]):
                _feed(state, [brace, token])
                return True

    # `stage test after {`: drop the word or two before a block's `{` that make it
    # unexpected, and read the block, so that its `}` is not a second error.
    if token.type == "LBRACE" and _repair_header(state, token, text.rfind("\n", 0, token.start_pos) + 1):
        return True

    # Panic mode: back up to the start of the current item (a state that can take a
    # closer), drop the token, and skip the rest of the line (or, at top level, to the
    # next top-level keyword).
    values = state.value_stack
    stack = state.state_stack
    while (
        len(stack) > 1
        and not (_CLOSERS & set(table[stack[-1]]))
        and isinstance(values[-1], Token)
        and values[-1].type != "_NL"
    ):
        stack.pop()
        values.pop()
    if _try_feed(state, [token]) and token.type in (_CLOSERS | {"_NL"}):
        state.feed_token(token)
        return True
    lexer_state = parser.lexer_thread.state
    if not _open_constructs(state):
        match = _DECLARATION_RE.search(text, token.end_pos)
        target = match.start() if match else len(text)
    elif token.type != "_NL":
        # The rest of the line, but not a closer of something opened before it (`stage
        # s { agent worker }`), and with any block the line opens (`stage {`).
        end_of_line = text.find("\n", token.end_pos)
        end_of_line = len(text) if end_of_line < 0 else end_of_line
        closer, left_open = _line_brackets(text, token.start_pos, end_of_line)
        if closer is not None and _opened_on_line(state, text, token.start_pos):
            target = closer
        elif left_open and text[left_open[-1]] == "{" and _BLANK_OR_COMMENT_RE.match(
            text, left_open[-1] + 1, end_of_line
        ).end() == end_of_line:  # type: ignore[union-attr]
            target = _end_of_block(text, left_open[0])  # a block header: skip its block
        else:
            target = end_of_line
    else:
        return True
    # What was skipped, and the newline that ends it, are part of the same mistake.
    ctx.quiet_until = max(ctx.quiet_until, target)
    _skip_to(lexer_state, target)
    return True


def _opened_on_line(state: Any, text: str, offset: int) -> bool:
    """Was the innermost open construct opened on the line of ``offset``?

    Only then is a stray closer later on the line its closer (`stage s { agent worker }`);
    in `inputs = a = 1 }` the `{` of the map is the mistake, and the `}` is not the
    stage's.
    """
    opened = _open_constructs(state)
    return bool(opened) and opened[0].span.start >= text.rfind("\n", 0, offset) + 1


def _opens_block_if_needed(text: str, keyword: Any) -> bool:
    """Does the line of a block keyword (`stage`, `defaults`, `on`) open its block?

    Without a `{`, `stage worker` (or `agent worker`) inside a stage is a mistyped
    attribute, not a missing `}` before a new block.
    """
    if keyword.type not in {"STAGE", "DEFAULTS", "ON", "WORKFLOW", "AGENT"}:
        return True
    end_of_line = text.find("\n", keyword.end_pos)
    _, left_open = _line_brackets(text, keyword.end_pos, len(text) if end_of_line < 0 else end_of_line)
    return any(text[offset] == "{" for offset in left_open)


def _repair_header(state: Any, brace: Any, line_start: int) -> bool:
    """Drop up to two tokens of this line before ``brace`` if that lets the parser take it."""
    for count in (1, 2):
        dropped = state.value_stack[-count:]
        on_this_line = all(
            isinstance(value, Token)
            and value.type in {"AFTER", "COMMA"}
            and (value.start_pos or 0) >= line_start
            for value in dropped
        )
        if len(state.value_stack) <= count or not on_this_line:
            return False
        backed_up = state.copy(deepcopy_values=False)
        del backed_up.state_stack[-count:]
        del backed_up.value_stack[-count:]
        if _try_feed(backed_up, [brace]):
            state.state_stack[:] = backed_up.state_stack
            state.value_stack[:] = backed_up.value_stack
            state.feed_token(brace)
            return True
    return False


def _finish(state: Any, at: Any) -> None:
    """At the end of the file, close whatever is open so the parse can complete."""
    end = _synthetic("$END", at)
    for _ in range(4 * MAX_DEPTH + 8):
        if _try_feed(state, [end]):
            return
        opened = _open_constructs(state)
        candidates = ([_synthetic(opened[0].closer, at)] if opened else []) + [_synthetic("_NL", at)]
        for candidate in candidates:
            if _try_feed(state, [candidate]):
                state.feed_token(candidate)
                break
        else:
            if len(state.state_stack) <= 1:
                return
            state.state_stack.pop()
            state.value_stack.pop()


_ITEM_STARTERS: dict[str | None, tuple[str, ...]] = {
    None: ("agent", "import", "workflow"),
    "workflow": ("defaults", "on", "param", "stage", "use"),
}


def _unexpected(ctx: _Context, token: Any, expected: set[str], found: str, state: Any) -> Diagnostic:
    values = state.value_stack
    previous = values[-1] if values and isinstance(values[-1], Token) else None
    opened = _open_constructs(state)
    wanted = _describe_expected(expected, opened[0] if opened else None, ctx.expression)
    message = f"expected {wanted}"
    names_something = previous is not None and (previous.type == "NAME" or previous.type in _KEYWORD_TYPES)
    if previous is not None and names_something and bool(expected & {"EQUAL", "NAME"}):
        message += f" after `{shorten(previous.value)}`"
    hint: str | None = None
    keywords = sorted(kind.lower() for kind in expected if kind in _KEYWORD_TYPES)
    if token.type == "NAME" and keywords and len(token.value) <= 40:  # difflib is quadratic
        close = suggest(token.value, keywords)
        if close:
            hint = f"did you mean `{close[0]}`?"
    if (
        hint is None
        and previous is not None
        and previous.type == "NAME"
        and expected == {"EQUAL"}
        and len(previous.value) <= 40
    ):
        # Only the keywords that can start an item where we are: a stage holds attributes only.
        where = opened[0].kind if opened else None
        starters = _ITEM_STARTERS.get(where, ())
        close = suggest(previous.value, starters)
        if close:
            hint = f"did you mean `{close[0]}`?"
    if hint is None and not opened and token.type in _ITEM_KEYWORDS - _DECLARATIONS:
        hint = f"`{token.value}` goes inside a workflow: does an extra `}}` above close it early?"
    if ctx.expression:
        if token.type == "$END":
            message = f"incomplete expression: expected {wanted} before `}}`"
        elif "NUMBER" not in expected:
            message = f"unexpected {found}"
        if not message.startswith("incomplete"):
            message = f"invalid expression: {message}"
        return error("A108", message, ctx.token_span(token), f"found {found}",
                     help=hint or "write `$${` for a literal `${`")
    end = token.end_pos if token.type not in {"_NL", "$END"} else token.start_pos
    return error("A102", message, ctx.span(token.start_pos, end), f"found {found}", help=hint)


# -- entry points --------------------------------------------------------------------------


def _run(ctx: _Context, start: str) -> Any:
    global _ctx
    parser = _parser()
    with _lock:
        _ctx = ctx

        def on_error(exc: UnexpectedInput) -> bool:
            if isinstance(exc, UnexpectedCharacters):
                return _on_unexpected_characters(ctx, exc)
            if isinstance(exc, UnexpectedToken):
                return _on_unexpected_token(ctx, exc)
            return False

        collecting = gc.isenabled()
        # The parse allocates many small objects and frees none: the cyclic collector
        # would only rescan them (about 15% of the time of a large file).
        gc.disable()
        try:
            return parser.parse(ctx.text, start=start, on_error=on_error)
        except _Abort:
            return None
        except UnexpectedInput as exc:
            if not ctx.diagnostics:
                ctx.report(
                    error("A108" if ctx.expression else "A102", "invalid syntax",
                          ctx.span(getattr(exc, "pos_in_stream", 0) or 0, len(ctx.text))),
                    0,
                )
            return None
        except RecursionError:
            ctx.diagnostics.append(error("A003", "input nested too deeply", ctx.span(0, 0)))
            return None
        finally:
            _ctx = None
            if collecting:
                gc.enable()


def parse_ast(source: SourceFile) -> tuple[ast.File | None, list[Diagnostic]]:
    """Parse a whole ``.alfred`` file. The tree is None only when nothing could be recovered.

    With syntax errors, the tree holds what could be read around them (for tools); the
    compiler does not go on with such a tree.
    """
    ctx = _Context(source=source, text=source.text)
    tree = _run(ctx, "file")
    if isinstance(tree, ast.File):
        tree = ast.File(items=tree.items, comments=tuple(sorted(ctx.comments, key=lambda c: c.span.start)),
                        span=tree.span)
    else:
        tree = None
    diagnostics = sorted(ctx.diagnostics, key=lambda d: d.primary.span.start if d.primary else 0)
    return tree, diagnostics


def _expression(
    text: str, where: Span, base: int | None, offsets: Sequence[int] | None
) -> tuple[Expr | None, list[Diagnostic]]:
    ctx = _Context(
        source=where.source,
        text=text,
        base=base or 0,
        offsets=offsets,
        fixed=where if base is None and offsets is None else None,
        expression=True,
    )
    if not text.strip():
        ctx.diagnostics.append(error("A108", "empty interpolation `${}`", where, "expected an expression"))
        return None, ctx.diagnostics
    result = _run(ctx, "expression")
    if ctx.diagnostics:
        return None, ctx.diagnostics
    if result is None:
        return None, [error("A108", "a list or map is not an expression", where)]
    assert isinstance(result, Literal | Ref | Unary | Binary)
    return result, []


def parse_expression(
    text: str, where: Span, content_offset: int | None = None
) -> tuple[Expr | None, list[Diagnostic]]:
    """Parse the text of an expression (the inside of ``${...}``).

    With ``content_offset``, ``text[i]`` is at source offset ``content_offset + i`` and
    node spans are exact; otherwise every node gets the span ``where``.
    """
    return _expression(text, where, content_offset, None)


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` that ends an interpolation whose body starts at ``start``; -1 if none."""
    index = start
    length = len(text)
    while index < length:
        char = text[index]
        if char == "}":
            return index
        if char == '"':
            index += 1
            while index < length and text[index] != '"':
                index += 2 if text[index] == "\\" else 1
        index += 1
    return -1


def template_parts(
    text: str, where: Span, offsets: Callable[[int], int] | None, offset_list: Sequence[int] | None = None
) -> tuple[Template | None, list[Diagnostic]]:
    """Split ``text`` on ``${...}``; ``offsets(i)`` is the source offset of ``text[i]``."""
    parts: list[str | Expr] = []
    diagnostics: list[Diagnostic] = []
    literal: list[str] = []
    index = 0
    while True:
        dollar = text.find("$", index)
        if dollar < 0:
            literal.append(text[index:])
            break
        if text.startswith("$${", dollar):
            literal.append(text[index:dollar] + "${")
            index = dollar + 3
            continue
        if not text.startswith("${", dollar):
            literal.append(text[index : dollar + 1])
            index = dollar + 1
            continue
        literal.append(text[index:dollar])
        close = _closing_brace(text, dollar + 2)
        if close < 0:
            span = where if offsets is None else Span(where.source, offsets(dollar), offsets(len(text)))
            diagnostics.append(
                error("A108", "unterminated interpolation: `${` has no closing `}`", span, "opened here",
                      help="add the `}`, or write `$${` for a literal `${`")
            )
            return None, diagnostics
        joined = "".join(literal)
        if joined:
            parts.append(joined)
        literal = []
        body = text[dollar + 2 : close]
        if offset_list is not None:
            expr, problems = _expression(body, where, None, offset_list[dollar + 2 : close + 1])
        elif offsets is not None:
            expr, problems = _expression(body, where, offsets(dollar + 2), None)
        else:
            expr, problems = _expression(body, where, None, None)
        if expr is None and not problems:
            problems = [error("A108", "invalid interpolation", where)]
        if problems:
            diagnostics.extend(problems)
        elif expr is not None:
            parts.append(expr)
        index = close + 1
    joined = "".join(literal)
    if joined:
        parts.append(joined)
    if diagnostics:
        return None, diagnostics
    return Template(parts=tuple(parts), span=where), []


def parse_template(
    text: str, where: Span, content_offset: int | None = None
) -> tuple[Template | None, list[Diagnostic]]:
    """Split a string on ``${...}`` into literal text and expressions.

    ``$${`` is a literal ``${``; any other ``$`` is literal. With ``content_offset``,
    ``text[i]`` is at source offset ``content_offset + i`` and spans are exact.
    """
    if content_offset is None:
        return template_parts(text, where, None)
    base = content_offset
    return template_parts(text, where, lambda i: base + i)
