"""Expressions: canonical text, references, substitution, evaluation, rendering and static types."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from hypothesis import given, strategies as st

from alfred_dsl._expr import (
    Binary,
    Expr,
    ExprError,
    Literal,
    Ref,
    Template,
    Unary,
    check_types,
    check_when,
    evaluate,
    infer_type,
    references,
    render,
    substitute,
    substitute_template,
    unparse,
    unparse_template,
)
from alfred_dsl._source import SourceFile


def ref(text: str) -> Ref:
    return Ref(parts=tuple(text.split(".")))


def lit(value: Any) -> Literal:
    return Literal(value=value)


def b(op: str, left: Expr, right: Expr) -> Binary:
    return Binary(op=op, left=left, right=right)


# -- unparse -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (lit(True), "true"),
        (lit(False), "false"),
        (lit(80), "80"),
        (lit(0.5), "0.5"),
        (lit('say "hi"\n\\'), '"say \\"hi\\"\\n\\\\"'),
        (ref("stages.build.outputs.path"), "stages.build.outputs.path"),
        (b("==", ref("params.env"), lit("prod")), 'params.env == "prod"'),
        (Unary(op="not", operand=ref("params.dry")), "not params.dry"),
        (Unary(op="not", operand=b("and", ref("params.a"), ref("params.b"))), "not (params.a and params.b)"),
        (
            b("and", b("or", ref("params.a"), ref("params.b")), ref("params.c")),
            "(params.a or params.b) and params.c",
        ),
        (
            b("or", ref("params.a"), b("and", ref("params.b"), ref("params.c"))),
            "params.a or params.b and params.c",
        ),
        (
            b("and", b("and", ref("params.a"), ref("params.b")), ref("params.c")),
            "params.a and params.b and params.c",
        ),
        (
            b("and", ref("params.a"), b("and", ref("params.b"), ref("params.c"))),
            "params.a and (params.b and params.c)",
        ),
        (b("==", b("<", ref("params.a"), lit(1)), lit(True)), "(params.a < 1) == true"),
    ],
)
def test_unparse_is_canonical_and_minimal(expr: Expr, text: str) -> None:
    assert unparse(expr) == text


def test_unparse_template_escapes_literal_interpolation_markers() -> None:
    template = Template(parts=("cost: $5, literal ${x} and ", ref("params.x")))
    assert unparse_template(template) == "cost: $5, literal $${x} and ${params.x}"


_names = st.sampled_from(["params.a", "params.b", "env.HOME", "stages.s.outputs.k"])
_leaves = st.one_of(
    _names.map(ref),
    st.booleans().map(lit),
    st.integers(-5, 500).map(lit),
    st.text(alphabet='ab "\\\n$', max_size=5).map(lit),
)
_exprs = st.recursive(
    _leaves,
    lambda children: st.one_of(
        children.map(lambda e: Unary(op="not", operand=e)),
        st.tuples(st.sampled_from(["and", "or", "==", "!=", "<", ">="]), children, children).map(
            lambda t: b(t[0], t[1], t[2])
        ),
    ),
    max_leaves=8,
)


@given(_exprs)
def test_unparse_round_trips_through_the_parser(expr: Expr) -> None:
    syntax = pytest.importorskip("alfred_dsl.compiler.syntax")
    source = SourceFile("<test>", "x")
    parsed, diagnostics = syntax.parse_expression(unparse(expr), source.span(0, 1))
    assert diagnostics == []
    assert parsed == expr


# -- references and substitution --------------------------------------------------------------


def test_references_in_order_through_templates_and_operators() -> None:
    template = Template(
        parts=(
            "run ",
            b("and", ref("params.a"), Unary(op="not", operand=ref("env.X"))),
            " then ",
            ref("secrets.T"),
        )
    )
    assert [str(r) for r in references(template)] == ["params.a", "env.X", "secrets.T"]


def test_substitute_replaces_whole_references_and_extends_prefixes() -> None:
    expr = b("and", b("==", ref("params.env"), lit("prod")), ref("stages.build.outputs.ok"))
    out = substitute(expr, {"params.env": ref("params.target"), "stages": ref("stages.auth")})
    assert unparse(out) == 'params.target == "prod" and stages.auth.build.outputs.ok'


def test_substitute_keeps_unchanged_nodes_identical() -> None:
    expr = b("==", ref("params.env"), lit("prod"))
    assert substitute(expr, {"params.other": lit(1)}) is expr
    template = Template(parts=("x ", expr))
    assert substitute_template(template, {}) is template


def test_substitute_by_literal_does_not_touch_longer_references() -> None:
    expr = ref("params.cfg.region")
    assert substitute(expr, {"params.cfg": lit("eu")}) is expr


# -- evaluate and render ----------------------------------------------------------------------

SCOPE: dict[str, Any] = {
    "params": {"env": "prod", "coverage": 80, "dry": False, "files": ["a.py", "b c.py"]},
    "stages": {
        "build": {"outputs": {"path": "dist/x.whl", "count": "12", "ok": "true"}},
        "auth.spec": {"outputs": {"doc": "spec.md"}},
    },
    "env": {"HOME": "/home/u"},
    "secrets": {"TOKEN": "s3cret"},
    "inputs": {},
}


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        (b("==", ref("params.env"), lit("prod")), True),
        (
            b("and", Unary(op="not", operand=ref("params.dry")), b(">=", ref("params.coverage"), lit(80))),
            True,
        ),
        (b(">", ref("stages.build.outputs.count"), lit(9)), True),  # outputs are text; compared as numbers
        (ref("stages.build.outputs.ok"), "true"),
        (Unary(op="not", operand=ref("stages.build.outputs.ok")), False),
        (ref("stages.auth.spec.outputs.doc"), "spec.md"),
        (b("or", lit(True), ref("params.missing")), True),  # short-circuit: the right side is not read
    ],
)
def test_evaluate(expr: Expr, value: Any) -> None:
    assert evaluate(expr, SCOPE) == value


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (ref("params.missing"), "`params.missing` is not defined"),
        (ref("stages.nope.outputs.x"), "no outputs of that stage"),
        (b("<", ref("params.env"), lit(3)), "cannot order"),
        (b("and", ref("params.coverage"), lit(True)), "not a boolean"),
    ],
)
def test_evaluate_reports_missing_and_ill_typed_values(expr: Expr, message: str) -> None:
    with pytest.raises(ExprError, match=message):
        evaluate(expr, SCOPE)


def test_render_single_interpolation_keeps_type() -> None:
    assert render(Template(parts=(ref("params.files"),)), SCOPE) == ["a.py", "b c.py"]
    assert render(Template(parts=(ref("params.coverage"),)), SCOPE) == 80


def test_render_text_and_shell_quoting_of_values_only() -> None:
    template = Template(
        parts=("pytest --cov-fail-under=", ref("params.coverage"), " ", ref("params.files"), " $HOME")
    )
    assert render(template, SCOPE) == 'pytest --cov-fail-under=80 ["a.py","b c.py"] $HOME'
    quoted = Template(
        parts=("echo ", ref("stages.build.outputs.path"), " ", b("==", ref("params.env"), lit("dev")))
    )
    assert render(quoted, SCOPE, quote=shlex.quote) == "echo dist/x.whl false"
    spaced = Template(parts=("cat ", Ref(parts=("params", "files", "1"))))
    assert render(spaced, SCOPE, quote=shlex.quote) == "cat 'b c.py'"


# -- static types -------------------------------------------------------------------------------

TYPES = {
    "env": "string",
    "coverage": "int",
    "dry": "bool",
    "ratio": "float",
    "wait": "duration",
    "files": "list",
}


@pytest.mark.parametrize(
    ("expr", "kind"),
    [
        (ref("params.coverage"), "int"),
        (ref("params.files"), "list"),
        (ref("env.HOME"), "string"),
        (ref("stages.x.outputs.y"), "any"),
        (ref("params.undeclared"), "any"),
        (b(">", ref("params.ratio"), ref("params.coverage")), "bool"),
        (lit(1.5), "float"),
    ],
)
def test_infer_type(expr: Expr, kind: str) -> None:
    assert infer_type(expr, TYPES) == kind


def test_ill_typed_comparison_is_a309_at_the_operator_span() -> None:
    source = SourceFile("w.alfred", "when = params.env == 3\n")
    expr = Binary(
        op="==",
        left=Ref(parts=("params", "env"), span=source.span(7, 17)),
        right=Literal(value=3, span=source.span(21, 22)),
        span=source.span(7, 22),
    )
    kind, diagnostics = check_types(expr, TYPES)
    assert kind == "bool"
    [diag] = diagnostics
    assert (diag.code, diag.message) == ("A309", "cannot compare a string with an int in `params.env == 3`")
    assert (diag.primary and (diag.primary.span.line, diag.primary.span.column)) == (1, 8)


def test_logic_on_non_booleans_and_ordering_booleans_are_a309() -> None:
    _, diags = check_types(b("and", ref("params.coverage"), ref("params.dry")), TYPES)
    assert [d.message for d in diags] == ["`and` needs booleans, but `params.coverage` is an int"]
    _, diags = check_types(b("<", ref("params.dry"), lit(True)), TYPES)
    assert [d.message for d in diags] == ["`<` cannot order bool values in `params.dry < true`"]
    _, diags = check_types(Unary(op="not", operand=ref("params.env")), TYPES)
    assert [d.code for d in diags] == ["A309"]
    # A duration param compares with numbers of seconds; `any` is accepted everywhere.
    assert check_types(b(">", ref("params.wait"), lit(30)), TYPES)[1] == []
    assert check_types(b("==", ref("stages.a.outputs.n"), lit(3)), TYPES)[1] == []


def test_when_must_be_boolean_a303() -> None:
    source = SourceFile("w.alfred", "when = params.coverage\n")
    where = source.span(7, 22)
    [diag] = check_when(ref("params.coverage"), TYPES, where)
    assert diag.code == "A303"
    assert diag.message == "`when` must be a boolean, but `params.coverage` is an int"
    assert (diag.primary and str(diag.primary.span)) == "w.alfred:1:8"
    assert check_when(ref("params.dry"), TYPES, where) == []
    assert check_when(b("!=", ref("params.env"), lit("prod")), TYPES, where) == []
