"""alfred on a Dask cluster vs Dask's own submission of the same graph, same run.

    python bench/cluster.py                 # 1,000 no-op python, 1,000 `true` command stages
    python bench/cluster.py --sizes 1000,10000

Starts a scheduler and 2 workers on 127.0.0.1 (``--no-nanny``, 2 threads each), then for each
case runs the same DAG twice: ``alfredc run --cluster`` (wall time of the whole command:
start-up, compile, state database, logs) and ``client.submit`` of one task per stage with its
dependencies' futures as arguments (Dask's scheduler orders them; nothing recorded). The DAG:
``WIDTH`` chains, stage i after stage i - WIDTH. Prints the times and alfred / dask.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WIDTH = 10


def _start(folder: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    env = dict(os.environ)
    env.pop("ALFRED_CLUSTER", None)
    scheduler_file = folder / "scheduler.json"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(scheduler_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env,
    )
    while not scheduler_file.exists() or not scheduler_file.read_text():
        time.sleep(0.1)
    time.sleep(0.1)
    address = json.loads(scheduler_file.read_text())["address"]
    processes = [scheduler]
    for index in range(2):
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--host", "127.0.0.1",
             "--no-nanny", "--nthreads", "2", "--no-dashboard", "--name", f"w{index}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env,
        ))
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
    return address, processes


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


def _alfred(address: str, kind: str, count: int) -> float:
    folder = Path(tempfile.mkdtemp(prefix="alfred-bench-cluster-"))
    try:
        (folder / ".git").mkdir()
        (folder / "flow.alfred").write_text(_workflow(kind, count))
        (folder / "benchnoop.py").write_text("def noop(inputs):\n    return None\n")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "alfred_dsl", "run", "flow.alfred", "-q", "--cluster", address,
             "-j", "64"],
            cwd=folder, capture_output=True, text=True,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"alfredc failed:\n{done.stdout}\n{done.stderr}")
        return elapsed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _noop(*_deps: Any) -> None:
    return None


def _true(*_deps: Any) -> int:
    return subprocess.run(["true"], check=True).returncode


def _dask(address: str, kind: str, count: int) -> float:
    from distributed import Client, wait

    function = _noop if kind == "python" else _true
    started = time.perf_counter()
    with Client(address, timeout=30) as client:
        futures: list[Any] = []
        for i in range(count):
            deps = [futures[i - WIDTH]] if i >= WIDTH else []
            futures.append(client.submit(function, *deps, key=f"s{i}-{time.time_ns()}", pure=False))
        wait(futures)
        errors = [f for f in futures if f.status != "finished"]
        if errors:
            raise SystemExit(f"{len(errors)} dask tasks failed")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000", help="python stage counts, comma separated")
    parser.add_argument("--commands", type=int, default=1000, help="`true` command stages")
    args = parser.parse_args()
    cases = [("python", int(n)) for n in args.sizes.split(",")] + [("command", args.commands)]
    folder = Path(tempfile.mkdtemp(prefix="alfred-bench-dask-"))
    address, processes = _start(folder)
    try:
        print(f"{'case':<22} {'alfred':>9} {'dask':>9} {'ratio':>7}")
        for kind, count in cases:
            dask_s = _dask(address, kind, count)
            alfred_s = _alfred(address, kind, count)
            label = f"{count} {kind}"
            print(f"{label:<22} {alfred_s:8.2f}s {dask_s:8.2f}s {alfred_s / dask_s:6.2f}x", flush=True)
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
