"""Reading an input file's text: size and encoding limits, A001/A002/A003."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ..._diagnostics import Diagnostic, error
from ..._source import SourceFile, Span
from ..._values import suggest

#: Larger inputs are refused (A003).
MAX_FILE_SIZE = 50 * 1024 * 1024
#: Values nested deeper than this are refused (A003); so are longer chains of imports.
MAX_DEPTH = 100
_NESTING_MESSAGE = f"values are nested more than {MAX_DEPTH} levels deep"

EXTENSIONS = (".alfred", ".yaml", ".yml", ".json")
_ROOT_MARKERS = ("alfred.toml", ".git")


# -- reading text -----------------------------------------------------------------------

#: Texts that replace files on disk, by absolute path: the unsaved buffers of an editor.
_OVERLAY: ContextVar[Mapping[str, str] | None] = ContextVar("alfred_overlay", default=None)


@contextmanager
def overlay(texts: Mapping[str, str]) -> Iterator[None]:
    """Within the block, loading a file whose absolute path is in ``texts`` reads that text."""
    token = _OVERLAY.set(texts)
    try:
        yield
    finally:
        _OVERLAY.reset(token)


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

    texts = _OVERLAY.get()
    overlaid = None if texts is None else texts.get(os.path.abspath(path))
    if overlaid is not None:
        return SourceFile(name, overlaid, path), []

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
