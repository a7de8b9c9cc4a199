"""Every regex of the grammar and the lexer matches the same on every supported Python.

Possessive repeats (``*+``, ``++``) and atomic groups came in CPython 3.11, and before
3.11.5 (Debian 12 ships 3.11.2) a possessive group whose iteration fails after an inner
repeat or lookaround has moved on keeps the moved position (gh-100061, gh-106052): the old
NUMBER lexed ``80`` as ``8``. Here each regex is checked against its plain backtracking
form (possessive repeats made greedy, atomic groups made plain groups) on numbers,
durations and the text around them, so any such difference fails on the Python that has it.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from re import _compiler, _constants as sre, _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

import alfred_dsl
from alfred_dsl._source import SourceFile
from alfred_dsl.compiler import _ast as ast
from alfred_dsl.compiler.syntax import parse_ast
from alfred_dsl.compiler.syntax._lalr import _parser

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo" / "pipeline.alfred"


def _grammar_regexes() -> dict[str, re.Pattern[str]]:
    """Each terminal of grammar/alfred.lark, as Lark compiled it."""
    return {
        f"grammar {terminal.name}": re.compile(terminal.pattern.to_regexp())
        for terminal in _parser().terminals
    }


def _module_regexes() -> dict[str, re.Pattern[str]]:
    """The compiled regexes kept at module level anywhere in alfred_dsl (the lexer's too)."""
    found: dict[str, re.Pattern[str]] = {}
    for module_info in pkgutil.walk_packages(alfred_dsl.__path__, "alfred_dsl."):
        if module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            items = enumerate(value.values()) if isinstance(value, dict) else [(None, value)]
            for index, item in items:
                if isinstance(item, re.Pattern) and isinstance(item.pattern, str):
                    found[f"{module_info.name}.{name}" + ("" if index is None else f"[{index}]")] = item
    return found


REGEXES = {**_grammar_regexes(), **_module_regexes()}


def _plain(pattern: Any) -> Any:
    """``pattern`` (a parsed regex) with possessive repeats greedy and atomic groups plain."""
    data: list[tuple[Any, Any]] = []
    for op, av in pattern.data:
        if op in (sre.POSSESSIVE_REPEAT, sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, body = av
            greedy_or_lazy = sre.MIN_REPEAT if op is sre.MIN_REPEAT else sre.MAX_REPEAT
            data.append((greedy_or_lazy, (low, high, _plain(body))))
        elif op is sre.ATOMIC_GROUP:
            data.append((sre.SUBPATTERN, (None, 0, 0, _plain(av))))
        elif op is sre.SUBPATTERN:
            group, add_flags, del_flags, body = av
            data.append((op, (group, add_flags, del_flags, _plain(body))))
        elif op is sre.BRANCH:
            data.append((op, (av[0], [_plain(item) for item in av[1]])))
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            data.append((op, (av[0], _plain(av[1]))))
        elif op is sre.GROUPREF_EXISTS:
            group, yes, no = av
            data.append((op, (group, _plain(yes), None if no is None else _plain(no))))
        else:
            data.append((op, av))
    return sre_parse.SubPattern(pattern.state, data)


def _ops(pattern: Any) -> Iterator[tuple[Any, Any]]:
    """Every (op, argument) in a parsed regex, nested ones included."""
    for op, av in pattern.data:
        yield op, av
        if op in (sre.POSSESSIVE_REPEAT, sre.MAX_REPEAT, sre.MIN_REPEAT):
            yield from _ops(av[2])
        elif op is sre.ATOMIC_GROUP:
            yield from _ops(av)
        elif op is sre.SUBPATTERN:
            yield from _ops(av[3])
        elif op is sre.BRANCH:
            for item in av[1]:
                yield from _ops(item)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            yield from _ops(av[1])
        elif op is sre.GROUPREF_EXISTS:
            yield from _ops(av[1])
            if av[2] is not None:
                yield from _ops(av[2])


def _parse(regex: re.Pattern[str]) -> Any:
    return sre_parse.parse(regex.pattern, regex.flags)


def _compile(parsed: Any, flags: int) -> re.Pattern[str]:
    """A regex from a parsed one (what ``re.compile`` does after parsing)."""
    compiled: re.Pattern[str] = _compiler.compile(parsed, flags)
    return compiled


PLAIN = {name: _plain(_parse(regex)) for name, regex in REGEXES.items()}
REFERENCES = {name: _compile(PLAIN[name], regex.flags) for name, regex in REGEXES.items()}
# The regexes the plain form changes (the others are their own reference).
POSSESSIVE = [
    name for name, regex in REGEXES.items()
    if {op for op, _ in _ops(_parse(regex))} & {sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP}
]

NUMBERS = [
    "0", "2", "3", "80", "007", "-3", "-0", "1_000", "2.5", "-0.5", "2.5.5", "1.", "12.34.",
    "1e5", "1e+5", "1E-5", "2.5e-3", "-2.5E+10", "1e", "1e+", "1e-", "1e-+5", "1e+-", "1ee+5",
    "1e+e+e+", "5E+x", "1e5e5", "1Ee-5", "9e+9e-9",
    "500ms", "200ms", "30s", "1s", "2m", "5m", "2h", "1h30m", "1d", "1d2h3m4s5ms", "1m30h",
    "2mss", "5x", "-2s", "1h-", "10e", "3ms+", "7_d", "1.5h",
]
JUNK = ["", " ", ",", "}", ")", "]", "\n", "\r\n", "\r", ";", " # c", "#", "=", "-", "+", "e", "E", ".", "x",
        '"', "\\", "\t", "-5", "+5"]
CONTEXT = ["", "x = ", "x=", "[", "(", "{ a = ", "-", "e", "a", '"', "\\"]
OTHER = [
    '"a\\"b"', '"\\q"', '"\\', '"unclosed', '"a\\\n"', '"\\t\\n\\\\"', '"x\\"', "\n\n  # c\n;", "\r\n\r",
    ";;", "\r\n\t;# x\r\n", "a == b", "x<=y", "a-b_c", "#only", "\\n\\q\\t\\x", "\\\\\\q", "{[()]}",
]
CORPUS = sorted({context + number + junk for context in CONTEXT for number in NUMBERS for junk in JUNK}
                | set(OTHER))


def _span(regex: re.Pattern[str], text: str, position: int) -> tuple[tuple[int, int], ...] | None:
    """The match at ``position`` as the spans of the whole match and of each group."""
    match = regex.match(text, position)
    return None if match is None else match.regs


def _differences(text: str) -> list[str]:
    """Where a regex and its plain form match differently, at any position of ``text``."""
    found = []
    for name in POSSESSIVE:
        for position in range(len(text) + 1):
            spans, plain_spans = _span(REGEXES[name], text, position), _span(REFERENCES[name], text, position)
            if spans != plain_spans:
                found.append(f"{name} at {position} of {text!r}: {spans} != plain {plain_spans}")
    return found


def test_the_regexes_under_test_include_the_grammar_and_the_lexer() -> None:
    lexer = "alfred_dsl.compiler.syntax._literals"
    for name in ("grammar NUMBER", "grammar STRING", "grammar _NL", f"{lexer}._BAD_ESCAPE_RE",
                 f"{lexer}._BRACKETS_RE", f"{lexer}._BLANK_OR_COMMENT_RE"):
        assert name in REGEXES
    # the reference really is the plain form: no possessive repeat or atomic group left
    for name, plain in PLAIN.items():
        assert not {op for op, _ in _ops(plain)} & {sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP}, name
        assert REFERENCES[name].groups == REGEXES[name].groups, name
    assert {"grammar NUMBER", "grammar STRING", "grammar _NL", f"{lexer}._BAD_ESCAPE_RE"} <= set(
        POSSESSIVE
    )


def test_no_lookaround_inside_a_possessive_repeat_or_an_atomic_group() -> None:
    # gh-100061: before CPython 3.11.5 a failed lookaround inside one moves the input back.
    for name, regex in REGEXES.items():
        for op, av in _ops(_parse(regex)):
            if op is sre.POSSESSIVE_REPEAT or op is sre.ATOMIC_GROUP:
                body = av[2] if op is sre.POSSESSIVE_REPEAT else av
                inner = {inner_op for inner_op, _ in _ops(body)}
                assert not inner & {sre.ASSERT, sre.ASSERT_NOT}, name


def test_every_regex_matches_like_its_plain_backtracking_form_on_numbers_and_durations() -> None:
    assert len(CORPUS) > 10_000
    differences = [difference for text in CORPUS for difference in _differences(text)]
    assert differences == [], f"{len(differences)} differences, the first:\n" + "\n".join(differences[:10])


_number_like = st.builds(
    lambda sign, digits, rest, junk: sign + digits + rest + junk,
    st.sampled_from(["", "-"]),
    st.text(alphabet="0123456789", min_size=1, max_size=4),
    st.text(alphabet="0123456789eE.-+_mshdx", max_size=8),
    st.text(alphabet=" ,;}\n\r#=-+eE.x\"\\", max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_number_like, st.text(alphabet="0123456789eEmshdx._-+ ;\n\r\t#\"\\{}()=", max_size=12)))
def test_every_regex_matches_like_its_plain_backtracking_form_on_generated_text(text: str) -> None:
    assert _differences(text) == []


def _literals(node: Any) -> Iterator[ast.Number | ast.Duration]:
    """The number and duration literals of a syntax tree, in source order."""
    if isinstance(node, (ast.Number, ast.Duration)):
        yield node
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for field in dataclasses.fields(node):
            if field.name != "span":
                yield from _literals(getattr(node, field.name))
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _literals(item)
    elif isinstance(node, dict):
        for item in node.values():
            yield from _literals(item)


def test_the_demo_lexes_every_number_and_duration_whole() -> None:
    source = SourceFile(str(DEMO), DEMO.read_text(encoding="utf-8"))
    tree, diags = parse_ast(source)
    assert diags == [] and tree is not None
    literals = sorted(_literals(tree), key=lambda literal: literal.span.start)
    for literal in literals:
        assert source.text[literal.span.start : literal.span.end] == literal.raw
    found = [
        (literal.raw, literal.value if isinstance(literal, ast.Number) else literal.seconds)
        for literal in literals
    ]
    assert found == [
        ("3", 3),  # concurrency
        ("2m", 120), ("0", 0),  # defaults: timeout, retries
        ("1s", 1), ("1s", 1), ("3s", 3), ("500ms", 0.5),
        ("2", 2), ("200ms", 0.2), ("500ms", 0.5),  # fetch: retries, backoff, estimate
        ("1s", 1), ("500ms", 0.5),
    ]


@pytest.mark.parametrize(
    "text,raw",
    [("80", "80"), ("2", "2"), ("500ms", "500ms"), ("1e+5,", "1e+5"), ("2.5E-3}", "2.5E-3"), ("1e-+5", "1e-"),
     ("7+1", "7"), ("1h30m ", "1h30m")],
)
def test_a_number_token_is_the_whole_literal(text: str, raw: str) -> None:
    match = REGEXES["grammar NUMBER"].match(text)
    assert match is not None and match.group() == raw
