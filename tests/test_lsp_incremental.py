"""The language server's incremental parser gives exactly the tree a whole-file parse gives."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from alfred_dsl.compiler._pipeline import check_paths
from alfred_dsl.lsp._compiler import SourceFile, Span, check_text, parse_ast
from alfred_dsl.lsp._features import Analysis
from alfred_dsl.lsp._incremental import IncrementalParser, blocks_after_edit, stage_blocks

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

BASE = """\
# a file with the things the block scanner must read as the lexer does
import "other.alfred"

agent worker {
  kind = command
  run = ["echo", "{ not a block }"]
}

workflow demo {
  description = "braces } in a string { and a # that is no comment"
  param level: int = 2
  stage first {
    agent = worker
    prompt = "say ${params.level} and \\"quote\\" }"
    estimate = 5m  # trailing comment
  }
  # between stages
  stage second after first {
    agent = worker
    outputs = { report = "r.md", nested = { deep = [1, 2, 3] } }
  }; stage third after first, second { agent = worker }
  stage fourth {
    agent = worker
    when = "${stages.first.outputs.x == 1}"
  }
  use demo2(level = 3) as sub after fourth
}
"""

FRAGMENTS = [
    "{", "}", "[", "]", "(", ")", '"', "#", "\n", ";", " ", "x", "stage", "stage z {",
    "stage y { agent = worker }", "after first", "= 1", "\\", "${", "agent = worker\n", "workflow w {",
    "\r\n", "\t", "x = 1 ", "} x = 2",
]

#: Stage blocks in places where taking them out would change what the file means.
EDGES = [
    "workflow w {\n  x = 1 stage a { y = 1 }\n}\n",
    "workflow w {\n  stage a { y = 1 } x = 2\n}\n",
    "workflow w {\n  x = [\n  stage a { y = 1 }\n  ]\n}\n",
    "workflow w {\n  x = (\n  stage a { y = 1 }\n  )\n}\n",
    "workflow w { stage a { y = 1 } }\n",
    "workflow w {\n  stage = { a = 1 }\n}\n",
    "agent a {\n  stage b { x = 1 }\n}\n",
    "workflow w {\n  stage a {\n    y = 1\n  }\n  stage a {\n  }\n}\n",
    'workflow w {\n  stage a after b, c.d { y = "}" }\n  stage b {}\n}\n',
    "workflow w {\r\n  stage a { y = 1 }\r\n}\r\n",
    "workflow w {\n  stage a { y = 1 }  # c\n  # d\n}\n",
    "workflow w {\n  stage a { y = 1 }\nstage b { y = 2 }\n",
    "workflow w {\n  stage a { y = 1 }\n}\n}\nstage b { y = 2 }\n",
    "workflow w {\n  stage a { y = { z = 1 } }; stage b {}\n  }\n",
]


def _dump(node: Any, source: SourceFile) -> Any:
    """A node with every span as offsets (and every span pointing into ``source``)."""
    if isinstance(node, Span):
        assert node.source is source
        return ("span", node.start, node.end)
    if isinstance(node, tuple):
        return tuple(_dump(item, source) for item in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        fields = dataclasses.fields(node)
        return (type(node).__name__, *(_dump(getattr(node, field.name), source) for field in fields))
    return node


def _diagnostics(found: Any) -> list[tuple[object, ...]]:
    """What an editor shows of each diagnostic (spans as places: each check reads a new text)."""
    return [
        (d.code, d.message, d.help, d.notes, [(at.span.start, at.span.end, at.text) for at in labels])
        for d in found
        for labels in [([d.primary] if d.primary else []) + list(d.secondary)]
    ]


def _same_as_whole(parser: IncrementalParser, text: str) -> None:
    source = SourceFile("edited.alfred", text)
    tree, diagnostics = parser.parse(source)
    whole_tree, whole_diagnostics = parse_ast(source)
    assert _dump(tree, source) == _dump(whole_tree, source)
    assert _diagnostics(diagnostics) == _diagnostics(whole_diagnostics)


def _edit(text: str, at: float, removed: int, inserted: str) -> str:
    index = int(at * len(text))
    return text[:index] + inserted + text[index + removed :]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from([BASE, *(path.read_text() for path in sorted(EXAMPLES.glob("*.alfred")))]),
    edits=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=1),
            st.integers(min_value=0, max_value=12),
            st.lists(st.sampled_from(FRAGMENTS), max_size=3).map("".join),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_random_edits_parse_as_the_whole_file(base: str, edits: list[tuple[float, int, str]]) -> None:
    parser = IncrementalParser()
    _same_as_whole(parser, base)  # the file as opened: its blocks are kept
    text = base
    for at, removed, inserted in edits:
        text = _edit(text, at, removed, inserted)
        _same_as_whole(parser, text)


@pytest.mark.parametrize("text", EDGES)
def test_blocks_at_the_edges_parse_as_the_whole_file(text: str) -> None:
    parser = IncrementalParser()
    _same_as_whole(parser, text)
    _same_as_whole(parser, text.replace("y = 1", "y = 10"))  # with the other blocks kept


def _stages(count: int) -> str:
    stage = "  stage s{n} {{\n    agent = worker\n    estimate = {minutes}m\n  }}\n"
    body = "".join(stage.format(n=n, minutes=n + 1) for n in range(count))
    return f'agent worker {{\n  kind = command\n  run = "true"\n}}\n\nworkflow big {{\n{body}}}\n'


def test_an_edit_parses_only_the_changed_stage() -> None:
    parser = IncrementalParser()
    text = _stages(200)
    parser.parse(SourceFile("edited.alfred", text))
    assert parser.parsed_blocks == 200
    edited = text.replace("estimate = 7m", "estimate = 170m")
    _same_as_whole(parser, edited)
    assert parser.parsed_blocks == 1
    added = edited.replace("  stage s3 {", "  stage extra after s1 {\n    agent = worker\n  }\n  stage s3 {")
    _same_as_whole(parser, added)
    assert parser.parsed_blocks == 1


def test_a_broken_stage_is_reported_as_the_compiler_reports_it(tmp_path: Path) -> None:
    path = tmp_path / "big.alfred"
    text = _stages(50)
    path.write_text(text)
    parser = IncrementalParser()
    check_text(str(path), {str(path): text}, parser.parse)
    for broken in (
        text.replace("estimate = 7m", "estimate = 7x"),  # A106 inside one stage
        text.replace("estimate = 7m", "estimate 7m"),  # A102
        text.replace("    estimate = 7m\n  }", "    estimate = 7m\n"),  # an unclosed block
        text.replace("agent = worker", "agent = wroker", 1),  # parses; the check reports it
    ):
        incremental = check_text(str(path), {str(path): broken}, parser.parse)
        whole = check_text(str(path), {str(path): broken})
        assert _diagnostics(incremental.diagnostics) == _diagnostics(whole.diagnostics)
        assert incremental.diagnostics


def test_the_scanner_is_unsure_of_unclosed_strings_and_brackets() -> None:
    assert stage_blocks('workflow w {\n  stage a { x = "open }\n}\n') is None
    assert stage_blocks("workflow w {\n  stage a { x = 1 }\n") is None
    assert stage_blocks("workflow w {\n  stage a { x = 1 }\n}\n") == [(15, 32)]
    assert len(stage_blocks(BASE) or []) == 4  # `stage third` after `};` on one line too


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from([BASE, *EDGES, *(path.read_text() for path in sorted(EXAMPLES.glob("*.alfred")))]),
    at=st.floats(min_value=0, max_value=1),
    removed=st.integers(min_value=0, max_value=12),
    inserted=st.lists(st.sampled_from(FRAGMENTS), max_size=3).map("".join),
)
def test_blocks_found_after_an_edit_are_those_of_a_whole_scan(
    base: str, at: float, removed: int, inserted: str
) -> None:
    blocks = stage_blocks(base)
    if blocks is None:
        return
    edited = _edit(base, at, removed, inserted)
    found = blocks_after_edit(base, blocks, edited)
    assert found is None or found == stage_blocks(edited)


def test_an_edit_inside_a_stage_scans_that_stage_only() -> None:
    text = _stages(20)
    blocks = stage_blocks(text)
    assert blocks is not None and len(blocks) == 20
    edited = text.replace("estimate = 7m", "estimate = 170m")
    assert blocks_after_edit(text, blocks, edited) == stage_blocks(edited)
    # One that reaches outside its stage (it joins two) is left to a whole scan.
    joined = text.replace("    estimate = 7m\n  }\n  stage s7 {", "    estimate = 7m\n")
    assert blocks_after_edit(text, blocks, joined) is None
    assert blocks_after_edit(text, blocks, text.replace("estimate = 7m", 'estimate = "7m')) is None


def _reported(found: Any) -> list[tuple[object, ...]]:
    """Everything ``alfredc check`` prints of each diagnostic, with places as (file, offsets)."""
    def place(span: Span) -> tuple[str, int, int]:
        return (span.file, span.start, span.end)

    return [
        (d.code, d.severity, d.message, d.help, d.notes, d.filename,
         [(place(label.span), label.text) for label in labels],
         [(place(edit.span), edit.replacement) for edit in d.fix])
        for d in found
        for labels in [([d.primary] if d.primary else []) + list(d.secondary)]
    ]


def _linked_stages(count: int) -> str:
    """A large workflow whose stages name earlier ones (``after``) and read their outputs."""
    blocks = []
    for n in range(count):
        after = f" after s{n - 1}" if n else ""
        reads = f"\n    prompt = \"use ${{stages.s{n - 2}.outputs.path}}\"" if n >= 2 and n % 5 == 0 else ""
        outputs = "\n    outputs = { path = \"p.txt\" }" if n % 5 == 3 else ""
        body = f"    agent = worker\n    estimate = {n % 50 + 1}m{reads}{outputs}"
        blocks.append(f"  stage s{n}{after} {{\n{body}\n  }}\n")
    return ('agent worker {\n  kind = command\n  run = "true"\n  cost = { usd = 1 }\n}\n\n'
            f"workflow big {{\n  approvers = {{ lead = [\"alice\"] }}\n{''.join(blocks)}}}\n")


def test_a_sequence_of_edits_reports_what_a_fresh_check_reports(tmp_path: Path) -> None:
    """The server keeps parts of earlier checks; after each edit of a large file its
    diagnostics are still exactly those of ``alfredc check`` on the same text."""
    path = tmp_path / "big.alfred"
    text = _linked_stages(1000)
    parser = IncrementalParser()
    edits = [
        # a stage renamed: the `after` of the next stage and a reference to it break
        ("  stage s503 after", "  stage s503x after"),
        # fixed by renaming the uses too
        ("  stage s504 after s503 {", "  stage s504 after s503x {"),
        ("stages.s503.outputs", "stages.s503x.outputs"),
        ("estimate = 8m\n", "estimate = 8x\n"),  # a bad duration in one stage (a syntax error)
        ("estimate = 8x\n", "estimate = 8m\n"),
        ("  stage s700 after s699 {", "  stage s701 after s699 {"),  # a name declared twice
        ("  stage s701 after s699 {", "  stage s700 after s699 {"),
        # a budget the worst case exceeds (A506), outside every stage
        ("workflow big {\n", "workflow big {\n  budget = { usd = 5 }\n"),
        # an approval that gates later stages, whose rejection nothing handles (A505)
        ("    agent = worker\n    estimate = 11m\n", "    approve = { by = [\"lead\"], timeout = 1h }\n"),
        ("  budget = { usd = 5 }\n", ""),
    ]
    seen = set()
    for number, (old, new) in enumerate([("", ""), *edits]):
        assert not old or old in text, old
        text = text.replace(old, new, 1)
        path.write_text(text)
        served = Analysis.check(str(path), {str(path): text}, parser.parse).checked.diagnostics
        fresh = check_paths([str(path)])
        assert _reported(served) == _reported(fresh), f"after edit {number}: {old!r} -> {new!r}"
        seen.update(d.code for d in fresh)
    assert {"A106", "A202", "A208", "A214", "A505", "A506"} <= seen, seen
