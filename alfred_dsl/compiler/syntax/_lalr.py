"""The Lark parser of ``grammar/alfred.lark`` and the patch of Lark's LALR loop.

:func:`_parser` builds the one parser of the process (cached on disk by Lark);
:func:`_install_fast_loop` replaces Lark's loop by one over a pre-digested table. A large
file with no problem is read by the fast path derived from this parser (``_fast.py``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedInput

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
