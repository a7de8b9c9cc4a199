"""The merged workspace: every file's agents and workflows in one document, pruned to the
schema, and the project root."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ..._diagnostics import Diagnostic, Label, error
from .. import _fanout
from .._document import Document, SpanIndex
from ._imports import _Loading, _real, _visit
from ._read import _ROOT_MARKERS, read_source

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
    state.diags.extend(_fanout.expand(data, spans))  # matrix stages -> one stage per combination
    workspace = Workspace(
        root=root,
        entry=state.documents[0],
        documents=tuple(state.documents),
        data=data,
        spans=spans,
        base_dirs=base_dirs,
    )
    return workspace, state.diags


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
        if len(state.documents) == 1 and _all_merged(document.spans, taken):
            # One file whose every span is merged (the usual case): share its index rather
            # than copy it (a tenth of the memory of a large file); the fan-out, which adds
            # spans, copies it first (SpanIndex.own).
            shared = SpanIndex(entry.source, entry.spans.values, entry.spans.keys, borrowed=True)
            return merged, shared, base_dirs
        for table, target in ((document.spans.values, spans.values), (document.spans.keys, spans.keys)):
            for path, span in table.items():
                declared_here = len(path) >= 2 and (path[0], path[1]) in taken
                first_section = len(path) == 1 and path[0] in ("agents", "workflows") and path not in target
                if declared_here or first_section:
                    target[path] = span
    return merged, spans, base_dirs


def _all_merged(spans: SpanIndex, taken: set[tuple[str, str]]) -> bool:
    """Whether merging a single file would copy every span of its index (root included).

    The answer for an item of a list depends only on the list's path (its section and
    name; an item of a shorter path is never merged), so one item of each is asked about."""
    for table in (spans.values, spans.keys):
        # The answer depends on a path's first two parts: each pair is asked about once.
        for path in {path[:2] for path in table.representatives()}:
            if len(path) >= 2:
                if (path[0], path[1]) not in taken:
                    return False
            elif path and path[0] not in ("agents", "workflows"):
                return False
    return () not in spans.keys
