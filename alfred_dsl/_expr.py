"""Expressions: references, literals, comparisons and boolean logic, and ``${...}`` templates.

The DSL's bare values (``params.x``, ``params.env == "prod"``) and the ``${...}`` parts of
strings in every input format parse to these nodes (see ``compiler.syntax.parse_expression``).
In the normalized document an expression is stored as a string holding ``${...}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._diagnostics import AlfredError, Diagnostic, error
from ._source import Span
from ._values import value_type

__all__ = [
    "TYPES",
    "Binary",
    "Expr",
    "ExprError",
    "Interpolated",
    "Literal",
    "Ref",
    "Template",
    "Unary",
    "check_types",
    "check_when",
    "evaluate",
    "infer_type",
    "lookup",
    "references",
    "render",
    "substitute",
    "substitute_template",
    "to_text",
    "unparse",
    "unparse_template",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Literal:
    value: str | int | float | bool | None
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ref:
    """``params.x``, ``stages.build.outputs.path``, ``inputs.k``, ``env.HOME``, ``secrets.T``."""

    parts: tuple[str, ...]
    span: Span | None = field(default=None, compare=False)

    @property
    def root(self) -> str:
        return self.parts[0]

    def __str__(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unary:
    op: str  # "not"
    operand: Expr
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Binary:
    op: str  # "==" "!=" "<" "<=" ">" ">=" "and" "or"
    left: Expr
    right: Expr
    span: Span | None = field(default=None, compare=False)


Expr = Literal | Ref | Unary | Binary


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    """A string with interpolations: literal text and expressions, in order.

    A template that is exactly one interpolation keeps the type of its value.
    """

    parts: tuple[str | Expr, ...]
    span: Span | None = field(default=None, compare=False)

    @property
    def single(self) -> Expr | None:
        if len(self.parts) == 1 and not isinstance(self.parts[0], str):
            return self.parts[0]
        return None



class Interpolated(str):
    """Text holding ``${...}``, with its template parsed once by the compiler.

    The plan carries these where a value interpolates (``run``, ``inputs``, ``env``,
    ``when``, an agent's ``url``, a hook's ``run``): the runtime evaluates :meth:`parsed`
    and never parses. As a ``str`` it shows, compares, hashes and serialises as its text,
    so JSON outputs and plan equality are those of the text. ``problem`` is set instead of
    a template when the text does not parse: using it is then an :class:`ExprError`, at the
    moment it is used, as for any other evaluation error.
    """

    template: Template | None
    problem: str

    def __new__(cls, text: str, template: Template | None, problem: str = "") -> Interpolated:
        made = super().__new__(cls, text)
        made.template = template
        made.problem = problem
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return (Interpolated, (str(self), self.template, self.problem))

    def parsed(self) -> Template:
        if self.template is None:
            raise ExprError(f"invalid interpolation in {str(self)!r}: {self.problem}")
        return self.template

# ---------------------------------------------------------------------------------------
# Operations on expressions: text, references, substitution, evaluation, static types.
# ---------------------------------------------------------------------------------------

#: Binding strength of each operator; a child binding more loosely than its parent is parenthesized.
_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4}
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}

#: The static types of :func:`infer_type`.
TYPES = ("bool", "int", "float", "string", "duration", "list", "map", "any")
_NUMERIC = frozenset({"int", "float", "duration"})
_UNORDERED = frozenset({"bool", "list", "map"})


class ExprError(AlfredError):
    """Raised by :func:`evaluate` and :func:`render` when a value is missing or has the wrong type.

    Only the runtime evaluates expressions against real values; it reports this as the
    stage's failure. Static problems are found earlier by :func:`check_types`.
    """


def _quote_string(text: str) -> str:
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'


def _precedence(expr: Expr) -> int:
    if isinstance(expr, Binary | Unary):
        return _PRECEDENCE[expr.op]
    return 10


def unparse(expr: Expr) -> str:
    """The canonical text of an expression (parses back to an equal node)."""
    if isinstance(expr, Literal):
        value = expr.value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return _quote_string(value)
        if value is None:
            return "null"
        return repr(value)
    if isinstance(expr, Ref):
        return ".".join(expr.parts)
    if isinstance(expr, Unary):
        inner = unparse(expr.operand)
        if _precedence(expr.operand) < _PRECEDENCE["not"]:
            inner = f"({inner})"
        return f"{expr.op} {inner}"
    mine = _PRECEDENCE[expr.op]
    left, right = unparse(expr.left), unparse(expr.right)
    # Comparisons do not chain, and `and`/`or` group to the left: parenthesize accordingly.
    if _precedence(expr.left) < mine or (mine == 4 and _precedence(expr.left) == 4):
        left = f"({left})"
    if _precedence(expr.right) <= mine:
        right = f"({right})"
    return f"{left} {expr.op} {right}"


def unparse_template(template: Template) -> str:
    """The text of a template: literal parts with ``${`` escaped as ``$${``, expressions in ``${...}``."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part.replace("${", "$${"))
        else:
            out.append("${" + unparse(part) + "}")
    return "".join(out)


def references(node: Expr | Template) -> Iterator[Ref]:
    """Every reference in an expression or template, left to right."""
    if isinstance(node, Template):
        for part in node.parts:
            if not isinstance(part, str):
                yield from references(part)
    elif isinstance(node, Ref):
        yield node
    elif isinstance(node, Unary):
        yield from references(node.operand)
    elif isinstance(node, Binary):
        yield from references(node.left)
        yield from references(node.right)


def substitute(expr: Expr, bindings: Mapping[str, Expr]) -> Expr:
    """Replace references by expressions.

    A key is the dotted text of a reference (``"params.coverage"``). A reference that
    extends a key (``params.cfg.region`` for ``"params.cfg"``) is rewritten only when the
    binding is itself a reference, by appending the remaining parts. Nodes that do not
    change are returned as they are (identity is kept, so callers can test ``is``).
    """
    if isinstance(expr, Ref):
        for size in range(len(expr.parts), 0, -1):
            bound = bindings.get(".".join(expr.parts[:size]))
            if bound is None:
                continue
            if size == len(expr.parts):
                return bound
            if isinstance(bound, Ref):
                return Ref(parts=bound.parts + expr.parts[size:], span=expr.span)
            return expr
        return expr
    if isinstance(expr, Unary):
        operand = substitute(expr.operand, bindings)
        return expr if operand is expr.operand else Unary(op=expr.op, operand=operand, span=expr.span)
    if isinstance(expr, Binary):
        left, right = substitute(expr.left, bindings), substitute(expr.right, bindings)
        if left is expr.left and right is expr.right:
            return expr
        return Binary(op=expr.op, left=left, right=right, span=expr.span)
    return expr


def substitute_template(template: Template, bindings: Mapping[str, Expr]) -> Template:
    """:func:`substitute` applied to every interpolation of a template."""
    parts = tuple(part if isinstance(part, str) else substitute(part, bindings) for part in template.parts)
    if all(new is old for new, old in zip(parts, template.parts, strict=True)):
        return template
    return Template(parts=parts, span=template.span)


def lookup(ref: Ref, scope: Mapping[str, Any]) -> Any:
    """The value a reference names in ``scope``; :class:`ExprError` when it is missing."""
    node: Any = scope
    parts = ref.parts
    if parts and parts[0] == "stages":
        # Stage names may hold dots (`auth.spec`): find the longest stage name before `outputs`.
        stages = scope.get("stages")
        if not isinstance(stages, Mapping):
            raise ExprError(f"`{ref}` is not available here")
        for end in range(len(parts) - 1, 1, -1):
            name = ".".join(parts[1:end])
            if name in stages:
                node = stages[name]
                parts = parts[end:]
                break
        else:
            raise ExprError(f"`{ref}`: no outputs of that stage are available")
    for part in parts:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list | tuple) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ExprError(f"`{ref}` is not defined")
    return node


def _as_bool(value: Any, expr: Expr) -> bool:
    if isinstance(value, bool):
        return value
    # Stage outputs are text (`ok=true` lines): accept the two boolean words.
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ExprError(f"`{unparse(expr)}` is {_describe(value)}, not a boolean")


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {_quote_string(value)}"
    return f"a {type(value).__name__}"


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _compare(op: str, left: Any, right: Any, expr: Expr) -> bool:
    # Outputs arrive as text: a number compared with a numeric string compares as numbers.
    if (isinstance(left, int | float) and not isinstance(left, bool)) or (
        isinstance(right, int | float) and not isinstance(right, bool)
    ):
        lnum, rnum = _number(left), _number(right)
        if lnum is not None and rnum is not None:
            left, right = lnum, rnum
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    comparable = (
        isinstance(left, int | float)
        and isinstance(right, int | float)
        and not isinstance(left, bool)
        and not isinstance(right, bool)
    ) or (isinstance(left, str) and isinstance(right, str))
    if not comparable:
        raise ExprError(f"cannot order {_describe(left)} and {_describe(right)} in `{unparse(expr)}`")
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def evaluate(expr: Expr, scope: Mapping[str, Any]) -> Any:
    """The value of an expression.

    ``scope`` maps the reference roots to values: ``"params"``, ``"stages"``
    (``{name: {"outputs": {...}}}``), ``"inputs"``, ``"env"``, ``"secrets"``.
    Raises :class:`ExprError` for a missing reference or an operand of the wrong type.
    """
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Ref):
        return lookup(expr, scope)
    if isinstance(expr, Unary):
        return not _as_bool(evaluate(expr.operand, scope), expr.operand)
    if expr.op == "and":
        return _as_bool(evaluate(expr.left, scope), expr.left) and _as_bool(
            evaluate(expr.right, scope), expr.right
        )
    if expr.op == "or":
        return _as_bool(evaluate(expr.left, scope), expr.left) or _as_bool(
            evaluate(expr.right, scope), expr.right
        )
    return _compare(expr.op, evaluate(expr.left, scope), evaluate(expr.right, scope), expr)


def to_text(value: Any) -> str:
    """How a value reads inside a string: ``true``/``false``, numbers, JSON for lists and maps."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, default=list, separators=(",", ":"))


def render(template: Template, scope: Mapping[str, Any], *, quote: Callable[[str], str] | None = None) -> Any:
    """The value of a template.

    A template that is exactly one interpolation keeps its value's type (a list stays a
    list). Otherwise the parts are joined as text; ``quote`` (e.g. ``shlex.quote``) is
    applied to each interpolated value, never to the literal text around it.
    """
    single = template.single
    if single is not None and quote is None:
        return evaluate(single, scope)
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
        else:
            text = to_text(evaluate(part, scope))
            out.append(quote(text) if quote is not None else text)
    return "".join(out)


# -- static types ---------------------------------------------------------------------------


def _literal_type(value: object) -> str:
    kind = value_type(value)
    return kind if kind in ("bool", "int", "float", "string") else "any"


def _ref_type(ref: Ref, param_types: Mapping[str, str]) -> str:
    parts = ref.parts
    if parts[0] == "params" and len(parts) == 2:
        return param_types.get(parts[1], "any")
    if parts[0] in ("env", "secrets") and len(parts) == 2:
        return "string"
    return "any"


def _compatible(left: str, right: str) -> bool:
    if "any" in (left, right) or left == right:
        return True
    return left in _NUMERIC and right in _NUMERIC


def check_types(
    expr: Expr, param_types: Mapping[str, str], where: Span | None = None
) -> tuple[str, list[Diagnostic]]:
    """The static type of an expression, and an A309 diagnostic for each ill-typed operation.

    ``param_types`` maps param names to their declared types; references whose type is not
    known statically (stage outputs, inputs) are ``"any"`` and accepted everywhere.
    ``where`` places diagnostics of nodes that carry no span of their own.
    """
    diagnostics: list[Diagnostic] = []

    def walk(node: Expr) -> str:
        if isinstance(node, Literal):
            return _literal_type(node.value)
        if isinstance(node, Ref):
            return _ref_type(node, param_types)
        if isinstance(node, Unary):
            operand = walk(node.operand)
            if operand not in ("bool", "any"):
                diagnostics.append(
                    error(
                        "A309",
                        f"`not` needs a boolean, but `{unparse(node.operand)}` is {_article(operand)}",
                        node.span or where,
                        f"this is {_article(operand)}",
                    )
                )
            return "bool"
        left, right = walk(node.left), walk(node.right)
        if node.op in ("and", "or"):
            for side, kind in ((node.left, left), (node.right, right)):
                if kind not in ("bool", "any"):
                    diagnostics.append(
                        error(
                            "A309",
                            f"`{node.op}` needs booleans, but `{unparse(side)}` is {_article(kind)}",
                            side.span or node.span or where,
                            f"this is {_article(kind)}",
                            help=f"compare it, e.g. `{unparse(side)} == ...`",
                        )
                    )
            return "bool"
        if not _compatible(left, right):
            diagnostics.append(
                error(
                    "A309",
                    f"cannot compare {_article(left)} with {_article(right)} in `{unparse(node)}`",
                    node.span or where,
                    f"{left} {node.op} {right}",
                )
            )
        elif node.op not in ("==", "!=") and (left in _UNORDERED or right in _UNORDERED):
            kind = left if left in _UNORDERED else right
            diagnostics.append(
                error(
                    "A309",
                    f"`{node.op}` cannot order {kind} values in `{unparse(node)}`",
                    node.span or where,
                    "only numbers, durations and strings are ordered",
                )
            )
        return "bool"

    return walk(expr), diagnostics


def infer_type(expr: Expr, param_types: Mapping[str, str]) -> str:
    """The static type of an expression (one of :data:`TYPES`); see :func:`check_types`."""
    return check_types(expr, param_types)[0]


def check_when(
    expr: Expr, param_types: Mapping[str, str], where: Span | None = None
) -> list[Diagnostic]:
    """Diagnostics for a `when` condition: A309 for ill-typed parts, A303 when it is not boolean."""
    kind, diagnostics = check_types(expr, param_types, where)
    if kind not in ("bool", "any"):
        diagnostics.append(
            error(
                "A303",
                f"`when` must be a boolean, but `{unparse(expr)}` is {_article(kind)}",
                expr.span or where,
                f"this is {_article(kind)}",
                help=f"compare the value, e.g. `{unparse(expr)} == ...`",
            )
        )
    return diagnostics


def _article(kind: str) -> str:
    return {
        "int": "an int",
        "any": "any value",
        "map": "a map",
        "list": "a list",
        "bool": "a bool",
        "float": "a float",
        "string": "a string",
        "duration": "a duration",
    }.get(kind, kind)
