"""The Lark parser of ``grammar/alfred.lark`` and the patch of Lark's LALR loop.

:func:`_parser` builds the one parser of the process (cached on disk by Lark);
:func:`_install_fast_loop` replaces Lark's loop by one over a digested table. A large
file with no problem is read by the fast path derived from this parser (``_fast.py``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedInput
from lark.parsers.lalr_analysis import Shift

from ..._resources import grammar_path
from ._builder import _Builder
from ._lexer import _LEXER_CALLBACKS, _WordsEverywhere


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


class _DigestedTable(dict[Any, dict[str, tuple[bool, Any]]]):
    """The actions of each LALR state, digested when the parse first reaches the state.

    A state's entry maps a terminal or rule name to ``(True, next state)`` for a shift or
    ``(False, (size, rule name, callback))`` for a reduction. A small file reaches a few
    dozen of the table's ~1,100 states: digesting all of them up front cost more than its parse.
    """

    def __init__(self, states: dict[Any, dict[str, tuple[Any, Any]]], callbacks: dict[Any, Any]) -> None:
        super().__init__()
        self._states = states
        self._callbacks = callbacks

    def __missing__(self, state: Any) -> dict[str, tuple[bool, Any]]:
        callbacks = self._callbacks
        digested = self[state] = {
            kind: (True, arg)
            if action is Shift
            else (False, (len(arg.expansion), arg.origin.name, callbacks[arg]))
            for kind, (action, arg) in self._states[state].items()
        }
        return digested


#: The digested table of each parse table, keyed by the id of its states (which the table
#: holds, so the id is not reused while the entry lives; one parser per process).
_TABLES: dict[int, _DigestedTable] = {}


def digested_table(lark: Lark) -> _DigestedTable | None:
    """The digested table of a parser of :func:`_parser`, once a parse has begun (for tests)."""
    return _TABLES.get(id(lark.parser.parser.parser.parse_table.states))


def _install_fast_loop(lark: Lark) -> None:
    """Replace Lark's LALR main loop by the same loop over a digested table.

    Lark calls ``ParserState.feed_token`` per token and looks up each rule's size, name
    and callback per reduction; here the table holds them directly. Errors fall back to
    ``feed_token``, so recovery (``on_error``, the interactive parser) is Lark's own.
    """
    from lark.parsers.lalr_interactive_parser import InteractiveParser

    core = lark.parser.parser.parser  # ParsingFrontend -> LALR_Parser -> _Parser

    def digest(conf: Any) -> _DigestedTable:
        table = _TABLES.get(id(conf.states))
        if table is None:
            table = _TABLES[id(conf.states)] = _DigestedTable(conf.states, conf.callbacks)
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
