"""Source files and spans.

A :class:`Span` stores 0-based character offsets into a :class:`SourceFile` with an
exclusive end, like Lark's ``Token.start_pos``/``end_pos``; 1-based lines and columns
(columns count characters) are derived on demand.
"""

from __future__ import annotations

import bisect
from dataclasses import FrozenInstanceError, dataclass
from functools import cached_property
from pathlib import Path

__all__ = ["SourceFile", "Span", "span_at"]


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


#: A span keeps its start and end packed in one int (``start << 32 | end``) when both fit,
#: which is always but for files past 4 GiB or negative offsets (kept as a pair then).
_SHIFT = 32
_LOW = (1 << _SHIFT) - 1


class Span:
    """A range of characters in a source file: ``[start, end)``.

    Immutable, and equal to another span of the same file with the same start and end.
    A large file has about twelve spans per stage in its syntax tree, so a span is kept
    small: its file and one int (48 + 32 bytes, against 56 + 2 x 28 for a dataclass of
    three fields).
    """

    __slots__ = ("_bounds", "source")
    __match_args__ = ("source", "start", "end")

    source: SourceFile
    _bounds: int | tuple[int, int]

    def __init__(self, source: SourceFile, start: int, end: int) -> None:
        _set_source(self, source)
        try:
            if start >= 0 and 0 <= end <= _LOW:
                _set_bounds(self, start << _SHIFT | end)
                return
        except TypeError:  # not ints (a parser's token may have no end): kept as they are
            pass
        _set_bounds(self, (start, end))

    @classmethod
    def packed(cls, source: SourceFile, bounds: int) -> Span:
        """The span of ``source`` whose :attr:`bounds` are ``bounds`` (a packed int), made
        without ``__init__`` as :func:`span_at` is (a span is not a dataclass, so not by
        :func:`alfred_dsl._make.maker`)."""
        span = _new(cls)
        _set_source(span, source)
        _set_bounds(span, bounds)
        return span

    @property
    def bounds(self) -> int | tuple[int, int]:
        """Start and end in one int (``start << 32 | end``), or a pair when they do not fit."""
        return self._bounds

    @property
    def start(self) -> int:
        bounds = self._bounds
        return bounds >> _SHIFT if type(bounds) is int else bounds[0]  # type: ignore[index]

    @property
    def end(self) -> int:
        bounds = self._bounds
        return bounds & _LOW if type(bounds) is int else bounds[1]  # type: ignore[index]

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Span:
            return NotImplemented
        assert isinstance(other, Span)
        return self.source is other.source and self._bounds == other._bounds

    def __hash__(self) -> int:
        return hash((self.source, self._bounds))

    def __reduce__(self) -> tuple[type[Span], tuple[SourceFile, int, int]]:
        return (Span, (self.source, self.start, self.end))

    def __repr__(self) -> str:
        return f"Span(start={self.start}, end={self.end})"

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


_new = object.__new__
_set_source = Span.__dict__["source"].__set__
_set_bounds = Span.__dict__["_bounds"].__set__


def span_at(source: SourceFile, start: int, end: int) -> Span:
    """``Span(source, start, end)`` without the class call: a parser makes millions of spans
    (about twice as fast; the same span, including for bounds that are not ints). Written
    here rather than with :func:`alfred_dsl._make.maker`, which makes dataclasses from their
    fields: a span is not a dataclass, and packs its bounds into one int (as does
    :meth:`Span.packed`, for bounds already packed)."""
    span: Span = _new(Span)
    _set_source(span, source)
    try:
        _set_bounds(span, start << _SHIFT | end if start >= 0 and 0 <= end <= _LOW else (start, end))
    except TypeError:  # not ints (a token without an end): kept as they are, as Span() does
        _set_bounds(span, (start, end))
    return span
