"""Where a python stage's ``print()`` and ``logging`` go: its attempt's log file.

Python stages run inside this process (a worker thread, or a task on the Trio loop), so
they share ``sys.stdout`` and ``sys.stderr`` with alfredc's live view, and several run at
once: ``contextlib.redirect_stdout`` would send every thread's output to whichever stage
redirected last. Instead both streams are replaced, once, by a stream that asks a
``ContextVar`` which attempt is writing. Trio gives each task its own context and
``trio.to_thread`` runs a function in a copy of its task's, so the answer is exact for a
plain function, an ``async def`` and whatever tasks it starts; writes from anywhere else
(the view, alfredc's warnings) go to the original stream unchanged. ``logging`` without a
configuration writes to ``sys.stderr`` when the record is emitted, so its records follow.

Not captured: output of processes the function starts (they write to the file descriptor)
and of threads it starts itself without ``contextvars.copy_context().run``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TextIO

from ._resolve import Masker

__all__ = ["AttemptLog", "capture_output"]

_CURRENT: ContextVar[AttemptLog | None] = ContextVar("alfred_attempt_log", default=None)
_INSTALL_LOCK = threading.Lock()
#: A line longer than this is written without waiting for its end.
_MAX_PENDING = 64 * 1024


class AttemptLog:
    """The log file of one attempt: created at the first byte, appended to, secrets masked.

    Text is written line by line, so a secret printed in pieces is still masked whole. A
    thread abandoned by a timeout may write after :meth:`close`: that text is appended too.
    """

    def __init__(self, path: Path, masker: Masker) -> None:
        self.path = path
        self._masker = masker
        self._lock = threading.Lock()
        self._pending = ""
        self._handle: TextIO | None = None
        self._closed = False
        self.written = False

    def write(self, text: str) -> None:
        with self._lock:
            self._pending += text
            if "\n" in text:
                complete, _, self._pending = self._pending.rpartition("\n")
                self._emit(complete + "\n")
            elif len(self._pending) > _MAX_PENDING:
                self._emit(self._pending)
                self._pending = ""
            if self._closed:
                self._release()

    def flush(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.flush()

    def close(self) -> None:
        """Write what is left and close the file."""
        with self._lock:
            self._closed = True
            self._release()

    def _release(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = ""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _emit(self, text: str) -> None:
        try:
            if self._handle is None:
                # Kept open across writes (one open per attempt); closed by close().
                self._handle = open(self.path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
            self._handle.write(self._masker.text(text))
            self._handle.flush()  # `alfredc logs` of a running stage sees it
            self.written = True
        except OSError:  # a full disk must not fail the stage's own code
            pass


class _Dispatch:
    """Stands in for ``sys.stdout`` or ``sys.stderr``: the writing attempt's log, else the original."""

    def __init__(self, original: TextIO) -> None:
        self._original = original

    def write(self, text: str) -> int:
        log = _CURRENT.get()
        if log is None:
            return self._original.write(text)
        log.write(text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        log = _CURRENT.get()
        if log is None:
            self._original.flush()
        else:
            log.flush()

    def isatty(self) -> bool:
        return False if _CURRENT.get() is not None else self._original.isatty()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, buffer ...: the original's
        return getattr(self._original, name)


def _install() -> None:
    """Put the dispatching streams in place (again, if something replaced them since).

    They are never taken out: a thread abandoned by a timeout may still print, and a
    logging handler may hold them; with no attempt writing they only forward.
    """
    with _INSTALL_LOCK:
        if sys.stdout is not None and not isinstance(sys.stdout, _Dispatch):
            sys.stdout = _Dispatch(sys.stdout)
        if sys.stderr is not None and not isinstance(sys.stderr, _Dispatch):
            sys.stderr = _Dispatch(sys.stderr)


@contextlib.contextmanager
def capture_output(log: AttemptLog) -> Iterator[None]:
    """Send what the current context prints or logs to ``log`` until the block ends.

    Threads started with ``trio.to_thread`` and tasks spawned inside the block inherit it.
    """
    _install()
    token = _CURRENT.set(log)
    try:
        yield
    finally:
        _CURRENT.reset(token)
