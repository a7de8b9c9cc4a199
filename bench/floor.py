"""The floors of the runtime benchmark's scenario (c): the least a runner of its graph does.

    python bench/floor.py 2000              # `true` two at a time, in dependency order
    python bench/floor.py 2000 --contract   # + Trio's import, a cgroup per attempt

The first spawns ``true`` two at a time in dependency order (``os.posix_spawn``, reaped
with ``os.wait``, with alfred's short time slice for the spawning thread) and records
nothing: what any Python runner of the graph pays. The second
adds what alfred's runtime contract costs before any bookkeeping: the import of Trio and
its event loop and, where alfred's containment would be in ``cgroup`` mode (cgroup v2
writable, with ``cgroup.kill``; not with ``ALFRED_NO_CGROUP``), a cgroup per attempt made,
entered and removed as the runtime does (docs/runtime.md, "Timeouts and containment").
Neither compiles a file, imports alfred, or writes state, events or logs; this file
imports as little as it can, as its figure is a floor.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from types import ModuleType

WIDTH = 50


def layered_deps(count: int, width: int = WIDTH) -> list[tuple[int, ...]]:
    """Stage i's dependencies: positions p and p+1 (mod width) of the previous layer."""
    deps: list[tuple[int, ...]] = []
    for i in range(count):
        layer, pos = divmod(i, width)
        if layer == 0:
            deps.append(())
        else:
            base = (layer - 1) * width
            deps.append(tuple(sorted({base + pos, base + (pos + 1) % width})))
    return deps


def run(count: int, contract: bool) -> None:
    cgroups = attempt_cgroups() if contract else None
    if contract:
        import trio  # the runtime's import

        trio.run(trio.sleep, 0)
    deps = layered_deps(count)
    waiting = [len(d) for d in deps]
    after: list[list[int]] = [[] for _ in range(count)]
    for i, ds in enumerate(deps):
        for d in ds:
            after[d].append(i)
    ready = [i for i in reversed(range(count)) if not waiting[i]]
    running: dict[int, int] = {}
    true = shutil.which("true") or "/bin/true"
    env = dict(os.environ)
    with _alfred_module("_timeslice").short_time_slice():
        while ready or running:
            while ready and len(running) < 2:
                i = ready.pop()
                if cgroups is not None:
                    os.mkdir(f"{cgroups}/s{i}")
                pid = os.posix_spawn(true, ["true"], env, setpgroup=0)
                if cgroups is not None:
                    write_pid(f"{cgroups}/s{i}/cgroup.procs", pid)
                running[pid] = i
            pid, _ = os.wait()
            i = running.pop(pid)
            if cgroups is not None:
                os.rmdir(f"{cgroups}/s{i}")
            for j in after[i]:
                waiting[j] -= 1
                if not waiting[j]:
                    ready.append(j)
    if cgroups is not None:
        write_pid(f"{os.path.dirname(cgroups)}/cgroup.procs", os.getpid())
        os.rmdir(f"{cgroups}/runner")
        os.rmdir(cgroups)


def _alfred_module(name: str) -> ModuleType:
    """alfred's ``runtime/<name>.py`` (stdlib imports only), without importing alfred."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "alfred_dsl", "runtime", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"alfred_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def attempt_cgroups() -> str | None:
    """A cgroup folder for the attempts, this process moved into its ``runner`` leaf (as
    alfred's runner is); None where alfred would not use cgroups."""
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        mounts = [line.split() for line in handle]
    mount = next((f[4] for f in mounts if f[f.index("-") + 1] == "cgroup2" and f[3] == "/"), None)
    with open("/proc/self/cgroup", encoding="utf-8") as handle:
        own = next((line[3:].rstrip("\n") for line in handle if line.startswith("0::")), None)
    if os.environ.get("ALFRED_NO_CGROUP") or mount is None or own is None:
        return None
    folder = f"{os.path.normpath(mount + own)}/alfred-bench-floor-{os.getpid()}"
    try:
        os.makedirs(f"{folder}/runner")
    except OSError:
        return None
    if not os.path.exists(f"{folder}/cgroup.kill"):  # Linux < 5.14: alfred uses no cgroups
        os.rmdir(f"{folder}/runner")
        os.rmdir(folder)
        return None
    write_pid(f"{folder}/runner/cgroup.procs", os.getpid())
    return folder


def write_pid(path: str, pid: int) -> None:
    descriptor = os.open(path, os.O_WRONLY)
    try:
        os.write(descriptor, b"%d" % pid)
    finally:
        os.close(descriptor)


if __name__ == "__main__":
    run(int(sys.argv[1]), contract="--contract" in sys.argv[2:])
