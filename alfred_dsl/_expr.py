"""Expressions: references, literals, comparisons and boolean logic, and ``${...}`` templates.

The DSL's bare values (``params.x``, ``params.env == "prod"``) and the ``${...}`` parts of
strings in every input format parse to these nodes (see ``_syntax.parse_expression``).
In the normalized document an expression is stored as a string holding ``${...}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._source import Span

__all__ = ["Binary", "Expr", "Literal", "Ref", "Template", "Unary"]


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
