"""The language server's latency: re-checking a large file after an edit.

    python bench/lsp.py [--stages 2000] [--runs 5]

Writes the compiler benchmark's N-stage workflow, then in this one process times (median
of --runs, each run a different edit):

- a plain `check` of the file (what `alfredc check` does after start-up);
- the server's re-check after an edit to the file's first stage (`= 37m` -> `= 137m`: every
  later stage moves, the worst case for the kept blocks): the check with the editor's text
  overlaid, through the server's incremental parser (which has seen the file as it was, so
  it parses the edited stage again): what the server runs before it publishes diagnostics;
- the first request after that edit that needs names and timings (hover on a stage): the
  index of names and the plan of the workflow, made on demand.

Wall time, and the process's CPU time (steadier on a machine shared with other jobs).
Target: 2,000 stages re-checked in < 300 ms on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compiler  # the benchmark's input generator

from alfred_dsl.compiler._pipeline import check_paths
from alfred_dsl.lsp._features import Analysis
from alfred_dsl.lsp._incremental import IncrementalParser

TARGET_MS = 300


def _median(action: Callable[[int], object], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``runs`` calls."""
    walls, cpus = [], []
    for run in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        action(run)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _row(what: str, wall_s: float, cpu_s: float) -> str:
    return f"  {what + ':':36s} {wall_s * 1000:5.0f} ms wall  {cpu_s * 1000:5.0f} ms CPU"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path, _ = compiler.write_inputs(Path(folder), args.stages)
        text = path.read_text()
        check_paths([str(path)])  # warm the imports and caches for both
        # The server's parser has seen the file as opened (it keeps its stage blocks).
        parser = IncrementalParser()
        Analysis.check(str(path), {str(path): text}, parser.parse)
        edits = [text.replace("estimate = ", f"estimate = {run + 1}", 1) for run in range(args.runs)]
        checked: list[Analysis] = []

        def plain(_: int) -> object:
            return check_paths([str(path)])

        def after_edit(run: int) -> object:
            checked.append(Analysis.check(str(path), {str(path): edits[run]}, parser.parse))
            return checked[-1]

        def first_request(run: int) -> object:
            analysis = checked[run]
            return analysis.index, analysis.plan("bench")

        check_s, check_cpu = _median(plain, args.runs)
        edit_s, edit_cpu = _median(after_edit, args.runs)
        request_s, request_cpu = _median(first_request, args.runs)
        assert all(analysis.index is not None and analysis.plans["bench"] for analysis in checked)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"{args.stages} stages, median of {args.runs}, same run (load average {load}):")
    print(_row("alfredc check (in-process)", check_s, check_cpu))
    print(_row("lsp re-check after an edit", edit_s, edit_cpu)
          + f"  (target < {TARGET_MS} ms; {edit_cpu / check_cpu:.2f} x the check's CPU)")
    print(_row("then the first hover (index, plan)", request_s, request_cpu))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
