"""Runtime benchmark: alfred's Trio scheduler against a raw Trio floor and against ninja.

    python bench/runtime.py                 # both scenarios, 3 repetitions, whole processes
    python bench/runtime.py --quick         # smaller graphs, 1 repetition (a smoke test)
    python bench/runtime.py --profile       # also a pyinstrument profile of each alfred run

(a) ``python``: N no-op python stages (``async def``) in a layered DAG (width 50, each stage
    after two stages of the previous layer), durable state on (SQLite in a temp dir),
    against a floor written here: one Trio nursery, one ``trio.Event`` per stage, each task
    waits for its two dependencies and sets its event.
(b) ``command``: M command stages running ``true`` with concurrency 2 in the same shape,
    against ``ninja -j2`` on the same graph (the ``ninja`` PyPI package, else ninja on PATH).
(c) ``end to end``: ``alfredc run wf.alfred -j 2`` of the same M stages written as an
    ``.alfred`` file (whole process: start-up and compiling included, a fresh state folder
    each time), against ``ninja -j2`` on the same graph, the two alternating; also the CPU
    time (user + sys, the stages' included) of both, and where alfred's time goes (start-up
    and compiling, the run, the exit) from an instrumented copy of the same command. A third
    command per round is the same run in a fresh state folder whose plan cache holds the
    plan (``cache/`` copied from the first round): a project's next run after an unchanged
    file, as ``alfredc run`` does when its state folder is kept. Two floors run in the same
    rounds: the least any Python runner of the graph does (``os.posix_spawn`` two at a
    time, nothing recorded) and that plus the runtime contract's fixed costs (Trio's
    import, a cgroup per attempt in cgroup containment mode): what 1.3x is measured against.

Every measurement is a whole process (interpreter start-up and imports included), timed by
this parent; the child also reports the time of the run alone ("inner"). Per-stage overhead
is (alfred - floor) / stages; the targets are < 200 µs per stage for (a), <= 1.5x ninja
for (b) and <= 1.3x ninja for (c). In (a) and (b) the plan is built directly (not compiled
from a file): the compiler has its own benchmark (bench/compiler.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
# bench/floor.py beside this file, also where the script's folder is not on sys.path
# (PYTHONSAFEPATH, as CI runs the suite against the wheel).
sys.path.insert(0, str(HERE.parent))
from floor import WIDTH, layered_deps  # noqa: E402

FLOOR = HERE.parent / "floor.py"


# -- children: each runs in its own process ---------------------------------------------


async def noop(inputs: dict[str, Any]) -> dict[str, Any]:
    """The python stage of scenario (a)."""
    return {}


def child_floor(count: int) -> float:
    import trio

    deps = layered_deps(count)

    async def main() -> None:
        events = [trio.Event() for _ in range(count)]

        async def task(i: int) -> None:
            for d in deps[i]:
                await events[d].wait()
            events[i].set()

        async with trio.open_nursery() as nursery:
            for i in range(count):
                nursery.start_soon(task, i)

    started = time.perf_counter()
    trio.run(main)
    return time.perf_counter() - started


def _plan(count: int, kind: str, concurrency: int) -> Any:
    from alfred_dsl.compiler._plan import Plan, PlanAgent, PlanStage

    deps = layered_deps(count)
    if kind == "python":
        agent = PlanAgent(name="worker", kind="python", call="runtime_bench:noop", concurrency=concurrency)
    else:
        agent = PlanAgent(name="worker", kind="command", run=("true",), concurrency=concurrency)
    cwd = str(HERE.parent)
    stages = tuple(
        PlanStage(
            name=f"s{i}", agents=("worker",), kind=kind, cwd=cwd, after=tuple(f"s{d}" for d in deps[i]),
            layer=i // WIDTH,
        )
        for i in range(count)
    )
    layers = tuple(tuple(f"s{i}" for i in range(j, min(j + WIDTH, count))) for j in range(0, count, WIDTH))
    return Plan(workflow="bench", source=str(HERE), agents=(agent,), stages=stages, layers=layers)


def child_alfred(count: int, kind: str, concurrency: int, profile: str | None) -> float:
    import trio

    # The python stages call `runtime_bench:noop`: this module under an importable name.
    sys.modules.setdefault("runtime_bench", sys.modules[__name__])
    from alfred_dsl.runtime import EventBus, RunOptions, StateStore, execute

    plan = _plan(count, kind, concurrency)
    with tempfile.TemporaryDirectory(prefix="alfred-bench-") as state:
        store = StateStore(state)
        options = RunOptions(max_concurrency=concurrency, jitter=0.0)
        profiler: Any = None
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
        started = time.perf_counter()
        result = trio.run(lambda: execute(plan, store=store, options=options, bus=EventBus()))
        elapsed = time.perf_counter() - started
        if profiler is not None:
            profiler.stop()
            Path(profile or "").write_text(profiler.output_text(unicode=True, color=False, show_all=False))
        store.close()
    if result.state != "succeeded":
        raise SystemExit(f"the benchmark run {result.state}: {result.stages}")
    return elapsed


def child_cli(argv: Sequence[str]) -> dict[str, float]:
    """``alfredc ARGV`` in this process, timing the Trio run (the stages) apart from the rest."""
    self_cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # noqa: E731
    self_sys = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_stime  # noqa: E731
    import trio

    marks: dict[str, float] = {}
    real_run = trio.run

    def timed_run(*args: Any, **kwargs: Any) -> Any:
        marks["loop_start"], marks["loop_start_cpu"], marks["loop_start_sys"] = (
            time.perf_counter(), self_cpu(), self_sys()
        )
        try:
            return real_run(*args, **kwargs)
        finally:
            marks["loop_end"], marks["loop_end_cpu"], marks["loop_end_sys"] = (
                time.perf_counter(), self_cpu(), self_sys()
            )

    trio.run = timed_run  # type: ignore[assignment]
    from alfred_dsl.cli import main as alfredc

    try:
        alfredc(list(argv))
    except SystemExit as exc:
        if exc.code:
            raise
    ended = time.perf_counter()
    started = ended - (time.time() - float(os.environ["BENCH_STARTED"]))
    return {
        "before_loop_s": marks["loop_start"] - started,
        "before_loop_cpu_s": marks["loop_start_cpu"],
        "loop_s": marks["loop_end"] - marks["loop_start"],
        "loop_cpu_s": marks["loop_end_cpu"] - marks["loop_start_cpu"],
        "loop_sys_s": marks["loop_end_sys"] - marks["loop_start_sys"],
        "after_loop_s": ended - marks["loop_end"],
    }


# -- the parent ------------------------------------------------------------------------


def ninja_binary() -> str | None:
    try:
        import ninja  # the PyPI package

        path = Path(ninja.BIN_DIR) / "ninja"
        if path.is_file():
            return str(path)
    except (ImportError, AttributeError):
        pass
    return shutil.which("ninja") or ("/usr/bin/ninja" if Path("/usr/bin/ninja").is_file() else None)


def write_alfred(directory: Path, count: int) -> Path:
    """The graph of :func:`write_ninja` as an ``.alfred`` file: one command agent running ``true``."""
    deps = layered_deps(count)
    lines = ["agent worker {", "  kind = command", '  run = ["true"]', "  concurrency = 2", "}", "",
             "workflow bench {"]
    for i in range(count):
        after = f" after {', '.join(f's{d}' for d in deps[i])}" if deps[i] else ""
        lines.append(f"  stage s{i}{after} {{ agent = worker }}")
    lines.append("}")
    path = directory / "wf.alfred"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_ninja(directory: Path, count: int) -> None:
    deps = layered_deps(count)
    lines = ["rule run", "  command = true", ""]
    for i in range(count):
        inputs = " ".join(f"s{d}" for d in deps[i])
        lines.append(f"build s{i}: run {inputs}".rstrip())
    (directory / "build.ninja").write_text("\n".join(lines) + "\n")


def children_cpu() -> float:
    """User + system CPU seconds of this process's waited-for descendants so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(
    argv: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, dict[str, Any]]:
    cpu = children_cpu()
    started = time.perf_counter()
    done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - started
    cpu = children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
    try:
        data = json.loads(last)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    data["cpu_s"] = cpu
    return wall, data


def measure(label: str, run: Callable[[], tuple[float, dict[str, Any]]], repeat: int) -> dict[str, float]:
    walls, inners = [], []
    for _ in range(repeat):
        wall, data = run()
        walls.append(wall)
        if "inner_s" in data:
            inners.append(float(data["inner_s"]))
    row = {"wall_s": statistics.median(walls)}
    if inners:
        row["inner_s"] = statistics.median(inners)
    inner = f"   run alone {row['inner_s']:8.3f} s" if inners else ""
    print(f"  {label:<34} process {row['wall_s']:8.3f} s{inner}", flush=True)
    return row


def byte_compile_alfred() -> None:
    """Write alfred_dsl's bytecode as ``pip install`` does, so that the children measure an
    installed alfred: with ``PYTHONDONTWRITEBYTECODE`` set and a source checkout, every child
    would otherwise compile the package again (~35 ms of each start on the 2-vCPU VM)."""
    import compileall

    import alfred_dsl

    compileall.compile_dir(str(Path(alfred_dsl.__file__).parent), quiet=1)


def me(*args: str) -> list[str]:
    return [sys.executable, str(HERE), *args]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["--child", "cli"]:  # alfredc's own options follow: not for argparse
        print(json.dumps(child_cli(argv[2:])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python-stages", type=int, default=10_000)
    parser.add_argument("--command-stages", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000 and 200 stages, one repetition")
    parser.add_argument(
        "--profile", action="store_true", help="write pyinstrument profiles to bench/profiles/"
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--scenarios", default="abc", help="which scenarios to run (default abc; e.g. --scenarios c)"
    )
    parser.add_argument("--e2e-repeat", type=int, default=5, help="repetitions of (c) (default 5)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        what, count = args.child[0], int(args.child[1])
        profile = args.child[2] if len(args.child) > 2 else None
        if what == "floor":
            inner = child_floor(count)
        elif what == "python":
            inner = child_alfred(count, "python", WIDTH, profile)
        else:
            inner = child_alfred(count, "command", 2, profile)
        print(json.dumps({"inner_s": inner}))
        return 0

    if args.quick:
        args.python_stages, args.command_stages, args.repeat, args.e2e_repeat = 1_000, 200, 1, 1
    byte_compile_alfred()
    n_py, n_cmd = args.python_stages, args.command_stages
    profiles = HERE.parent / "profiles"
    if args.profile:
        profiles.mkdir(exist_ok=True)
    results: dict[str, Any] = {"python_stages": n_py, "command_stages": n_cmd, "repeat": args.repeat}

    if "a" in args.scenarios:
        scenario_a(args, n_py, results)
    if "b" in args.scenarios:
        scenario_b(args, n_cmd, results)
    if "c" in args.scenarios:
        scenario_c(args, n_cmd, results)
    if args.profile:
        for what, count in (("python", n_py), ("command", n_cmd)):
            target = profiles / f"runtime-{what}.txt"
            timed(me("--child", what, str(count), str(target)))
            print(f"\nprofile of the {what} scenario: {target}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def scenario_a(args: argparse.Namespace, n_py: int, results: dict[str, Any]) -> None:
    print(f"(a) {n_py} no-op python stages, layered DAG (width {WIDTH}, 2 deps each), durable state on")
    floor = measure("raw Trio floor (nursery + Events)", lambda: timed(me("--child", "floor", str(n_py))),
                    args.repeat)
    alfred = measure("alfred execute()", lambda: timed(me("--child", "python", str(n_py))), args.repeat)
    per_stage = (alfred["wall_s"] - floor["wall_s"]) / n_py * 1e6
    per_stage_inner = (alfred["inner_s"] - floor["inner_s"]) / n_py * 1e6
    verdict = "OK" if per_stage < 200 else "over target"
    print(f"  per-stage overhead: {per_stage:.0f} µs (whole process), {per_stage_inner:.0f} µs (run alone);"
          f" target < 200 µs: {verdict}")
    results["python"] = {"floor": floor, "alfred": alfred, "overhead_us": per_stage,
                         "overhead_inner_us": per_stage_inner}


def scenario_b(args: argparse.Namespace, n_cmd: int, results: dict[str, Any]) -> None:
    print(f"\n(b) {n_cmd} command stages running `true`, concurrency 2, same shape")
    ninja = ninja_binary()
    with tempfile.TemporaryDirectory(prefix="alfred-bench-ninja-") as tmp:
        work = Path(tmp)
        write_ninja(work, n_cmd)

        def run_ninja() -> tuple[float, dict[str, Any]]:
            for leftover in (".ninja_log", ".ninja_deps"):
                (work / leftover).unlink(missing_ok=True)
            return timed([ninja or "ninja", "-j2", "-f", "build.ninja"], cwd=work)

        ninja_row = measure("ninja -j2", run_ninja, args.repeat) if ninja else None
    alfred_cmd = measure("alfred execute()", lambda: timed(me("--child", "command", str(n_cmd))), args.repeat)
    results["command"] = {"alfred": alfred_cmd}
    if ninja_row is not None:
        ratio = alfred_cmd["wall_s"] / ninja_row["wall_s"]
        verdict = "OK" if ratio <= 1.5 else "over target"
        per = (alfred_cmd["wall_s"] - ninja_row["wall_s"]) / n_cmd * 1e6
        print(f"  ratio to ninja: {ratio:.2f}x ({per:.0f} µs per stage more); target <= 1.5x: {verdict}")
        results["command"].update(ninja=ninja_row, ratio=ratio)
    else:
        print("  ninja not found: pip install ninja (the `bench` extra)")


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def scenario_c(args: argparse.Namespace, n_cmd: int, results: dict[str, Any]) -> None:
    print(f"\n(c) `alfredc run wf.alfred -j 2 --quiet` of the same {n_cmd} stages, whole process"
          f" (compiling included, fresh state), against `ninja -j2`, alternating; load {load()}")
    ninja = ninja_binary()
    if ninja is None:
        print("  ninja not found: pip install ninja (the `bench` extra)")
        return
    alfredc = [sys.executable, "-m", "alfred_dsl"]
    rows: dict[str, list[tuple[float, float]]] = {
        "ninja": [], "alfred": [], "cached": [], "spawn-floor": [], "contract-floor": [],
    }
    splits: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="alfred-bench-e2e-") as tmp:
        work = Path(tmp)
        write_ninja(work, n_cmd)
        write_alfred(work, n_cmd)
        for round_ in range(args.e2e_repeat):
            for leftover in (".ninja_log", ".ninja_deps"):
                (work / leftover).unlink(missing_ok=True)
            wall, data = timed([ninja, "-j2", "-f", "build.ninja"], cwd=work)
            rows["ninja"].append((wall, data["cpu_s"]))
            for floor in ("spawn-floor", "contract-floor"):
                contract = ["--contract"] if floor == "contract-floor" else []
                wall, data = timed([sys.executable, str(FLOOR), str(n_cmd), *contract], cwd=work)
                rows[floor].append((wall, data["cpu_s"]))
            state = work / f"state-{round_}"
            wall, data = timed([*alfredc, "run", "wf.alfred", "-j", "2", "--quiet", "--state", str(state)],
                               cwd=work)
            rows["alfred"].append((wall, data["cpu_s"]))
            cache = work / "plan-cache"
            if not cache.exists():
                shutil.copytree(state / "cache", cache)
            shutil.rmtree(state, ignore_errors=True)
            shutil.copytree(cache, state / "cache")
            wall, data = timed([*alfredc, "run", "wf.alfred", "-j", "2", "--quiet", "--state", str(state)],
                               cwd=work)
            rows["cached"].append((wall, data["cpu_s"]))
            shutil.rmtree(state, ignore_errors=True)
            # The same command, instrumented: where the time goes.
            env = dict(os.environ, BENCH_STARTED=repr(time.time()))
            _, split = timed(me("--child", "cli", "run", "wf.alfred", "-j", "2", "--quiet", "--state",
                                str(state)), cwd=work, env=env)
            splits.append(split)
            shutil.rmtree(state, ignore_errors=True)
    figures: dict[str, Any] = {}
    labels = (("ninja", "ninja -j2"), ("spawn-floor", "Python spawn floor"),
              ("contract-floor", "contract floor"), ("alfred", "alfredc run -j 2"),
              ("cached", "  same, plan cached"))
    for name, label in labels:
        wall = statistics.median(w for w, _ in rows[name])
        cpu = statistics.median(c for _, c in rows[name])
        spread = f"{min(w for w, _ in rows[name]):.3f}-{max(w for w, _ in rows[name]):.3f}"
        figures[name] = {"wall_s": wall, "cpu_s": cpu}
        print(f"  {label:<20} process {wall:7.3f} s ({spread})"
              f"   CPU (user+sys, stages included) {cpu:7.3f} s", flush=True)
    ratio = figures["alfred"]["wall_s"] / figures["ninja"]["wall_s"]
    ratios = sorted(a[0] / n[0] for a, n in zip(rows["alfred"], rows["ninja"], strict=True))
    cpu_ratio = figures["alfred"]["cpu_s"] / figures["ninja"]["cpu_s"]
    verdict = "OK" if ratio <= 1.3 else "over target"
    print(f"  ratio to ninja: {ratio:.2f}x wall (pairs {ratios[0]:.2f}-{ratios[-1]:.2f}x),"
          f" {cpu_ratio:.2f}x CPU; target <= 1.3x: {verdict}")
    cached_ratio = figures["cached"]["wall_s"] / figures["ninja"]["wall_s"]
    cached_ratios = sorted(a[0] / n[0] for a, n in zip(rows["cached"], rows["ninja"], strict=True))
    print(f"  with the plan cached: {cached_ratio:.2f}x wall"
          f" (pairs {cached_ratios[0]:.2f}-{cached_ratios[-1]:.2f}x),"
          f" {figures['cached']['cpu_s'] / figures['ninja']['cpu_s']:.2f}x CPU")
    for floor, what in (("spawn-floor", "a bare posix_spawn loop"),
                        ("contract-floor", "+ Trio's import and a cgroup per attempt")):
        floor_ratio = figures[floor]["wall_s"] / figures["ninja"]["wall_s"]
        print(f"  {floor} ({what}, nothing recorded): {floor_ratio:.2f}x ninja's wall")
        figures[floor]["ratio"] = floor_ratio
    room = 1.3 * figures["ninja"]["wall_s"] - figures["contract-floor"]["wall_s"]
    print(f"  room the 1.3x target leaves above the contract floor, for compiling the file and"
          f" recording {n_cmd} stages (state, events, logs): {room * 1e3:.0f} ms"
          f" ({room / n_cmd * 1e6:.0f} µs per stage); alfredc's start-up + compile alone: see below")
    figures["room_s"] = room
    split = {key: statistics.median(float(s[key]) for s in splits) for key in splits[0]}
    print(f"  where alfredc's time goes (instrumented copy, medians): start-up + compile"
          f" {split['before_loop_s']:.3f} s ({split['before_loop_cpu_s']:.3f} s CPU), the run"
          f" {split['loop_s']:.3f} s ({split['loop_cpu_s'] / n_cmd * 1e6:.0f} µs of loop CPU per stage,"
          f" {split['loop_sys_s'] / n_cmd * 1e6:.0f} of it system),"
          f" exit {split['after_loop_s']:.3f} s; load {load()}")
    results["end_to_end"] = {
        **figures, "ratio": ratio, "cpu_ratio": cpu_ratio, "cached_ratio": cached_ratio, "split": split,
    }


if __name__ == "__main__":
    sys.exit(main())
