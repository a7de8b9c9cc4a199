"""Error recovery: a syntax error becomes a diagnostic and the parse resynchronises.

It closes blocks that were left open, drops the rest of a line, or skips to the next
top-level keyword, and keeps going up to ``MAX_ERRORS`` errors. (Over 600 lines: the
recovery strategies share one set of helpers on the parser state; split apart they
would import each other.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lark import Token
from lark.exceptions import UnexpectedInput

from ..._diagnostics import Diagnostic, Edit, Label, error
from ..._source import Span
from ..._values import suggest
from ._lexer import _Context, _context
from ._literals import (
    _BLANK_OR_COMMENT_RE,
    _BLANK_RE,
    _BRACKETS_RE,
    _CLOSER_TEXT,
    _CLOSERS,
    _CONTINUATIONS,
    _DECLARATION_RE,
    _ITEM_KEYWORDS,
    _KEYWORD_TYPES,
    _NOT_TOKEN_START_RE,
    _OPENERS,
    _VALUE_STARTS,
    _WORDS,
    MAX_DEPTH,
    shorten,
)

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
    fix: tuple[Edit, ...] = ()
    keywords = sorted(kind.lower() for kind in expected if kind in _KEYWORD_TYPES)
    if token.type == "NAME" and keywords and len(token.value) <= 40:  # difflib is quadratic
        close = suggest(token.value, keywords)
        if close:
            hint = f"did you mean `{close[0]}`?"
            fix = (Edit(ctx.token_span(token), close[0]),)
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
            fix = (Edit(ctx.token_span(previous), close[0]),)
    if (
        hint is None
        and not fix
        and previous is not None
        and names_something
        and expected == {"EQUAL"}
        and token.type in _VALUE_STARTS
        and not ctx.expression
    ):
        # `name value`: only the `=` is missing (the message says so already).
        after_name = ctx.token_span(previous).end
        fix = (Edit(ctx.span(after_name, after_name), " ="),)
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
    return error("A102", message, ctx.span(token.start_pos, end), f"found {found}", help=hint, fix=fix)
