"""The accelerated parser (lark-cython, when installed) reads every file exactly as Lark's loop:
the same tree, spans, comments and diagnostics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from alfred_dsl._source import SourceFile
from alfred_dsl.compiler import syntax
from alfred_dsl.compiler.syntax import _lalr, parse_ast, parse_expression
from alfred_dsl.compiler.syntax._lexer import _Context

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(
    [*ROOT.glob("examples/**/*.alfred"), *ROOT.glob("tests/**/*.alfred"), *ROOT.glob("docs/**/*.alfred")]
)

pytestmark = pytest.mark.skipif(_lalr._accelerated() is None, reason="lark-cython is not installed")


@contextmanager
def _accelerated(on: bool) -> Iterator[None]:
    saved = syntax._ACCELERATE_FROM, syntax._accelerated
    syntax._ACCELERATE_FROM = 0 if on else saved[0]
    syntax._accelerated = _lalr._accelerated if on else (lambda: None)
    try:
        yield
    finally:
        syntax._ACCELERATE_FROM, syntax._accelerated = saved


def _both(text: str, name: str = "t.alfred") -> tuple[Any, Any]:
    source = SourceFile(name, text)  # one source: spans compare their file too
    results = []
    for on in (False, True):
        with _accelerated(on):
            results.append(parse_ast(source))
    return results[0], results[1]


def test_the_accelerated_parser_reads_a_valid_file_by_itself() -> None:
    text = (ROOT / "examples" / "feature_development.alfred").read_text(encoding="utf-8")
    ctx = _Context(source=SourceFile("f.alfred", text), text=text)
    accelerated = _lalr._accelerated()
    assert accelerated is not None
    tree = syntax._run_accelerated(accelerated, ctx, "file")
    assert tree is not None and not ctx.diagnostics


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_parses_the_same(path: Path) -> None:
    plain, fast = _both(path.read_bytes().decode("utf-8", "replace"), path.name)
    assert fast == plain


def test_a_large_generated_file_parses_the_same() -> None:
    stages = "\n".join(
        f'  stage s{i} {{\n    after = [s{i - 1}]  # dep\n'
        f'    run = "echo ${{inputs.x}} {i}"\n    estimate = {i % 7 + 1}m\n  }}'
        for i in range(1, 400)
    )
    agent = 'agent a {\n  kind = command\n  run = ["true"]\n}\n\n'
    text = f"{agent}workflow w {{\n  stage s0 {{ agent = a }}\n{stages}\n}}\n"
    plain, fast = _both(text)
    assert plain[0] is not None and fast == plain


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list('agentworkflowstage{}[]()=,."$#;\n \\-:5xms@')), max_size=120))
def test_any_input_parses_the_same(text: str) -> None:
    plain, fast = _both(text)
    assert fast == plain


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('abc.=!<>()"\\ 5xms_-andornot')), max_size=40))
def test_any_expression_parses_the_same(text: str) -> None:
    where = SourceFile("e", text).whole()
    results = []
    for on in (False, True):
        with _accelerated(on):
            results.append(parse_expression(text, where, 0))
    assert results[1] == results[0]
