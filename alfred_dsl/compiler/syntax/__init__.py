"""Parsing ``.alfred`` text into the syntax tree of :mod:`._ast`, with error recovery.

One Lark LALR parser is built per process from ``grammar/alfred.lark`` and cached on disk
by Lark (``cache=True``), so start-up stays fast. The tree is built directly by a
transformer run inside the LALR parser: no parse tree is materialised, and spans come
from the tokens (``propagate_positions`` would cost more than the parse). The lexer is
Lark's contextual lexer (words kept whole in every state by :class:`_WordsEverywhere`; literal
checks and comments in :data:`_LEXER_CALLBACKS`), and the LALR loop runs over a
digested table (:func:`_install_fast_loop`). A large text is first read by the fast
path derived from the same parser (``_fast.py``: one master regex, the digested table, the
builder's rule methods called directly), which gives up at the first problem; the text is
then parsed again here, with recovery.

Errors never raise: they become diagnostics. After a syntax error the parser
resynchronises (it closes blocks that were left open, or drops the rest of the line, or
skips to the next top-level keyword) and keeps going, up to :data:`MAX_ERRORS` errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..._diagnostics import Diagnostic, error
from ..._expr import Binary, Expr, Literal, Ref, Template, Unary
from ..._gcpause import collector_paused
from ..._source import SourceFile, Span
from .. import _ast as ast
from . import _lexer
from ._lalr import _parser
from ._lexer import _Abort, _Context, _lock
from ._literals import KEYWORDS, MAX_DEPTH, MAX_ERRORS, classify_number, unescape
from ._recovery import _on_unexpected_characters, _on_unexpected_token

if TYPE_CHECKING:
    from . import _fast

__all__ = [
    "KEYWORDS",
    "MAX_DEPTH",
    "MAX_ERRORS",
    "classify_number",
    "parse_ast",
    "parse_exact",
    "parse_expression",
    "parse_template",
    "unescape",
]

# -- entry points --------------------------------------------------------------------------


def _run(ctx: _Context, start: str) -> Any:
    if len(ctx.text) >= _ACCELERATE_FROM:
        fast = _fast_parser(start)
        if fast is not None:
            tree = _run_fast(fast, ctx)
            if tree is not None:
                return tree
            ctx.reset()  # a problem: parsed again with error recovery, by Lark's loop
    parser = _parser()
    with _lock:
        _lexer._ctx = ctx

        def on_error(exc: UnexpectedInput) -> bool:
            if isinstance(exc, UnexpectedCharacters):
                return _on_unexpected_characters(ctx, exc)
            if isinstance(exc, UnexpectedToken):
                return _on_unexpected_token(ctx, exc)
            return False

        try:
            with collector_paused():
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
            _lexer._ctx = None


def _fast_parser(start: str) -> _fast.FastParser | None:
    from ._fast import fast_parser  # only for large texts: small ones never load it

    return fast_parser(_parser(), start)


#: Shorter texts (expressions, small files) are parsed by Lark's loop: building the
#: fast path (a regex and the digested table, ~20 ms) costs more than it saves on them.
_ACCELERATE_FROM = 20_000


def _run_fast(parser: _fast.FastParser, ctx: _Context) -> Any:
    """The tree of a text with no problem at all, else None (see ``_fast.py``)."""
    with _lock:
        _lexer._ctx = ctx
        try:
            with collector_paused():
                tree = parser.parse(ctx.text)
        except Exception:  # a diagnostic that stops the parse (_Abort), or anything else: Lark's loop decides
            return None
        finally:
            _lexer._ctx = None
    return None if ctx.diagnostics else tree


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


def parse_exact(source: SourceFile, text: str) -> ast.File | None:
    """The tree of ``text`` read as a text of ``source`` (its spans are offsets into ``text``),
    when the fast path reads it with no problem at all; else None, with no diagnostics (the
    caller parses the whole file, which reports them). Comments are not kept.

    ``compiler/_split.py`` reads the two halves of a large file with it, each made so that
    the offsets of its real part are those of the file.
    """
    fast = _fast_parser("file")
    if fast is None:
        return None
    tree = _run_fast(fast, _Context(source=source, text=text))
    return tree if isinstance(tree, ast.File) else None


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
