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
Neither compiles a file or writes state, events or logs; of alfred they load only its
short time slice and its cgroup helpers (``runtime/_timeslice.py``, ``runtime/_contain.py``,
standard library only, by path), as their figure is a floor.
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
    contain = _alfred_module("_contain")  # stdlib imports only
    cgroups = attempt_cgroups(contain) if contract else None
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
                    contain.move_to_cgroup(f"{cgroups}/s{i}", pid)
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
        contain.move_to_cgroup(os.path.dirname(cgroups), os.getpid())
        os.rmdir(f"{cgroups}/runner")
        os.rmdir(cgroups)


def _alfred_module(name: str) -> ModuleType:
    """alfred's ``runtime/<name>.py`` (stdlib imports only), without importing alfred."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "alfred_dsl", "runtime", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"alfred_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # (its dataclasses)
    spec.loader.exec_module(module)
    return module


def attempt_cgroups(contain: ModuleType) -> str | None:
    """A cgroup folder for the attempts, this process moved into its ``runner`` leaf (as
    alfred's runner is), with alfred's own ``runtime/_contain.py``; None where alfred would
    not use cgroups."""
    mount, own = contain._cgroup2_mount(), contain._own_cgroup()
    if os.environ.get("ALFRED_NO_CGROUP") or mount is None or own is None:
        return None
    folder = f"{os.path.normpath(mount + own)}/alfred-bench-floor-{os.getpid()}"
    try:
        os.makedirs(f"{folder}/runner")
    except OSError:
        return None
    runner = f"{folder}/runner"
    if not os.path.exists(f"{folder}/cgroup.kill") or not contain.move_to_cgroup(runner, os.getpid()):
        os.rmdir(runner)  # Linux < 5.14, or not movable: alfred uses no cgroups
        os.rmdir(folder)
        return None
    return folder


if __name__ == "__main__":
    run(int(sys.argv[1]), contract="--contract" in sys.argv[2:])
