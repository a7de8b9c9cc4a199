"""Containment: finding every process an attempt started, to kill them all.

Two modes, chosen once per process (:func:`containment`):

- ``cgroup``: where cgroup v2 is writable (root, or a delegated subtree) and has
  ``cgroup.kill`` (Linux >= 5.14), the runner moves into a leaf of its own,
  ``<its cgroup>/alfred/proc-<pid>-<nonce>/runner``, and each attempt runs in a sibling
  leaf ``.../proc-<pid>-<nonce>/<run id>/<stage>.<attempt>``; writing ``cgroup.kill`` ends
  everything in it, whether it left the process group (``setsid``) or not. A shell line
  enters its cgroup itself before it runs anything; an argv command is moved there by the
  runner right after the spawn, so what it forks in those microseconds stays in the
  runner's leaf, where the kill of the attempt looks too (by environment, below).
- ``subreaper``: elsewhere (or with ``ALFRED_NO_CGROUP`` set to anything non-empty), the
  runner is a child subreaper (``PR_SET_CHILD_SUBREAPER``): an attempt's orphans are
  re-parented to it, not to init, and it reaps them.

In both modes every process of an attempt carries ``ALFRED_RUN_ID``, ``ALFRED_STAGE`` and
``ALFRED_ATTEMPT`` in its environment, and the attempt is committed to the state database
with those three (and its cgroup) *before* it is spawned: so a process of a killed runner
is found on ``--resume`` by its environment (:func:`marked_processes`) or its cgroup, even
when its pid was never recorded and it left its process group.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import secrets
import signal
from collections.abc import Collection, Iterable
from dataclasses import dataclass

__all__ = [
    "Containment",
    "adopt",
    "containment",
    "kill_cgroup",
    "kill_dead_runner_cgroup",
    "kill_marked",
    "make_cgroup",
    "marked_processes",
    "move_to_cgroup",
    "reap_adopted",
    "remove_cgroup",
    "remove_run_cgroups",
]

CGROUP = "cgroup"
SUBREAPER = "subreaper"
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True, slots=True)
class Containment:
    """How this process contains its attempts.

    ``mode``: ``cgroup`` or ``subreaper``. ``cgroup_root``: the directory that holds the
    runs' cgroups (cgroup mode). ``reason``: why this mode, for ``alfredc doctor``.
    """

    mode: str
    cgroup_root: str | None
    reason: str
    #: The runner's own leaf (cgroup mode): the processes forked before their move.
    runner_cgroup: str | None = None

    def attempt_cgroup(self, run_id: str, stage: str, attempt: int) -> str | None:
        """The cgroup of an attempt (cgroup mode), or None."""
        if self.cgroup_root is None:
            return None
        name = f"{stage}.{attempt}"
        if len(name) > 200 or name.startswith(".") or "/" in name or "\n" in name:
            name = f"attempt.{abs(hash(name)):x}.{attempt}"
        return f"{self.cgroup_root}/{run_id}/{name}"


_CONTAINMENT: Containment | None = None


def containment() -> Containment:
    """The mode of this process (detected once; the subreaper is set up on detection)."""
    global _CONTAINMENT
    if _CONTAINMENT is None:
        _CONTAINMENT = _detect()
        if _CONTAINMENT.mode == SUBREAPER:
            _become_subreaper()
    return _CONTAINMENT


def _detect() -> Containment:
    if os.environ.get("ALFRED_NO_CGROUP"):  # non-empty, like NO_COLOR and ALFRED_NO_SHORT_SLICE
        return Containment(SUBREAPER, None, "ALFRED_NO_CGROUP is set")
    mount = _cgroup2_mount()
    if mount is None:
        return Containment(SUBREAPER, None, "no cgroup v2 file system is mounted")
    own = _own_cgroup()
    if own is None:
        return Containment(SUBREAPER, None, "this process is in no cgroup v2 group")
    here = os.path.normpath(mount + own)
    shared = f"{here}/alfred"
    try:
        os.makedirs(shared, exist_ok=True)
    except OSError as exc:
        return Containment(SUBREAPER, None, f"cannot create a cgroup under {here}: {exc.strerror}")
    if not os.path.exists(f"{shared}/cgroup.kill"):
        return Containment(SUBREAPER, None, "the kernel has no cgroup.kill (Linux 5.14 or later needed)")
    _sweep(shared)
    root = f"{shared}/proc-{os.getpid()}-{secrets.token_hex(3)}"
    runner = f"{root}/runner"
    try:
        os.makedirs(runner)
        with open(f"{runner}/cgroup.procs", "w") as handle:
            handle.write(str(os.getpid()))
    except OSError as exc:
        remove_cgroup(runner)
        with contextlib.suppress(OSError):
            os.rmdir(root)
        return Containment(SUBREAPER, None, f"cannot move this process into {runner}: {exc.strerror}")
    atexit.register(_leave, here, runner)
    return Containment(CGROUP, root, f"cgroup v2 writable at {here}", runner)


def _leave(home: str, runner: str) -> None:
    """At exit: back to the cgroup this process came from, and its folders removed."""
    if move_to_cgroup(home, os.getpid()) and remove_cgroup(runner):
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(runner))  # left while a run's cgroup still holds a process


def _sweep(shared: str) -> None:
    """Remove the empty cgroups of runners that are gone (a cgroup that still holds a
    process is left: a background process of a finished attempt keeps running)."""
    with contextlib.suppress(OSError):
        for proc_dir in os.scandir(shared):
            parts = proc_dir.name.split("-")
            if not proc_dir.is_dir() or parts[0] != "proc" or len(parts) != 3 or not parts[1].isdigit():
                continue
            if int(parts[1]) != os.getpid() and _pid_exists(int(parts[1])):
                continue  # (a reused pid keeps the folder until it is gone too)
            with contextlib.suppress(OSError):
                for run_dir in os.scandir(proc_dir.path):
                    if run_dir.is_dir():
                        with contextlib.suppress(OSError):
                            for attempt_dir in os.scandir(run_dir.path):
                                if attempt_dir.is_dir():
                                    with contextlib.suppress(OSError):
                                        os.rmdir(attempt_dir.path)
                        with contextlib.suppress(OSError):
                            os.rmdir(run_dir.path)
                os.rmdir(proc_dir.path)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def runner_cgroup_of(attempt_cgroup: str) -> str:
    """The leaf of the runner that ran an attempt in ``attempt_cgroup``."""
    return f"{os.path.dirname(os.path.dirname(attempt_cgroup))}/runner"


def kill_dead_runner_cgroup(attempt_cgroup: str) -> None:
    """Kill what is left in the leaf of a runner that died (the processes its attempts
    forked before their move): unless that runner is still in it, alive."""
    leaf = runner_cgroup_of(attempt_cgroup)
    name = os.path.basename(os.path.dirname(leaf)).split("-")
    if len(name) != 3 or not name[1].isdigit() or int(name[1]) in cgroup_pids(leaf):
        return
    kill_cgroup(leaf)


def _cgroup2_mount() -> str | None:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                before, _, after = line.partition(" - ")
                fields = before.split()
                if after.split()[:1] == ["cgroup2"] and len(fields) > 4 and fields[3] == "/":
                    return fields[4].replace("\\040", " ")
    except OSError:
        return None
    return None


def _own_cgroup() -> str | None:
    try:
        with open("/proc/self/cgroup", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("0::"):
                    path = line[3:].rstrip("\n")
                    return None if path.endswith(" (deleted)") else path
    except OSError:
        return None
    return None


def _become_subreaper() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


# -- cgroups -----------------------------------------------------------------------------


def make_cgroup(path: str) -> bool:
    """Create an attempt's cgroup (and its run's); an old one of that name is killed first."""
    try:
        os.mkdir(path)
    except FileNotFoundError:
        try:
            os.makedirs(path)
        except OSError:
            return False
    except FileExistsError:
        kill_cgroup(path)
    except OSError:
        return False
    return True


# The cgroup files are read and written with os.open/os.read/os.write: a Python file object
# (``open``) costs ~50 µs more per move, which the event loop pays once per argv command
# (bench/RUNTIME.md, "cgroup files").


def _write_file(path: str, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, data)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def _read_file(path: str) -> bytes | None:
    """The whole of a small kernel file (cgroup.procs of a big cgroup takes several reads)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks)


def move_to_cgroup(path: str, pid: int) -> bool:
    return _write_file(f"{path}/cgroup.procs", b"%d" % pid)


def cgroup_pids(path: str) -> list[int]:
    data = _read_file(f"{path}/cgroup.procs")
    try:
        return [int(line) for line in data.split()] if data else []
    except ValueError:
        return []


def cgroup_populated(path: str) -> bool:
    data = _read_file(f"{path}/cgroup.events")
    return data is not None and b"populated 1" in data.splitlines()


def kill_cgroup(path: str) -> bool:
    """SIGKILL everything in the cgroup; True when it existed."""
    return _write_file(f"{path}/cgroup.kill", b"1")


def remove_cgroup(path: str) -> bool:
    """Remove the cgroup if nothing runs in it any more."""
    try:
        os.rmdir(path)
    except OSError:
        return False
    return True


def remove_run_cgroups(root: str | None, run_id: str) -> None:
    """At the end of a run: its folder of cgroups, and those of its attempts that emptied
    since they ended (one with a background process still running stays)."""
    if root is None:
        return
    folder = f"{root}/{run_id}"
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.is_dir():
                remove_cgroup(entry.path)
        os.rmdir(folder)


# -- the environment marker --------------------------------------------------------------


def _markers(run_id: str, attempts: Iterable[tuple[str, int]]) -> tuple[bytes, set[tuple[bytes, bytes]]]:
    wanted = {(f"ALFRED_STAGE={stage}".encode(), f"ALFRED_ATTEMPT={n}".encode()) for stage, n in attempts}
    return f"ALFRED_RUN_ID={run_id}".encode(), wanted


def marked_processes(run_id: str, attempts: Collection[tuple[str, int]]) -> list[int]:
    """Live processes whose environment says they belong to one of ``attempts`` of ``run_id``.

    Linux only (``/proc``); a process that cleared its environment is not found.
    """
    if not attempts:
        return []
    run_marker, wanted = _markers(run_id, attempts)
    stages = {stage for stage, _ in wanted}
    me = os.getpid()
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for name in entries:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if run_marker not in environ:  # quick test before splitting
            continue
        variables = environ.split(b"\0")
        if run_marker not in variables:
            continue
        stage = next((v for v in variables if v in stages), None)
        attempt = next((v for v in variables if v.startswith(b"ALFRED_ATTEMPT=")), None)
        if stage is not None and attempt is not None and (stage, attempt) in wanted:
            found.append(int(name))
    return found


def marked_among(pids: Iterable[int], run_id: str, attempts: Collection[tuple[str, int]]) -> list[int]:
    """Those of ``pids`` whose environment names one of ``attempts`` of ``run_id``."""
    run_marker, wanted = _markers(run_id, attempts)
    found: list[int] = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                variables = handle.read().split(b"\0")
        except OSError:
            continue
        if run_marker in variables:
            stage = next((v for v in variables if v.startswith(b"ALFRED_STAGE=")), None)
            attempt = next((v for v in variables if v.startswith(b"ALFRED_ATTEMPT=")), None)
            if (stage, attempt) in wanted:
                found.append(pid)
    return found


def kill_marked(run_id: str, attempts: Collection[tuple[str, int]], sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` to :func:`marked_processes`; with SIGKILL, again until none is left
    (a process may fork between the look and the kill). Returns the pids signalled."""
    signalled: list[int] = []
    for _ in range(20 if sig == signal.SIGKILL else 1):
        pids = [p for p in marked_processes(run_id, attempts) if p not in signalled or _alive(p)]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
            if pid not in signalled:
                signalled.append(pid)
    return signalled


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


# -- the subreaper's duty ----------------------------------------------------------------

#: Children of this process that an attempt left behind (re-parented here), seen alive.
_ADOPTED: set[int] = set()


def adopt(pids: Iterable[int]) -> None:
    """Processes of an attempt that were killed: reap them if they were re-parented here."""
    _ADOPTED.update(pids)


def reap_adopted(own_children: Collection[int]) -> None:
    """Reap the processes re-parented to this subreaper that have exited.

    Only processes that carried an ``ALFRED_RUN_ID`` when seen alive are reaped, never one
    in ``own_children`` (the attempts' leaders, reaped by their tasks) nor a child that
    other code of this process started (a python stage's ``subprocess``): its exit status
    belongs to that code.
    """
    for pid in _children():
        if pid in own_children:
            continue
        if pid in _ADOPTED:
            with contextlib.suppress(ChildProcessError, OSError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    _ADOPTED.discard(pid)
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if b"ALFRED_RUN_ID=" in handle.read():
                    _ADOPTED.add(pid)
        except OSError:
            continue


def _children() -> list[int]:
    pids: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return pids
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children") as handle:
                pids.extend(int(p) for p in handle.read().split())
        except (OSError, ValueError):
            continue
    return pids
