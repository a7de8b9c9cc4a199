"""``alfredc fmt``: the canonical layout of an ``.alfred`` file.

The layout:

- 2-space indentation, one attribute per line, a blank line between top-level blocks;
  inside a block, a blank line the author left between two items is kept (runs of
  blank lines become one);
- ``=`` is aligned within a run of consecutive one-line attributes of a block (a blank
  line, a nested block or a multi-line value ends the run), like ``terraform fmt``;
- lists and maps are written inline when they fit in 110 columns (the project's line
  length) and hold no comment, else one item per line (lists with a trailing comma); a
  map the author wrote with a line break after its ``{`` stays one entry per line;
- expressions get single spaces around operators and only the parentheses they need;
  literals (strings, numbers, durations) are kept exactly as written;
- every comment is kept: own-line comments stay before what follows them, end-of-line
  comments stay at the end of their line.

Formatting is idempotent and the result lowers to the same normalized document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .._diagnostics import Diagnostic
from .._expr import Binary, Expr, Literal, Ref, Unary
from .._source import SourceFile
from . import _ast as ast
from .syntax import parse_ast

__all__ = ["WIDTH", "format_source", "format_tree"]

#: Lists and maps longer than this (from the start of the line) are broken over lines.
WIDTH = 110
_INDENT = "  "
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4}
#: Marks the start of an end-of-line comment until the comments of a run are aligned.
_MARK = "\x1f"
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}


def format_source(text: str, filename: str) -> tuple[str | None, list[Diagnostic]]:
    """The formatted text, or None (with the diagnostics) when the file has syntax errors."""
    source = SourceFile(filename, text)
    tree, diagnostics = parse_ast(source)
    if tree is None or any(d.is_error for d in diagnostics):
        return None, diagnostics
    return format_tree(tree, source), diagnostics


def format_tree(tree: ast.File, source: SourceFile) -> str:
    printer = _Printer(source=source, comments=list(tree.comments))
    if _MARK in source.text:  # cannot mark comments safely: no alignment
        printer.mark = "  "
    printer.file(tree)
    return printer.result()


def _align_comments(lines: list[str], mark: str) -> str:
    """Line up the end-of-line comments of consecutive lines at the same indentation."""
    if mark != _MARK:
        return "\n".join(lines)
    out: list[str] = []
    index = 0
    while index < len(lines):
        if mark not in lines[index]:
            out.append(lines[index])
            index += 1
            continue
        indent = len(lines[index]) - len(lines[index].lstrip(" "))
        end = index
        while (
            end < len(lines)
            and mark in lines[end]
            and len(lines[end]) - len(lines[end].lstrip(" ")) == indent
        ):
            end += 1
        codes = [lines[i].split(mark, 1) for i in range(index, end)]
        width = max(len(code) for code, _ in codes)
        out.extend(code.ljust(width) + "  " + comment for code, comment in codes)
        index = end
    return "\n".join(out)


def _key(name: str) -> str:
    if _IDENTIFIER.fullmatch(name):
        return name
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in name) + '"'


def _precedence(expr: Expr) -> int:
    if isinstance(expr, Binary | Unary):
        return _PRECEDENCE[expr.op]
    return 10


@dataclass(slots=True)
class _Printer:
    source: SourceFile
    comments: list[ast.Comment]
    lines: list[str] = field(default_factory=list)
    next_comment: int = 0
    mark: str = _MARK  # put before end-of-line comments, replaced by aligning spaces at the end
    last_end: int = 0  # source offset of the end of what was printed last

    def result(self) -> str:
        while self.lines and self.lines[-1] == "":
            self.lines.pop()
        if not self.lines:
            return ""
        return _align_comments("\n".join(self.lines).split("\n"), self.mark) + "\n"

    # -- comments and blank lines ----------------------------------------------------------

    def _blank_between(self, start: int, end: int) -> bool:
        """Did the author leave an empty line in ``text[start:end]``?"""
        segment = self.source.text[start:end]
        parts = segment.split("\n")
        return any(part.strip() == "" for part in parts[1:-1])

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "" and not self.lines[-1].endswith("{"):
            self.lines.append("")

    def leading(self, before: int, indent: str, keep_blank: bool = True) -> None:
        """Print the own-line comments that come before source offset ``before``."""
        comments = self.comments
        while self.next_comment < len(comments) and comments[self.next_comment].span.start < before:
            comment = comments[self.next_comment]
            if keep_blank and self._blank_between(self.last_end, comment.span.start):
                self.blank()
            self.lines.append(indent + comment.text)
            self.last_end = comment.span.end
            self.next_comment += 1
        if keep_blank and self._blank_between(self.last_end, before):
            self.blank()

    def trailing(self, end: int) -> str:
        """The end-of-line comment on the source line where ``end`` is, if any."""
        comments = self.comments
        if self.next_comment >= len(comments):
            return ""
        comment = comments[self.next_comment]
        newline = self.source.text.find("\n", end)
        line_end = len(self.source.text) if newline < 0 else newline
        if end <= comment.span.start < line_end + 1 and comment.span.start <= line_end:
            self.next_comment += 1
            self.last_end = comment.span.end
            return self.mark + comment.text
        return ""

    def has_comment_in(self, start: int, end: int) -> bool:
        index = self.next_comment
        return index < len(self.comments) and self.comments[index].span.start < end

    def line(self, text: str, start: int, end: int, indent: str) -> None:
        """Print one line for source ``[start, end)``, with its comments."""
        self.leading(start, indent)
        self.last_end = end
        self.lines.append(indent + text + self.trailing(end))

    # -- structure -------------------------------------------------------------------------

    def file(self, tree: ast.File) -> None:
        previous: ast.TopItem | None = None
        for item in tree.items:
            both_imports = isinstance(previous, ast.Import) and isinstance(item, ast.Import)
            if previous is not None and not both_imports:
                self.blank()
            if isinstance(item, ast.Import):
                self.line("import " + self.literal(item.path), item.span.start, item.span.end, "")
            elif isinstance(item, ast.Agent):
                self.block(f"agent {item.name}", item.span.start, item.span.end, item.attributes, "")
            else:
                self.block(f"workflow {item.name}", item.span.start, item.span.end, item.items, "")
            previous = item
        self.leading(len(self.source.text) + 1, "")

    def block(
        self, header: str, start: int, end: int, items: tuple[ast.WorkflowItem, ...], indent: str,
        header_end: int | None = None,
    ) -> None:
        inner = indent + _INDENT
        if not items and not self.has_comment_in(start, end):
            self.line(header + " {}", start, end, indent)
            return
        self.leading(start, indent)
        opening = header_end if header_end is not None else self.source.text.find("{", start) + 1
        self.last_end = opening
        self.lines.append(indent + header + " {" + self.trailing(opening))
        self.items(items, inner)
        self.leading(end - 1, inner)
        self.last_end = end
        self.lines.append(indent + "}" + self.trailing(end))

    def items(self, items: tuple[ast.WorkflowItem, ...], indent: str) -> None:
        widths = self.alignment(items)
        for index, item in enumerate(items):
            if isinstance(item, ast.Attribute):
                self.attribute(item, indent, widths[index])
            elif isinstance(item, ast.Param):
                text = f"param {item.name}: {item.type}"
                self.leading(item.span.start, indent)  # before the value takes comments inside it
                if item.default is not None:
                    text += " = " + self.value(item.default, len(indent) + len(text) + 3, indent)
                self.line(text, item.span.start, item.span.end, indent)
            elif isinstance(item, ast.Defaults):
                self.block("defaults", item.span.start, item.span.end, item.attributes, indent)
            elif isinstance(item, ast.Stage):
                header = f"stage {item.name}" + self.after(item.after)
                self.block(header, item.span.start, item.span.end, item.attributes, indent)
            elif isinstance(item, ast.Use):
                self.use(item, indent)
            else:
                self.block(f"on {item.event}", item.span.start, item.span.end, item.attributes, indent)

    def alignment(self, items: tuple[ast.WorkflowItem, ...]) -> list[int]:
        """The key width of each attribute: runs of consecutive attributes share one width."""
        widths = [0] * len(items)
        run: list[int] = []

        def close() -> None:
            width = max((len(_key(items[i].name)) for i in run), default=0)  # type: ignore[union-attr]
            for i in run:
                widths[i] = width
            run.clear()

        previous_end: int | None = None
        for index, item in enumerate(items):
            single = isinstance(item, ast.Attribute)
            broken = previous_end is not None and self._blank_between(previous_end, item.span.start)
            if not single or broken:
                close()
            if single:
                run.append(index)
            previous_end = item.span.end
        close()
        return widths

    def attribute(self, item: ast.Attribute, indent: str, width: int) -> None:
        key = _key(item.name).ljust(width)
        prefix = f"{key} = "
        self.leading(item.span.start, indent)
        text = self.value(item.value, len(indent) + len(prefix), indent)
        self.last_end = item.span.end
        self.lines.append(indent + prefix + text + self.trailing(item.span.end))

    def after(self, targets: tuple[ast.Target, ...]) -> str:
        return " after " + ", ".join(t.name for t in targets) if targets else ""

    def use(self, item: ast.Use, indent: str) -> None:
        arguments = ", ".join(f"{_key(a.name)} = {self.inline(a.value)}" for a in item.arguments)
        tail = f" as {item.alias}" + self.after(item.after)
        text = f"use {item.template}({arguments}){tail}"
        if len(indent) + len(text) <= WIDTH and not self._comment_inside(item.span):
            self.line(text, item.span.start, item.span.end, indent)
            return
        self.leading(item.span.start, indent)
        self.lines.append(f"{indent}use {item.template}(")
        inner = indent + _INDENT
        for argument in item.arguments:
            prefix = f"{_key(argument.name)} = "
            value = self.value(argument.value, len(inner) + len(prefix), inner)
            self.leading(argument.span.start, inner, keep_blank=False)
            self.last_end = argument.span.end
            self.lines.append(inner + prefix + value + "," + self.trailing(argument.span.end))
        self.last_end = item.span.end
        self.lines.append(indent + ")" + tail + self.trailing(item.span.end))

    # -- values ----------------------------------------------------------------------------

    def literal(self, node: ast.String) -> str:
        return '"' + node.raw + '"'

    def value(self, node: ast.Value, column: int, indent: str) -> str:
        """The text of a value that starts at ``column``; may span lines (at ``indent``)."""
        if isinstance(node, ast.String):
            return self.literal(node)
        if isinstance(node, ast.Number | ast.Duration):
            return node.raw
        if isinstance(node, ast.Bool):
            return "true" if node.value else "false"
        if isinstance(node, ast.Name):
            return node.name
        if isinstance(node, ast.ListValue):
            return self.sequence(node, column, indent)
        if isinstance(node, ast.MapValue):
            return self.mapping(node, column, indent)
        return self.expression(node)

    def inline(self, node: ast.Value) -> str:
        """A value on one line (to measure it, or when it fits)."""
        if isinstance(node, ast.ListValue):
            return "[" + ", ".join(self.inline(item) for item in node.items) + "]"
        if isinstance(node, ast.MapValue):
            if not node.entries:
                return "{}"
            return "{ " + ", ".join(f"{_key(e.key)} = {self.inline(e.value)}" for e in node.entries) + " }"
        return self.value(node, 0, "")

    def fits(self, node: ast.Value, column: int) -> bool:
        if not isinstance(node, ast.ListValue | ast.MapValue):
            return True
        if isinstance(node, ast.MapValue) and node.entries and "\n" in self.source.text[
            node.span.start : node.entries[0].span.start
        ]:
            return False  # expanded on purpose by its author
        return column + len(self.inline(node)) <= WIDTH and not self._comment_inside(node.span)

    def sequence(self, node: ast.ListValue, column: int, indent: str) -> str:
        if not node.items:
            return "[]"
        if self.fits(node, column):
            return self.inline(node)
        inner = indent + _INDENT
        out = ["["]
        for item in node.items:
            out.extend(self._nested_line(item, inner, "", item.span.start if item.span else 0, ","))
        out.append(self._close_nested(node.span.end, inner) + indent + "]")
        return "\n".join(out)

    def mapping(self, node: ast.MapValue, column: int, indent: str) -> str:
        if not node.entries:
            return "{}"
        if self.fits(node, column):
            return self.inline(node)
        inner = indent + _INDENT
        width = max(len(_key(e.key)) for e in node.entries)
        out = ["{"]
        for entry in node.entries:
            prefix = _key(entry.key).ljust(width) + " = "
            out.extend(self._nested_line(entry.value, inner, prefix, entry.span.start, ""))
        out.append(self._close_nested(node.span.end, inner) + indent + "}")
        return "\n".join(out)

    def _comment_inside(self, span: object) -> bool:
        start = getattr(span, "start", 0)
        end = getattr(span, "end", 0)
        return any(start < c.span.start < end for c in self.comments[self.next_comment :])

    def _nested_line(self, node: ast.Value, indent: str, prefix: str, start: int, suffix: str) -> list[str]:
        """Lines of one list item or map entry, with the comments around it."""
        out: list[str] = []
        while self.next_comment < len(self.comments) and self.comments[self.next_comment].span.start < start:
            out.append(indent + self.comments[self.next_comment].text)
            self.next_comment += 1
        text = self.value(node, len(indent) + len(prefix), indent)
        end = node.span.end if node.span is not None else start
        self.last_end = end
        out.append(indent + prefix + text + suffix + self._trailing_after_separator(end))
        return out

    def _trailing_after_separator(self, end: int) -> str:
        """An end-of-line comment after an item (possibly after its comma)."""
        text = self.source.text
        position = end
        while position < len(text) and text[position] in " \t,":
            position += 1
        return self.trailing(position) if position < len(text) and text[position] == "#" else ""

    def _close_nested(self, end: int, indent: str) -> str:
        out = ""
        while self.next_comment < len(self.comments) and self.comments[self.next_comment].span.start < end:
            out += indent + self.comments[self.next_comment].text + "\n"
            self.next_comment += 1
        return out

    def expression(self, node: Expr) -> str:
        if isinstance(node, Literal):
            if node.span is not None:
                return self.source.text[node.span.start : node.span.end]
            return repr(node.value)
        if isinstance(node, Ref):
            return ".".join(node.parts)
        if isinstance(node, Unary):
            inner = self.expression(node.operand)
            if _precedence(node.operand) < _PRECEDENCE["not"]:
                inner = f"({inner})"
            return f"not {inner}"
        mine = _PRECEDENCE[node.op]
        left, right = self.expression(node.left), self.expression(node.right)
        if _precedence(node.left) < mine or (mine == 4 and _precedence(node.left) == 4):
            left = f"({left})"
        if _precedence(node.right) <= mine:
            right = f"({right})"
        return f"{left} {node.op} {right}"
