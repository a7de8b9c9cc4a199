"""Where a builder call was written: the Python file, the call and its arguments as spans.

The Python builder (``_builder``) records, for every value it puts into the normalized
document, the span of the Python expression that gave it, so that the compiler's
diagnostics point at the user's ``.py`` file exactly as they point into an ``.alfred``
file. The call is found from the caller's frame: ``co_positions`` gives the exact range
of the call instruction, and the file's ``ast`` gives the argument expressions in it.
When the source cannot be read (an interactive session), spans fall back to the line.
"""

from __future__ import annotations

import ast
import linecache
import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ._source import SourceFile, Span
from .compiler._document import Path as DocPath, SpanIndex

__all__ = ["CallSite", "call_site"]

_PACKAGE = "alfred_dsl"


def _display_name(filename: str) -> str:
    """The caller's file as the CLI would name it: relative to the working folder when inside it."""
    if filename.startswith("<"):
        return filename
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith("..") else relative


@lru_cache(maxsize=64)
def _source(filename: str, stamp: float) -> tuple[SourceFile, ast.Module | None]:
    lines = linecache.getlines(filename)
    text = "".join(lines)
    path = None if filename.startswith("<") else Path(filename)
    source = SourceFile(_display_name(filename), text, path)
    try:
        tree: ast.Module | None = ast.parse(text) if text else None
    except (SyntaxError, ValueError):
        tree = None
    return source, tree


def _stamp(filename: str) -> float:
    try:
        return os.stat(filename).st_mtime
    except OSError:
        return 0.0


def _char_offset(source: SourceFile, line: int, byte_column: int) -> int:
    """Offset of a 1-based line and a 0-based UTF-8 byte column (what ``ast`` gives)."""
    text = source.line_text(line)
    column = len(text.encode("utf-8")[:byte_column].decode("utf-8", errors="replace"))
    return source.offset(line, column + 1)


def _node_span(source: SourceFile, node: ast.AST) -> Span:
    start = _char_offset(source, node.lineno, node.col_offset)  # type: ignore[attr-defined]
    end_line = getattr(node, "end_lineno", None) or node.lineno  # type: ignore[attr-defined]
    end_col = getattr(node, "end_col_offset", None)
    end = _char_offset(source, end_line, end_col) if end_col is not None else start
    return source.span(start, end)


@dataclass(frozen=True, slots=True)
class CallSite:
    """One builder call in the user's source: its span and the expressions of its arguments."""

    source: SourceFile
    span: Span
    #: Argument expressions: positional ones by index, keyword ones by name.
    arguments: dict[int | str, ast.expr] = field(default_factory=dict)
    #: The ``name=`` part of keyword arguments.
    keywords: dict[str, ast.keyword] = field(default_factory=dict)

    @property
    def path(self) -> Path | None:
        return self.source.path

    def arg(self, *keys: int | str) -> Span:
        """The span of the first of ``keys`` (a position or a keyword) that was written; else the call."""
        for key in keys:
            node = self.arguments.get(key)
            if node is not None:
                return _node_span(self.source, node)
        return self.span

    def key(self, keyword: str) -> Span:
        node = self.keywords.get(keyword)
        return _node_span(self.source, node) if node is not None else self.span

    def record(self, spans: SpanIndex, path: DocPath, value: Any, *keys: int | str) -> None:
        """Record the span of ``value`` (given as argument ``keys``) and of its items at ``path``."""
        node = next((self.arguments[k] for k in keys if k in self.arguments), None)
        key = next((self.keywords[k] for k in keys if isinstance(k, str) and k in self.keywords), None)
        key_span = _node_span(self.source, key) if key is not None else None
        self._record(spans, path, value, node, key_span)

    def _record(
        self, spans: SpanIndex, path: DocPath, value: Any, node: ast.expr | None, key: Span | None
    ) -> None:
        span = _node_span(self.source, node) if node is not None else self.span
        spans.set(path, span, key)
        if isinstance(value, dict):
            entries: dict[str, tuple[ast.expr, ast.expr]] = {}
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values, strict=True):
                    if isinstance(k, ast.Constant) and isinstance(k.value, str):
                        entries[k.value] = (k, v)
            elif isinstance(node, ast.Call):  # dict(a=1)
                for keyword in node.keywords:
                    if keyword.arg is not None:
                        entries[keyword.arg] = (keyword.value, keyword.value)
            for name, item in value.items():
                found = entries.get(str(name))
                item_key = _node_span(self.source, found[0]) if found is not None else None
                self._record(spans, (*path, str(name)), item, found[1] if found else node, item_key)
        elif isinstance(value, list):
            elements = node.elts if isinstance(node, ast.List | ast.Tuple) else None
            for index, item in enumerate(value):
                item_node = elements[index] if elements is not None and index < len(elements) else node
                self._record(spans, (*path, index), item, item_node, None)


def _outside_frame() -> Any:
    frame: Any = sys._getframe(2)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module != _PACKAGE and not module.startswith(_PACKAGE + "."):
            return frame
        frame = frame.f_back
    return sys._getframe(2)


def _positions(frame: Any) -> tuple[int, int | None, int | None, int | None]:
    """(line, end line, column, end column) of the instruction the frame is executing."""
    index = frame.f_lasti // 2
    for number, position in enumerate(frame.f_code.co_positions()):
        if number == index:
            line, end_line, column, end_column = position
            if line is not None:
                return line, end_line, column, end_column
            break
    return frame.f_lineno, None, None, None


def _find_call(tree: ast.Module, line: int, end_line: int | None, column: int | None,
               end_column: int | None) -> ast.Call | None:
    best: ast.Call | None = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or node.lineno > line or (node.end_lineno or node.lineno) < line:
            continue
        exact = (node.lineno, node.end_lineno, node.col_offset, node.end_col_offset) == (
            line, end_line, column, end_column)
        if exact:
            return node
        if node.lineno == line and (best is None or node.col_offset < best.col_offset):
            best = node
    return best


def call_site() -> CallSite:
    """The call into ``alfred_dsl`` made by the first frame outside the package."""
    frame = _outside_frame()
    filename = frame.f_code.co_filename
    source, tree = _source(filename, _stamp(filename))
    line, end_line, column, end_column = _positions(frame)
    call = _find_call(tree, line, end_line, column, end_column) if tree is not None else None
    if call is None:
        start = source.offset(line, 1)
        text = source.line_text(line)
        indent = len(text) - len(text.lstrip())
        return CallSite(source, source.span(start + indent, start + len(text)))
    arguments: dict[int | str, ast.expr] = {}
    for index, argument in enumerate(call.args):
        if isinstance(argument, ast.Starred):
            break
        arguments[index] = argument
    keywords: dict[str, ast.keyword] = {}
    for keyword in call.keywords:
        if keyword.arg is not None:
            arguments[keyword.arg] = keyword.value
            keywords[keyword.arg] = keyword
    return CallSite(source, _node_span(source, call), arguments, keywords)
