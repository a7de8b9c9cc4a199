"""The compiler benchmark: how long `alfredc check` and `alfredc plan` take as whole processes.

    python bench/compiler.py [--sizes 20,100,1000,10000] [--runs 5] [--profile 10000] [--keep DIR]
    python bench/compiler.py --sizes 10000,100000 --runs 3      # the scale targets

For each size it writes a workflow of N stages (about 3 `after` edges each, to recent
stages) as `.alfred` and as the equivalent normalized YAML document, then times, as
separate processes (median of --runs):

- `python -c pass`: the interpreter alone;
- `python -c "yaml.load(..., Loader=yaml.SafeLoader)"`: reading the same document with
  PyYAML's pure-Python loader, a baseline for "just reading the input" (sizes up to
  10,000 only: it takes minutes beyond);
- `alfredc check FILE` and `alfredc plan --format json FILE` (their output is discarded).

Then, for every size, the resources of each `.alfred` process: wall time, CPU time
(user + sys) and peak RSS of the child (``os.wait4``, a fresh process per measurement),
and, when 10,000 and 100,000 are both measured, the growth from one to the other beside
the targets (check < 6 s and < 400 MB, plan json < 7 s and < 450 MB at 100,000 stages;
linear growth). CPU time and peak RSS hardly move with the machine's load; wall time does.

It then runs the pipeline in-process, one step at a time (read, parse+lower, schema,
load, check, resolve, analyse, plan, JSON), to show which step dominates and the
process's peak RSS during each (Linux; sizes up to 10,000), and with --profile N prints
the hottest functions of the whole `plan` pipeline for size N. Targets (2 cores): 20
stages < 0.3 s; 10,000 stages < 3 s; roughly linear growth.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EDGES_PER_STAGE = 3
#: Stages come in layers this wide; each depends on 3 stages of the layer before, so no
#: `after` edge is redundant (the run measures the compiler, not the warning printer).
LAYER_WIDTH = 10
#: Larger sizes skip the YAML baseline and the in-process breakdown (minutes each).
BASELINE_LIMIT = 10_000


# -- inputs ----------------------------------------------------------------------------------


def workflow_data(count: int, seed: int = 42) -> dict[str, Any]:
    """The normalized document of an N-stage workflow (deterministic for a seed)."""
    rng = random.Random(seed)
    stages: dict[str, Any] = {}
    for number in range(count):
        stage: dict[str, Any] = {
            "agent": "worker" if number % 2 else "helper",
            "estimate": f"{rng.randint(1, 90)}m",
        }
        layer = number // LAYER_WIDTH
        if layer:
            previous = range((layer - 1) * LAYER_WIDTH, layer * LAYER_WIDTH)
            picks = sorted(rng.sample(previous, EDGES_PER_STAGE))
            stage["after"] = [f"stage-{p}" for p in picks]
        if layer and number % 10 == 5:  # a reference to an output also makes a dependency
            source = stage["after"][0]
            stage["inputs"] = {"source": f"${{stages.{source}.outputs.path}}", "level": number % 3}
        stages[f"stage-{number}"] = stage
    return {
        "agents": {
            "worker": {"kind": "command", "run": ["true"], "capabilities": ["build"], "concurrency": 4},
            "helper": {"kind": "command", "run": "echo ${inputs.level}", "capabilities": ["help"]},
        },
        "workflows": {"bench": {"description": f"{count} stages", "stages": stages}},
    }


_BARE = {"kind", "agent"}  # attributes whose value is a name, written bare in the DSL


def _dsl_value(value: Any) -> str:
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}") and value.count("${") == 1:
            return value[2:-1]  # a bare reference in the DSL
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_dsl_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_dsl_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def _attribute(key: str, value: Any) -> str:
    return value if key in _BARE and isinstance(value, str) else _dsl_value(value)


def workflow_dsl(data: dict[str, Any]) -> str:
    """The same workflow written in the DSL."""
    lines = []
    for name, agent in data["agents"].items():
        lines.append(f"agent {name} {{")
        lines += [f"  {key} = {_attribute(key, value)}" for key, value in agent.items()]
        lines += ["}", ""]
    for name, workflow in data["workflows"].items():
        lines.append(f"workflow {name} {{")
        lines.append(f"  description = {_dsl_value(workflow['description'])}")
        for stage_name, stage in workflow["stages"].items():
            after = stage.get("after")
            lines.append(f"  stage {stage_name}" + (f" after {', '.join(after)}" if after else "") + " {")
            for key, value in stage.items():
                if key == "estimate":
                    lines.append(f"    estimate = {value}")
                elif key != "after":
                    lines.append(f"    {key} = {_attribute(key, value)}")
            lines.append("  }")
        lines.append("}")
    return "\n".join(lines) + "\n"


def write_inputs(folder: Path, count: int) -> tuple[Path, Path]:
    """The `.alfred` file and its YAML twin (written only up to BASELINE_LIMIT stages)."""
    import yaml

    data = workflow_data(count)
    dsl = folder / f"bench_{count}.alfred"
    dsl.write_text(workflow_dsl(data), encoding="utf-8")
    document = folder / f"bench_{count}.yaml"
    if count <= BASELINE_LIMIT:
        document.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return dsl, document


# -- whole-process timings -----------------------------------------------------------------


def alfredc_argv() -> list[str]:
    found = shutil.which("alfredc")
    return [found] if found else [sys.executable, "-m", "alfred_dsl"]


def time_process(argv: Sequence[str], runs: int, cwd: Path) -> tuple[float, int]:
    """Median wall time of ``argv`` over ``runs`` runs, and the exit status of the last one."""
    measures = [measure_process(argv, cwd) for _ in range(runs)]
    return statistics.median(m.wall_s for m in measures), measures[-1].status


@dataclass(frozen=True, slots=True)
class Measure:
    """One run of a child process: wall and CPU seconds, peak RSS, exit status."""

    wall_s: float
    cpu_s: float
    peak_mb: float
    status: int


#: Runs argv[1:] and prints its CPU seconds, peak RSS (ru_maxrss) and exit status. A small
#: launcher, because a child forked from this (large) process would count our own pages in
#: its peak RSS until it execs.
_LAUNCHER = """
import os, sys
quiet = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=quiet)
_, status, usage = os.wait4(pid, 0)
print(usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def measure_process(argv: Sequence[str], cwd: Path) -> Measure:
    """Run ``argv`` once in a fresh process; its own rusage comes from ``os.wait4``."""
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        launcher = [sys.executable, "-c", _LAUNCHER, *argv]
        result = subprocess.run(launcher, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, check=False)
        wall = time.perf_counter() - started
        cpu, maxrss, status = result.stdout.split()[-3:]
        if int(status) not in (0, 1):
            stderr.seek(0)
            message = stderr.read().decode(errors="replace")[-400:]
            sys.stderr.write(f"  {' '.join(argv[-3:])}: exit {status}: {message}\n")
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    peak = int(maxrss) / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return Measure(wall, float(cpu), peak, int(status))


def median_measure(argv: Sequence[str], runs: int, cwd: Path) -> Measure:
    """Per-field medians over ``runs`` runs (the status of the last)."""
    measures = [measure_process(argv, cwd) for _ in range(runs)]
    return Measure(
        statistics.median(m.wall_s for m in measures),
        statistics.median(m.cpu_s for m in measures),
        statistics.median(m.peak_mb for m in measures),
        measures[-1].status,
    )


#: (command, seconds, megabytes) at 100,000 stages (issue 13).
SCALE_TARGETS = {"check": (6.0, 400.0), "plan json": (7.0, 450.0)}
SCALE_FROM, SCALE_TO = 10_000, 100_000


def resources(sizes: Sequence[int], folder: Path, runs: int, alfredc: Sequence[str]) -> None:
    """Wall, CPU and peak RSS of `check` and `plan --format json` per size, then the growth."""
    print("\nresources of the .alfred processes (medians; CPU = user + sys of the child):")
    header = f"{'stages':>7} {'command':>10} {'wall':>8} {'cpu':>8} {'peak RSS':>9}  target"
    print(header)
    print("-" * len(header))
    found: dict[tuple[int, str], Measure] = {}
    for count in sizes:
        path = folder / f"bench_{count}.alfred"
        repeat = max(1, runs if count <= 1000 else min(runs, 3))
        for label, argv in (("check", ["check"]), ("plan json", ["plan", "--format", "json"])):
            measure = median_measure([*alfredc, *argv, str(path)], repeat, folder)
            found[(count, label)] = measure
            seconds, megabytes = SCALE_TARGETS[label]
            target = ""
            if count == SCALE_TO:
                verdict = "ok" if measure.wall_s < seconds and measure.peak_mb < megabytes else "MISSED"
                target = f"< {seconds:.0f} s, < {megabytes:.0f} MB: {verdict}"
            print(
                f"{count:>7} {label:>10} {measure.wall_s:>7.2f}s {measure.cpu_s:>7.2f}s "
                f"{measure.peak_mb:>7.0f}MB  {target}"
            )
    if (SCALE_FROM, "check") in found and (SCALE_TO, "check") in found:
        factor = SCALE_TO // SCALE_FROM
        print(f"\ngrowth {SCALE_FROM} -> {SCALE_TO} stages (x{factor} input; linear is x{factor}):")
        for label in SCALE_TARGETS:
            low, high = found[(SCALE_FROM, label)], found[(SCALE_TO, label)]
            print(
                f"  {label:>10}: wall x{high.wall_s / low.wall_s:.1f}, cpu x{high.cpu_s / low.cpu_s:.1f}, "
                f"peak RSS x{high.peak_mb / low.peak_mb:.1f}"
            )


# -- in-process breakdown -------------------------------------------------------------------


#: Peak RSS (MB) of this process during each step of the last :func:`breakdown` (Linux).
STEP_PEAKS: dict[str, float] = {}


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _timed(results: dict[str, float], step: str, action: Callable[[], Any]) -> Any:
    measure_peak = _reset_peak()
    started = time.perf_counter()
    try:
        value = action()
    except Exception as exc:  # a module still being built: show it, keep measuring the rest
        results[step] = float("nan")
        sys.stderr.write(f"  {step}: {type(exc).__name__}: {exc}\n")
        return None
    results[step] = time.perf_counter() - started
    if measure_peak:
        STEP_PEAKS[step] = _peak_mb()
    return value


def breakdown(path: Path) -> dict[str, float]:
    """Seconds per pipeline step, each measured on its own (``load`` repeats read+parse+schema)."""
    import importlib

    from alfred_dsl.render._plan import dump_plan

    def module(name: str) -> Any:
        try:
            return importlib.import_module(f"alfred_dsl.compiler.{name}")
        except Exception as exc:  # a module still being built: its steps show as nan
            sys.stderr.write(f"  {name}: {exc}\n")
            return None

    _loader, _schema, _check, _bind, _graph, _build = (
        module(name) for name in ("load", "_schema", "_check", "_bind", "_graph", "_build")
    )
    results: dict[str, float] = {}
    source = _timed(results, "read", lambda: _loader.read_source(path)[0])
    document = _timed(results, "parse+lower", lambda: _loader.load_document(source)[0])
    _timed(results, "schema", lambda: _schema.validate(document))
    workspace = _timed(results, "load (all of the above)", lambda: _loader.load(path)[0])
    _timed(results, "check_workspace", lambda: _check.check_workspace(workspace))
    resolved = _timed(results, "resolve", lambda: _bind.resolve(workspace, None, {})[0])
    analysis = _timed(results, "analyse", lambda: _graph.analyse(resolved)[0])
    # As `alfredc plan --format json` does it: the resolved stages become the plan's, and
    # the JSON is written in pieces (here to a sink).
    plan = _timed(results, "build_plan", lambda: _build.build_plan(resolved, analysis, consume=True))
    _timed(results, "plan JSON (dump_plan)", lambda: dump_plan(plan, _discard))
    return results


def _discard(text: str) -> None:
    """Where the benchmark's plan JSON goes (the CLI writes it to stdout)."""


def profile(path: Path, top: int = 25) -> str:
    from alfred_dsl.compiler import _pipeline
    from alfred_dsl.render._plan import dump_plan

    profiler = cProfile.Profile()
    profiler.enable()
    _pipeline.check_paths([str(path)])
    compiled, _ = _pipeline.compile_path(str(path))
    if compiled is not None:
        dump_plan(compiled, _discard)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -- main ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="20,100,1000,10000", help="comma-separated stage counts")
    parser.add_argument("--runs", type=int, default=5, help="runs per process timing (median)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile the pipeline at size N")
    parser.add_argument("--keep", type=Path, help="write the inputs here and keep them")
    options = parser.parse_args(argv)
    sizes = [int(size) for size in options.sizes.split(",") if size]

    folder = options.keep or Path(tempfile.mkdtemp(prefix="alfred-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alfred.toml").write_text("", encoding="utf-8")  # the project root
    alfredc = alfredc_argv()
    env_note = f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s)"
    load = ", load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    print(f"alfred compiler benchmark ({env_note}{load}); median of {options.runs} runs; inputs in {folder}")

    python_pass, _ = time_process([sys.executable, "-c", "pass"], options.runs, folder)
    print(f"\nbaseline `python -c pass`: {python_pass:.3f} s\n")
    header = (
        f"{'stages':>7} {'edges':>6} {'input':>6} {'yaml.load':>10} {'check':>8} {'plan json':>10} "
        f"{'check/pass':>11} {'check/yaml':>11} {'plan/yaml':>10}  status"
    )
    print(header)
    print("-" * len(header))
    rows = []
    small = [count for count in sizes if count <= BASELINE_LIMIT]
    for count in sizes:
        dsl, document = write_inputs(folder, count)
        if count not in small:
            continue
        stages = workflow_data(count)["workflows"]["bench"]["stages"].values()
        edges = sum(len(stage.get("after", ())) for stage in stages)
        runs = max(1, options.runs if count <= 1000 else min(options.runs, 3))
        load_yaml = "import yaml,sys; yaml.load(open(sys.argv[1], encoding='utf-8'), Loader=yaml.SafeLoader)"
        yaml_time, _ = time_process([sys.executable, "-c", load_yaml, str(document)], runs, folder)
        for label, path in (("alfred", dsl), ("yaml", document)):
            check_time, check_status = time_process([*alfredc, "check", str(path)], runs, folder)
            plan_time, plan_status = time_process(
                [*alfredc, "plan", "--format", "json", str(path)], runs, folder
            )
            if label == "alfred":
                rows.append((count, check_time, plan_time))
            print(
                f"{count:>7} {edges:>6} {label:>6} {yaml_time:>9.3f}s {check_time:>7.3f}s {plan_time:>9.3f}s "
                f"{check_time / python_pass:>10.1f}x {check_time / yaml_time:>10.2f}x "
                f"{plan_time / yaml_time:>9.2f}x  check={check_status} plan={plan_status}"
            )
    if len(rows) > 1:
        (n0, c0, p0), (n1, c1, p1) = rows[1 if len(rows) > 2 else 0], rows[-1]
        print(
            f"\n.alfred growth {n0} -> {n1} stages (x{n1 / n0:.0f}): "
            f"check x{c1 / c0:.1f}, plan x{p1 / p0:.1f}; "
            f"above the interpreter: check x{(c1 - python_pass) / max(c0 - python_pass, 1e-3):.1f}, "
            f"plan x{(p1 - python_pass) / max(p0 - python_pass, 1e-3):.1f}"
        )

    resources(sizes, folder, options.runs, alfredc)

    print("\nin-process breakdown (seconds per step, each step timed alone):")
    steps: list[str] = []
    table: list[tuple[str, dict[str, float]]] = []
    peaks: list[dict[str, float]] = []
    for count in small:
        for suffix in ("alfred", "yaml"):
            STEP_PEAKS.clear()
            results = breakdown(folder / f"bench_{count}.{suffix}")
            peaks.append(dict(STEP_PEAKS))
            steps = steps or list(results)
            table.append((f"{count}.{suffix}", results))
    width = max(len(step) for step in steps) if steps else 10
    print(f"{'step':<{width}} " + " ".join(f"{label:>11}" for label, _ in table))
    for step in steps:
        cells = " ".join(f"{results.get(step, float('nan')):>11.4f}" for _, results in table)
        print(f"{step:<{width}} {cells}")
    if any(peaks):
        print("\npeak RSS of this process during each step (MB; the steps' results stay alive):")
        for step in steps:
            cells = " ".join(f"{found.get(step, float('nan')):>11.0f}" for found in peaks)
            print(f"{step:<{width}} {cells}")

    if options.profile:
        path = folder / f"bench_{options.profile}.alfred"
        if not path.exists():
            write_inputs(folder, options.profile)
        print(f"\nprofile of check + plan at {options.profile} stages (by own time):")
        print(profile(path))
    if options.keep is None:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
