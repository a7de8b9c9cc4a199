"""The tree builder: a Lark transformer run inside the LALR parser, making :mod:`.._ast` nodes.

No parse tree is materialised; spans come from the tokens.
"""

from __future__ import annotations

from sys import intern
from typing import Any

from lark import Token, Transformer

from ..._diagnostics import error
from ..._expr import Binary, Expr, Literal, Ref, Unary
from ..._make import maker
from ..._source import Span, span_at
from .. import _ast as ast
from ._lexer import TOKENS, _Abort, _Context, _context
from ._literals import MAX_DEPTH, classify_number, unescape

# The nodes a large file has most of, made without their dataclass __init__ (see alfred_dsl/_make.py).
_span = span_at
_Attribute = maker(ast.Attribute)
_Target = maker(ast.Target)
_Name = maker(ast.Name)
_Duration = maker(ast.Duration)
_Number = maker(ast.Number)
_String = maker(ast.String)
_Bool = maker(ast.Bool)
_Stage = maker(ast.Stage)
_Entry = maker(ast.Entry)

# -- the tree builder (runs inside the LALR parser) ---------------------------------------


def _cover(first: Any, last: Any) -> Span:
    """The span from the start of ``first`` to the end of ``last`` (tokens or nodes)."""
    ctx = _context()
    if ctx.simple:
        start: int = first.start_pos if isinstance(first, TOKENS) else first.span.start
        end: int = last.end_pos if isinstance(last, TOKENS) else last.span.end
        return _span(ctx.source, start, end)
    start_span = ctx.token_span(first) if isinstance(first, TOKENS) else first.span
    end_span = ctx.token_span(last) if isinstance(last, TOKENS) else last.span
    return start_span.cover(end_span)


def _value(item: Any) -> ast.Value:
    """A value from the parser stack: literal tokens become nodes here (not in own rules)."""
    if not isinstance(item, TOKENS):
        value: ast.Value = item
        return value
    return _token_value(item, _context())


def _token_value(item: Any, ctx: _Context) -> ast.Value:
    kind = item.type
    span = _span(ctx.source, item.start_pos, item.end_pos) if ctx.simple else ctx.token_span(item)
    if kind == "NAME":
        return _Name(name=intern(item.value), span=span)  # names recur: one string each
    if kind == "NUMBER":
        number_kind, number, _ = classify_number(item.value)
        if number_kind == "duration":
            assert number is not None
            return _Duration(raw=item.value, seconds=number, span=span)
        if number_kind == "size":  # kept as written, like a duration: `max_log` reads it
            return _Number(raw=item.value, value=None, span=span)
        return _Number(raw=item.value, value=number, span=span)
    if kind == "STRING":
        raw = item.value[1:-1]
        return _String(raw=raw, value=unescape(raw), span=span)
    if kind == "TRUE" or kind == "FALSE":
        return _Bool(value=kind == "TRUE", span=span)
    return _Name(name=intern(item.value), span=span)


def _as_expr(item: Any) -> Expr:
    """An operand of an operator: bare names are references, AST literals become Literal."""
    value = _value(item)
    if isinstance(value, ast.Name):
        return Ref(parts=(value.name,), span=value.span)
    if isinstance(value, ast.String | ast.Bool):
        return Literal(value=value.value, span=value.span)
    if isinstance(value, ast.Number):
        return Literal(value=value.value, span=value.span)
    if isinstance(value, ast.Duration):
        return Literal(value=value.seconds, span=value.span)
    assert isinstance(value, Literal | Ref | Unary | Binary)
    return value


def _key(token: Any) -> str:
    return unescape(token.value[1:-1]) if token.type == "STRING" else token.value


#: Binding power of binary operators; `not` binds between `and` and the comparisons.
_POWER = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4}
_NOT_POWER = 3


def _climb(items: list[Any], index: int, min_power: int) -> tuple[Expr, int]:
    """Precedence climbing over the flat operator sequence of an ``operation``."""
    first = items[index]
    if isinstance(first, TOKENS) and first.type == "NOT":
        operand, index = _climb(items, index + 1, _NOT_POWER)
        left: Expr = Unary(op="not", operand=operand, span=_cover(first, operand))
    else:
        left = _as_expr(first)
        index += 1
    compared = False
    while index < len(items):
        operator = items[index]
        power = _POWER[operator.value]
        if power < min_power:
            break
        if power == 4 and compared:
            # Comparisons do not chain: `a == b == c` is an error, not `(a == b) == c`.
            ctx = _context()
            ctx.report(
                error("A108" if ctx.expression else "A102", "comparisons cannot be chained",
                      ctx.token_span(operator), "second comparison",
                      help="combine them with `and`: `a < b and b < c`"),
                operator.start_pos,
            )
        compared = power == 4
        right, index = _climb(items, index + 1, power + 1)
        left = Binary(op=operator.value, left=left, right=right, span=_cover(left, right))
    return left, index


class _Builder(Transformer[Token, Any]):
    """Builds :mod:`._ast` nodes; one method per grammar rule (children as a list)."""

    def file(self, children: list[Any]) -> ast.File:
        ctx = _context()
        return ast.File(items=tuple(children), span=ctx.span(0, len(ctx.text)))

    def expression(self, children: list[Any]) -> Any:
        return _as_expr(children[0])

    def import_(self, children: list[Any]) -> ast.Import:
        keyword, path = children
        ctx = _context()
        string = _String(raw=path.value[1:-1], value=unescape(path.value[1:-1]), span=ctx.token_span(path))
        return ast.Import(path=string, span=ctx.span(keyword.start_pos, path.end_pos))

    def _attrs_of(self, children: list[Any]) -> tuple[ast.Attribute, ...]:
        return tuple(child for child in children if isinstance(child, ast.Attribute))

    def agent(self, children: list[Any]) -> ast.Agent:
        ctx = _context()
        keyword, name = children[0], children[1]
        return ast.Agent(
            name=name.value,
            name_span=ctx.token_span(name),
            attributes=self._attrs_of(children[3:-1]),
            span=ctx.span(keyword.start_pos, children[-1].end_pos),
        )

    def workflow(self, children: list[Any]) -> ast.Workflow:
        ctx = _context()
        keyword, name = children[0], children[1]
        return ast.Workflow(
            name=name.value,
            name_span=ctx.token_span(name),
            items=tuple(child for child in children[3:-1] if not isinstance(child, TOKENS)),
            span=ctx.span(keyword.start_pos, children[-1].end_pos),
        )

    def param(self, children: list[Any]) -> ast.Param:
        ctx = _context()
        keyword, name, _colon, type_name, _equal, default = children
        return ast.Param(
            name=name.value,
            name_span=ctx.token_span(name),
            type=type_name.value,
            type_span=ctx.token_span(type_name),
            default=None if default is None else _value(default),
            span=_cover(keyword, default if default is not None else type_name),
        )

    def defaults(self, children: list[Any]) -> ast.Defaults:
        ctx = _context()
        return ast.Defaults(
            attributes=self._attrs_of(children[2:-1]),
            span=ctx.span(children[0].start_pos, children[-1].end_pos),
        )

    def stage(self, children: list[Any]) -> ast.Stage:
        ctx = _context()
        keyword, name, after = children[0], children[1], children[2]
        if ctx.simple:  # the spans of a whole file are token offsets (ctx.span), made here directly
            source = ctx.source
            return _Stage(
                name=intern(name.value),
                name_span=_span(source, name.start_pos, name.end_pos),
                after=after or (),
                attributes=tuple([child for child in children[4:-1] if isinstance(child, ast.Attribute)]),
                span=_span(source, keyword.start_pos, children[-1].end_pos),
            )
        return _Stage(
            name=intern(name.value),
            name_span=ctx.token_span(name),
            after=after or (),
            attributes=self._attrs_of(children[4:-1]),
            span=ctx.span(keyword.start_pos, children[-1].end_pos),
        )

    def use(self, children: list[Any]) -> ast.Use:
        ctx = _context()
        keyword, template, arguments, _as, alias, after = children
        return ast.Use(
            template=template.value,
            template_span=ctx.token_span(template),
            arguments=arguments or (),
            alias=alias.value,
            alias_span=ctx.token_span(alias),
            after=after or (),
            span=_cover(keyword, after[-1] if after else alias),
        )

    def arguments(self, children: list[Any]) -> tuple[ast.Attribute, ...]:
        return self._attrs_of(children)

    def binding(self, children: list[Any]) -> ast.Attribute:
        return self.attribute(children)

    def hook(self, children: list[Any]) -> ast.Hook:
        ctx = _context()
        keyword, event = children[0], children[1]
        return ast.Hook(
            event=event.value,
            event_span=ctx.token_span(event),
            attributes=self._attrs_of(children[3:-1]),
            span=ctx.span(keyword.start_pos, children[-1].end_pos),
        )

    def after(self, children: list[Any]) -> tuple[ast.Target, ...]:
        ctx = _context()
        targets: list[ast.Target] = []
        for child in children[1:]:
            if not isinstance(child, TOKENS):
                targets.append(child)
            elif child.type == "NAME":
                span = ctx.token_span(child)
                targets.append(_Target(name=intern(child.value), span=span))
        return tuple(targets)

    def dotted(self, children: list[Any]) -> ast.Target:
        names = [child.value for child in children if child.type != "DOT"]
        return _Target(name=".".join(names), span=_cover(children[0], children[-1]))

    def attribute(self, children: list[Any]) -> ast.Attribute:
        key, _equal, value = children
        ctx = _context()
        if ctx.simple:  # _cover(key, value) is from the key's start to the value's end
            source = ctx.source
            node: Any = _token_value(value, ctx) if isinstance(value, TOKENS) else value
            return _Attribute(
                name=intern(_key(key)),
                name_span=_span(source, key.start_pos, key.end_pos),
                value=node,
                span=_span(source, key.start_pos, node.span.end),
            )
        return _Attribute(
            name=intern(_key(key)),
            name_span=ctx.token_span(key),
            value=_value(value),
            span=_cover(key, value),
        )

    def sequence(self, children: list[Any]) -> ast.ListValue:
        items = tuple(
            _value(child)
            for child in children[1:-1]
            if not isinstance(child, TOKENS) or child.type != "COMMA"
        )
        return ast.ListValue(items=items, span=_context().span(children[0].start_pos, children[-1].end_pos))

    def mapping(self, children: list[Any]) -> ast.MapValue:
        entries = tuple(child for child in children if isinstance(child, ast.Entry))
        return ast.MapValue(entries=entries, span=_cover(children[0], children[-1]))

    def entry(self, children: list[Any]) -> ast.Entry:
        key, _equal, value = children
        ctx = _context()
        return _Entry(
            key=_key(key), key_span=ctx.token_span(key), value=_value(value), span=_cover(key, value)
        )

    def operation(self, children: list[Any]) -> Expr:
        """Group a flat ``[not]* operand (op [not]* operand)*`` sequence by precedence."""
        if len(children) > 2 * MAX_DEPTH:
            # Each operator adds a level to the tree that later passes walk recursively.
            ctx = _context()
            ctx.diagnostics.append(
                error(
                    "A003",
                    f"expression with more than {MAX_DEPTH} operators",
                    _cover(children[0], children[-1]),
                    "too long",
                    help="split the condition into several params or stages",
                )
            )
            raise _Abort
        expr, _ = _climb(children, 0, 0)
        return expr

    def reference(self, children: list[Any]) -> Ref:
        parts = tuple(child.value for child in children if child.type != "DOT")
        return Ref(parts=parts, span=_cover(children[0], children[-1]))

    def group(self, children: list[Any]) -> Any:
        return _value(children[1])
