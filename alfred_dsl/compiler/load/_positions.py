"""Building values with positions, shared by the JSON and YAML readers: an explicit stack
of frames keeps a span for every key and value, the nesting limit and duplicate keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..._diagnostics import Diagnostic, Label, error
from ..._source import Span
from ..._values import MAX_INT_DIGITS
from .._document import Path as DocPath, SpanIndex

# -- building values with positions (shared by JSON and YAML) ---------------------------


class _InputError(Exception):
    """A syntax or limit problem at a character offset (turned into a diagnostic)."""

    def __init__(self, code: str, message: str, start: int, end: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.start = start
        self.end = start + 1 if end is None else end


@dataclass(slots=True)
class _Frame:
    """A mapping or sequence being built, with the document path that leads to it."""

    container: dict[str, Any] | list[Any]
    path: DocPath
    start: int
    anchor: str | None = None
    #: Number of values in this container, itself included (for the alias budget).
    size: int = 1
    #: The key whose value is being read (mappings only), and its span.
    key: str | None = None
    key_span: Span | None = None
    #: "" (store the value), "merge" (a YAML ``<<``), "skip" (a duplicate or bad key).
    key_kind: str = ""
    #: Keys that came from a YAML merge: an explicit key may override them.
    merged: set[str] = field(default_factory=set)


def _child_path(frame: _Frame) -> DocPath:
    if isinstance(frame.container, list):
        return (*frame.path, len(frame.container))
    if frame.key_kind:  # spans of values that are not stored go to a path no one asks for
        return (*frame.path, "\x00" + (frame.key or ""))
    return (*frame.path, frame.key or "")


def _begin_key(frame: _Frame, key: str, span: Span, spans: SpanIndex, diags: list[Diagnostic]) -> None:
    """Start the entry ``key`` of a mapping frame, reporting a duplicate key (A208)."""
    frame.key, frame.key_span, frame.key_kind = key, span, ""
    assert isinstance(frame.container, dict)
    if key in frame.container and key not in frame.merged:
        diags.append(
            error(
                "A208",
                f"duplicate key `{key}`",
                span,
                "duplicate key",
                secondary=[Label(spans.key((*frame.path, key)), "first defined here")],
                help="remove one of them; only the first is used",
            )
        )
        frame.key_kind = "skip"


def _end_value(frame: _Frame, value: Any, span: Span, size: int, spans: SpanIndex) -> None:
    """Put a finished value into its parent frame and record its span."""
    frame.size += size
    container = frame.container
    if isinstance(container, list):
        spans.set((*frame.path, len(container)), span)
        container.append(value)
        return
    if not frame.key_kind and frame.key is not None:
        frame.merged.discard(frame.key)
        container[frame.key] = value
        spans.set((*frame.path, frame.key), span, frame.key_span)
    frame.key, frame.key_span, frame.key_kind = None, None, ""


def _too_long(digits: str) -> str:
    count = len(digits.lstrip("+-"))
    return f"integer `{digits[:20]}...` is too long: {count} digits, at most {MAX_INT_DIGITS}"


class _TooLong(ValueError):
    pass
