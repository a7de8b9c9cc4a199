"""``alfredc simulate FILE``: the plan run many times on a virtual clock, no process started
(see ``alfred_dsl/compiler/_simulate.py``): the makespan's P50/P90/P99, the stages most often on
the critical path, each agent's utilisation, and with ``--gantt`` the HTML timeline of a sample
run. ``--engine trio`` runs each trial on the runtime's scheduler on Trio's virtual clock
(``alfred_dsl/runtime/_virtual.py``) instead of the simulator's own loop.

Exit status: 0 simulated, 1 the file has errors, 2 usage error, the Gantt file cannot be written
or ``--engine trio`` meets an approval stage.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import compile_for_cli, param_option

if TYPE_CHECKING:
    from ..compiler._plan import Plan
    from ..compiler._simulate import Outcome, SimOptions, SimTrial, TrialEngine

__all__ = ["simulate"]


@click.command()
@click.argument("file", type=click.Path(dir_okay=True, path_type=str))
@param_option
@click.option("--trials", "-n", type=click.IntRange(min=1), default=1000, show_default=True, metavar="N",
              help="How many runs to simulate.")
@click.option("--seed", type=int, default=None, metavar="N",
              help="Seed of the random draws, for a repeatable result (default: a fresh one, printed).")
@click.option("--max-concurrency", "-j", type=click.IntRange(min=1), metavar="N",
              help="At most N stages at once over all agents, as `alfredc run -j` (default: the CPU count).")
@click.option("--jitter", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Retry waits are multiplied by a random factor in [1 - jitter, 1], as in a run.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="text: a summary; json: one JSON object with the figures and the sample run.")
@click.option("--gantt", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the HTML timeline of a sample run (the one with the median makespan) to FILE.")
@click.option("--engine", type=click.Choice(("fast", "trio")), default="fast", show_default=True,
              help="fast: the simulator's own event loop; trio: each trial a run of the runtime's "
                   "scheduler on Trio's virtual clock (the same schedule, tens of times slower).")
def simulate(
    file: str, workflow: str | None, params: tuple[str, ...], colour: str, trials: int, seed: int | None,
    max_concurrency: int | None, jitter: float, fmt: str, gantt: Path | None, engine: str,
) -> int:
    """Simulate FILE's workflow N times without running anything.

    Each attempt takes a random time around the stage's `estimate` (a lognormal whose
    standard deviation is its `spread`, by default a quarter of the estimate) and fails
    with its `fail_rate`; retries, backoff, priorities, `-j` and agent `concurrency` apply
    exactly as in `alfredc run`. `plan` gives one duration; `simulate` gives its risk.
    """
    compiled = compile_for_cli(file, workflow, params, colour)
    if isinstance(compiled, int):
        return compiled
    from ..compiler._simulate import SimOptions, simulate as run_simulation
    from ..render import dumps
    from ..render._simulate import simulation_report, simulation_to_json, simulation_to_text

    options = SimOptions(trials=trials, seed=seed, concurrency=max_concurrency, jitter=jitter)
    if engine == "trio":
        approval = next((s.name for s in compiled.stages if s.approve is not None), None)
        if approval is not None:
            click.echo(f"alfredc: error: stage `{approval}` waits for an approval: --engine trio cannot "
                       "run it (use the default engine, which grants it after its estimate)", err=True)
            return 2
        with tempfile.TemporaryDirectory(prefix="alfred-simulate-") as folder:
            result = run_simulation(compiled, options, engine=_trio_engine(compiled, options, Path(folder)))
    else:
        result = run_simulation(compiled, options)
    if gantt is not None:
        from ..render._report import report_to_html

        try:
            gantt.write_text(report_to_html(simulation_report(result, compiled)), encoding="utf-8")
        except OSError as exc:
            click.echo(f"alfredc: error: cannot write {gantt}: {exc.strerror or exc}", err=True)
            return 2
    if fmt == "json":
        click.echo(dumps(simulation_to_json(result)), nl=False)
    else:
        click.echo(simulation_to_text(result), nl=False)
        if gantt is not None:
            click.echo(f"timeline of the sample run: {gantt}")
    return 0


def _trio_engine(plan: Plan, options: SimOptions, state_dir: Path) -> TrialEngine:
    """Each trial on the runtime's scheduler on Trio's virtual clock (runtime/_virtual.py)."""
    from ..runtime._virtual import run_virtual

    def trial(outcome: Outcome, seed: int) -> SimTrial:
        # The runtime draws its retry jitter from `random`: seeded per trial, --seed repeats.
        saved = random.getstate()
        random.seed(seed)
        try:
            return run_virtual(
                plan, outcome, state_dir=state_dir, concurrency=options.max_concurrency,
                jitter=options.jitter, cleanup_grace_s=options.cleanup_grace_s,
            )
        finally:
            random.setstate(saved)

    return trial
