"""The parser: the language of spec sections 1-2, error messages and recovery, limits."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from alfred_dsl._expr import Binary, Literal, Ref, Unary
from alfred_dsl._source import SourceFile
from alfred_dsl.compiler import _ast as ast
from alfred_dsl.compiler.syntax import MAX_ERRORS, parse_ast, parse_expression, parse_template, unescape

SPEC_EXAMPLE = """\
import "agents/common.alfred"          # path relative to this file

agent spec-builder {
  kind         = command              # command | python | http (more may come)
  run          = ["python", "tools/spec.py", "--feature", "${inputs.feature}"]   # argv, no shell
  capabilities = ["requirements", "specification"]
  concurrency  = 1                    # at most this many stages on this agent at once (default 1)
  env          = { LOG_LEVEL = "info" }
}

agent implementer {
  kind  = python
  call  = "myteam.agents:implement"   # module:function, sync or async
  capabilities = ["development"]
  concurrency  = 2
}

workflow feature_development {
  description = "From specification to documentation"

  param feature_name: string
  param coverage: int = 80
  param auto_deploy: bool = false

  defaults {                          # apply to every stage unless the stage says otherwise
    retries = 2                       # attempts after the first
    backoff = 2s                      # exponential: 2s, 4s, 8s ... with jitter, capped by max_backoff
    timeout = 30m
  }

  stage specification {
    agent    = spec-builder
    inputs   = { feature = params.feature_name }
    estimate = 20m                    # expected duration, used by the critical-path analysis
    priority = high                   # low | medium | high | critical, or an integer
  }

  stage implementation after specification {
    agent    = implementer
    inputs   = { spec = stages.specification.outputs.spec_path }
    estimate = 2h
  }

  stage testing after implementation {
    requires = ["testing"]            # capability match: any agent that has all of them
    run      = "pytest -q --cov-fail-under=${params.coverage}"   # a string runs under /bin/sh -c
    estimate = 30m
  }

  stage deployment after testing {
    agent = deployer
    when  = params.auto_deploy        # false: the stage is skipped, and so are stages that need it
  }
}
"""


def parse(text: str) -> tuple[ast.File | None, list]:
    return parse_ast(SourceFile("test.alfred", text))


def errors(text: str) -> list:
    _tree, diags = parse(text)
    return diags


def where(diag) -> tuple[int, int]:
    return diag.primary.span.line, diag.primary.span.column


def test_spec_example_parses_without_diagnostics() -> None:
    tree, diags = parse(SPEC_EXAMPLE)
    assert diags == []
    assert tree is not None
    kinds = [type(item).__name__ for item in tree.items]
    assert kinds == ["Import", "Agent", "Agent", "Workflow"]
    workflow = tree.items[3]
    assert isinstance(workflow, ast.Workflow)
    stages = [item for item in workflow.items if isinstance(item, ast.Stage)]
    assert [s.name for s in stages] == ["specification", "implementation", "testing", "deployment"]
    assert [t.name for t in stages[1].after] == ["specification"]
    agent = stages[0].attributes[0]
    assert agent.name == "agent" and agent.value == ast.Name(name="spec-builder", span=agent.value.span)
    inputs = stages[1].attributes[1].value
    assert isinstance(inputs, ast.MapValue)
    assert inputs.entries[0].value == Ref(parts=("stages", "specification", "outputs", "spec_path"))
    # comments are collected, with their positions, for the formatter
    assert any(c.text == "# argv, no shell" for c in tree.comments)
    assert all(SPEC_EXAMPLE[c.span.start : c.span.end] == c.text for c in tree.comments)


def test_spans_point_at_the_source_text() -> None:
    text = 'agent a {\n  kind = command\n}\n'
    tree, _ = parse(text)
    assert tree is not None
    agent = tree.items[0]
    assert isinstance(agent, ast.Agent)
    attribute = agent.attributes[0]
    assert text[attribute.name_span.start : attribute.name_span.end] == "kind"
    assert (attribute.value.span.line, attribute.value.span.column) == (2, 10)
    assert text[agent.span.start : agent.span.end] == text.strip()


def test_literals_lists_maps_and_separators() -> None:
    text = """agent a {
  s = "q\\"uote\\\\ \\n\\t"; i = -3; f = 2.5; t = true; d = 1h30m; ms = 500ms
  l = [1,
    2,
  ]
  m = { a = 1, b = "x"
        c = [] }
  e = {}
}
"""
    tree, diags = parse(text)
    assert diags == []
    assert tree is not None
    values = {a.name: a.value for a in tree.items[0].attributes}  # type: ignore[union-attr]
    assert values["s"].value == 'q"uote\\ \n\t'  # type: ignore[union-attr]
    assert values["i"].value == -3 and values["f"].value == 2.5  # type: ignore[union-attr]
    assert values["t"].value is True  # type: ignore[union-attr]
    assert isinstance(values["d"], ast.Duration) and values["d"].seconds == 5400
    assert isinstance(values["ms"], ast.Duration) and values["ms"].seconds == 0.5
    assert [i.value for i in values["l"].items] == [1, 2]  # type: ignore[union-attr]
    assert [e.key for e in values["m"].entries] == ["a", "b", "c"]  # type: ignore[union-attr]
    assert values["e"].entries == ()  # type: ignore[union-attr]


def test_use_param_and_hook() -> None:
    text = """workflow w {
  param n: int = 3
  use build(version = params.v, dry = true) as b after x, y.z
  on failure { run = "notify" }
}
"""
    tree, diags = parse(text)
    assert diags == []
    items = tree.items[0].items  # type: ignore[union-attr]
    assert isinstance(items[0], ast.Param) and items[0].type == "int"
    use = items[1]
    assert isinstance(use, ast.Use)
    assert (use.template, use.alias) == ("build", "b")
    assert [a.name for a in use.arguments] == ["version", "dry"]
    assert [t.name for t in use.after] == ["x", "y.z"]
    assert isinstance(items[2], ast.Hook) and items[2].event == "failure"


def test_operator_precedence_follows_python() -> None:
    text = "not a == b and c or d"
    expr, diags = parse_expression(text, SourceFile("e", text).span(0, len(text)), 0)
    assert diags == []
    # ((not (a == b)) and c) or d
    assert isinstance(expr, Binary) and expr.op == "or"
    assert isinstance(expr.left, Binary) and expr.left.op == "and"
    assert isinstance(expr.left.left, Unary)
    assert isinstance(expr.left.left.operand, Binary) and expr.left.left.operand.op == "=="


def test_keywords_are_not_names_but_may_be_attribute_keys() -> None:
    diags = errors("workflow w {\n  stage after {\n  }\n}\n")
    assert [d.code for d in diags] == ["A107"]
    assert where(diags[0]) == (2, 9)
    assert "`after` is a keyword" in diags[0].message
    # a name that merely starts with a keyword is a name
    assert errors("workflow w {\n  stage afterwards after stage2 {\n    agent = x\n  }\n}\n") == []


def test_three_independent_mistakes_give_three_diagnostics() -> None:
    text = """agent a {
  kind command
  run = "ok"
}

workflow w {
  stage s {
    retries = = 3
  }
  stage t {
    estimate = 5x
  }
}
"""
    diags = errors(text)
    assert [(d.code, where(d)) for d in diags] == [("A102", (2, 8)), ("A102", (8, 15)), ("A106", (11, 16))]
    assert diags[0].message == "expected `=` after `kind`"
    assert diags[1].message == "expected a value"


def test_missing_brace_names_the_open_block() -> None:
    text = """workflow w {
  description = "x"

  stage build {
    agent = a

  stage next {
    agent = b
  }
}
"""
    diags = errors(text)
    assert len(diags) == 1
    assert diags[0].code == "A103"
    assert diags[0].message == "expected `}` to close stage `build` opened at 4:3"
    assert where(diags[0]) == (7, 3)


def test_missing_brace_at_end_of_file() -> None:
    diags = errors("workflow w {\n  stage a {\n    agent = x\n")
    assert [d.code for d in diags] == ["A103"]
    assert "stage `a` opened at 2:3" in diags[0].message


def test_unterminated_string_is_reported_at_its_quote() -> None:
    text = 'agent a {\n  run = "echo hi\n  kind = command\n}\n' + "\n" * 40 + 'workflow w {\n}\n'
    diags = errors(text)
    assert [(d.code, where(d)) for d in diags] == [("A104", (2, 9))]


def test_invalid_escape_and_literals() -> None:
    diags = errors('agent a {\n  run = "a\\qb"\n  x = 1m30h\n  y = 5x\n}\n')
    assert [(d.code, where(d)) for d in diags] == [("A105", (2, 11)), ("A106", (3, 7)), ("A106", (4, 7))]
    assert "largest to smallest" in diags[1].message


def test_unexpected_character_and_did_you_mean() -> None:
    diags = errors("agnet a {\n  kind = command\n}\n\nagent b {\n  x = 1 @\n}\n")
    assert [(d.code, where(d)) for d in diags] == [("A102", (1, 1)), ("A101", (6, 9))]
    assert diags[0].help == "did you mean `agent`?"


def test_errors_are_capped_and_positions_unique() -> None:
    text = "".join(f"agent a{i} {{\n  x = = 1\n}}\n" for i in range(200))
    diags = errors(text)
    assert len(diags) == MAX_ERRORS
    starts = [d.primary.span.start for d in diags]
    assert len(starts) == len(set(starts))


def test_deep_nesting_is_a003_not_a_crash() -> None:
    diags = errors("agent a {\n  x = " + "[" * 5000 + "]" * 5000 + "\n}\n")
    assert [d.code for d in diags] == ["A003"]
    expr, diags = parse_expression("(" * 3000 + "a" + ")" * 3000, SourceFile("e", "").whole())
    assert expr is None and [d.code for d in diags] == ["A003"]
    # long operator chains build deep trees too
    for chain in (" and ".join(["x"] * 3000), "not " * 3000 + "x"):
        assert [d.code for d in errors("workflow w {\n  stage a { when = " + chain + " }\n}\n")] == ["A003"]


def test_template_splitting() -> None:
    text = 'a ${params.x == 3} $${not} $HOME $(cmd) ${stages.b.outputs.p}'
    source = SourceFile("t", '"' + text + '"')
    template, diags = parse_template(text, source.span(0, len(text) + 2), 1)
    assert diags == []
    assert template is not None
    parts = template.parts
    assert parts[0] == "a "
    assert parts[1] == Binary(op="==", left=Ref(parts=("params", "x")), right=Literal(value=3))
    assert parts[2] == " ${not} $HOME $(cmd) "
    assert parts[3] == Ref(parts=("stages", "b", "outputs", "p"))
    ref = parts[1].left  # type: ignore[union-attr]
    assert source.text[ref.span.start : ref.span.end] == "params.x"


def test_template_errors_are_a108_at_the_exact_place() -> None:
    text = "x ${params.a ==}"
    source = SourceFile("t", text)
    _, diags = parse_template(text, source.span(0, len(text)), 0)
    assert [d.code for d in diags] == ["A108"]
    assert diags[0].primary.span.start == text.index("}")
    _, diags = parse_template("x ${params.a", source.whole())
    assert [d.code for d in diags] == ["A108"] and "no closing" in diags[0].message
    _, diags = parse_template("${}", source.whole())
    assert [d.code for d in diags] == ["A108"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list('agentworkflowstage{}[]()=,."$#;\n \\-:5xms@')), max_size=120))
def test_any_input_gives_a_tree_or_diagnostics_never_an_exception(text: str) -> None:
    tree, diags = parse(text)
    assert tree is not None or diags
    assert len(diags) <= MAX_ERRORS


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_expression_text_never_raises(text: str) -> None:
    expr, diags = parse_expression(text, SourceFile("e", text).whole())
    assert (expr is None) == bool(diags)


# -- bounded memory on huge tokens --------------------------------------------------------


def _peak_bytes(text: str) -> int:
    """Peak of Python allocations while parsing ``text`` (the regex engine's stack included)."""
    parse("")  # the parser itself is built before measuring
    tracemalloc.start()
    try:
        parse(text)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "name,text",
    [
        ("string", 'workflow w {\n  description = "' + "y" * 1_000_000 + '"\n}\n'),
        ("escapes", 'workflow w {\n  description = "' + "\\n" * 500_000 + '"\n}\n'),
        ("newlines", "workflow w {\n" + "\n" * 1_000_000 + "}\n"),
        ("number", "workflow w {\n  x = 1" + "e+" * 500_000 + "\n}\n"),
    ],
    ids=["string", "escapes", "newlines", "number"],
)
def test_a_huge_token_costs_a_small_multiple_of_its_size(name: str, text: str) -> None:
    # Plain `(a|b)*` regex groups kept ~150 bytes per character: 10 MB took 2 GB.
    assert _peak_bytes(text) < 8 * len(text), name


def test_a_huge_string_parses_in_linear_time() -> None:
    def seconds(size: int) -> float:
        text = 'workflow w {\n  description = "' + "ab\\n" * size + '"\n}\n'
        start = time.process_time()
        tree, diags = parse(text)
        assert diags == [] and tree is not None
        return time.process_time() - start

    assert seconds(250_000) < 1.0  # 1 MB of text with 250,000 escapes


def test_unescape_pairs_escapes_left_to_right() -> None:
    cases = {
        r"a\\nb": "a\\nb",
        r"a\\\nb": "a\\\nb",
        r"\"q\"": '"q"',
        r"\t\\": "\t\\",
        r"keep \q": "keep \\q",
        "plain": "plain",
    }
    for raw, value in cases.items():
        assert unescape(raw) == value, raw


# -- messages: one mistake, one true diagnostic --------------------------------------------


def messages(text: str) -> list[tuple[str, int, int, str]]:
    return [(d.code, *where(d), d.message) for d in errors(text)]


def test_missing_equal_in_a_one_line_block_is_one_a102() -> None:
    assert messages("workflow w {\n  stage s { agent worker }\n}\n") == [
        ("A102", 2, 19, "expected `=` after `agent`")
    ]
    # the same in a map keeps the map's closing brace
    text = "workflow w {\n  stage s {\n    inputs = { a worker }\n  }\n}\n"
    assert [d.code for d in errors(text)] == ["A102"]


def test_block_keyword_without_brace_is_a_bad_attribute_not_a_missing_brace() -> None:
    assert messages("workflow w {\n  stage s {\n    stage worker\n  }\n}\n") == [
        ("A102", 3, 11, "expected `=` after `stage`")
    ]


@pytest.mark.parametrize(
    "text",
    [
        'workflow w {\n  stage s { run = "x }\n}\n',
        'workflow w {\n  stage s {\n    run = "x }\n}\n',
        'workflow w {\n  stage s {\n    inputs = { a = "x }\n  }\n}\n',
        'workflow w {\n  use t(a = "x) as b\n}\n',
        'workflow w {\n  use t(a = "x\n  ) as b\n}\n',
        'workflow w {\n  stage s {\n    run = ["a", "b\n    ]\n  }\n}\n',
        'workflow w {\n  stage s {\n    run = ["a", "b\n  }\n}\n',
        # a `}` inside the string is text when the file closes every block anyway
        'workflow w {\n  stage s {\n    run = "echo \\"hi }\n  }\n}\n',
        'agent a { run = "x }\n',
    ],
    ids=["one-line-block", "block", "map", "use", "use-multiline", "list-multiline", "list-then-brace",
         "brace-is-text", "agent"],
)
def test_unterminated_string_is_one_a104(text: str) -> None:
    assert [d.code for d in errors(text)] == ["A104"]


def test_interpolation_errors_speak_of_the_interpolation() -> None:
    for body in ("a ==", "not", "a.", "(", "params.x and ("):
        text = "${" + body + "}"
        _, diags = parse_template(text, SourceFile("t", text).whole(), 0)
        (diag,) = diags
        assert diag.code == "A108"
        assert diag.message.startswith("incomplete expression: expected")
        assert diag.message.endswith("before `}`")
        assert diag.primary.text == "found the end of the interpolation"
    for body in ("(a", "==", "[1]", "a b"):
        text = "${" + body + "}"
        _, diags = parse_template(text, SourceFile("t", text).whole(), 0)
        rendered = " ".join(f"{d.message} {d.primary.text}" for d in diags)
        assert diags and "end of the file" not in rendered and "new line" not in rendered, rendered


def test_many_expected_tokens_are_said_in_words() -> None:
    assert messages("= worker\n") == [
        ("A102", 1, 1, "expected a declaration (`import`, `agent` or `workflow`)")
    ]
    assert messages("workflow w {\n  = worker\n}\n") == [
        ("A102", 2, 3, "expected an attribute, `stage`, `param`, `use`, `defaults` or `on`")
    ]
    assert messages("workflow w {\n  stage s {\n    = worker\n  }\n}\n") == [
        ("A102", 3, 5, "expected an attribute (`name = value`) or `}`")
    ]
    assert messages("agent a {\n  env = {\n    = x\n  }\n}\n") == [
        ("A102", 3, 5, "expected an entry (`key = value`) or `}`")
    ]


def test_missing_name_after_after_is_one_a102_and_the_block_is_read() -> None:
    text = (
        "workflow ci {\n  stage build {\n    agent = worker\n  }\n"
        "  stage test after {\n    agent = worker\n  }\n}\n"
    )
    tree, diags = parse(text)
    assert [(d.code, where(d), d.message) for d in diags] == [
        ("A102", (5, 20), "expected a name after `after`")
    ]
    assert tree is not None
    stages = [item for item in tree.items[0].items if isinstance(item, ast.Stage)]  # type: ignore[union-attr]
    assert [(s.name, [a.name for a in s.attributes]) for s in stages] == [
        ("build", ["agent"]),
        ("test", ["agent"]),
    ]
    # a header beyond repair: the block it opens is skipped, its `}` is no second error
    assert [d.code for d in errors("workflow ci {\n  stage {\n    agent = worker\n  }\n}\n")] == ["A102"]


def test_huge_tokens_are_cut_in_messages() -> None:
    long_name = "n" * 5000
    cases = [
        f"workflow w {{\n  {long_name} worker\n}}\n",  # after `NAME`
        f"workflow w {{\n  x = 1 {long_name}\n}}\n",  # found `NAME`
        f"workflow w {{\n  x = 5{long_name}\n}}\n",  # invalid number
        "workflow w {\n  x = 1 " + "@" * 5000 + "\n}\n",  # unexpected characters
    ]
    for text in cases:
        diags = errors(text)
        assert diags
        for diag in diags:
            labels = [diag.primary, *diag.secondary] if diag.primary else []
            assert len(diag.message) < 120 and all(len(label.text) < 120 for label in labels), diag
            assert "..." in diag.message + " ".join(label.text for label in labels), diag


def test_a_long_line_of_junk_is_one_error_in_linear_time() -> None:
    for line in ("x = 1 " + "@ " * 200_000, "x = 1 " + "2 " * 200_000, "x" * 1_000_000):
        start = time.process_time()
        diags = errors("workflow w {\n  " + line + "\n}\n")
        assert time.process_time() - start < 1.0, line[:20]  # 50 µs per `@` took 10 s here
        assert len(diags) == 1, line[:20]


@pytest.mark.parametrize(
    "text,expected",
    [
        # an extra `}` ends the workflow early: the stages after it are not declarations,
        # and `agent = x` inside them is no place to start again
        (
            "workflow w {\n  stage a {\n    agent = x\n  }}\n  stage b {\n    agent = x\n  }\n}\n",
            [("A102", 5, 3)],
        ),
        # a block header without its `{`
        (
            "workflow w {\n  stage a\n    agent = x\n  }\n  stage b {\n    agent = x\n  }\n}\n",
            [("A102", 2, 10)],
        ),
        # a multi-line map without its `{`
        ("workflow w {\n  stage a {\n    inputs =\n      n = 1\n    }\n  }\n}\n", [("A102", 3, 13)]),
        # an agent without its `}` before the next agent
        ("agent a {\n  kind = command\n\nagent b {\n  kind = command\n}\n", [("A103", 4, 1)]),
        # a string that lost its opening quote: one error for the line
        ('workflow w {\n  param v: string = 1.0.0"\n}\n', [("A106", 2, 21)]),
        ('workflow w {\n  use t(service = auth") as x\n  use t(service = "b") as y\n}\n', [("A104", 2, 23)]),
        # a map that lost its `{` on a line with its `}`: that `}` is not the stage's
        ("workflow w {\n  stage a {\n    inputs = a = 1 }\n  }\n}\n", [("A102", 3, 16)]),
    ],
    ids=["extra-brace", "header-without-brace", "map-without-brace", "agent-without-brace", "lost-quote",
         "lost-quote-in-use", "map-brace-on-line"],
)
def test_one_mistake_one_diagnostic(text: str, expected: list[tuple[str, int, int]]) -> None:
    assert [(d.code, *where(d)) for d in errors(text)] == expected


def test_a_workflow_item_at_top_level_points_at_an_extra_brace() -> None:
    (diag,) = errors("workflow w {\n  stage a {\n    agent = x\n  }}\n  stage b {\n    agent = x\n  }\n}\n")
    assert diag.help == "`stage` goes inside a workflow: does an extra `}` above close it early?"


def test_missing_equals_after_an_attribute_suggests_no_keyword() -> None:
    # `estimate` is a real stage attribute: a keyword that cannot go in a stage is no help.
    diags = errors("workflow w {\n  stage a {\n    estimate 3m\n    retries 2\n  }\n}\n")
    assert [(d.code, where(d)) for d in diags] == [("A102", (3, 14)), ("A102", (4, 13))]
    assert [d.help for d in diags] == [None, None]
    # A misspelt block keyword where one can go still gets the suggestion.
    diags = errors("workflow w {\n  stge a {\n  }\n}\n")
    assert diags[0].code == "A102" and diags[0].help == "did you mean `stage`?"


DECLARATION = "expected a declaration (`import`, `agent` or `workflow`)"


@pytest.mark.parametrize(
    "text,message,position,token",
    [
        # where only a keyword fits, a word that starts like one is still one word
        ("agentworker {\n}\n", DECLARATION, (1, 1), "agentworker"),
        ("workflow w {\n}\nworkflowx {\n}\n", DECLARATION, (3, 1), "workflowx"),
        # where only `=` fits, `==` is still one token
        ("workflow w {\n  stage a {\n    retries == 2\n  }\n}\n", "expected `=` after `retries`", (3, 13),
         "=="),
    ],
    ids=["keyword-prefix-at-top-level", "keyword-prefix-after-a-block", "comparison-for-equal"],
)
def test_tokens_are_whole_words_wherever_the_parser_is(
    text: str, message: str, position: tuple[int, int], token: str
) -> None:
    # The lexer offers each parser state its own terminals; a state that takes no name
    # must still not read `agentworker` as `agent worker` (that parsed without error).
    (diag,) = errors(text)
    assert (diag.code, diag.message, where(diag)) == ("A102", message, position)
    assert text[diag.primary.span.start : diag.primary.span.end] == token
