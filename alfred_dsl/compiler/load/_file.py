"""One file to a :class:`Document`: ``.alfred`` through the parser, ``.yaml``/``.yml``/``.json``
through the position-keeping readers; and a document pruned to what the schema allows."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ..._diagnostics import Diagnostic, error
from ..._source import SourceFile, Span
from .. import _schema
from .._document import Document, Path as DocPath, SpanIndex
from ._json import parse_json
from ._yaml import parse_yaml

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
