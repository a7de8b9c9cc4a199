"""Run a function in a forked child process and take back the bytes it returns.

:func:`start` forks only where that is safe and can help: an ``os.fork`` (Linux, macOS), at
least two CPUs this process may run on (``os.sched_getaffinity`` where it exists), one
thread alive (forking a threaded process can copy a lock held by another thread: the child
would hang on it), and ``ALFRED_PARALLEL`` not set to ``0`` (the one switch that keeps
alfred in one process). Otherwise it returns None and the caller does the work itself.

The child runs the function with the cyclic collector off, writes the bytes to a pipe and
ends with ``os._exit``: no ``atexit`` handler, no flush of the parent's buffered output
copied into it, no ``finally`` of the parent's frames. Anything raised in the child, a
signal or a short write ends it with a nonzero status, and :meth:`Child.result` is None.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["DISABLE_VARIABLE", "Child", "can_fork", "dumps", "loads", "start"]

#: ``ALFRED_PARALLEL=0`` keeps every step in one process.
DISABLE_VARIABLE = "ALFRED_PARALLEL"

_LENGTH = 8  # bytes of the length written before the data


def can_fork() -> bool:
    """Whether :func:`start` would fork now (see the module)."""
    if os.environ.get(DISABLE_VARIABLE, "").strip() == "0" or not hasattr(os, "fork"):
        return False
    affinity = getattr(os, "sched_getaffinity", None)
    cpus = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return cpus >= 2 and threading.active_count() == 1


class Child:
    """A forked child computing bytes: :meth:`result` once, :meth:`close` always."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self._fd = fd
        self._status: int | None = None  # the wait status, once reaped

    def failed(self) -> bool:
        """True when the child has already ended without a result (does not block)."""
        if self._status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._status = status
        return self._status is not None and not _succeeded(self._status)

    def result(self) -> bytearray | None:
        """The child's bytes (blocks until it has written them all), or None if it failed."""
        if self._fd < 0:
            return None
        try:
            data = _read_all(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1
        if self._status is None:
            _, self._status = os.waitpid(self.pid, 0)
        if data is None or not _succeeded(self._status):
            return None
        return data

    def close(self) -> None:
        """Kill the child if it still runs, reap it and close the pipe (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._status is None:
            with contextlib.suppress(ProcessLookupError):  # ended already: reaped just below
                os.kill(self.pid, signal.SIGKILL)
            _, self._status = os.waitpid(self.pid, 0)


def _succeeded(status: int) -> bool:
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _read_all(fd: int) -> bytearray | None:
    """The length-prefixed data of the pipe; None when it is cut short."""
    with open(fd, "rb", buffering=0, closefd=False) as pipe:
        head = bytearray()
        while len(head) < _LENGTH:
            piece = pipe.read(_LENGTH - len(head))
            if not piece:
                return None
            head += piece
        length = int.from_bytes(head, "little")
        data = bytearray(length)
        view = memoryview(data)
        done = 0
        while done < length:
            count = pipe.readinto(view[done:])
            if not count:
                return None
            done += count
        return data  # not copied to bytes: tens of MB, and readers take any buffer


def start(function: Callable[[], bytes]) -> Child | None:
    """Run ``function`` in a forked child; None (nothing started) where :func:`can_fork` says no."""
    if not can_fork():
        return None
    read_fd, write_fd = os.pipe()
    try:
        import fcntl

        # A larger pipe: fewer wake-ups for data of tens of MB (best effort, Linux only).
        fcntl.fcntl(read_fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return None
    if pid == 0:  # the child: never returns
        status = 1
        try:
            os.close(read_fd)
            gc.disable()  # it ends soon: collecting would only rescan what it inherited
            data = function()
            with open(write_fd, "wb", buffering=0, closefd=False) as pipe:
                pipe.write(len(data).to_bytes(_LENGTH, "little"))
                view = memoryview(data)
                while view:
                    view = view[pipe.write(view) :]
            status = 0
        except BaseException:  # any failure is the status: the parent does the work
            pass
        finally:
            os._exit(status)
    os.close(write_fd)
    return Child(pid, read_fd)



def dumps(value: object, reference: Callable[[object], Any]) -> bytes:
    """``value`` pickled for the parent, each object ``reference`` names (not None) sent as
    that name: objects both processes hold (a source file of megabytes) are not copied."""
    buffer = io.BytesIO()
    _Pickler(buffer, reference).dump(value)
    return buffer.getvalue()


def loads(data: bytes | bytearray | memoryview, referenced: Callable[[Any], object]) -> Any:
    """The value of :func:`dumps`, each name given back as ``referenced(name)``. Only for
    the bytes of this process's own child (unpickling runs code)."""
    return _Unpickler(io.BytesIO(data), referenced).load()


# Subclasses, as the pickle documentation has it: Python 3.13 no longer lets an instance's
# persistent_id or persistent_load be assigned.
class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, reference: Callable[[object], Any]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._reference = reference

    def persistent_id(self, obj: Any) -> Any:
        return self._reference(obj)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, referenced: Callable[[Any], object]) -> None:
        super().__init__(file)
        self._referenced = referenced

    def persistent_load(self, pid: Any) -> Any:
        return self._referenced(pid)
