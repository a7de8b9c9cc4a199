"""The normalized document: the one shape that the DSL, YAML and JSON all lower to.

``Document.data`` is plain JSON-compatible data valid against
``schemas/workflow.schema.json``; ``Document.spans`` maps each path in it back to the
source text it came from, so that every later check can point at the user's input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._source import SourceFile, Span

__all__ = ["Document", "Path", "SpanIndex"]

#: A path into the normalized document, e.g. ("workflows", "ci", "stages", "build", "after", 0).
Path = tuple[str | int, ...]


@dataclass(slots=True)
class SpanIndex:
    """Spans of values (and of the keys naming them) by document path.

    Lookups fall back to the nearest recorded ancestor, so a diagnostic about any part
    of the document can always be placed somewhere sensible.
    """

    source: SourceFile
    values: dict[Path, Span] = field(default_factory=dict)
    keys: dict[Path, Span] = field(default_factory=dict)
    #: ``values`` and ``keys`` are another index's (the merged workspace of a single file
    #: shares its document's): they are copied before the first change (:meth:`own`).
    borrowed: bool = False

    def own(self) -> None:
        """Make ``values`` and ``keys`` this index's own before changing them."""
        if self.borrowed:
            self.values = dict(self.values)
            self.keys = dict(self.keys)
            self.borrowed = False

    def set(self, path: Path, value: Span, key: Span | None = None) -> None:
        if self.borrowed:
            self.own()
        self.values[path] = value
        if key is not None:
            self.keys[path] = key

    def value(self, path: Path) -> Span:
        """The span of the value at ``path`` (or of its nearest recorded ancestor)."""
        while path:
            span = self.values.get(path)
            if span is not None:
                return span
            path = path[:-1]
        return self.values.get((), self.source.whole())

    def key(self, path: Path) -> Span:
        """The span of the key (or name) that introduces ``path``; falls back to the value."""
        span = self.keys.get(path)
        return span if span is not None else self.value(path)

    def update(self, other: SpanIndex) -> None:
        self.own()
        self.values.update(other.values)
        self.keys.update(other.keys)


@dataclass(slots=True)
class Document:
    """One input file lowered to the normalized document."""

    source: SourceFile
    data: dict[str, Any]
    spans: SpanIndex
    #: Import paths as written, with the span of each (resolved by the loader).
    imports: tuple[tuple[str, Span], ...] = ()

    def get(self, path: Path) -> Any:
        node: Any = self.data
        for part in path:
            if isinstance(node, Mapping):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return None
        return node
