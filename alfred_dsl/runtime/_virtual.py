"""A run on Trio's virtual clock: the real scheduler, no process started.

:func:`run_virtual` executes a plan with :func:`~._start.start_run`, as ``alfredc run``
does (a real state database in ``state_dir``, the real scheduler, attempts, retries,
timeouts and cancellation), except that every attempt runs on :class:`VirtualExecutor`:
it sleeps on the Trio clock for the time an ``outcome`` script gives, then succeeds or
fails as the script says. The loop runs under ``trio.testing.MockClock(autojump_threshold=0)``:
whenever every task waits, the clock jumps to the next deadline, so an hour-long plan runs
in milliseconds and its times are exact virtual seconds (the flusher's sleeps are deadlines
on the same clock; real time spent in SQLite does not move it).

Only the schedule is real: what the simulator cannot know is assumed as it assumes it (a
``when`` expression is true, budgets never run out, no stage is up to date, nothing is
resolved, so a template that reads a stage output cannot fail the attempt). An approval
waits for a person and cannot run here.

This is what ``alfredc simulate`` is checked against (tests/test_simulate_agreement.py):
given the same script, the fast simulator (``compiler/_simulate.py``) and this run must
start, place, retry and end every stage at the same times; ``alfredc simulate --engine
trio`` runs its trials here. The result has the simulator's shape
(:class:`~alfred_dsl.compiler._simulate.SimTrial`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import trio
import trio.testing

from ..compiler._plan import FrozenMap, Plan, PlanAgent, PlanStage
from ..compiler._simulate import Outcome, SimAttempt, SimTrial, critical_path
from . import _events as ev
from ._events import Event
from ._executors import AttemptContext, AttemptOutcome
from ._results import CANCELLED, FAILED, SUCCEEDED, RunOptions, RunResult
from ._start import start_run
from ._store import StateStore

__all__ = ["VirtualExecutor", "run_virtual", "schedule_only"]

#: Virtual seconds after which a run that has not ended is taken to be stuck (about 30 years).
_NEVER_S = 1e9

#: The events that put a stage in its final state.
_FINAL_EVENTS = frozenset({
    ev.STAGE_SUCCEEDED, ev.STAGE_FAILED, ev.STAGE_SKIPPED, ev.STAGE_UPSTREAM_FAILED,
    ev.STAGE_CANCELLED, ev.STAGE_UP_TO_DATE,
})


class VirtualExecutor:
    """Runs an attempt by sleeping on the Trio clock: ``outcome(stage, attempt, agent)``
    gives how long and whether it succeeds. Each attempt is recorded in ``attempts`` with
    its virtual start and end, ``timeout`` when its stage's timeout cut it short and
    ``cancelled`` when the run stopped it."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.attempts: list[SimAttempt] = []

    async def run(self, ctx: AttemptContext) -> AttemptOutcome:
        start = trio.current_time()
        duration, ok = self.outcome(ctx.stage.name, ctx.attempt, ctx.agent.name)
        state = CANCELLED
        try:
            await trio.sleep(max(duration, 0.0))
            state = SUCCEEDED if ok else FAILED
        finally:
            end = trio.current_time()
            timeout = ctx.timeout_s
            if state == CANCELLED and timeout and timeout > 0 and end - start >= timeout - 1e-9:
                state = "timeout"
            self.attempts.append(SimAttempt(
                stage=ctx.stage.name, n=ctx.attempt, agent=ctx.agent.name, start_s=start, end_s=end,
                state=state,
            ))
        return AttemptOutcome(ok=ok, error=None if ok else "failed (virtual attempt)")


def run_virtual(
    plan: Plan,
    outcome: Outcome,
    *,
    state_dir: Path,
    concurrency: int,
    jitter: float = 0.0,
    cleanup_grace_s: float = 300.0,
) -> SimTrial:
    """Run ``plan`` once on Trio's virtual clock (see the module docstring), recorded in
    ``state_dir``. Times are virtual seconds from the run's start. Approvals are not
    supported (they wait for a person): a plan with one raises ValueError."""
    waiting = [s.name for s in plan.stages if s.approve is not None]
    if waiting:
        raise ValueError(f"stage `{waiting[0]}` waits for an approval: it cannot run on a virtual clock")
    plan = schedule_only(plan)
    executor = VirtualExecutor(outcome)
    finished: dict[str, float] = {}
    origin = 0.0

    def observe(event: Event) -> None:
        nonlocal origin
        if event.type == ev.RUN_STARTED:
            origin = trio.current_time()
        elif event.type in _FINAL_EVENTS and event.stage is not None:
            finished[event.stage] = trio.current_time() - origin

    options = RunOptions(
        max_concurrency=concurrency, jitter=jitter, cleanup_grace_s=cleanup_grace_s, env={},
        executor=executor,
    )

    async def main() -> RunResult:
        with StateStore(state_dir) as store:
            # A run that can never end would wait forever: the clock jumps to this instead.
            with trio.move_on_after(_NEVER_S):
                return await start_run(plan, store, options, on_event=observe)
        raise RuntimeError(f"the run of {plan.workflow} did not end within {_NEVER_S:g} virtual seconds")

    result = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    attempts = tuple(
        SimAttempt(stage=a.stage, n=a.n, agent=a.agent, start_s=a.start_s - origin, end_s=a.end_s - origin,
                   state=a.state)
        for a in executor.attempts
    )
    names = [s.name for s in plan.stages]
    index = {name: i for i, name in enumerate(names)}
    ends = tuple(finished.get(name, math.nan) for name in names)
    ran = [False] * len(names)
    for a in attempts:
        ran[index[a.stage]] = True
    deps = [tuple(dict.fromkeys(index[d] for d in s.after if d in index)) for s in plan.stages]
    return SimTrial(
        index=0,
        seed=0,
        makespan_s=max(ends, default=0.0),
        state=SUCCEEDED if result.state == SUCCEEDED else FAILED,
        stages=tuple((name, result.stages[name].state) for name in names),
        finished_s=ends,
        attempts=attempts,
        critical_path=tuple(names[i] for i in critical_path(deps, ran, ends)),
    )


_NOTHING = ("true",)


def schedule_only(plan: Plan) -> Plan:
    """``plan`` with everything but its schedule taken out: every agent a ``command`` agent
    whose attempts resolve nothing (the virtual executor never looks at them), ``when``
    expressions true, no budget, costs, ``sources`` or ``produces``. The stages' order,
    agents, limits, priorities, slack, timeouts, retries and ``run_if`` are untouched."""

    def stage(s: PlanStage) -> PlanStage:
        return dataclasses.replace(
            s, kind="command", run=_NOTHING, call=None, inputs=FrozenMap(), env=FrozenMap(),
            when=s.when if isinstance(s.when, bool) else True, cost=FrozenMap(), mcp=None, sources=(),
            produces=(),
        )

    def agent(a: PlanAgent) -> PlanAgent:
        return dataclasses.replace(a, kind="command", run=_NOTHING, call=None, url=None, env=FrozenMap())

    return dataclasses.replace(
        plan, agents=tuple(agent(a) for a in plan.agents), stages=tuple(stage(s) for s in plan.stages),
        budget=FrozenMap(), hooks=(),
    )
