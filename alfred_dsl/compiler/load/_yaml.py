"""YAML with positions, read from PyYAML's event stream (CSafeLoader when libyaml is there).

The composer recurses once per nesting level, and libyaml's composer crashes the
interpreter on deeply nested input; building the data from events with an explicit stack
keeps a span for every key and value, enforces the nesting limit and catches duplicate
keys. Plain scalars follow the YAML 1.2 core schema (the one JSON and editors use): only
``true``/``false`` are booleans, so ``on:`` and ``yes`` stay strings.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any, cast

from ..._diagnostics import Diagnostic, error
from ..._source import SourceFile, Span
from ..._values import MAX_INT_DIGITS
from .._document import SpanIndex
from ._positions import _begin_key, _child_path, _end_value, _Frame, _InputError, _too_long, _TooLong
from ._read import _NESTING_MESSAGE, MAX_DEPTH

if TYPE_CHECKING:  # PyYAML loads with the first YAML file: `alfredc check x.alfred` does not need it
    import yaml

# -- YAML with positions ----------------------------------------------------------------

_YAML_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_YAML_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_YAML_INT = re.compile(r"^[-+]?[0-9]+$")
_YAML_OCT = re.compile(r"^0o[0-7]+$")
_YAML_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_YAML_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_YAML_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_YAML_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")
_TAG = "tag:yaml.org,2002:"
_NOT_A = object()


def _core_scalar(text: str) -> Any:
    """A plain YAML scalar under the YAML 1.2 core schema."""
    if len(text) > MAX_INT_DIGITS and any(p.match(text) for p in (_YAML_INT, _YAML_OCT, _YAML_HEX)):
        raise _TooLong(_too_long(text))
    if _YAML_NULL.match(text):
        return None
    if text in _YAML_BOOL:
        return _YAML_BOOL[text]
    if _YAML_INT.match(text):
        return int(text)
    if _YAML_OCT.match(text):
        return int(text[2:], 8)
    if _YAML_HEX.match(text):
        return int(text[2:], 16)
    if _YAML_FLOAT.match(text):
        return float(text)
    if _YAML_INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _YAML_NAN.match(text):
        return float("nan")
    return text


def _tagged_scalar(tag: str, text: str) -> Any:
    """A scalar with an explicit standard tag; ``_NOT_A`` when the text does not fit it."""
    if tag in ("!", _TAG + "str"):
        return text
    kind = tag.removeprefix(_TAG) if tag.startswith(_TAG) else None
    value = _core_scalar(text)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "int" and is_number and isinstance(value, int):
        return value
    if kind == "float" and is_number:
        return float(value)
    if (kind == "bool" and isinstance(value, bool)) or (kind == "null" and value is None):
        return value
    return _NOT_A


def _index(mark: Any) -> int:
    """The character offset of a PyYAML mark (libyaml counts characters too)."""
    return int(mark.index) if mark is not None else 0


def _yaml_loader() -> type[Any]:
    import yaml

    return cast(type[Any], getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def parse_yaml(source: SourceFile) -> tuple[Any, SpanIndex, list[Diagnostic]]:
    """Parse YAML text keeping the span of every key and value (see the module docstring).

    Returns ``(value, spans, diagnostics)``: A109 syntax errors (value None) and
    unsupported tags, A208 duplicate keys (the first one is kept), A003 nesting deeper
    than :data:`MAX_DEPTH` or aliases expanding beyond the size of the file (value None).
    Anchors, aliases and merge keys (``<<: *base``) are supported.
    """
    import yaml

    spans = SpanIndex(source)
    diags: list[Diagnostic] = []
    text = source.text
    try:
        value = _parse_yaml(source, spans, diags)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        offset = min(mark.index, len(text)) if mark is not None else 0
        problem = exc.problem or "invalid YAML"
        notes = []
        if exc.context and exc.context_mark is not None:
            context = exc.context_mark
            notes.append(f"{exc.context} at line {context.line + 1}, column {context.column + 1}")
        span = source.span(offset, min(offset + 1, len(text)))
        if "nesting depth" in problem:  # libyaml (PyYAML >= 6.0.4) has its own depth limit
            return None, spans, [error("A003", _NESTING_MESSAGE, span, "too deep")]
        return None, spans, [error("A109", f"invalid YAML: {problem}", span, problem, notes=notes)]
    except yaml.YAMLError as exc:  # a reader error without a mark
        if "nesting depth" in str(exc):
            return None, spans, [error("A003", _NESTING_MESSAGE, source.whole(), "too deep")]
        return None, spans, [error("A109", f"invalid YAML: {exc}", source.whole())]
    except _InputError as exc:
        span = source.span(exc.start, min(exc.end, len(text)))
        return None, spans, [error(exc.code, exc.message, span)]
    return value, spans, diags


def _parse_yaml(source: SourceFile, spans: SpanIndex, diags: list[Diagnostic]) -> Any:
    import yaml

    stack: list[_Frame] = []
    anchors: dict[str, tuple[Any, int]] = {}  # anchor -> (value, number of values in it)
    budget = 2 * len(source.text) + 10_000  # values built, aliases expanded: stops alias bombs
    built = 0
    documents = 0
    root: Any = None

    def finish(value: Any, start: int, end: int, size: int) -> None:
        nonlocal root
        span = source.span(start, end)
        if not stack:
            root = value
            spans.set((), span)
            return
        frame = stack[-1]
        if isinstance(frame.container, dict) and frame.key is None:
            # A mapping, list or non-string alias in key position.
            diags.append(error("A109", "a mapping key must be a string", span, "not a string"))
            frame.key, frame.key_span, frame.key_kind = "", span, "skip"
            return
        if frame.key_kind == "merge":
            _merge(frame, value, span, spans, diags)
        _end_value(frame, value, span, size, spans)

    for event in yaml.parse(source.text, Loader=_yaml_loader()):
        start, end = _index(event.start_mark), _index(event.end_mark)
        frame = stack[-1] if stack else None
        wants_key = frame is not None and isinstance(frame.container, dict) and frame.key is None
        if isinstance(event, yaml.ScalarEvent):
            built += 1
            if frame is not None and wants_key:
                _begin_key(frame, event.value, source.span(start, end), spans, diags)
                if event.implicit[0] and event.value == "<<" and not frame.key_kind:
                    frame.key_kind = "merge"
                if event.anchor is not None:
                    anchors[event.anchor] = (event.value, 1)
                continue
            value = _yaml_scalar(event, source, diags)
            if event.anchor is not None:
                anchors[event.anchor] = (value, 1)
            finish(value, start, end, 1)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise _InputError("A109", f"unknown alias `*{event.anchor}`", start, end)
            value, size = anchors[event.anchor]
            built += size
            if built > budget:
                raise _InputError("A003", "aliases expand to more values than the file holds", start, end)
            if frame is not None and wants_key and isinstance(value, str):
                _begin_key(frame, value, source.span(start, end), spans, diags)
                continue
            finish(copy.deepcopy(value) if size > 1 else value, start, end, size)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise _InputError("A003", _NESTING_MESSAGE, start, end)
            built += 1
            is_map = isinstance(event, yaml.MappingStartEvent)
            if event.tag not in (None, "!", _TAG + ("map" if is_map else "seq")):
                message = f"unsupported YAML tag `{event.tag}`"
                diags.append(error("A109", message, source.span(start, end), "unsupported"))
            path = _child_path(frame) if frame is not None else ()
            stack.append(_Frame({} if is_map else [], path, start, anchor=event.anchor))
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            done = stack.pop()
            if done.anchor is not None:
                anchors[done.anchor] = (done.container, done.size)
            finish(done.container, done.start, end, done.size)
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _InputError(
                    "A109", "a file holds one YAML document; found a second one", start, max(end, start + 3)
                )
    return root


def _yaml_scalar(event: yaml.ScalarEvent, source: SourceFile, diags: list[Diagnostic]) -> Any:
    try:
        return _yaml_scalar_value(event, source, diags)
    except _TooLong as exc:
        start = event.start_mark.index if event.start_mark is not None else 0
        end = event.end_mark.index if event.end_mark is not None else start + 1
        raise _InputError("A106", str(exc), start, end) from None


def _yaml_scalar_value(event: yaml.ScalarEvent, source: SourceFile, diags: list[Diagnostic]) -> Any:
    text: str = event.value
    if event.tag is None or event.tag == "!":
        return _core_scalar(text) if event.implicit[0] else text
    value = _tagged_scalar(event.tag, text)
    if value is _NOT_A:
        span = source.span(_index(event.start_mark), _index(event.end_mark))
        kind = event.tag.removeprefix(_TAG)
        if event.tag.startswith(_TAG) and kind in ("int", "float", "bool", "null"):
            message = f"`{text}` is not a valid `!!{kind}`"
        else:
            message = f"unsupported YAML tag `{event.tag}`"
        diags.append(error("A109", message, span, "unsupported", help="remove the tag"))
        return text
    return value


def _merge(frame: _Frame, value: Any, span: Span, spans: SpanIndex, diags: list[Diagnostic]) -> None:
    """A YAML merge key (``<<: *base``): copy in the keys not already present, at its place."""
    container = frame.container
    assert isinstance(container, dict)
    sources = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) for item in sources):
        diags.append(error("A109", "`<<` merges a mapping or a list of mappings", span, "not a mapping"))
        return
    for item in sources:
        for key, item_value in item.items():
            if key in container:
                continue
            container[key] = copy.deepcopy(item_value)
            frame.merged.add(key)
            spans.set((*frame.path, key), span, span)
