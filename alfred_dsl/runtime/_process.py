"""Child processes in their own process group: cheap spawn, cheap reap, thorough kill.

Each child leads a new process group: started by ``os.posix_spawn`` (``setpgroup=0``) when
it runs in this process's folder, else by ``subprocess.Popen`` (``process_group=0``), which
can change folder (:func:`spawn_in_group`). The exit is awaited on a pidfd
(``os.pidfd_open``) that Trio watches like a socket. On cancellation (timeout,
``on_failure = stop``, Ctrl-C) the whole group gets SIGTERM, then SIGKILL after a grace
period, and so does every process that left the group but not the attempt: those in the
attempt's cgroup, and those whose environment names the attempt
(see ``_contain``), so no grandchild survives.

The child's stdout and stderr are one pipe that a task reads while the process runs; the
log file is created at the first byte, so a silent attempt costs no file (bench/RUNTIME.md).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .._values import format_size
from . import _contain
from ._resolve import StreamMasker

if TYPE_CHECKING:
    import outcome

__all__ = [
    "LEADERS", "SpawnError", "kill_orphans", "run_in_group", "signal_name", "spawn_in_group",
    "truncation_note",
]

_HAS_PIDFD = hasattr(os, "pidfd_open")
_HAS_POSIX_SPAWN = hasattr(os, "posix_spawn") and os.path.isdir("/proc/self/fd")
#: Python >= 3.13 built with glibc >= 2.34: the child closes every descriptor from 3 up
#: itself (``close_range``), so the parent need not list its inheritable ones per spawn.
_SPAWN_CLOSEFROM: int | None = getattr(os, "POSIX_SPAWN_CLOSEFROM", None)
_HAS_EPOLL = hasattr(select, "epoll")
_POLL_S = 0.01


class SpawnError(Exception):
    """The process could not be started (command not found, not executable, bad cwd)."""


class Child(Protocol):
    """What the runtime uses of a started process: ``subprocess.Popen`` or :class:`_Spawned`."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


class _Spawned:
    """A process started by ``os.posix_spawn``: its exit status, as ``Popen`` reports it
    (``-N`` for signal N; 0 when something else reaped it)."""

    __slots__ = ("pid", "returncode")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self) -> int:
        while self.returncode is None:
            self._reap(0)
        return self.returncode

    def _reap(self, options: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, options)
        except ChildProcessError:
            self.returncode = 0
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


#: (command name, PATH) -> absolute path of the executable, so that a run of thousands of
#: stages searches PATH once per command instead of once per process (each miss is an execve
#: in the child and a path join in the parent).
_EXECUTABLES: dict[tuple[str, str | None], str] = {}
_devnull_fd = -1


def _devnull() -> int:
    """One /dev/null descriptor for every child's stdin (Popen would open one per process)."""
    global _devnull_fd
    if _devnull_fd < 0:
        _devnull_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return _devnull_fd


def _path_of(env: Mapping[str, str] | Mapping[bytes, bytes]) -> str | None:
    lookup: Any = env  # str or bytes keys
    value = lookup.get("PATH", lookup.get(b"PATH"))
    if value is None:
        return None
    return os.fsdecode(value)


def _executable(name: str, env: Mapping[str, str] | Mapping[bytes, bytes]) -> str | None:
    """The absolute path ``name`` resolves to on the child's PATH, or None to let exec search.

    An absolute ``name`` is itself (``/bin/sh`` of every shell line: so shell lines are
    started by ``posix_spawn`` too); a relative one with a slash depends on the child's cwd.
    """
    if os.path.isabs(name):
        return name
    if not name or "/" in name:
        return None
    path = _path_of(env)
    key = (name, path)
    found = _EXECUTABLES.get(key)
    if found is None:
        found = shutil.which(name, path=path if path is not None else os.defpath)
        # A relative PATH entry depends on the child's cwd: leave those to exec.
        if found is None or not os.path.isabs(found):
            return None
        _EXECUTABLES[key] = found
    return found


def child_bytes(text: str | bytes) -> bytes:
    """``text`` as a child process gets it: UTF-8 whatever the locale.

    Under a non-UTF-8 locale (``LC_ALL=C``) ``os.fsencode`` cannot encode a param such as
    ``héllo``; UTF-8 is what alfred reads files and params as. Text that came from the
    system undecoded (surrogate escapes: paths, the environment) gets its own bytes back.
    """
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")


def child_env(env: Mapping[str, str] | Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    """An environment for a child, each name and value encoded by :func:`child_bytes`."""
    return {child_bytes(name): child_bytes(value) for name, value in env.items()}


def _encoded(env: Mapping[str, str] | Mapping[bytes, bytes]) -> Mapping[str, str] | Mapping[bytes, bytes]:
    """``env`` if it is bytes already (the scheduler's, encoded once per run), else encoded:
    one look at a name, not at each of ~40 per spawn."""
    first = next(iter(env), b"")
    return env if isinstance(first, bytes) else child_env(env)


def spawn_in_group(
    argv: Sequence[str],
    cwd: str,
    env: Mapping[str, str] | Mapping[bytes, bytes],
    output_fd: int,
    before_spawn: Callable[[], None] | None = None,
    cgroup: str | None = None,
    child_moves_itself: bool = False,
    in_thread: bool = False,
) -> Child:
    """Start ``argv`` as the leader of a new process group, stdout and stderr on ``output_fd``.

    ``before_spawn`` runs first, in the same thread (file preparation off the event loop).
    ``cgroup``: a cgroup v2 directory, created before the spawn, that the process is moved
    into at once (what it starts from then on is in it too), unless
    ``child_moves_itself`` (a shell line that writes its own pid there before anything else).
    ``in_thread``: called from a worker thread (see :class:`_SpawnTimer`), where ``Popen`` is
    used, which releases the GIL while it waits for the child's ``exec``.
    Raises :class:`SpawnError` with a message for the user when it cannot start.
    """
    if before_spawn is not None:
        before_spawn()
    if cgroup is not None and not _contain.make_cgroup(cgroup):
        cgroup = None  # contained by its process group and its environment only
    try:
        executable = _executable(argv[0], env)
        proc: Child
        try:
            if in_thread:  # Popen lets the event loop's thread run while the child execs
                proc = _popen(argv, executable, cwd, env, output_fd)
            else:
                proc = _spawn(argv, executable, cwd, env, output_fd)
        except FileNotFoundError:
            if executable is None:
                raise
            # The cached path went away (a tool reinstalled): search PATH again.
            _EXECUTABLES.pop((argv[0], _path_of(env)), None)
            proc = _popen(argv, None, cwd, env, output_fd)
        if cgroup is not None and not child_moves_itself:
            _contain.move_to_cgroup(cgroup, proc.pid)
        return proc
    except OSError as exc:
        if cgroup is not None:
            _contain.remove_cgroup(cgroup)
        if exc.filename == cwd:  # the child's chdir failed
            if isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise SpawnError(f"working directory {cwd} does not exist") from exc
            raise SpawnError(f"cannot enter working directory {cwd}: {exc.strerror}") from exc
        if isinstance(exc, FileNotFoundError):
            raise SpawnError(f"command not found: {argv[0]}") from exc
        if isinstance(exc, PermissionError):
            raise SpawnError(f"cannot execute {argv[0]}: permission denied") from exc
        raise SpawnError(f"cannot start {argv[0]}: {exc.strerror or exc}") from exc


def _spawn(
    argv: Sequence[str],
    executable: str | None,
    cwd: str,
    env: Mapping[str, str] | Mapping[bytes, bytes],
    output_fd: int,
) -> Child:
    """``os.posix_spawn`` where it does what ``Popen`` would, else ``Popen``.

    ``posix_spawn`` costs the parent a third of the CPU (bench/RUNTIME.md) but cannot change
    the child's folder (Python has no ``addchdir``) and closes only the descriptors it is
    told to: so it is used for a child that runs in this process's folder, with the
    inheritable descriptors of this process (a make jobserver's pipe, a socket passed by
    systemd) closed in the child as ``close_fds=True`` does: listed from ``/proc/self/fd``
    at each spawn, or, where Python has ``POSIX_SPAWN_CLOSEFROM`` (3.13), all closed by the
    child from 3 up.
    """
    if _HAS_POSIX_SPAWN and executable is not None and output_fd > 2 and _devnull() > 2:
        try:
            here = os.getcwd()
        except OSError:
            here = None
        if here == cwd:
            inherited = () if _SPAWN_CLOSEFROM is not None else _inheritable_fds()
            if inherited is not None:
                return _posix_spawn(argv, executable, env, output_fd, inherited)
    return _popen(argv, executable, cwd, env, output_fd)


def _inheritable_fds() -> list[int] | None:
    """This process's descriptors above 2 that a child would inherit (None: cannot tell)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    found = []
    for name in names:
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    found.append(fd)
            except OSError:
                continue  # the directory's own descriptor, closed by now
    return found


_SIGNALS_TO_RESET = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name)
)


def _posix_spawn(
    argv: Sequence[str],
    executable: str,
    env: Mapping[str, str] | Mapping[bytes, bytes],
    output_fd: int,
    inherited: Iterable[int],
) -> _Spawned:
    actions: list[tuple[int, ...]] = [(os.POSIX_SPAWN_CLOSE, fd) for fd in inherited]
    devnull = _devnull()
    actions += [
        (os.POSIX_SPAWN_DUP2, devnull, 0),
        (os.POSIX_SPAWN_DUP2, output_fd, 1),
        (os.POSIX_SPAWN_DUP2, output_fd, 2),
    ]
    if _SPAWN_CLOSEFROM is not None:
        actions.append((_SPAWN_CLOSEFROM, 3))  # after the dup2s, which read output_fd
    pid = os.posix_spawn(
        executable,
        [child_bytes(arg) for arg in argv],
        _encoded(env),
        file_actions=actions,
        setpgroup=0,
        # What Popen's restore_signals does: the signals Python ignores get their default.
        setsigdef=_SIGNALS_TO_RESET,
    )
    return _Spawned(pid)


def _popen(
    argv: Sequence[str],
    executable: str | None,
    cwd: str,
    env: Mapping[str, str] | Mapping[bytes, bytes],
    output_fd: int,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [child_bytes(arg) for arg in argv],
        executable=executable,
        cwd=cwd,
        env=_encoded(env),
        stdin=_devnull(),
        stdout=output_fd,
        stderr=output_fd,
        close_fds=True,
        process_group=0,
    )


class _SpawnTimer:
    """Where to spawn: on the Trio thread while spawns are quick, in worker threads when not.

    The parent of a vfork/exec waits until the child has exec'd. On an idle machine that is
    a few hundred microseconds, less than the two thread hand-offs a worker thread costs,
    so spawning on the event loop is fastest (bench/RUNTIME.md: 1.75x ninja against 2.1x).
    On a loaded machine the wait grows to milliseconds and, on the loop, it blocks every
    other stage: then worker threads (fork/exec releases the GIL) let spawns overlap. A
    moving average of recent spawn times on the loop picks the side, with hysteresis.

    Only spawns on the loop are timed: in a worker thread a spawn also waits for the GIL,
    which the loop holds, so its time says little about the loop's. While spawns go to
    threads, one in ``probe_every`` runs on the loop to see whether they are quick there
    again (``probe_every = 0``: never); each probe that finds a slow spawn doubles the gap to
    the next, up to ``16 * probe_every``, so a machine that stays loaded pays for few.
    A sample counts for at most ``sample_cap_s``, so that one slow spawn (a run's first
    cgroup move waits ~11 ms for an RCU grace period) cannot send a run's spawns to threads,
    which cost the loop ~150-230 µs more CPU per stage (bench/RUNTIME.md, "Fifth round").
    """

    to_thread_above_s = 0.0012
    to_loop_below_s = 0.0007
    sample_cap_s = 0.004
    probe_every = 16

    def __init__(self) -> None:
        self.average_s = 0.0
        self.in_thread = False
        self._unprobed = 0
        self._probe_gap = self.probe_every

    def next_in_thread(self) -> bool:
        """Whether the next spawn goes to a worker thread (else the loop's thread: a probe
        now and then while in thread mode)."""
        if not self.in_thread:
            return False
        self._unprobed += 1
        if self.probe_every and self._unprobed >= self._probe_gap:
            self._unprobed = 0
            return False
        return True

    def record(self, seconds: float, in_thread: bool = False) -> None:
        if in_thread:
            return
        probe = self.in_thread
        sample = min(seconds, self.sample_cap_s)
        weight = 0.25 if probe else 0.1  # probes are few: each weighs more
        self.average_s += (sample - self.average_s) * weight
        if probe:
            self.in_thread = self.average_s > self.to_loop_below_s
            if sample > self.to_loop_below_s:  # still slow there: look less often
                self._probe_gap = min(self._probe_gap * 2, 16 * self.probe_every)
            else:
                self._probe_gap = self.probe_every
        else:
            self.in_thread = self.average_s > self.to_thread_above_s
            self._probe_gap = self.probe_every


_SPAWN_TIMER = _SpawnTimer()
_SPAWN_LIMITER: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("alfred_spawn_limiter")


def _spawn_limiter() -> trio.CapacityLimiter:
    """Spawn threads of this Trio run: not Trio's default limiter (40 threads), which sync
    python stages occupy for as long as they run, so spawns never wait behind them."""
    try:
        return _SPAWN_LIMITER.get()
    except LookupError:
        limiter = trio.CapacityLimiter(64)
        _SPAWN_LIMITER.set(limiter)
        return limiter


async def _in_worker_thread(fn: Callable[..., Child], *args: Any) -> Child:
    """``fn(*args)`` in a worker thread of Trio's thread cache, not cancellable once started.

    What ``trio.to_thread.run_sync`` does for a spawn, without what a spawn does not use: the
    copy of the context, the thread's name set and reset through ``ctypes`` around each call,
    the from-thread hooks: half the CPU per hand-off (~30 against ~60 µs, bench/RUNTIME.md).
    As there, cancellation is seen before the thread starts, never while it runs.
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    limiter = _spawn_limiter()
    borrower = object()
    try:
        limiter.acquire_on_behalf_of_nowait(borrower)
    except trio.WouldBlock:
        await limiter.acquire_on_behalf_of(borrower)
    try:
        task = trio.lowlevel.current_task()
        token = trio.lowlevel.current_trio_token()

        def deliver(result: outcome.Outcome[Child]) -> None:
            token.run_sync_soon(trio.lowlevel.reschedule, task, result)

        trio.lowlevel.start_thread_soon(lambda: fn(*args), deliver)
        # The thread cannot be stopped: a cancel waits for the spawn (as run_sync does).
        result: Child = await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)
        return result
    finally:
        limiter.release_on_behalf_of(borrower)


def _timed_spawn(
    argv: Sequence[str],
    cwd: str,
    env: Mapping[str, str] | Mapping[bytes, bytes],
    output_fd: int,
    before_spawn: Callable[[], None] | None,
    cgroup: str | None,
    child_moves_itself: bool,
    in_thread: bool,
) -> Child:
    started = time.perf_counter()
    try:
        return spawn_in_group(argv, cwd, env, output_fd, before_spawn, cgroup, child_moves_itself, in_thread)
    finally:
        _SPAWN_TIMER.record(time.perf_counter() - started, in_thread)


async def run_in_group(
    argv: Sequence[str],
    *,
    cwd: Path | str,
    env: Mapping[str, str] | Mapping[bytes, bytes],
    log_path: Path | str,
    kill_grace_s: float,
    kill_now: trio.Event | None = None,
    on_spawn: Callable[[int], None] | None = None,
    before_spawn: Callable[[], None] | None = None,
    mask: StreamMasker | None = None,
    max_log: int | None = None,
    on_log_truncated: Callable[[int], None] | None = None,
    cgroup: str | None = None,
    child_moves_itself: bool = False,
    marker: tuple[str, str, int] | None = None,
) -> int:
    """Run ``argv`` with stdout and stderr appended to ``log_path``; return its exit status.

    The log file is created only when the process writes something. Output still in the
    pipe when the leader exits is kept; a background grandchild that holds the pipe open
    does not keep the attempt running, and what it writes afterwards is not captured.
    The status is negative (``-N``) when the process died of signal N, as in
    :mod:`subprocess`. When the calling task is cancelled, the process group is
    terminated (see :func:`terminate_group`) before ``Cancelled`` propagates.
    ``env`` may be bytes already (the scheduler encodes the run's environment once).
    ``before_spawn`` runs in the spawning thread; a :class:`SpawnError` from it is reported,
    and so is a log file that cannot be written (after the process ran).
    ``mask`` replaces secret values before any byte reaches the log; ``max_log`` caps the
    bytes written, and ``on_log_truncated`` gets the count of bytes dropped when the cap was hit.
    ``cgroup`` (the attempt's cgroup v2 directory) and ``marker`` (run id, stage, attempt:
    the ``ALFRED_*`` variables of its environment) say what else belongs to the attempt
    when it is killed; the cgroup is removed after the exit unless a process still runs in it.
    ``child_moves_itself``: see :func:`spawn_in_group`.
    """
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        if _SPAWN_TIMER.next_in_thread():
            proc = await _in_worker_thread(
                _timed_spawn, argv, str(cwd), env, write_fd, before_spawn, cgroup, child_moves_itself, True,
            )
        else:
            proc = _timed_spawn(
                argv, str(cwd), env, write_fd, before_spawn, cgroup, child_moves_itself, False
            )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        # Only the child holds the write end now, so the pipe ends when the child's group does.
        os.close(write_fd)
    os.set_blocking(read_fd, False)
    log = _LazyLog(str(log_path), mask, max_log)
    LEADERS.add(proc.pid)
    try:
        if on_spawn is not None:
            on_spawn(proc.pid)
        try:
            status = await _wait_and_capture(proc, read_fd, log)
        except BaseException:
            with trio.CancelScope(shield=True):
                await terminate_group(proc, kill_grace_s, kill_now, cgroup=cgroup, marker=marker)
            raise
    finally:
        LEADERS.discard(proc.pid)
        if cgroup is not None:
            _contain.remove_cgroup(cgroup)  # kept while a background process runs in it
        # The leader's descriptors are closed before its exit is reported, so what it wrote
        # (or wrote before the kill) is in the pipe now; writers that outlive it (a background
        # grandchild) are not waited for.
        _drain(read_fd, log, _FINAL_DRAIN_READS)
        os.close(read_fd)
        log.close()
        if log.dropped and on_log_truncated is not None:
            on_log_truncated(log.dropped)
    if log.error is not None:
        raise SpawnError(log.error)
    return status


#: Leaders of the attempts running in this process (reaped by their tasks, not by the
#: subreaper's sweep).
LEADERS: set[int] = set()

#: Bytes per read from a child's pipe (the default pipe capacity on Linux).
_CHUNK = 65536
#: Reads per wake-up, so a child that writes without pause cannot hold the loop.
_PUMP_READS = 16
#: How long the task blocks for the leader's exit once its output pipe reached end of file.
_EXIT_AFTER_EOF_S = 0.001
#: Reads after the leader exited: bounded, since a grandchild may keep writing forever.
_FINAL_DRAIN_READS = 64


class _LazyLog:
    """An attempt's log file, created (in append mode, 0600) at the first byte written to it.

    With ``mask``, secret values are replaced as the bytes pass (nothing unmasked is ever
    written). With ``limit``, at most that many bytes of output are written; the rest is
    counted in ``dropped`` (the pipe is still read so the process never blocks) and a line
    saying so ends the file.
    """

    __slots__ = ("dropped", "error", "fd", "limit", "mask", "path", "written")

    def __init__(self, path: str, mask: StreamMasker | None = None, limit: int | None = None) -> None:
        self.path = path
        self.fd = -1
        self.error: str | None = None
        self.mask = mask
        self.limit = limit
        self.written = 0
        self.dropped = 0

    def write(self, data: bytes) -> None:
        if self.error is not None:
            return  # output is still read (the child must not block), but dropped
        if self.limit is not None and self.written >= self.limit:
            self.dropped += len(data)  # past the cap: counted, neither masked nor kept
            return
        if self.mask is not None:
            data = self.mask.feed(data)
        self._put(data)

    def _put(self, data: bytes) -> None:
        if self.limit is not None and self.written + len(data) > self.limit:
            room = max(self.limit - self.written, 0)
            self.dropped += len(data) - room
            data = data[:room]
        if data:
            self._append(data)
            self.written += len(data)

    def _append(self, data: bytes) -> None:
        try:
            if self.fd < 0:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            self.error = f"cannot write log file {self.path}: {exc.strerror or exc}"

    def close(self) -> None:
        if self.error is None:
            if self.mask is not None:
                self._put(self.mask.flush())
            if self.dropped:
                self._append(truncation_note(self.limit or 0, self.dropped).encode())
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def truncation_note(limit: int, dropped: int) -> str:
    """The line that ends a log cut at ``limit`` bytes."""
    return f"\nalfred: log truncated at max_log = {format_size(limit)}: {dropped} more bytes dropped\n"


def _drain(fd: int, log: _LazyLog, max_reads: int) -> bool:
    """Copy what the pipe holds to ``log`` (at most ``max_reads`` reads); False at end of file."""
    for _ in range(max_reads):
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return True
        if not data:
            return False
        log.write(data)
    return True


async def _wait_and_capture(proc: Child, read_fd: int, log: _LazyLog) -> int:
    """Wait for the leader's exit while copying its output to ``log``; return its status.

    One task waits on one epoll set holding the process's pidfd and the pipe: cheaper than
    a reader task beside the waiting one (bench/RUNTIME.md). Returns at the leader's exit
    even when a grandchild still holds the pipe open.
    """
    pidfd = -1
    if _HAS_PIDFD and _HAS_EPOLL:
        try:
            pidfd = os.pidfd_open(proc.pid)
        except OSError:
            pidfd = -1
    if pidfd < 0:
        return await _poll_and_capture(proc, read_fd, log)
    try:
        watch = select.epoll(2)
        try:
            watch.register(pidfd, select.EPOLLIN)
            watch.register(read_fd, select.EPOLLIN)
            while True:
                await trio.lowlevel.wait_readable(watch.fileno())
                for fd, _ in watch.poll(0):
                    if fd == pidfd:
                        return proc.wait()
                    if not _drain(read_fd, log, _PUMP_READS):
                        watch.unregister(read_fd)  # end of file: only the exit is left to see
                        # An exiting process closes its files a few microseconds before its
                        # exit is reported: wait for that here (at most a millisecond) rather
                        # than through one more wake-up of the event loop per attempt.
                        if watch.poll(_EXIT_AFTER_EOF_S):
                            return proc.wait()
        finally:
            trio.lowlevel.notify_closing(watch.fileno())
            watch.close()
    finally:
        os.close(pidfd)


async def _poll_and_capture(proc: Child, read_fd: int, log: _LazyLog) -> int:
    """Without pidfd or epoll: poll the exit, copying the output at each look."""
    delay = 0.001
    while (status := proc.poll()) is None:
        _drain(read_fd, log, _PUMP_READS)
        await trio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return status


def _group_alive(pgid: int, leader_reaped: bool = False) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Orphaned grandchildren that died stay in the group as zombies until init reaps them,
    # which may take a second, or forever when init does not reap (a container's PID 1).
    return not leader_reaped or _group_has_live_member(pgid)


def _group_has_live_member(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is not a zombie (True when /proc cannot tell)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] != b"Z":
            return True
    return False


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def terminate_group(
    proc: Child,
    grace_s: float,
    kill_now: trio.Event | None = None,
    *,
    cgroup: str | None = None,
    marker: tuple[str, str, int] | None = None,
) -> None:
    """SIGTERM the attempt of ``proc``; SIGKILL whatever is left of it after ``grace_s``.

    The attempt is the process group of ``proc``, every process in ``cgroup`` and every
    process whose environment carries ``marker`` (run id, stage, attempt): a process that
    left the group (``setsid``) is still found. Waits for all of them, not only the
    leader, and stops waiting at once when ``kill_now`` is set (a second Ctrl-C). Reaps
    the leader.
    """
    pgid = proc.pid
    attempts = [(marker[1], marker[2])] if marker is not None else []
    run_id = marker[0] if marker is not None else ""
    # Without a cgroup the environment is the only trace of a process that left the group.
    if cgroup is not None and not os.path.isdir(cgroup):
        cgroup = None  # it could not be created: the attempt ran outside any cgroup
    scan_marked = bool(attempts) and cgroup is None
    def strays() -> list[int]:
        """Processes forked by an argv command before its move into ``cgroup``."""
        if cgroup is None or not attempts:
            return []
        leaf = _contain.cgroup_pids(_contain.runner_cgroup_of(cgroup))
        return _contain.marked_among([p for p in leaf if p != os.getpid()], run_id, attempts)

    for sig in (signal.SIGTERM, signal.SIGCONT):  # a stopped process acts on SIGTERM once continued
        _killpg(pgid, sig)
        if cgroup is not None:
            _signal_all(_contain.cgroup_pids(cgroup) + strays(), sig)
        if scan_marked:
            _contain.kill_marked(run_id, attempts, sig)
    deadline = trio.current_time() + max(grace_s, 0.0)
    looks = 0
    while trio.current_time() < deadline and not (kill_now is not None and kill_now.is_set()):
        # Reap the leader, else its zombie keeps the group alive.
        alive = _group_alive(pgid, leader_reaped=proc.poll() is not None)
        if not alive and cgroup is not None:
            alive = _contain.cgroup_populated(cgroup)
        if not alive and scan_marked and looks % 10 == 0:  # a scan of /proc: not every 10 ms
            alive = bool(_contain.marked_processes(run_id, attempts))
        if not alive:
            break
        looks += 1
        await trio.sleep(_POLL_S)
    _killpg(pgid, signal.SIGKILL)
    if cgroup is not None:
        _contain.kill_cgroup(cgroup)
        for _ in range(20):  # again while one forks
            left = strays()
            if not left:
                break
            _signal_all(left, signal.SIGKILL)
    elif attempts:
        _contain.adopt(_contain.kill_marked(run_id, attempts))
    for _ in range(500):  # SIGKILL cannot be caught: the leader is gone within milliseconds
        if proc.poll() is not None:
            break
        await trio.sleep(_POLL_S)
    if cgroup is not None:
        for _ in range(100):  # cgroup.kill is asynchronous: the cgroup empties within milliseconds
            if not _contain.cgroup_populated(cgroup):
                break
            await trio.sleep(_POLL_S)


def kill_orphans(run_id: str, pgids: Iterable[int]) -> list[int]:
    """SIGKILL processes left from a dead ``alfredc`` of run ``run_id``; returns their pids.

    A process is killed only if it is in one of ``pgids`` (the groups of the attempts
    that were running) and its environment says ``ALFRED_RUN_ID=run_id``, so a reused pid
    is never hit. Linux only (``/proc``); elsewhere nothing is done.
    """
    wanted = set(pgids)
    proc_dir = Path("/proc")
    if not wanted or not proc_dir.is_dir():
        return []
    marker = f"ALFRED_RUN_ID={run_id}".encode()
    killed: list[int] = []
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
            # Fields after the command name (which may hold spaces): state ppid pgrp ...
            pgrp = int(stat.rsplit(")", 1)[1].split()[2])
            if pgrp not in wanted:
                continue
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except (OSError, ValueError, IndexError):
            continue
    return killed
