"""Source files and spans.

A :class:`Span` stores 0-based character offsets into a :class:`SourceFile` with an
exclusive end, like Lark's ``Token.start_pos``/``end_pos``; 1-based lines and columns
(columns count characters) are derived on demand.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

__all__ = ["SourceFile", "Span"]


@dataclass(frozen=True, eq=False)
class SourceFile:
    """The text of one input file and the name it is reported under."""

    name: str
    text: str
    path: Path | None = None

    @cached_property
    def _line_starts(self) -> list[int]:
        starts = [0]
        find = self.text.find
        pos = find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = find("\n", pos + 1)
        return starts

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a 0-based character offset."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def offset(self, line: int, column: int) -> int:
        """0-based offset of a 1-based (line, column); clamped to the text."""
        starts = self._line_starts
        line = max(1, min(line, len(starts)))
        return min(starts[line - 1] + max(column, 1) - 1, len(self.text))

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        starts = self._line_starts
        if not 1 <= line <= len(starts):
            return ""
        end = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[starts[line - 1] : end].rstrip("\r")

    @property
    def line_count(self) -> int:
        return len(self._line_starts)

    def span(self, start: int, end: int | None = None) -> Span:
        return Span(self, start, start if end is None else end)

    def whole(self) -> Span:
        return Span(self, 0, 0)

    def __repr__(self) -> str:
        return f"SourceFile({self.name!r})"


@dataclass(frozen=True, slots=True)
class Span:
    """A range of characters in a source file: ``[start, end)``."""

    source: SourceFile = field(repr=False)
    start: int
    end: int

    @property
    def file(self) -> str:
        return self.source.name

    @property
    def line(self) -> int:
        return self.source.position(self.start)[0]

    @property
    def column(self) -> int:
        return self.source.position(self.start)[1]

    @property
    def end_line(self) -> int:
        return self.source.position(self.end)[0]

    @property
    def end_column(self) -> int:
        """The column just after the last character (exclusive), 1-based."""
        return self.source.position(self.end)[1]

    def cover(self, other: Span) -> Span:
        """The smallest span holding both (same file assumed)."""
        return Span(self.source, min(self.start, other.start), max(self.end, other.end))

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"
