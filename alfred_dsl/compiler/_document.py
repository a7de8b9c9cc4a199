"""The normalized document: the one shape that the DSL, YAML and JSON all lower to.

``Document.data`` is plain JSON-compatible data valid against
``schemas/workflow.schema.json``; ``Document.spans`` maps each path in it back to the
source text it came from, so that every later check can point at the user's input.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

from .._source import SourceFile, Span

__all__ = ["Document", "Path", "SpanIndex", "SpanTable", "pack_span"]

#: A path into the normalized document, e.g. ("workflows", "ci", "stages", "build", "after", 0).
Path = tuple[str | int, ...]


def pack_span(span: Span, source: SourceFile) -> int | Span:
    """What a :class:`SpanTable` of ``source`` keeps for ``span``: its packed bounds (one
    int, :attr:`Span.bounds`) when it is a span of ``source`` that has them."""
    bounds = span.bounds
    if span.source is source and type(bounds) is int:
        return bounds
    return span


#: In an item array, an item without a span.
_ABSENT = -1


class SpanTable(MutableMapping[Path, Span]):
    """Spans by document path, each kept as one int: a large file has about ten spans per
    stage, and a :class:`Span` object is two and a half times the size.

    A span of another file (the merged workspace holds those of imported files) or past
    4 GiB is kept as given. The spans of the items of a list of names (``after``) can be
    kept in one array at the list's path (:meth:`set_items`): three paths, their table
    entries and ints take four times the memory. Lookups make a new, equal :class:`Span`
    each time.
    """

    __slots__ = ("_items", "_packed", "source")

    def __init__(self, source: SourceFile, spans: Mapping[Path, Span] | None = None) -> None:
        self.source = source
        self._packed: dict[Path, int | Span] = {}
        #: Packed spans of list items by the list's path (``_ABSENT`` for an item deleted).
        self._items: dict[Path, array[int]] = {}
        if spans:
            for path, span in spans.items():
                self[path] = span

    def _unpack(self, packed: int | Span) -> Span:
        if type(packed) is int:
            return Span.packed(self.source, packed)
        assert isinstance(packed, Span)
        return packed

    def _item(self, path: object) -> tuple[array[int], int] | None:
        """The array and index holding the span of ``path``, if an item array covers it."""
        if not self._items or type(path) is not tuple or not path:
            return None
        index = path[-1]
        if type(index) is not int:
            return None
        items = self._items.get(path[:-1])
        if items is None or not 0 <= index < len(items):
            return None
        return items, index

    def __getitem__(self, path: Path) -> Span:
        packed = self._packed.get(path)
        if packed is None:
            found = self._item(path)
            if found is None or found[0][found[1]] == _ABSENT:
                raise KeyError(path)
            packed = found[0][found[1]]
        return self._unpack(packed)

    @overload
    def get(self, path: Path, /) -> Span | None: ...
    @overload
    def get(self, path: Path, /, default: Span) -> Span: ...
    @overload
    def get(self, path: Path, /, default: Any) -> Any: ...

    def get(self, path: Path, /, default: Any = None) -> Any:
        packed = self._packed.get(path)
        if packed is None:
            found = self._item(path)
            if found is None or found[0][found[1]] == _ABSENT:
                return default
            packed = found[0][found[1]]
        return self._unpack(packed)

    def items_of(self, path: Path, count: int) -> list[Span] | None:
        """The spans of the first ``count`` items of the list at ``path`` (``path + (0,)``...),
        read from its item array in one go; None unless the array has them all (then ask
        for each item)."""
        items = self._items.get(path)
        if items is None or len(items) < count:
            return None
        if len(items) > count:
            items = items[:count]
        if _ABSENT in items:
            return None
        source, packed = self.source, Span.packed
        return [packed(source, bounds) for bounds in items]

    def __setitem__(self, path: Path, span: Span) -> None:
        # A path is in at most one of `_packed` and `_items`.
        packed = pack_span(span, self.source)
        found = None if path in self._packed else self._item(path)
        if found is not None:
            if type(packed) is int:
                found[0][found[1]] = packed
                return
            found[0][found[1]] = _ABSENT
        self._packed[path] = packed

    def packed_dict(self) -> dict[Path, int | Span]:
        """The table's storage, for a writer that packs with :func:`pack_span` itself (the
        lowering, which records about ten spans per stage)."""
        return self._packed

    def item_arrays(self) -> dict[Path, array[int]]:
        """The table's storage of item arrays (:meth:`set_items`), for a writer that fills it
        with arrays of packed spans itself (the lowering of a file read in two processes)."""
        return self._items

    def set_items(self, path: Path, spans: Sequence[Span]) -> bool:
        """Record the spans of the items ``path + (0,)``, ``path + (1,)``... in one array.

        False (nothing recorded) unless there are spans, all of this file and packing to
        an int. Replaces the spans of those items and of any other item of ``path``.
        """
        source = self.source
        bounds = [span.bounds for span in spans]
        if not bounds or not all(type(b) is int for b in bounds):
            return False
        if any(span.source is not source for span in spans):
            return False
        if self._packed:
            for index in range(len(bounds)):
                self._packed.pop((*path, index), None)
        self._items[path] = array("q", bounds)  # type: ignore[arg-type]
        return True

    def pack(self) -> None:
        """Pack the spans of this file that are still objects (none, unless written
        without :func:`pack_span`)."""
        source = self.source
        packed = self._packed
        for path, span in packed.items():
            if type(span) is not int:
                assert isinstance(span, Span)
                packed[path] = pack_span(span, source)

    def __delitem__(self, path: Path) -> None:
        if path in self._packed:
            del self._packed[path]
            return
        found = self._item(path)
        if found is None or found[0][found[1]] == _ABSENT:
            raise KeyError(path)
        found[0][found[1]] = _ABSENT

    def __contains__(self, path: object) -> bool:
        if path in self._packed:
            return True
        found = self._item(path)
        return found is not None and found[0][found[1]] != _ABSENT

    def __iter__(self) -> Iterator[Path]:
        yield from self._packed
        for path, items in self._items.items():
            for index, packed in enumerate(items):
                if packed != _ABSENT:
                    yield (*path, index)

    def representatives(self) -> Iterator[Path]:
        """The paths of this table, but only one item of each list whose items are kept in
        one array: enough for a question that only the start of a path answers (the
        loader's whether-every-span-is-merged), without a tuple per ``after`` entry."""
        yield from self._packed
        for path, items in self._items.items():
            for index, packed in enumerate(items):
                if packed != _ABSENT:
                    yield (*path, index)
                    break

    def __len__(self) -> int:
        return len(self._packed) + sum(len(items) - items.count(_ABSENT) for items in self._items.values())

    def copy(self) -> SpanTable:
        copied = SpanTable(self.source)
        copied._packed = dict(self._packed)
        copied._items = {path: array("q", items) for path, items in self._items.items()}
        return copied

    def update_from(self, other: SpanTable) -> None:
        """Add ``other``'s spans (without unpacking those of the same file)."""
        if other.source is self.source and not self._items and not other._items:
            self._packed.update(other._packed)
        else:
            self.update(other)


def _table(source: SourceFile, spans: Mapping[Path, Span]) -> SpanTable:
    if isinstance(spans, SpanTable) and spans.source is source:
        return spans
    return SpanTable(source, spans)


@dataclass(slots=True, init=False)
class SpanIndex:
    """Spans of values (and of the keys naming them) by document path.

    Lookups fall back to the nearest recorded ancestor, so a diagnostic about any part
    of the document can always be placed somewhere sensible.
    """

    source: SourceFile
    values: SpanTable
    keys: SpanTable
    #: ``values`` and ``keys`` are another index's (the merged workspace of a single file
    #: shares its document's): they are copied before the first change (:meth:`own`).
    borrowed: bool

    def __init__(
        self,
        source: SourceFile,
        values: Mapping[Path, Span] | None = None,
        keys: Mapping[Path, Span] | None = None,
        borrowed: bool = False,
    ) -> None:
        self.source = source
        self.values = _table(source, {} if values is None else values)
        self.keys = _table(source, {} if keys is None else keys)
        self.borrowed = borrowed

    def own(self) -> None:
        """Make ``values`` and ``keys`` this index's own before changing them."""
        if self.borrowed:
            self.values = self.values.copy()
            self.keys = self.keys.copy()
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

    def item_values(self, path: Path, count: int) -> list[Span]:
        """``[self.value((*path, 0)), ..., self.value((*path, count - 1))]``, in one lookup
        when the list keeps its items' spans in one array (the resolver reads every ``after``
        entry's)."""
        found = self.values.items_of(path, count)
        if found is not None:
            return found
        return [self.value((*path, index)) for index in range(count)]

    def key(self, path: Path) -> Span:
        """The span of the key (or name) that introduces ``path``; falls back to the value."""
        span = self.keys.get(path)
        return span if span is not None else self.value(path)

    def pack(self) -> None:
        """See :meth:`SpanTable.pack`."""
        self.values.pack()
        self.keys.pack()

    def update(self, other: SpanIndex) -> None:
        self.own()
        self.values.update_from(other.values)
        self.keys.update_from(other.keys)


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
