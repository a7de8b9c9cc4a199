"""alfred on a Dask cluster vs Dask's own submission of the same graph, same run.

    python bench/cluster.py                      # 1,000 and 10,000 no-op python, 1,000 `true` stages
    python bench/cluster.py --sizes 1000 --runs 5

Starts a scheduler and 2 workers on 127.0.0.1 (``--no-nanny``, 2 threads each), then for each
case runs the same DAG both ways, alternating, as whole processes:

- ``alfredc run --cluster`` (start-up, compile, state database, logs);
- a Python script that imports ``distributed``, connects a ``Client`` and calls
  ``client.submit`` once per stage with its dependencies' futures as arguments (Dask's
  scheduler orders them; nothing recorded, no result fetched), then waits for all.

The DAG: ``WIDTH`` chains, stage i after stage i - WIDTH. Printed per case: the median wall
time of each (and, for Dask, the time inside its script from ``Client()`` to the last
task), alfred / dask, and CPU seconds (user + sys) of the submitting process and of the
cluster's three processes, which the load of a shared machine distorts less than wall time.
A case whose first pair took over a minute is run once. Before timing, a 10-stage alfred run
lets each worker import alfred once (a cost per worker process, not per run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

WIDTH = 10

DASK_SCRIPT = """
import json, subprocess, sys, time
started = time.perf_counter()
from distributed import Client, wait

def noop(*deps):
    return None

def true(*deps):
    return subprocess.run(["true"], check=True).returncode

address, kind, count, width = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
function = noop if kind == "python" else true
with Client(address, timeout=30) as client:
    connected = time.perf_counter()
    futures = []
    for i in range(count):
        deps = [futures[i - width]] if i >= width else []
        futures.append(client.submit(function, *deps, key=f"s{i}-{time.time_ns()}", pure=False))
    wait(futures)
    inside = time.perf_counter() - connected
    failed = sum(f.status != "finished" for f in futures)
print(json.dumps({"inside": inside, "failed": failed}))
"""


@dataclass
class Sample:
    wall: float
    cpu: float  # user + sys of the submitting process
    cluster_cpu: float  # user + sys of the scheduler and the workers over the same time
    inside: float | None = None  # Dask: from Client() to the last task


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _start(folder: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    env = dict(os.environ)
    env.pop("ALFRED_CLUSTER", None)
    scheduler_file = folder / "scheduler.json"

    def log(name: str) -> int:
        return os.open(folder / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(scheduler_file)],
        stdout=log("scheduler"), stderr=subprocess.STDOUT, start_new_session=True, env=env,
    )
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() or not scheduler_file.read_text():
        if time.monotonic() > deadline or scheduler.poll() is not None:
            raise SystemExit("the scheduler did not start:\n" + (folder / "scheduler.log").read_text())
        time.sleep(0.1)
    time.sleep(0.1)
    address = json.loads(scheduler_file.read_text())["address"]
    processes = [scheduler]
    for index in range(2):
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--host", "127.0.0.1",
             "--no-nanny", "--nthreads", "2", "--no-dashboard", "--name", f"w{index}"],
            stdout=log(f"worker{index}"), stderr=subprocess.STDOUT, start_new_session=True, env=env,
        ))
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
    return address, processes


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    # Workers first: a worker whose scheduler is gone can linger on SIGTERM.
    for process in reversed(processes):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in reversed(processes):
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _workflow(kind: str, count: int) -> str:
    lines = [
        "agent py {\n  kind = python\n  call = \"benchnoop:noop\"\n  concurrency = 64\n}",
        "agent sh {\n  kind = command\n  run = [\"true\"]\n  concurrency = 64\n}",
        "workflow bench {",
    ]
    agent = "py" if kind == "python" else "sh"
    for i in range(count):
        after = f" after s{i - WIDTH}" if i >= WIDTH else ""
        lines.append(f"  stage s{i}{after} {{\n    agent = {agent}\n  }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _timed(command: list[str], cwd: Path, pids: list[int]) -> tuple[Sample, str]:
    cpu, cluster = _children_cpu(), _process_cpu(pids)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[2:4]} failed:\n{done.stdout}\n{done.stderr}")
    return Sample(wall, _children_cpu() - cpu, _process_cpu(pids) - cluster), done.stdout


def _alfred(address: str, kind: str, count: int, pids: list[int]) -> Sample:
    folder = Path(tempfile.mkdtemp(prefix="alfred-bench-cluster-"))
    try:
        (folder / ".git").mkdir()
        (folder / "flow.alfred").write_text(_workflow(kind, count))
        (folder / "benchnoop.py").write_text("def noop(inputs):\n    return None\n")
        command = [sys.executable, "-m", "alfred_dsl", "run", "flow.alfred", "-q", "--cluster", address,
                   "-j", "64"]
        return _timed(command, folder, pids)[0]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _dask(address: str, kind: str, count: int, pids: list[int], script: Path) -> Sample:
    command = [sys.executable, str(script), address, kind, str(count), str(WIDTH)]
    sample, out = _timed(command, script.parent, pids)
    result = json.loads(out.strip().splitlines()[-1])
    if result["failed"]:
        raise SystemExit(f"{result['failed']} dask tasks failed")
    sample.inside = float(result["inside"])
    return sample


def _median(samples: list[Sample], field: str) -> float:
    return statistics.median(float(getattr(s, field)) for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="python stage counts, comma separated")
    parser.add_argument("--commands", type=int, default=1000, help="`true` command stages (0: none)")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median)")
    args = parser.parse_args()
    cases = [("python", int(n)) for n in args.sizes.split(",") if n]
    if args.commands:
        cases.append(("command", args.commands))
    folder = Path(tempfile.mkdtemp(prefix="alfred-bench-dask-"))
    script = folder / "dask_submit.py"
    script.write_text(DASK_SCRIPT)
    address, processes = _start(folder)
    pids = [p.pid for p in processes]
    try:
        _alfred(address, "python", 10, pids)  # each worker imports alfred once
        print(f"2 workers x 2 threads on 127.0.0.1; {os.cpu_count()} CPUs; "
              f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        print(f"{'case':<15} {'runs':>4} {'alfred':>8} {'dask':>8} {'ratio':>6}   {'dask inside':>11}"
              f" {'ratio':>6}   {'CPU alfred/dask':>15}  {'cluster CPU alfred/dask':>23}")
        for kind, count in cases:
            ours: list[Sample] = []
            theirs: list[Sample] = []
            for _ in range(max(args.runs, 1)):
                theirs.append(_dask(address, kind, count, pids, script))
                ours.append(_alfred(address, kind, count, pids))
                if ours[-1].wall + theirs[-1].wall > 60:
                    break
            alfred_s, dask_s, inside_s = (_median(ours, "wall"), _median(theirs, "wall"),
                                          _median(theirs, "inside"))
            cpu = f"{_median(ours, 'cpu'):.1f}/{_median(theirs, 'cpu'):.1f} s"
            cluster = f"{_median(ours, 'cluster_cpu'):.1f}/{_median(theirs, 'cluster_cpu'):.1f} s"
            print(f"{f'{count} {kind}':<15} {len(ours):>4} {alfred_s:7.2f}s {dask_s:7.2f}s"
                  f" {alfred_s / dask_s:5.2f}x   {inside_s:10.2f}s {alfred_s / inside_s:5.2f}x"
                  f"   {cpu:>15}  {cluster:>23}", flush=True)
        print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    finally:
        _stop(processes)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
