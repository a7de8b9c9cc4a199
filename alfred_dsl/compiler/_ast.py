"""The syntax tree of an ``.alfred`` file, as written (before lowering).

Every node carries the :class:`Span` of its source text (ignored by ``==``). Values that
are expressions (``params.x``, ``a == b``) reuse the nodes of :mod:`._expr`; a bare
identifier on its own (``agent = spec-builder``) is a :class:`Name`, not a reference.
Comments are not part of the tree; :attr:`File.comments` keeps them for the formatter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._expr import Binary, Literal, Ref, Unary
from .._source import Span

__all__ = [
    "Agent",
    "Attribute",
    "Bool",
    "Comment",
    "Defaults",
    "Duration",
    "Entry",
    "File",
    "Hook",
    "Import",
    "ListValue",
    "MapValue",
    "Name",
    "Number",
    "Param",
    "Stage",
    "String",
    "Target",
    "TopItem",
    "Use",
    "Value",
    "Workflow",
    "WorkflowItem",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class String:
    """A string literal: ``raw`` is the text between the quotes, ``value`` is unescaped."""

    raw: str
    value: str
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Number:
    """An integer or float; ``value`` is None when the literal is malformed (A106 reported)."""

    raw: str
    value: int | float | None
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bool:
    value: bool
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Duration:
    """``500ms``, ``30s``, ``1h30m``: kept as written, with its length in seconds."""

    raw: str
    seconds: int | float
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Name:
    """A bare identifier used as a value: ``spec-builder``, ``high``, ``command``."""

    name: str
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListValue:
    items: tuple[Value, ...]
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """``key = value`` inside a map."""

    key: str
    key_span: Span = field(compare=False)
    value: Value
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MapValue:
    entries: tuple[Entry, ...]
    span: Span = field(compare=False)


Value = String | Number | Bool | Duration | Name | ListValue | MapValue | Ref | Binary | Unary | Literal


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribute:
    """``name = value`` in a block (also a ``use`` argument)."""

    name: str
    name_span: Span = field(compare=False)
    value: Value
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One name after ``after``: a stage, a ``use`` alias, or ``alias.stage``."""

    name: str
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Import:
    path: String
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Agent:
    name: str
    name_span: Span = field(compare=False)
    attributes: tuple[Attribute, ...]
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """``param NAME: TYPE [= default]``."""

    name: str
    name_span: Span = field(compare=False)
    type: str
    type_span: Span = field(compare=False)
    default: Value | None
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Defaults:
    attributes: tuple[Attribute, ...]
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    """``stage NAME [after a, b] { ... }``."""

    name: str
    name_span: Span = field(compare=False)
    after: tuple[Target, ...]
    attributes: tuple[Attribute, ...]
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Use:
    """``use TEMPLATE(k = v, ...) as ALIAS [after X, Y]``."""

    template: str
    template_span: Span = field(compare=False)
    arguments: tuple[Attribute, ...]
    alias: str
    alias_span: Span = field(compare=False)
    after: tuple[Target, ...]
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hook:
    """``on EVENT { run = ... }``."""

    event: str
    event_span: Span = field(compare=False)
    attributes: tuple[Attribute, ...]
    span: Span = field(compare=False)


WorkflowItem = Attribute | Param | Defaults | Stage | Use | Hook


@dataclass(frozen=True, slots=True, kw_only=True)
class Workflow:
    name: str
    name_span: Span = field(compare=False)
    items: tuple[WorkflowItem, ...]
    span: Span = field(compare=False)


TopItem = Import | Agent | Workflow


@dataclass(frozen=True, slots=True, kw_only=True)
class Comment:
    """``# text`` (``text`` includes the ``#``)."""

    text: str
    span: Span = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class File:
    items: tuple[TopItem, ...]
    comments: tuple[Comment, ...] = ()
    span: Span = field(compare=False)
