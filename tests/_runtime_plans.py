"""Helpers of the runtime tests: hand-made plans, a run wrapper, a subprocess driver.

The driver (``python tests/_runtime_plans.py SPEC.json STATE_DIR [RESUME]``) builds a plan
from a JSON spec and runs it with signal handling, exactly as ``alfredc run`` does after
compiling; it lets the interruption tests work on the runtime alone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from alfred_dsl.compiler._plan import FrozenMap, Plan, PlanAgent, PlanStage
from alfred_dsl.runtime import Event, EventBus, RunOptions, RunResult, StateStore, execute


def agent(name: str = "worker", kind: str = "command", **fields: Any) -> PlanAgent:
    for key in ("env", "options"):
        if key in fields:
            fields[key] = FrozenMap(fields[key])
    if isinstance(fields.get("run"), list):
        fields["run"] = tuple(fields["run"])
    return PlanAgent(name=name, kind=kind, **fields)


def stage(name: str, cwd: Path | str, *, agents: Sequence[str] = ("worker",), kind: str = "command",
          **fields: Any) -> PlanStage:
    for key in ("inputs", "env"):
        if key in fields:
            fields[key] = FrozenMap(fields[key])
    for key in ("after", "outputs"):
        if key in fields:
            fields[key] = tuple(fields[key])
    if isinstance(fields.get("run"), list):
        fields["run"] = tuple(fields["run"])
    return PlanStage(name=name, agents=tuple(agents), kind=kind, cwd=str(cwd), **fields)


def plan(stages: Sequence[PlanStage], agents: Sequence[PlanAgent] = (), *, workflow: str = "wf",
         params: Mapping[str, Any] | None = None, secrets: Sequence[str] = ()) -> Plan:
    return Plan(
        workflow=workflow,
        source="test.alfred",
        agents=tuple(agents) or (agent(),),
        stages=tuple(stages),
        params=FrozenMap(params or {}),
        secrets=tuple(secrets),
    )


def run_plan(the_plan: Plan, state_dir: Path, *, resume: str | None = None,
             **options: Any) -> tuple[RunResult, list[Event]]:
    events: list[Event] = []
    bus = EventBus()
    bus.subscribe(events.append)
    options.setdefault("jitter", 0.0)
    options.setdefault("kill_grace_s", 1.0)
    store = StateStore(state_dir)
    try:
        result = trio.run(
            lambda: execute(the_plan, store=store, options=RunOptions(**options), bus=bus, resume=resume)
        )
    finally:
        store.close()
    return result, events


def plan_from_spec(spec: Mapping[str, Any]) -> Plan:
    agents = [agent(**a) for a in spec.get("agents", [])]
    stages = [stage(**s) for s in spec["stages"]]
    return plan(stages, agents)


def main(argv: Sequence[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    the_plan = plan_from_spec(spec)
    store = StateStore(argv[1])
    resume = argv[2] if len(argv) > 2 else None
    if resume == "last":
        resume = store.resolve_run_id("last")
    bus = EventBus()
    bus.subscribe(lambda e: print(json.dumps(e.to_json()), flush=True))
    options = RunOptions(handle_signals=True, jitter=0.0, kill_grace_s=float(spec.get("grace", 1.0)),
                         max_concurrency=spec.get("max_concurrency"))
    result = trio.run(lambda: execute(the_plan, store=store, options=options, bus=bus, resume=resume))
    store.close()
    return result.exit_status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
