"""Reading input files: text, YAML/JSON with positions, imports, and the merged workspace.

``read_source`` turns a path into a :class:`SourceFile` (or A001/A002/A003).
``load_document`` turns one file into a :class:`Document`: ``.alfred`` through the parser,
``.yaml``/``.yml``/``.json`` through the position-keeping readers below.
``load`` follows imports from an entry file inside the project root and merges the agents
and workflows of every file into one :class:`Workspace`.

YAML is read from PyYAML's event stream (CSafeLoader when libyaml is there) rather than
from composed nodes: the composer recurses once per nesting level, and libyaml's composer
crashes the interpreter on deeply nested input. Building the data from events with an
explicit stack keeps a span for every key and value, enforces the nesting limit, and
catches duplicate keys. Plain scalars follow the YAML 1.2 core schema (the one JSON and
editors use): only ``true``/``false`` are booleans, so ``on:`` and ``yes`` stay strings.
"""

from __future__ import annotations

import copy
import importlib
import json
import json.decoder
import json.scanner
import os
import posixpath
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from .._diagnostics import Diagnostic, Label, error
from .._source import SourceFile, Span
from .._values import MAX_INT_DIGITS, suggest
from . import _schema
from ._document import Document, Path as DocPath, SpanIndex

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_SIZE",
    "Workspace",
    "find_root",
    "load",
    "load_built",
    "load_document",
    "parse_json",
    "parse_yaml",
    "read_source",
]

#: Larger inputs are refused (A003).
MAX_FILE_SIZE = 50 * 1024 * 1024
#: Values nested deeper than this are refused (A003); so are longer chains of imports.
MAX_DEPTH = 100
_NESTING_MESSAGE = f"values are nested more than {MAX_DEPTH} levels deep"

EXTENSIONS = (".alfred", ".yaml", ".yml", ".json")
_ROOT_MARKERS = ("alfred.toml", ".git")


# -- reading text -----------------------------------------------------------------------


def _sibling_hint(path: Path) -> str | None:
    """A "did you mean" among the files next to a missing ``path``."""
    try:
        siblings = [p.name for p in path.parent.iterdir() if p.is_file()]
    except OSError:
        return None
    close = suggest(path.name, siblings)
    if not close:
        return None
    return f"did you mean `{os.path.join(os.path.dirname(str(path)), close[0])}`?"


def _read(path: Path, name: str, at: Span | None) -> tuple[SourceFile | None, list[Diagnostic]]:
    """Read ``path`` as UTF-8; problems are reported at ``at`` (an import) or against ``name``."""

    def fail(code: str, message: str, label: str = "", help: str | None = None) -> list[Diagnostic]:
        return [error(code, message, at, label, help=help, file=name)]

    try:
        if path.is_dir():
            return None, fail("A001", f"`{name}` is a directory, not a file", "a directory")
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a FIFO or device would block or never end
            return None, fail("A001", f"`{name}` is not a regular file", "not a regular file")
        size = status.st_size
    except FileNotFoundError:
        return None, fail("A001", f"no such file `{name}`", "no such file", _sibling_hint(Path(name)))
    except OSError as exc:
        return None, fail("A001", f"cannot read `{name}`: {exc.strerror or exc}", "cannot be read")
    if size > MAX_FILE_SIZE:
        return None, fail(
            "A003",
            f"`{name}` is too large ({size / 1024 / 1024:.1f} MB; the limit is 50 MB)",
            "too large",
        )
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_SIZE + 1)
    except OSError as exc:
        return None, fail("A001", f"cannot read `{name}`: {exc.strerror or exc}", "cannot be read")
    if len(raw) > MAX_FILE_SIZE:  # grew since stat, or a special file
        return None, fail("A003", f"`{name}` is too large (the limit is 50 MB)", "too large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The valid prefix decodes to the same characters, so the offset of the bad byte
        # in the replaced text is the length of the decoded prefix.
        offset = len(raw[: exc.start].decode("utf-8"))
        bom = 1 if raw.startswith(b"\xef\xbb\xbf") else 0
        text = raw.decode("utf-8", errors="replace")[bom:]
        source = SourceFile(name, text, path)
        span = source.span(offset - bom, offset - bom + 1)
        line, column = span.line, span.column
        return None, [
            error(
                "A002",
                f"`{name}` is not valid UTF-8: byte 0x{raw[exc.start]:02x} at line {line}, column {column}",
                span,
                "not UTF-8",
                help="re-save the file as UTF-8",
                file=name,
            )
        ]
    if text.startswith("\ufeff"):  # a byte-order mark is not part of the text editors show
        text = text[1:]
    return SourceFile(name, text, path), []


def read_source(path: str | os.PathLike[str]) -> tuple[SourceFile | None, list[Diagnostic]]:
    """The text of ``path``: A001 missing/directory/unreadable, A002 not UTF-8, A003 > 50 MB."""
    return _read(Path(path), os.fspath(path), None)


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


# -- JSON with positions ----------------------------------------------------------------

_JSON_WS = re.compile(r"[ \t\n\r]+")
#: The C string scanner of the json module (not in its typed interface).
_scanstring = cast(Callable[[str, int], tuple[str, int]], cast(Any, json.decoder).scanstring)
_JSON_NUMBER = json.scanner.NUMBER_RE
_JSON_LITERALS: tuple[tuple[str, Any], ...] = (("true", True), ("false", False), ("null", None))


def parse_json(source: SourceFile) -> tuple[Any, SpanIndex, list[Diagnostic]]:
    """Parse JSON text keeping the span of every key and value.

    Returns ``(value, spans, diagnostics)``: the value is None after a syntax error (A109)
    or nesting deeper than :data:`MAX_DEPTH` (A003); a duplicate key is A208 (the first
    one is kept). Error messages are those of Python's ``json`` module.
    """
    text = source.text
    spans = SpanIndex(source)
    diags: list[Diagnostic] = []
    try:
        value = _parse_json(source, spans, diags)
    except json.JSONDecodeError as exc:
        span = source.span(exc.pos, min(exc.pos + 1, len(text)))
        label = exc.msg[0].lower() + exc.msg[1:]
        return None, spans, [error("A109", f"invalid JSON: {exc.msg}", span, label)]
    except _InputError as exc:
        span = source.span(exc.start, min(exc.end, len(text)))
        return None, spans, [error(exc.code, exc.message, span)]
    return value, spans, diags


def _parse_json(source: SourceFile, spans: SpanIndex, diags: list[Diagnostic]) -> Any:
    # An explicit stack instead of recursion: nesting is bounded by MAX_DEPTH, not the C stack.
    text = source.text
    n = len(text)
    def ws(at: int) -> int:
        match = _JSON_WS.match(text, at)
        return at if match is None else match.end()

    stack: list[_Frame] = []
    pos = ws(0)

    def key_at(at: int, frame: _Frame) -> int:
        if at >= n or text[at] != '"':
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, at)
        key, end = _scanstring(text, at + 1)
        _begin_key(frame, key, source.span(at, end), spans, diags)
        end = ws(end)
        if end >= n or text[end] != ":":
            raise json.JSONDecodeError("Expecting ':' delimiter", text, end)
        return ws(end + 1)

    while True:
        # -- a value starts at pos ---------------------------------------------------
        ch = text[pos] if pos < n else ""
        start = pos
        value: Any
        if ch == "{" or ch == "[":
            if len(stack) >= MAX_DEPTH:
                raise _InputError("A003", _NESTING_MESSAGE, pos)
            path = _child_path(stack[-1]) if stack else ()
            frame = _Frame({} if ch == "{" else [], path, pos)
            stack.append(frame)
            pos = ws(pos + 1)
            if pos < n and text[pos] == ("}" if ch == "{" else "]"):
                stack.pop()
                pos += 1
                value = frame.container
            else:
                if ch == "{":
                    pos = key_at(pos, frame)
                continue
        elif ch == '"':
            value, pos = _scanstring(text, pos + 1)
        elif ch == "-" or "0" <= ch <= "9":
            match = _JSON_NUMBER.match(text, pos)
            if match is None:
                raise json.JSONDecodeError("Expecting value", text, pos)
            integer, fraction, exponent = match.groups()
            if not (fraction or exponent) and len(integer) > MAX_INT_DIGITS:
                raise _InputError("A106", _too_long(integer), pos, match.end())
            value = float(match.group()) if fraction or exponent else int(integer)
            pos = match.end()
        else:
            for word, literal in _JSON_LITERALS:
                if text.startswith(word, pos):
                    value, pos = literal, pos + len(word)
                    break
            else:
                raise json.JSONDecodeError("Expecting value", text, pos)
        # -- a complete value [start, pos): store it, then close finished containers --
        size = 1
        while True:
            if not stack:
                pos = ws(pos)
                if pos != n:
                    raise json.JSONDecodeError("Extra data", text, pos)
                spans.set((), source.span(start, pos))
                return value
            frame = stack[-1]
            _end_value(frame, value, source.span(start, pos), size, spans)
            pos = ws(pos)
            ch = text[pos] if pos < n else ""
            is_list = isinstance(frame.container, list)
            if ch == ",":
                pos = ws(pos + 1)
                if not is_list:
                    pos = key_at(pos, frame)
                break
            if ch == ("]" if is_list else "}"):
                stack.pop()
                pos += 1
                value, start, size = frame.container, frame.start, frame.size
                continue
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)


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


def _too_long(digits: str) -> str:
    count = len(digits.lstrip("+-"))
    return f"integer `{digits[:20]}...` is too long: {count} digits, at most {MAX_INT_DIGITS}"


class _TooLong(ValueError):
    pass


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
    return cast(type[Any], getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def parse_yaml(source: SourceFile) -> tuple[Any, SpanIndex, list[Diagnostic]]:
    """Parse YAML text keeping the span of every key and value (see the module docstring).

    Returns ``(value, spans, diagnostics)``: A109 syntax errors (value None) and
    unsupported tags, A208 duplicate keys (the first one is kept), A003 nesting deeper
    than :data:`MAX_DEPTH` or aliases expanding beyond the size of the file (value None).
    Anchors, aliases and merge keys (``<<: *base``) are supported.
    """
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


# -- one document -----------------------------------------------------------------------


def _document_from_data(
    source: SourceFile, value: Any, spans: SpanIndex
) -> tuple[Document, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    if value is None:
        value = {}
    if not isinstance(value, dict):
        found = "a list" if isinstance(value, list) else "a single value"
        diags.append(
            error(
                "A301",
                f"the document must be a mapping with `agents` and `workflows`, found {found}",
                spans.value(()),
                "expected a mapping",
            )
        )
        value = {}
    imports: list[tuple[str, Span]] = []
    listed = value.get("imports")
    if isinstance(listed, list):
        for index, item in enumerate(listed):
            if isinstance(item, str) and item:
                imports.append((item, spans.value(("imports", index))))
    return Document(source, value, spans, tuple(imports)), diags


def load_document(source: SourceFile) -> tuple[Document | None, list[Diagnostic]]:
    """Parse one file by its extension (``.alfred``, ``.yaml``, ``.yml``, ``.json``).

    The document is not validated against the schema here (see ``load`` and ``_schema``).
    """
    suffix = Path(source.name).suffix.lower()
    if suffix == ".alfred":
        lower = importlib.import_module("alfred_dsl.compiler._lower")
        parse = cast(
            Callable[[SourceFile], tuple[Document | None, list[Diagnostic]]], lower.parse_document
        )
        return parse(source)
    if suffix in (".yaml", ".yml"):
        value, spans, diags = parse_yaml(source)
    elif suffix == ".json":
        value, spans, diags = parse_json(source)
    else:
        return None, [
            error(
                "A001",
                f"cannot read `{source.name}`: unsupported file type `{suffix or '(none)'}`",
                None,
                help="alfred reads .alfred, .yaml, .yml and .json files",
                file=source.name,
            )
        ]
    if value is None and any(d.is_error and d.code in ("A109", "A003") for d in diags):
        return None, diags
    document, more = _document_from_data(source, value, spans)
    return document, diags + more


# -- the workspace ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace:
    """The entry file and every file it imports, with their agents and workflows merged.

    ``data`` is ``{"agents": {...}, "workflows": {...}}``, entry file first, and always
    valid against the schema: values that failed validation are reported and left out.
    ``spans`` covers it (each span carries its own file). ``base_dirs`` maps
    ``"workflows/NAME"`` and ``"agents/NAME"`` to the directory of the declaring file.
    """

    root: Path
    entry: Document
    documents: tuple[Document, ...]
    data: dict[str, Any]
    spans: SpanIndex
    base_dirs: dict[str, Path]


def find_root(entry: Path) -> Path:
    """The nearest ancestor of ``entry`` holding ``alfred.toml`` or ``.git``, else its folder."""
    folder = Path(os.path.abspath(entry)).parent
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in _ROOT_MARKERS):
            return candidate
    return folder


@dataclass(slots=True)
class _Loading:
    root: Path
    real_root: Path
    diags: list[Diagnostic] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    #: Per document: its data with the schema-invalid parts removed, and its folder.
    usable: list[tuple[dict[str, Any], Path]] = field(default_factory=list)
    done: set[Path] = field(default_factory=set)
    #: Files being loaded, outermost first, with the span of the import that led to each.
    stack: list[tuple[Path, str, Span | None]] = field(default_factory=list)


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return Path(os.path.abspath(path))


def load(path: str | os.PathLike[str]) -> tuple[Workspace | None, list[Diagnostic]]:
    """Load ``path`` and every file it imports; see :class:`Workspace`.

    Returns None when the entry file cannot be read or parsed. Imports are resolved
    relative to the importing file and may not leave the project root (A211); a missing
    import is A206, a cycle A212; a file imported twice is loaded once. Each file is
    validated against the schema before merging; a name declared in two files is A208.
    """
    text = os.fspath(path)
    if text.endswith(".py") or ".py:" in text:
        # A workflow written in Python (`flows.py:feature`): the builder makes the entry document.
        builder = importlib.import_module("alfred_dsl._builder")
        if builder.is_reference(text):
            return cast(tuple[Workspace | None, list[Diagnostic]], builder.load_reference(text))
    entry_path = Path(path)
    source, diags = read_source(path)
    if source is None:
        return None, diags
    root = find_root(entry_path)
    state = _Loading(root=root, real_root=_real(root), diags=diags)
    _visit(state, source, Path(os.path.abspath(entry_path)), None)
    return _workspace(state)


def load_built(
    document: Document, origin: Path, diagnostics: list[Diagnostic], folder: Path | None = None
) -> tuple[Workspace | None, list[Diagnostic]]:
    """Like :func:`load`, for an entry document built in memory (the Python builder).

    ``origin`` is the file that wrote it: imports are relative to its folder, and the
    project root (the nearest folder with alfred.toml or .git) is the folder that stages
    and python agents run in (as Python imports are relative to it), unless ``folder``.
    """
    root = find_root(origin)
    state = _Loading(root=root, real_root=_real(root), diags=diagnostics)
    _visit(state, document.source, Path(os.path.abspath(origin)), None, document, folder or root)
    return _workspace(state)


def _workspace(state: _Loading) -> tuple[Workspace | None, list[Diagnostic]]:
    root = state.root
    if not state.documents:
        return None, state.diags
    data, spans, base_dirs = _merge_documents(state)
    workspace = Workspace(
        root=root,
        entry=state.documents[0],
        documents=tuple(state.documents),
        data=data,
        spans=spans,
        base_dirs=base_dirs,
    )
    return workspace, state.diags


def _visit(
    state: _Loading,
    source: SourceFile,
    file_path: Path,
    via: Span | None,
    built: Document | None = None,
    folder: Path | None = None,
) -> None:
    real = _real(file_path)
    state.done.add(real)
    if built is not None:
        document: Document | None = built
    else:
        document, diags = load_document(source)
        state.diags.extend(diags)
    if document is None:
        return
    problems = _schema.problems(document.data, document.spans)
    state.diags.extend(problem.diagnostic for problem in problems)
    usable = document.data
    if problems:
        usable = copy.deepcopy(document.data)
        _prune_until_valid(usable, document.spans, [problem.path for problem in problems])
    state.documents.append(document)
    state.usable.append((usable, folder or file_path.parent))
    state.stack.append((real, source.name, via))
    try:
        for written, span in document.imports:
            _follow(state, file_path, source.name, written, span)
    finally:
        state.stack.pop()


def _follow(state: _Loading, importer: Path, importer_name: str, written: str, span: Span) -> None:
    target = Path(os.path.normpath(importer.parent / written))
    name = os.path.normpath(os.path.join(os.path.dirname(importer_name), written))
    real = _real(target)
    if not real.is_relative_to(state.real_root):
        # Relative paths keep the message short and the same on every machine.
        root_shown = _relative(state.root, importer.parent)
        where_root = "this file's folder" if root_shown == "." else f"`{root_shown}`, relative to this file"
        via_link = "" if real == _real(target.parent) / target.name else " (through a symbolic link)"
        state.diags.append(
            error(
                "A211",
                f"import `{written}` leaves the project root",
                span,
                "outside the project root",
                notes=[
                    f"the project root is {where_root}",
                    f"the import resolves{via_link} to `{_relative(real, state.real_root)}`, "
                    "relative to the project root",
                ],
                help="the project root is the nearest folder above the checked file with alfred.toml or .git",
            )
        )
        return
    on_stack = [entry[0] for entry in state.stack]
    if real in on_stack:
        first = on_stack.index(real)
        # The cycle ends where it started: name that file as the stack does, not as written here.
        chain = [entry[1] for entry in state.stack[first:]] + [state.stack[first][1]]
        secondary = [Label(via, "imported here") for _, _, via in state.stack[first + 1 :] if via is not None]
        state.diags.append(
            error(
                "A212",
                "import cycle: " + " -> ".join(f"`{link}`" for link in chain),
                span,
                "closes the cycle",
                secondary=secondary,
                help="move the shared declarations into a file that both import",
            )
        )
        return
    if real in state.done:
        return
    if not target.exists():
        hint = None
        try:
            siblings = [p.name for p in target.parent.iterdir() if p.suffix.lower() in EXTENSIONS]
        except OSError:
            siblings = []
        close = suggest(target.name, siblings)
        if close:
            hint = f"did you mean `{os.path.join(os.path.dirname(written), close[0])}`?"
        state.diags.append(
            error("A206", f"cannot find imported file `{written}`", span, "no such file", help=hint)
        )
        return
    if target.is_dir():
        state.diags.append(
            error(
                "A206",
                f"`{written}` is a directory; import {_SUPPORTED} file",
                span,
                "a directory",
                help=_files_in(target, written),
            )
        )
        return
    if target.suffix.lower() not in EXTENSIONS:
        kind = f"is a `{target.suffix}` file" if target.suffix else "has no file extension"
        state.diags.append(
            error(
                "A206",
                f"`{written}` {kind}; import {_SUPPORTED} file",
                span,
                "unsupported file type",
                help=_same_stem(target, written),
            )
        )
        return
    if len(state.stack) >= MAX_DEPTH:
        state.diags.append(error("A003", f"imports are nested more than {MAX_DEPTH} files deep", span))
        return
    source, diags = _read(target, name, span)
    state.diags.extend(diags)
    if source is None:
        return
    _visit(state, source, target, span)


_SUPPORTED = "a `.alfred`, `.yaml`, `.yml` or `.json`"


def _relative(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` (absolute when there is no relative way, e.g. another drive)."""
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:
        return str(path)


def _files_in(folder: Path, written: str) -> str | None:
    """Which importable files an imported directory holds, as import paths."""
    try:
        names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())
    except OSError:
        return None
    if not names:
        return None
    paths = [f"`{posixpath.join(written, name)}`" for name in names]
    if len(paths) == 1:
        return f"did you mean {paths[0]}?"
    return "it holds " + ", ".join(paths[:4]) + (", ..." if len(paths) > 4 else "")


def _same_stem(target: Path, written: str) -> str | None:
    """A "did you mean" for an import of ``notes.txt`` when ``notes.yaml`` exists."""
    for extension in EXTENSIONS:
        candidate = target.with_suffix(extension)
        if candidate.is_file():
            return f"did you mean `{posixpath.join(posixpath.dirname(written), candidate.name)}`?"
    return None


def _prune_until_valid(data: dict[str, Any], spans: SpanIndex, paths: list[DocPath]) -> None:
    """Remove invalid values until ``data`` satisfies the schema.

    Removing a value can expose another problem (a param whose bad ``type`` is removed has
    no type), so repeat; each round removes something, and a few rounds always suffice in
    practice. The problems of later rounds were already reported in other words.
    """
    for _ in range(8):
        _prune(data, paths)
        paths = [problem.path for problem in _schema.problems(data, spans)]
        if not paths:
            return
    for path in paths:  # give up on the finer repair: drop whole declarations
        _prune(data, [path[:2]])


def _prune(data: dict[str, Any], paths: list[DocPath]) -> None:
    """Remove the values at ``paths`` (deepest and last list items first)."""
    for path in sorted(set(paths), key=lambda p: (len(p), p[-1] if p and isinstance(p[-1], int) else -1),
                       reverse=True):
        if not path:
            data.clear()
            continue
        parent: Any = data
        for part in path[:-1]:
            in_dict = isinstance(parent, dict) and isinstance(part, str) and part in parent
            in_list = isinstance(parent, list) and isinstance(part, int) and 0 <= part < len(parent)
            if in_dict or in_list:
                parent = parent[part]
            else:
                parent = None
                break
        last = path[-1]
        if isinstance(parent, dict) and isinstance(last, str):
            parent.pop(last, None)
        elif isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
            del parent[last]


def _merge_documents(state: _Loading) -> tuple[dict[str, Any], SpanIndex, dict[str, Path]]:
    entry = state.documents[0]
    spans = SpanIndex(entry.source)
    if () in entry.spans.values:
        spans.set((), entry.spans.values[()])
    merged: dict[str, Any] = {"agents": {}, "workflows": {}}
    base_dirs: dict[str, Path] = {}
    for document, (data, folder) in zip(state.documents, state.usable, strict=True):
        taken: set[tuple[str, str]] = set()
        for section, noun in (("agents", "agent"), ("workflows", "workflow")):
            declared = data.get(section)
            if not isinstance(declared, dict):
                continue
            for name, value in declared.items():
                if name in merged[section]:
                    state.diags.append(
                        error(
                            "A208",
                            f"{noun} `{name}` is declared twice",
                            document.spans.key((section, name)),
                            f"{noun} `{name}` declared again",
                            secondary=[Label(spans.key((section, name)), "first declared here")],
                            help="rename or remove one of them",
                        )
                    )
                    continue
                merged[section][name] = value
                taken.add((section, name))
                base_dirs[f"{section}/{name}"] = folder
        for table, target in ((document.spans.values, spans.values), (document.spans.keys, spans.keys)):
            for path, span in table.items():
                declared_here = len(path) >= 2 and (path[0], path[1]) in taken
                first_section = len(path) == 1 and path[0] in ("agents", "workflows") and path not in target
                if declared_here or first_section:
                    target[path] = span
    return merged, spans, base_dirs
