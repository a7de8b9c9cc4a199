"""The simulator benchmark: `alfredc simulate` on a 100-stage plan, 10,000 trials.

    python bench/simulate.py [--stages 100] [--trials 10000] [--keep DIR]

It writes a workflow of N stages in layers of 10, each `after` 3 stages of the layer
before, on three agents (concurrency 2, 2 and 4; a third of the stages `requires` a
capability two agents have), with estimates of 1 to 60 minutes, the default spread, a
`fail_rate` of 0.02 and `retries = 1` on every stage; then times the whole process
`alfredc simulate --trials N -j 6 --seed 1 FILE` (wall clock, one run) and the simulation
alone in-process. Target: under 10 s for 10,000 trials of 100 stages.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAYER_WIDTH = 10


def workflow_text(count: int, seed: int = 42) -> str:
    rng = random.Random(seed)
    lines = [
        'agent a { run = "true"; concurrency = 2; capabilities = ["x"] }',
        'agent b { run = "true"; concurrency = 2; capabilities = ["x"] }',
        'agent c { run = "true"; concurrency = 4 }',
        "workflow bench {",
        "  defaults { retries = 1; backoff = 30s }",
    ]
    for i in range(count):
        layer = i // LAYER_WIDTH
        where = 'requires = ["x"]' if i % 3 == 0 else f"agent = {'abc'[i % 3]}"
        after = ""
        if layer:
            before = range((layer - 1) * LAYER_WIDTH, layer * LAYER_WIDTH)
            after = "; after = [" + ", ".join(f"s{j}" for j in sorted(rng.sample(before, 3))) + "]"
        lines.append(f"  stage s{i} {{ {where}; estimate = {rng.randint(1, 60)}m; fail_rate = 0.02{after} }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--stages", type=int, default=100)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--keep", metavar="DIR", help="write the workflow here instead of a temporary folder")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="alfred-bench-simulate-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench.alfred"
    path.write_text(workflow_text(args.stages), encoding="utf-8")

    command = [sys.executable, "-m", "alfred_dsl", "simulate", "--trials", str(args.trials), "-j", "6",
               "--seed", "1", str(path)]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n")
        return 1
    print(done.stdout, end="")

    from alfred_dsl.compiler._pipeline import compile_path
    from alfred_dsl.compiler._plan import Plan
    from alfred_dsl.compiler._simulate import SimOptions, simulate

    plan, _ = compile_path(str(path), None, {})
    assert isinstance(plan, Plan)
    began = time.perf_counter()
    simulate(plan, SimOptions(trials=args.trials, seed=1, concurrency=6))
    alone = time.perf_counter() - began
    print(f"\n{args.trials} trials of {args.stages} stages: {wall:.2f} s as a process, "
          f"{alone:.2f} s simulating ({alone / args.trials * 1e6:.0f} µs per trial); target < 10 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
