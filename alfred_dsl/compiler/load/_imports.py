"""Following ``import``s from an entry file inside the project root (A206, A211, A212)."""

from __future__ import annotations

import copy
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..._diagnostics import Diagnostic, Label, error
from ..._source import SourceFile, Span
from ..._values import suggest
from .. import _schema
from .._document import Document
from ._file import _prune_until_valid, load_document
from ._read import EXTENSIONS, MAX_DEPTH, _read


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
