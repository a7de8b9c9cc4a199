"""Lowering .alfred files to the normalized document of docs/design.md, with spans."""

from __future__ import annotations

import time

from hypothesis import given, settings, strategies as st
from test_syntax import SPEC_EXAMPLE

from alfred_dsl._source import SourceFile
from alfred_dsl.compiler._lower import parse_document
from alfred_dsl.compiler.syntax import KEYWORDS


def lower(text: str):  # type: ignore[no-untyped-def]
    return parse_document(SourceFile("test.alfred", text))


def test_spec_example_lowers_to_the_normalized_document() -> None:
    document, diags = lower(SPEC_EXAMPLE)
    assert diags == []
    assert document is not None
    data = document.data
    assert data["imports"] == ["agents/common.alfred"]
    assert document.imports[0][0] == "agents/common.alfred"
    assert data["agents"]["spec-builder"] == {
        "kind": "command",
        "run": ["python", "tools/spec.py", "--feature", "${inputs.feature}"],
        "capabilities": ["requirements", "specification"],
        "concurrency": 1,
        "env": {"LOG_LEVEL": "info"},
    }
    workflow = data["workflows"]["feature_development"]
    assert workflow["params"] == {
        "feature_name": {"type": "string"},
        "coverage": {"type": "int", "default": 80},
        "auto_deploy": {"type": "bool", "default": False},
    }
    assert workflow["defaults"] == {"retries": 2, "backoff": "2s", "timeout": "30m"}
    assert workflow["stages"]["specification"] == {
        "agent": "spec-builder",
        "inputs": {"feature": "${params.feature_name}"},
        "estimate": "20m",
        "priority": "high",
    }
    assert workflow["stages"]["implementation"]["after"] == ["specification"]
    assert workflow["stages"]["testing"]["run"] == "pytest -q --cov-fail-under=${params.coverage}"
    assert workflow["stages"]["deployment"]["when"] == "${params.auto_deploy}"
    assert workflow["order"] == ["specification", "implementation", "testing", "deployment"]


def test_every_key_and_value_has_a_span() -> None:
    text = SPEC_EXAMPLE
    document, _ = lower(text)
    assert document is not None
    spans = document.spans

    def source(span) -> str:  # type: ignore[no-untyped-def]
        return text[span.start : span.end]

    path = ("workflows", "feature_development", "stages", "implementation")
    assert source(spans.key(path)) == "implementation"
    assert source(spans.key((*path, "agent"))) == "agent"
    assert source(spans.value((*path, "agent"))) == "implementer"
    assert source(spans.value((*path, "after", 0))) == "specification"
    assert source(spans.value((*path, "inputs", "spec"))) == "stages.specification.outputs.spec_path"
    assert source(spans.key((*path, "inputs", "spec"))) == "spec"
    assert source(spans.value(("agents", "spec-builder", "run", 3))) == '"${inputs.feature}"'
    params = ("workflows", "feature_development", "params", "coverage")
    assert source(spans.key(params)) == "coverage"
    assert source(spans.value((*params, "default"))) == "80"
    assert source(spans.value((*params, "type"))) == "int"


def test_use_hooks_expressions_and_durations() -> None:
    document, diags = lower(
        """workflow w {
  schedule = "0 9 * * 1-5"
  stage a { when = params.env == "prod" and not params.dry; timeout = 1h30m }
  use tmpl(version = "1.2", n = 3) as rel after a
  on failure { run = ["notify", "--loud"] }
}
"""
    )
    assert diags == []
    assert document is not None
    workflow = document.data["workflows"]["w"]
    assert workflow["schedule"] == "0 9 * * 1-5"
    assert workflow["stages"]["a"] == {
        "when": '${params.env == "prod" and not params.dry}',
        "timeout": "1h30m",
    }
    assert workflow["uses"] == {
        "rel": {"template": "tmpl", "params": {"version": "1.2", "n": 3}, "after": ["a"]}
    }
    assert workflow["order"] == ["a", "rel"]
    assert workflow["on"] == {"failure": {"run": ["notify", "--loud"]}}


def test_duplicates_are_a208_and_the_first_wins() -> None:
    document, diags = lower(
        'agent a {\n  kind = command\n  kind = python\n}\n'
        'workflow w {\n  stage s {}\n  stage s {}\n  stage t after s { after = ["x"] }\n}\n'
    )
    assert [(d.code, d.primary.span.line) for d in diags] == [("A208", 3), ("A208", 7), ("A208", 8)]
    assert document is not None
    assert document.data["agents"]["a"]["kind"] == "command"
    assert document.data["workflows"]["w"]["stages"]["t"]["after"] == ["s"]
    assert diags[0].secondary[0].span.line == 2


def test_bad_interpolation_is_a108_at_its_position_even_after_escapes() -> None:
    text = 'agent a {\n  run = "say \\"hi\\" ${params.x ==}"\n}\n'
    document, diags = lower(text)
    assert document is None
    assert [d.code for d in diags] == ["A108"]
    assert diags[0].primary.span.start == text.index("}\"")


def test_syntax_errors_give_no_document() -> None:
    document, diags = lower("agent a {\n  kind command\n}\n")
    assert document is None and [d.code for d in diags] == ["A102"]


def test_large_file_parses_and_lowers_quickly() -> None:
    lines = ['agent worker {\n  kind = command\n  run = ["true"]\n}\n\nworkflow big {\n']
    for i in range(10_000):
        after = f" after s{i - 1}, s{i - 2}, s{i - 3}" if i >= 3 else ""
        body = "    agent = worker\n    estimate = 5m\n    retries = 2\n"
        lines.append(f"  stage s{i}{after} {{\n{body}  }}\n")
    lines.append("}\n")
    text = "".join(lines)
    assert 900_000 < len(text) < 1_100_000
    start = time.process_time()
    document, diags = lower(text)
    elapsed = time.process_time() - start
    assert diags == [] and document is not None
    assert len(document.data["workflows"]["big"]["stages"]) == 10_000
    # About 0.8 s on an idle machine; the bound leaves room for a busy test run.
    assert elapsed < 3.0, elapsed


NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True).filter(lambda n: n not in KEYWORDS)


@st.composite
def programs(draw: st.DrawFn) -> tuple[str, list[str], list[str]]:
    agents = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    stages = draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))
    out = []
    for agent in agents:
        out.append(f"agent {agent} {{\n  kind = command\n  run = [\"echo\", \"{agent}\"]\n}}\n")
    out.append("workflow main {\n")
    for index, stage in enumerate(stages):
        after = ""
        if index and draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from(stages[:index]), min_size=1, unique=True))
            after = " after " + ", ".join(chosen)
        value = draw(st.sampled_from(["5m", "1h30m", "3", '"text ${params.x}"', "params.a == 2 or not true"]))
        agent = draw(st.sampled_from(agents))
        out.append(f"  stage {stage}{after} {{\n    agent = {agent}\n    x = {value}\n  }}\n")
    out.append("}\n")
    return "".join(out), agents, stages


@settings(max_examples=60, deadline=None)
@given(programs())
def test_generated_programs_round_trip(program: tuple[str, list[str], list[str]]) -> None:
    text, agents, stages = program
    document, diags = lower(text)
    assert diags == []
    assert document is not None
    assert list(document.data["agents"]) == agents
    assert list(document.data["workflows"]["main"]["stages"]) == stages
    assert document.data["workflows"]["main"]["order"] == stages


def test_packed_spans_are_the_spans_lowered_and_other_files_spans_are_kept() -> None:
    from alfred_dsl._source import Span
    from alfred_dsl.compiler._document import SpanTable

    source = SourceFile("a.alfred", "stage x { run = 1 }\n" * 3)
    other = SourceFile("b.alfred", "agent y {}")
    table = SpanTable(source, {("a",): Span(source, 3, 9), ("b",): Span(other, 0, 5)})
    table[("c",)] = Span(source, 0, len(source.text))
    before = dict(table)
    table.pack()
    assert dict(table) == before
    assert table[("b",)].source is other and table[("a",)].source is source
    assert table.get(("missing",)) is None and ("c",) in table and len(table) == 3
    document, _ = parse_document(SourceFile("f.alfred", SPEC_EXAMPLE))
    assert document is not None
    path = ("workflows", "feature_development", "stages", "implementation", "agent")
    span = document.spans.value(path)
    assert SPEC_EXAMPLE[span.start : span.end] == "implementer" and span.source is document.source


def test_each_stage_of_the_tree_is_freed_once_lowered() -> None:
    """The lowering holds the only reference to the syntax tree and drops each block once
    lowered: at 100,000 stages the tree is about 200 MB, which the document reuses."""
    import gc

    from alfred_dsl.compiler import _ast as ast, _lower

    count = 40
    text = "workflow w {\n" + "".join(f"  stage s{i} {{ run = \"x\" }}\n" for i in range(count)) + "}\n"
    alive_at_each_stage: list[int] = []
    lowered = _lower._Lowering.stage

    def stage(self, node, path):  # type: ignore[no-untyped-def]
        alive_at_each_stage.append(sum(1 for o in gc.get_objects() if type(o) is ast.Stage))
        return lowered(self, node, path)

    _lower._Lowering.stage = stage  # type: ignore[method-assign]
    try:
        document, diags = lower(text)
    finally:
        _lower._Lowering.stage = lowered  # type: ignore[method-assign]
    assert diags == [] and document is not None
    assert list(document.data["workflows"]["w"]["stages"]) == [f"s{i}" for i in range(count)]
    assert len(alive_at_each_stage) == count
    # The first stage sees the whole tree alive; the last one only itself (and at most
    # the one before, whose reference goes when the loop moves on).
    assert alive_at_each_stage[0] == count
    assert alive_at_each_stage[-1] <= 2
    assert not any(type(o) is ast.Stage for o in gc.get_objects())


def test_duplicate_names_point_at_the_first_declaration_after_its_node_is_freed() -> None:
    text = "workflow w {\n  stage a { run = \"x\" }\n  stage b {}\n  stage a {}\n}\n"
    document, diags = lower(text)
    assert document is not None
    [duplicate] = diags
    assert duplicate.code == "A208"
    assert duplicate.primary is not None
    assert (duplicate.primary.span.line, duplicate.primary.span.column) == (4, 9)
    [first] = duplicate.secondary
    assert (first.span.line, first.span.column) == (2, 9) and first.text == "first declared here"


def test_after_items_share_one_array_and_behave_as_separate_spans() -> None:
    from alfred_dsl._source import Span
    from alfred_dsl.compiler._document import SpanTable

    text = "workflow w {\n  stage a {}\n  stage b {}\n  stage c after a, b {}\n}\n"
    document, _ = lower(text)
    assert document is not None
    values = document.spans.values
    after = ("workflows", "w", "stages", "c", "after")
    assert [text[values[(*after, i)].start : values[(*after, i)].end] for i in (0, 1)] == ["a", "b"]
    assert (*after, 2) not in values and values.get((*after, 2)) is None
    assert (*after, 0) in set(values) and len(values) == len(list(values))
    copied = values.copy()
    del copied[(*after, 0)]
    assert (*after, 0) not in copied and (*after, 0) in values and len(copied) == len(values) - 1
    other = SourceFile("other.alfred", "stage z {}")
    copied[(*after, 1)] = Span(other, 6, 7)  # a span of another file is kept as an object
    assert copied[(*after, 1)].source is other and values[(*after, 1)].source is document.source
    table = SpanTable(document.source)
    table.update_from(values)
    assert dict(table) == dict(values)


def test_span_keeps_the_semantics_of_a_frozen_value() -> None:
    import copy
    import dataclasses
    import pickle

    import pytest

    from alfred_dsl._source import Span

    source, other = SourceFile("a.alfred", "abc\ndef\n"), SourceFile("a.alfred", "abc\ndef\n")
    span = Span(source, 4, 7)
    assert (span.source, span.start, span.end) == (source, 4, 7)
    assert (span.file, span.line, span.column) == ("a.alfred", 2, 1)
    assert span == Span(source, 4, 7) and hash(span) == hash(Span(source, 4, 7))
    assert span != Span(other, 4, 7) and span != Span(source, 4, 8) and span != (4, 7)
    assert len({span, Span(source, 4, 7), Span(source, 0, 3)}) == 2
    assert repr(span) == "Span(start=4, end=7)" and str(span) == "a.alfred:2:1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        span.start = 5  # type: ignore[misc]
    # lark-cython's tokens may have no end: such a span is kept, not refused (refusing it
    # made the accelerated parser fall back to Lark's loop on every file that has one).
    assert Span(source, 3, None).end is None  # type: ignore[arg-type]
    far = Span(source, -1, 1 << 40)  # outside what one int holds: kept as a pair
    assert (far.start, far.end) == (-1, 1 << 40) and far == Span(source, -1, 1 << 40)
    assert span.cover(Span(source, 0, 2)) == Span(source, 0, 7)
    restored = pickle.loads(pickle.dumps(span))
    assert (restored.start, restored.end, restored.source.text) == (4, 7, source.text)
    assert copy.copy(span) == span
    match span:
        case Span(start=start, end=end):
            assert (start, end) == (4, 7)
