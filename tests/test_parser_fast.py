"""The fast path of large files (compiler/syntax/_fast.py) reads every file exactly as Lark's loop:
the same tree, every span, the same comments and diagnostics (a file with a problem is read
again by Lark's loop, so the diagnostics are Lark's by construction)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from test_lower import programs

from alfred_dsl._source import SourceFile, Span
from alfred_dsl.compiler import syntax
from alfred_dsl.compiler.syntax import _fast, _lalr, parse_ast, parse_expression
from alfred_dsl.compiler.syntax._lexer import _Context

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(
    [*ROOT.glob("examples/**/*.alfred"), *ROOT.glob("tests/**/*.alfred"), *ROOT.glob("docs/**/*.alfred")]
)



@contextmanager
def _accelerated(on: bool) -> Iterator[None]:
    """The fast path for every text (on), or for none (off: Lark's loop, with error recovery)."""
    saved = syntax._ACCELERATE_FROM
    syntax._ACCELERATE_FROM = 0 if on else 1 << 62
    try:
        yield
    finally:
        syntax._ACCELERATE_FROM = saved


def _same(a: Any, b: Any, path: str = "$") -> None:
    """``a == b`` down to every span (``==`` on the tree leaves spans out)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, Span):
        assert (a.source, a.start, a.end) == (b.source, b.start, b.end), f"{path}: {a!r} != {b!r}"
    elif dataclasses.is_dataclass(a):
        for field in dataclasses.fields(a):
            _same(getattr(a, field.name), getattr(b, field.name), f"{path}.{field.name}")
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), f"{path}: {len(a)} items != {len(b)}"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{index}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _both(text: str, name: str = "t.alfred") -> tuple[Any, Any]:
    source = SourceFile(name, text)  # one source: spans compare their file too
    results = []
    for on in (False, True):
        with _accelerated(on):
            results.append(parse_ast(source))
    return results[0], results[1]


def test_the_fast_path_reads_a_valid_file_by_itself() -> None:
    text = (ROOT / "examples" / "feature_development.alfred").read_text(encoding="utf-8")
    ctx = _Context(source=SourceFile("f.alfred", text), text=text)
    fast = _fast.fast_parser(_lalr._parser(), "file")
    assert fast is not None  # the grammar uses nothing the fast path does not reproduce
    tree = syntax._run_fast(fast, ctx)
    assert tree is not None and not ctx.diagnostics


def test_the_fast_path_gives_up_at_the_first_problem() -> None:
    fast = _fast.fast_parser(_lalr._parser(), "file")
    assert fast is not None
    for text in ("workflow w {\n  stage a {\n}\n", "agent a { x = 1 }\n@", 'agent a {\n  x = "\\q"\n}\n'):
        ctx = _Context(source=SourceFile("f.alfred", text), text=text)
        assert syntax._run_fast(fast, ctx) is None, text


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_parses_the_same(path: Path) -> None:
    plain, fast = _both(path.read_bytes().decode("utf-8", "replace"), path.name)
    _same(fast, plain)


def test_a_large_generated_file_parses_the_same() -> None:
    stages = "\n".join(
        f'  stage s{i} {{\n    after = [s{i - 1}]  # dep\n'
        f'    run = "echo ${{inputs.x}} {i}"\n    estimate = {i % 7 + 1}m\n  }}'
        for i in range(1, 400)
    )
    agent = 'agent a {\n  kind = command\n  run = ["true"]\n}\n\n'
    text = f"{agent}workflow w {{\n  stage s0 {{ agent = a }}\n{stages}\n}}\n"
    plain, fast = _both(text)
    assert plain[0] is not None and not plain[1]
    _same(fast, plain)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list('agentworkflowstage{}[]()=,."$#;\n \\-:5xms@')), max_size=120))
def test_any_input_parses_the_same(text: str) -> None:
    plain, fast = _both(text)
    _same(fast, plain)


@settings(max_examples=100, deadline=None)
@given(programs(), st.data())
def test_generated_programs_and_their_near_misses_parse_the_same(
    program: tuple[str, list[str], list[str]], data: st.DataObject
) -> None:
    text = program[0]
    fast = _fast.fast_parser(_lalr._parser(), "file")
    assert fast is not None
    ctx = _Context(source=SourceFile("t.alfred", text), text=text)
    assert syntax._run_fast(fast, ctx) is not None  # a valid file: read by the fast path itself
    plain, fast_result = _both(text)
    _same(fast_result, plain)
    # One character dropped, doubled or replaced: mostly a problem, read again by Lark's loop.
    at = data.draw(st.integers(0, len(text) - 1))
    edit = data.draw(st.sampled_from(["", text[at] * 2, "=", "}", "{", '"', "\t", "#", "@", ",", "-", "\r"]))
    plain, fast_result = _both(text[:at] + edit + text[at + 1 :])
    _same(fast_result, plain)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('abc.=!<>()"\\ 5xms_-andornot')), max_size=40))
def test_any_expression_parses_the_same(text: str) -> None:
    where = SourceFile("e", text).whole()
    results = []
    for on in (False, True):
        with _accelerated(on):
            results.append(parse_expression(text, where, 0))
    _same(results[1], results[0])


def test_whitespace_is_folded_into_the_next_token_only_where_no_terminal_starts_with_it() -> None:
    from lark import Lark

    from alfred_dsl.compiler.syntax._lexer import _WordsEverywhere

    def lexer_of(terminals: str) -> Any:
        grammar = f"start: A B\n{terminals}\nWS: /[ \\t]+/\n%ignore WS\n"
        return _fast._lexer(Lark(grammar, parser="lalr", lexer="contextual", postlex=_WordsEverywhere()))

    master, kinds, _ = lexer_of('A: "a"\nB: /b+/')
    assert [kinds[m.lastindex or 0] for m in master.finditer("a  bb b")] == ["A", "B", "B"]
    with pytest.raises(_fast._Unsupported):  # Lark would read ` b` as B, not whitespace then `b`
        lexer_of('A: "a"\nB: / ?b/')
    assert _fast._first_chars("[ab]c|d") == frozenset("abd")
    assert _fast._first_chars("x?(?:y|z*)w") == frozenset("xyzw")
    assert _fast._first_chars("[^a]") is None and _fast._first_chars("(?=a)a") is None


def test_nodes_made_without_their_init_equal_those_made_with_it() -> None:
    from alfred_dsl._make import maker
    from alfred_dsl._source import span_at
    from alfred_dsl.compiler import _ast as ast

    source = SourceFile("m.alfred", "x = 1")
    span = span_at(source, 0, 5)
    _same(span, Span(source, 0, 5))
    for start, end in ((0, 0), (3, None), (-1, 2), (1 << 33, (1 << 33) + 1)):
        made, built = span_at(source, start, end), Span(source, start, end)  # type: ignore[arg-type]
        assert (made.start, made.end, made.bounds) == (built.start, built.end, built.bounds)
        assert hash(made) == hash(built)
        assert made == built
    value = ast.Name(name="y", span=span)
    fields = {"name": "x", "name_span": Span(source, 0, 1), "value": value, "span": span}
    _same(maker(ast.Attribute)(**fields), ast.Attribute(**fields))
    with pytest.raises(dataclasses.FrozenInstanceError):
        span.start = 1  # type: ignore[misc]

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        size: int

        def __post_init__(self) -> None:
            assert self.size >= 0

    with pytest.raises(TypeError, match="Checked"):  # an __init__ that does more than set fields
        maker(Checked)
    with pytest.raises(TypeError, match="Span"):  # not a dataclass: span_at makes spans
        maker(Span)
