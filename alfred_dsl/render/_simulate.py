"""What ``alfredc simulate`` prints and writes: the makespan distribution as text or JSON,
and the HTML Gantt of the sample trial (the run report's page, fed a simulated run)."""

from __future__ import annotations

import time
from typing import Any

from .._values import format_duration
from ..compiler._plan import Plan
from ..compiler._simulate import SimResult
from ._report import AttemptView, RunReport, StageView, _lanes

__all__ = ["simulation_report", "simulation_to_json", "simulation_to_text"]

#: The percentiles reported.
PERCENTILES = (50, 90, 99)
#: How many stages the text lists as most often on the critical path.
TOP_CRITICAL = 10


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def simulation_to_text(result: SimResult) -> str:
    lines = [
        f"workflow {result.workflow}: {result.trials} simulated runs"
        f" (seed {result.seed}, -j {result.concurrency})",
        "",
        "makespan   " + "   ".join(f"P{p} {format_duration(result.percentile(p))}" for p in PERCENTILES)
        + f"   mean {format_duration(result.mean_s)}",
        f"critical path (plan, from estimates): {format_duration(result.cpm_duration_s)}",
        f"runs that fail: {_pct(result.failure_rate)} ({result.failures} of {result.trials})",
        "",
        "most often on the critical path:",
    ]
    width = max((len(name) for name, _ in result.critical[:TOP_CRITICAL]), default=0)
    lines += [f"  {name:<{width}}  {_pct(share):>6}" for name, share in result.critical[:TOP_CRITICAL]]
    if not result.critical:
        lines.append("  (none: no stage ran)")
    lines += ["", "agent utilisation (busy time / (makespan x concurrency)):"]
    width = max((len(name) for name, _ in result.utilisation), default=0)
    lines += [f"  {name:<{width}}  {_pct(share):>6}" for name, share in result.utilisation]
    sample = result.sample
    lines += [
        "",
        f"sample run (trial {sample.index + 1}, the median): {sample.state}"
        f" in {format_duration(sample.makespan_s)}",
    ]
    return "\n".join(lines) + "\n"


def simulation_to_json(result: SimResult) -> dict[str, Any]:
    sample = result.sample
    return {
        "workflow": result.workflow,
        "trials": result.trials,
        "seed": result.seed,
        "concurrency": result.concurrency,
        "makespan_s": {
            **{f"p{p}": result.percentile(p) for p in PERCENTILES},
            "mean": result.mean_s,
            "min": result.makespans[0] if result.makespans else 0.0,
            "max": result.makespans[-1] if result.makespans else 0.0,
        },
        "cpm_duration_s": result.cpm_duration_s,
        "failure_rate": result.failure_rate,
        "critical": [{"stage": name, "fraction": share} for name, share in result.critical],
        "utilisation": [{"agent": name, "fraction": share} for name, share in result.utilisation],
        "sample": {
            "trial": sample.index + 1,
            "state": sample.state,
            "makespan_s": sample.makespan_s,
            "critical_path": list(sample.critical_path),
            "stages": [{"name": name, "state": state} for name, state in sample.stages],
            "attempts": [
                {"stage": a.stage, "attempt": a.n, "agent": a.agent, "state": a.state,
                 "start_s": a.start_s, "end_s": a.end_s}
                for a in sample.attempts
            ],
        },
    }


def simulation_report(result: SimResult, plan: Plan) -> RunReport:
    """The sample trial in the run report's shape, for ``report_to_html``."""
    sample = result.sample
    on_path = set(sample.critical_path)
    attempts: dict[str, list[AttemptView]] = {}
    for a in sample.attempts:
        attempts.setdefault(a.stage, []).append(AttemptView(
            stage=a.stage, n=a.n, agent=a.agent or "(approval)",
            state="interrupted" if a.state == "cancelled" else a.state,
            start_s=a.start_s, end_s=a.end_s, exit_code=None,
            error=None if a.state == "succeeded" else f"simulated: {a.state}",
            on_measured_path=a.stage in on_path,
        ))
    states = dict(sample.stages)
    views = []
    for stage in plan.stages:
        rows = tuple(attempts.get(stage.name, ()))
        views.append(StageView(
            name=stage.name,
            state=states.get(stage.name, "pending"),
            agent=rows[-1].agent if rows else (stage.agents[0] if len(stage.agents) == 1 else "(no agent)"),
            after=stage.after,
            estimate_s=stage.estimate_s,
            attempts=rows,
            exit_code=None,
            duration_s=(rows[-1].end_s - rows[0].start_s) if rows else None,
            outputs=(),
            error=None,
            log_tail="",
            log_path=None,
        ))
    view_of = {v.name: v for v in views}
    path = sample.critical_path
    return RunReport(
        run_id=f"simulated: trial {sample.index + 1} of {result.trials}, seed {result.seed}",
        workflow=plan.workflow,
        source=plan.source,
        state=sample.state,
        started_at=time.time(),
        elapsed_s=sample.makespan_s,
        params=tuple((str(k), str(v)) for k, v in plan.params.items()),
        stages=tuple(views),
        lanes=_lanes([a for v in views for a in v.attempts]),
        planned_path=tuple((n, plan.stage(n).estimate_s) for n in plan.critical_path),
        planned_duration_s=plan.duration_s,
        measured_path=tuple((n, view_of[n].duration_s or 0.0) for n in path),
        measured_duration_s=(
            view_of[path[-1]].attempts[-1].end_s - view_of[path[0]].attempts[0].start_s if path else 0.0
        ),
    )
