"""The fast path of a large file with no problem: one master regex and the LALR table, in one loop.

Everything here is derived from the Lark object of ``grammar/alfred.lark`` (:func:`._lalr._parser`),
never written by hand: the terminals and their order, the keyword retyping, the LALR table,
and for each rule which children reach the tree builder (Lark's own child filters). A file
is read here only when nothing goes wrong: at the first problem (a character no terminal
matches, a token the table has no action for, a diagnostic from a lexer callback or the
builder, anything raised) :func:`parse` returns None and the text is parsed again by Lark's
loop, which recovers and reports (``syntax._run``).

Why it takes less than half the CPU of Lark's loop (and of lark-cython's, which it replaced):

- One regex of all terminals in Lark's order, scanned once over the text, with the
  whitespace Lark ignores folded in front of each token (half as many matches), instead of
  a per-state regex, a ``Token`` and line/column counting per match.
- Keywords retyped by a dict lookup of the text of NAME, not by a second regex.
- Tokens are :class:`._lexer.FastToken` (four slots), and those no rule keeps (``_NL``) are
  not made at all.
- Reductions call the builder's rule methods directly with the children Lark's
  ``ChildFilter`` would pass (one generated function per rule); inlined rules (``_rule``
  and Lark's ``__x_star_n``) are plain lists spliced into their parent, as Lark splices
  their ``Tree``.

**A basic lexer gives the contextual lexer's tokens here.** Lark's contextual lexer offers
each parser state only the terminals that state has an action for (plus the ignored ones
and ``_WordsEverywhere.always_accept``), in the same order as the full list. Say the full
list's regex reads terminal T at some position (the first terminal in that order that
matches there). When this parse goes on, T has an action in the current state, so T is in
that state's lexer too; every terminal before T in the state's list is also before T in
the full list and does not match here, so the state's lexer reads T, with the same match.
A token with no action ends the fast path (return None). So a parse that succeeds here
read exactly the contextual lexer's tokens, made exactly Lark's reductions and called the
builder with exactly the same children: the same tree, spans, comments and (none)
diagnostics.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

from lark import Lark, Transformer, Tree
from lark.lexer import _create_unless
from lark.parse_tree_builder import ChildFilterLALR, ChildFilterLALR_NoPlaceholders
from lark.parsers.lalr_analysis import Shift

from ._lexer import _CALLBACK_ONLY_WITH, FastToken, _WordsEverywhere

# -- what a character can start -----------------------------------------------------------


def _first_chars(pattern: str) -> frozenset[str] | None:
    """The characters a match of ``pattern`` can start with; None when not known (any)."""
    try:
        from re import _constants as sre, _parser  # type: ignore[attr-defined, unused-ignore]

        return _first_of(_parser.parse(pattern), sre)
    except Exception:  # a regex feature not understood below: anything may start it
        return None


def _first_of(items: Any, sre: Any) -> frozenset[str] | None:
    chars: set[str] = set()
    for op, av in items:
        if op is sre.LITERAL:
            return frozenset(chars | {chr(av)})
        if op is sre.IN:
            for kind, arg in av:
                if kind is sre.LITERAL:
                    chars.add(chr(arg))
                elif kind is sre.RANGE:
                    chars.update(map(chr, range(arg[0], arg[1] + 1)))
                else:  # NEGATE, CATEGORY: too many to list
                    return None
            return frozenset(chars)
        if op is sre.SUBPATTERN:
            subs, nullable = [av[-1]], av[-1].getwidth()[0] == 0
        elif op is sre.BRANCH:
            subs = av[1]
            nullable = any(sub.getwidth()[0] == 0 for sub in subs)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            subs, nullable = [av[2]], av[0] == 0 or av[2].getwidth()[0] == 0
        elif op is sre.ATOMIC_GROUP:
            subs, nullable = [av], av.getwidth()[0] == 0
        else:  # lookarounds, anchors, ANY, NOT_LITERAL...: not known
            return None
        for sub in subs:
            first = _first_of(sub, sre)
            if first is None:
                return None
            chars |= first
        if not nullable:
            return frozenset(chars)
    return frozenset(chars)


# -- the lexer ---------------------------------------------------------------------------


class _Unsupported(Exception):
    """The grammar uses something this path does not reproduce: no fast path (Lark's loop reads all)."""


def _lexer(lark: Lark) -> tuple[re.Pattern[str], list[str], dict[str, str]]:
    """The master regex (ignored whitespace, then a group per terminal), each group's kind, the keywords."""
    conf = lark.lexer_conf
    if conf.g_regex_flags or conf.use_bytes or not isinstance(lark.options.postlex, _WordsEverywhere):
        raise _Unsupported("regex flags, bytes or a post-lexer that changes the stream")
    # Lark's own order (BasicLexer) and keyword folding (_create_unless).
    terminals = sorted(
        conf.terminals, key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name)
    )
    terminals, unless = _create_unless(  # type: ignore[no-untyped-call]
        terminals, conf.g_regex_flags, re, False
    )
    keywords: dict[str, str] = {}
    for name, callback in unless.items():
        if name != "NAME":
            raise _Unsupported(f"keywords folded into {name}")
        for keyword in callback.scanner.terminals:
            if keyword.pattern.flags or any(t.name == keyword.name for t in terminals):
                raise _Unsupported(f"keyword {keyword.name} with flags or not folded")
            keywords[keyword.pattern.value] = keyword.name
    # Ignored terminals without a callback (whitespace) are matched in front of the next
    # token. Lark would read them as their own token at the same place only if no other
    # terminal can start where they match: checked here on their first characters.
    folded = [t for t in terminals if t.name in conf.ignore and t.name not in conf.callbacks]
    kept = [t for t in terminals if t not in folded]
    folded_first: set[str] = set()
    for terminal in folded:
        first = _first_chars(terminal.pattern.to_regexp())
        if first is None:
            raise _Unsupported(f"the first characters of {terminal.name} are unknown")
        folded_first |= first
    for terminal in kept:
        first = _first_chars(terminal.pattern.to_regexp())
        if first is None or first & folded_first:
            raise _Unsupported(f"{terminal.name} may start where ignored whitespace does")
    blank = "|".join(t.pattern.to_regexp() for t in folded)
    prefix = f"(?:{blank})*" if folded else ""
    if re.fullmatch(r"\[[^\[\]\\]*\]\+", blank):  # `[ \t\f]+`: `[ \t\f]*`, the same and a little faster
        prefix = blank[:-1] + "*"
    master = re.compile(prefix + "(?:" + "|".join(f"({t.pattern.to_regexp()})" for t in kept) + ")")
    kinds = [""] * (master.groups + 1)
    group = 1
    for terminal in kept:  # a terminal's own groups come after its outer group
        kinds[group] = terminal.name
        group += re.compile(terminal.pattern.to_regexp()).groups + 1
    return master, kinds, keywords


# -- the reductions ----------------------------------------------------------------------


def _reducer(rule: Any, callback: Any) -> Callable[[list[Any]], Any]:
    """The function of a reduction: the rule's children -> its value."""
    if isinstance(callback, ChildFilterLALR):
        include = list(callback.to_include)
        append_none = callback.append_none
        builder = callback.node_builder
    elif isinstance(callback, ChildFilterLALR_NoPlaceholders):
        include = [(index, expand, 0) for index, expand in callback.to_include]
        append_none = 0
        builder = callback.node_builder
    else:
        include = [(index, False, 0) for index in range(len(rule.expansion))]
        append_none = 0
        builder = callback
    # A rule with no method of the builder gets Lark's default callback: the transformer's
    # __default__ (Transformer's own: a Tree) or the tree class itself.
    inline = (
        isinstance(builder, partial)
        and (builder.func is Tree or builder.func.__name__ == "default_callback")
        and builder.args[0].startswith("_")
    )
    method = hasattr(builder, "__self__") and builder.__name__ == (rule.alias or rule.origin.name)
    if not inline and not method:
        raise _Unsupported(f"rule {rule.origin.name}: neither inlined nor built by the builder")
    # The body builds the list ChildFilter builds; an inlined rule's value is that list
    # (Lark's Tree of it, spliced by the parent). As in ChildFilterLALR, a list spliced
    # first is extended in place: left-recursive repetitions stay linear.
    lines: list[str] = []
    items: list[str] = []
    reused = False
    for position, (index, expand, nones) in enumerate(include):
        items.extend(["None"] * nones)
        if expand and position == 0 and nones == 0:
            lines.append(f"f = c[{index}]")
            reused = True
        else:
            items.append(f"*c[{index}]" if expand else f"c[{index}]")
    items.extend(["None"] * append_none)
    if reused:
        if len(items) == 1 and not items[0].startswith("*"):
            lines.append(f"f.append({items[0]})")
        elif items:
            lines.append(f"f += [{', '.join(items)}]")
        value = "f"
    else:
        value = f"[{', '.join(items)}]"
    lines.append(f"return {value}" if inline else f"return build({value})")
    source = "def reduce(c):\n" + "".join(f"    {line}\n" for line in lines)
    namespace: dict[str, Any] = {"build": None if inline else builder}
    exec(compile(source, f"<reduce {rule.origin.name}>", "exec"), namespace)  # made from Lark's filters
    reduce: Callable[[list[Any]], Any] = namespace["reduce"]
    return reduce


class _Tables:
    """The LALR table of one start symbol, digested.

    Symbols (terminals, rules, and ``$UNKNOWN`` for a character no terminal matches) are
    numbered; ``actions[state][symbol]`` is the target state of a shift (>= 0), ``~rule``
    for a reduction (``rules[rule]``: size, function, rule symbol), or None (an error).
    """

    def __init__(self, lark: Lark, start: str) -> None:
        core = lark.parser.parser.parser  # ParsingFrontend -> LALR_Parser -> _Parser
        table = core.parse_table
        callbacks = core.callbacks
        if any(isinstance(key, str) for key in callbacks):
            raise _Unsupported("terminal callbacks of the transformer")
        transformer = lark.options.transformer
        if transformer is None or type(transformer).__default__ is not Transformer.__default__:
            raise _Unsupported("no transformer, or one with its own __default__")
        self.start_state: int = table.start_states[start]
        self.end_state: int = table.end_states[start]
        names = sorted({kind for actions in table.states.values() for kind in actions} | {"$UNKNOWN"})
        self.symbols = {name: number for number, name in enumerate(names)}
        self.names = names
        rules: dict[Any, int] = {}
        self.rules: list[tuple[int, Callable[[list[Any]], Any], int]] = []
        kept_terminals: set[str] = set()
        self.actions: list[list[int | None]] = [[None] * len(names) for _ in range(max(table.states) + 1)]
        for state, actions in table.states.items():
            digested = self.actions[state]
            for kind, (action, arg) in actions.items():
                if action is Shift:
                    digested[self.symbols[kind]] = arg
                    continue
                number = rules.get(arg)
                if number is None:
                    reduce = _reducer(arg, callbacks[arg])
                    number = rules[arg] = len(self.rules)
                    self.rules.append((len(arg.expansion), reduce, self.symbols[arg.origin.name]))
                    kept_terminals.update(
                        sym.name for position, sym in enumerate(arg.expansion)
                        if sym.is_term and _kept(callbacks[arg], position)
                    )
                digested[self.symbols[kind]] = ~number
        #: Terminals some rule passes to the builder: tokens of the others are never made.
        self.kept_terminals = frozenset(kept_terminals)
        # Accepting is a shift of $END from the end state (whose row is empty) into a state
        # with no action: the end of the text goes through the loop like any token, and the
        # loop needs no test of its own for it (Lark's tests after each reduction).
        self.accept_state = len(self.actions)
        self.actions.append([None] * len(names))
        if self.actions[self.end_state][self.symbols["$END"]] is not None:
            raise _Unsupported("an action on $END in the end state")
        self.actions[self.end_state][self.symbols["$END"]] = self.accept_state


def _kept(callback: Any, position: int) -> bool:
    if isinstance(callback, ChildFilterLALR | ChildFilterLALR_NoPlaceholders):
        return any(item[0] == position for item in callback.to_include)
    return True


# What the loop does with the match of a group (FastParser.codes).
_NAME, _KEPT, _SPECIAL, _DROPPED = range(4)


class FastParser:
    """The fast path of one start symbol (see the module)."""

    def __init__(self, lark: Lark, start: str) -> None:
        master, kinds, keywords = _lexer(lark)
        tables = self.tables = _Tables(lark, start)
        callbacks: dict[str, Callable[[Any], Any]] = dict(lark.lexer_conf.callbacks)
        if "NAME" in callbacks or set(keywords.values()) & set(callbacks):
            raise _Unsupported("a lexer callback on names or keywords")
        ignore = frozenset(lark.lexer_conf.ignore)
        # Two more alternatives, after all terminals: the end of the text (after any
        # whitespace) and any other character, so that the scan never skips a character
        # (``finditer`` would): an unknown character has no action and ends the fast path.
        self.master = re.compile(f"{master.pattern[:-1]}|(\\Z)|([\\s\\S]))")
        kinds = [*kinds, "$END", "$UNKNOWN"]
        symbols = tables.symbols
        #: Per group of the master regex: its terminal's name and number, what to do with it.
        self.kinds = kinds
        self.numbers = [symbols.get(kind, symbols["$UNKNOWN"]) for kind in kinds]
        self.codes = [
            _NAME if kind == "NAME"
            else _SPECIAL if kind in callbacks or kind in ignore
            else _KEPT if kind in tables.kept_terminals
            else _DROPPED
            for kind in kinds
        ]
        self.keywords = {text: symbols.get(kind, symbols["$UNKNOWN"]) for text, kind in keywords.items()}
        #: kind -> (callback, the text without which it does nothing, ignored, kept).
        self.special = {
            kind: (callbacks.get(kind), _CALLBACK_ONLY_WITH.get(kind, ""), kind in ignore,
                   kind in tables.kept_terminals)
            for kind in {*callbacks, *ignore}
        }

    def parse(self, text: str) -> Any:
        """The value of the start rule for ``text``, or None at the first problem."""
        tables = self.tables
        actions = tables.actions
        rules = tables.rules
        names = tables.names
        keywords = self.keywords
        kinds = self.kinds
        numbers = self.numbers
        codes = self.codes
        special = self.special
        name_number = tables.symbols["NAME"]
        token_of = FastToken
        # The state stack is ``states + [state]``; ``values`` holds the values of all but the first.
        state = tables.start_state
        states: list[int] = []
        values: list[Any] = []
        for match in self.master.finditer(text):
            group: int = match.lastindex  # type: ignore[assignment]
            value = match.group(group)
            end = match.end()
            code = codes[group]
            if code == _NAME:
                kind = keywords.get(value, name_number)
                token: Any = token_of(names[kind], value, end - len(value), end)
            elif code == _KEPT:
                kind = numbers[group]
                token = token_of(kinds[group], value, end - len(value), end)
            elif code == _SPECIAL:
                kind = numbers[group]
                callback, only_with, ignored, keep = special[kinds[group]]
                token = None
                if callback is not None and only_with in value:
                    token = callback(token_of(kinds[group], value, end - len(value), end))
                if ignored:
                    continue
                if keep and token is None:
                    token = token_of(kinds[group], value, end - len(value), end)
            else:
                kind = numbers[group]
                token = None  # a terminal no rule keeps, the end of the text, an unknown character
            while True:
                action = actions[state][kind]
                if action is None:
                    return None
                if action >= 0:
                    states.append(state)
                    state = action
                    values.append(token)
                    break
                size, reduce, origin = rules[~action]
                if size:
                    children = values[-size:]
                    del values[-size:]
                    state = states[-size]
                    del states[-size:]
                else:
                    children = []
                values.append(reduce(children))
                states.append(state)
                state = actions[state][origin]  # type: ignore[assignment]
        # The end of the text was shifted into the accepting state: the value of the start rule is under it.
        return values[-2] if state == tables.accept_state else None


@lru_cache(maxsize=2)
def fast_parser(lark: Lark, start: str) -> FastParser | None:
    """The fast path of ``start``, or None when the grammar uses something it does not reproduce."""
    try:
        return FastParser(lark, start)
    except Exception:  # _Unsupported, or Lark's internals changed: Lark's loop reads everything
        return None
