"""A short CPU time slice for the event loop's thread while a run executes (Linux).

``vfork`` suspends the parent until the child has called ``exec``; the kernel then wakes the
parent, but on a busy machine the parent waits on its CPU until its own child's time slice
ends (EEVDF gives a fresh task an earlier deadline than a parent that has been running).
For a short command the child runs to its exit, so the scheduler, which starts and reaps
every stage, is held up about one child's lifetime per stage: with two slots on two CPUs,
``true`` stages ran one at a time (bench/RUNTIME.md, "Time slice").

Since Linux 6.12 a thread may ask for a shorter slice (``sched_setattr`` with
``sched_runtime`` for a normal task; no privilege needed): a woken thread with a shorter
slice preempts the running one. The flag ``SCHED_FLAG_RESET_ON_FORK`` gives every thread
and process started from this thread the default again, so stages are not affected (it would
also reset a negative nice value, so a thread with one is left alone).
Elsewhere (older kernels ignore the field; other systems lack the call) nothing changes.
The thread's earlier attributes come back when the last run in it ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import struct
import sys
import threading
from collections.abc import Iterator

__all__ = ["short_time_slice"]

#: The shortest slice the kernel accepts (it clamps to 0.1 ms .. 100 ms).
SLICE_NS = 100_000

_SCHED_FLAG_RESET_ON_FORK = 0x01
_FAIR_POLICIES = (0, 3)  # SCHED_OTHER, SCHED_BATCH: the policies a slice applies to
# struct sched_attr, first version (48 bytes): size, policy, flags, nice, priority,
# runtime, deadline, period.
_ATTR = struct.Struct("=IIQiIQQQ")
#: (sched_setattr, sched_getattr) system call numbers.
_SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}

#: Per thread: how many runs use the slice now, and the attributes to put back after.
_state = threading.local()


def _syscalls() -> tuple[int, int] | None:
    if not sys.platform.startswith("linux"):
        return None
    return _SYSCALLS.get(platform.machine())


def _get(libc: ctypes.CDLL, number: int) -> tuple[int, ...] | None:
    buffer = ctypes.create_string_buffer(_ATTR.size)
    if libc.syscall(number, 0, buffer, _ATTR.size, 0) != 0:
        return None
    return _ATTR.unpack(buffer.raw)


def _set(libc: ctypes.CDLL, number: int, attr: tuple[int, ...]) -> bool:
    buffer = ctypes.create_string_buffer(_ATTR.pack(*attr), _ATTR.size)
    return bool(libc.syscall(number, 0, buffer, 0) == 0)


@contextlib.contextmanager
def short_time_slice() -> Iterator[None]:
    """Give the calling thread a 0.1 ms slice while any use of it is open in the thread.

    Runs of one Trio loop (a worker's) may end in any order: the last to end restores.
    """
    users = getattr(_state, "users", 0)
    if users == 0:
        _state.restore = _shorten()
    _state.users = users + 1
    try:
        yield
    finally:
        _state.users -= 1
        if _state.users == 0 and _state.restore is not None:
            _set(*_state.restore)
            _state.restore = None


def _shorten() -> tuple[ctypes.CDLL, int, tuple[int, ...]] | None:
    """Shorten this thread's slice; return how to put the old attributes back (None: unchanged)."""
    numbers = _syscalls()
    if numbers is None or os.environ.get("ALFRED_NO_SHORT_SLICE"):  # non-empty, like NO_COLOR
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        old = _get(libc, numbers[1])
    except (OSError, AttributeError):
        return None
    if old is None or old[1] not in _FAIR_POLICIES:
        return None
    _size, policy, flags, nice, priority, _runtime, deadline, period = old
    if nice < 0:  # reset on fork would also give the stages nice 0: leave such a thread alone
        return None
    flags |= _SCHED_FLAG_RESET_ON_FORK
    if not _set(libc, numbers[0], (_ATTR.size, policy, flags, nice, priority, SLICE_NS, deadline, period)):
        return None
    return libc, numbers[0], (_ATTR.size, *old[1:])
