"""Figures over a period of the state database: runs, durations, estimates, agents, queue.

Definitions (what ``alfredc metrics`` and the Prometheus endpoint report):

- A run belongs to the period when it *started* in it. ``completed`` = succeeded;
  ``success_rate`` = completed / finished runs (succeeded, failed, cancelled,
  interrupted), None when no run finished.
- Run duration: ``finished - started`` of finished runs. Stage duration: first start
  to last finish of stages that succeeded or failed (retries included).
- Percentiles interpolate linearly between the two nearest ranks (numpy's default).
- Estimate vs actual: per (workflow, stage), the planned ``estimate`` and the mean
  duration of the runs where it succeeded; ``ratio`` = actual / estimate.
- Agent utilization: the agent's busy time (the sum of its attempts' durations) over
  the wall time during which at least one run of the period was active. An agent with
  ``concurrency`` > 1 can exceed 1.
- Queue: ``length`` = runs waiting now (queued, due or not); wait time = first claim
  minus the time it could start (``--at`` or submission), for runs submitted in the period.
- Spend, per workflow: the sums of what the stages of the period's runs reported in their
  ``cost_usd`` and ``tokens`` outputs (succeeded stages, as the budget counts), and how many
  of those runs stopped on their budget.
- Approvals: ``waiting`` = approval stages of running (or paused) runs waiting for a decision
  now, per workflow; the decisions taken in the period (approved, rejected, by the timeout)
  and how long each run waited (decision minus request).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._statedb import connect_read_only
from .._values import format_moment, parse_since
from ..compiler._budget import SPEND_OUTPUTS, format_amount, spent
from ..compiler._graph import measured_critical_path

__all__ = [
    "AgentUsage",
    "ApprovalFigures",
    "Metrics",
    "StageFigures",
    "Summary",
    "WorkflowSpend",
    "collect",
    "metrics_to_json",
    "metrics_to_text",
    "parse_since",
    "percentile",
]

FINISHED_RUN_STATES = ("succeeded", "failed", "cancelled", "interrupted")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """Count, mean, median and 95th percentile of some durations (seconds)."""

    count: int = 0
    mean: float | None = None
    p50: float | None = None
    p95: float | None = None
    total: float = 0.0

    @staticmethod
    def of(values: Iterable[float]) -> Summary:
        data = [float(v) for v in values]
        if not data:
            return Summary()
        return Summary(
            count=len(data), mean=sum(data) / len(data), p50=percentile(data, 50), p95=percentile(data, 95),
            total=sum(data),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StageFigures:
    """One stage of one workflow over the period."""

    workflow: str
    stage: str
    agent: str | None
    runs: int                        # times it ended succeeded or failed
    failures: int
    attempts: int
    estimate_s: float | None         # planned (None: no estimate)
    duration: Summary                # of the runs where it succeeded
    critical_runs: int = 0           # runs whose measured critical path holds it

    @property
    def ratio(self) -> float | None:
        """Actual mean duration / estimate (None without both)."""
        if not self.estimate_s or self.duration.mean is None:
            return None
        return self.duration.mean / self.estimate_s

    @property
    def failure_rate(self) -> float:
        return self.failures / self.runs if self.runs else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentUsage:
    agent: str
    busy_s: float
    wall_s: float
    attempts: int
    failures: int
    stage_duration: Summary

    @property
    def utilization(self) -> float | None:
        return self.busy_s / self.wall_s if self.wall_s > 0 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowSpend:
    """What the runs of one workflow spent in the period."""

    workflow: str
    usd: float = 0.0
    tokens: float = 0.0
    runs: int = 0                    # runs with a stage that reported a spend
    budget_stops: int = 0            # runs stopped on their budget


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalFigures:
    """Approval stages: those waiting now, and the decisions taken in the period."""

    waiting: tuple[tuple[str, int], ...] = ()   # (workflow, stages waiting now)
    approved: int = 0
    rejected: int = 0
    timed_out: int = 0                          # of approved + rejected: decided by the timeout
    wait: Summary = field(default_factory=Summary)

    @property
    def waiting_total(self) -> int:
        return sum(count for _, count in self.waiting)

    @property
    def decided(self) -> int:
        return self.approved + self.rejected


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFigures:
    """What the trend and the critical path need of one run."""

    id: str
    workflow: str
    state: str
    started: float
    finished: float | None
    critical_path: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float | None:
        return None if self.finished is None else self.finished - self.started


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
    since: float
    until: float
    runs_total: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    interrupted: int = 0
    running: int = 0
    run_duration: Summary = field(default_factory=Summary)
    stage_duration: Summary = field(default_factory=Summary)
    stages: tuple[StageFigures, ...] = ()
    agents: tuple[AgentUsage, ...] = ()
    queue_length: int = 0
    queue_wait: Summary = field(default_factory=Summary)
    wall_s: float = 0.0
    runs: tuple[RunFigures, ...] = ()
    spend: tuple[WorkflowSpend, ...] = ()
    approvals: ApprovalFigures = field(default_factory=ApprovalFigures)

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.cancelled + self.interrupted

    @property
    def success_rate(self) -> float | None:
        return self.completed / self.finished if self.finished else None


def _union_length(intervals: Iterable[tuple[float, float]]) -> float:
    total, end = 0.0, -math.inf
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None


def collect(
    source: str | Path | sqlite3.Connection,
    *,
    since: float,
    until: float | None = None,
) -> Metrics:
    """The figures of the runs that started in ``[since, until]`` (epoch seconds).

    ``source`` is a state directory or an open connection to its ``state.db``. A state
    directory without a database gives empty figures.
    """
    end = time.time() if until is None else until
    if isinstance(source, sqlite3.Connection):
        return _collect(source, since, end)
    if not (Path(source) / "state.db").is_file():
        return Metrics(since=since, until=end)
    db = connect_read_only(Path(source))  # reporting never creates a state directory
    try:
        return _collect(db, since, end)
    finally:
        db.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Period:
    """The records of the runs that started in ``[since, until]``."""

    since: float
    until: float
    runs: list[Sequence[Any]]          # id, workflow, state, started, finished, plan (JSON text)
    stages: list[Sequence[Any]]        # run, name, state, agent, started, finished, attempts
    attempts: list[Sequence[Any]]      # run, stage, started, finished, exit_code, error, stage's agent
    plans: dict[str, Mapping[str, Any]]
    workflow_of: dict[str, str]


def _collect(db: sqlite3.Connection, since: float, until: float) -> Metrics:
    if not _has_table(db, "runs"):
        return Metrics(since=since, until=until)
    period = _read_period(db, since, until)
    counts, run_durations, wall = _run_totals(period)
    stages, runs, stage_durations = _stage_figures(period)
    queue_length, waits = _queue_figures(db, since, until)
    spend = _spend_figures(db, period)
    approvals = _approval_figures(db, since, until)
    return Metrics(
        since=since,
        until=until,
        runs_total=len(period.runs),
        completed=counts.get("succeeded", 0),
        failed=counts.get("failed", 0),
        cancelled=counts.get("cancelled", 0),
        interrupted=counts.get("interrupted", 0),
        running=counts.get("running", 0) + counts.get("paused", 0),
        run_duration=Summary.of(run_durations),
        stage_duration=Summary.of(stage_durations),
        stages=stages,
        agents=_agent_usage(period, wall),
        queue_length=queue_length,
        queue_wait=Summary.of(waits),
        wall_s=wall,
        runs=runs,
        spend=spend,
        approvals=approvals,
    )


def _read_period(db: sqlite3.Connection, since: float, until: float) -> _Period:
    """Which runs, stages and attempts the period holds (each run's plan decoded)."""
    run_rows = db.execute(
        "SELECT id, workflow, state, started, finished, plan FROM runs WHERE started >= ? AND started <= ?"
        " ORDER BY started, id",
        (since, until),
    ).fetchall()
    plans: dict[str, Mapping[str, Any]] = {}
    workflow_of: dict[str, str] = {}
    for run_id, workflow, _state, _started, _finished, plan_text in run_rows:
        workflow_of[run_id] = workflow
        try:
            plan = json.loads(plan_text or "{}")
        except ValueError:
            plan = {}
        plans[run_id] = plan if isinstance(plan, dict) else {}
    stage_rows: list[Sequence[Any]] = []
    attempt_rows: list[Sequence[Any]] = []
    for chunk in _chunks([row[0] for row in run_rows], 500):
        marks = ", ".join("?" for _ in chunk)
        stage_rows += db.execute(
            f"SELECT run, name, state, agent, started, finished, attempts FROM stages WHERE run IN ({marks})"
            " ORDER BY run, rowid",
            chunk,
        ).fetchall()
        attempt_rows += db.execute(
            f"SELECT a.run, a.stage, a.started, a.finished, a.exit_code, a.error, s.agent FROM attempts a"
            f" LEFT JOIN stages s ON s.run = a.run AND s.name = a.stage WHERE a.run IN ({marks})",
            chunk,
        ).fetchall()
    return _Period(
        since=since, until=until, runs=run_rows, stages=stage_rows, attempts=attempt_rows, plans=plans,
        workflow_of=workflow_of,
    )


def _run_totals(period: _Period) -> tuple[dict[str, int], list[float], float]:
    """How the runs ended: counts per state, durations of the finished ones, and the wall
    time during which at least one run was going."""
    counts: dict[str, int] = defaultdict(int)
    run_durations: list[float] = []
    intervals: list[tuple[float, float]] = []
    for _run_id, _workflow, state, started, finished, _plan in period.runs:
        counts[state] += 1
        if state in FINISHED_RUN_STATES and finished is not None:
            run_durations.append(max(finished - started, 0.0))
        intervals.append((started, finished if finished is not None else max(period.until, started)))
    return counts, run_durations, _union_length(intervals)


def _stage_figures(period: _Period) -> tuple[tuple[StageFigures, ...], tuple[RunFigures, ...], list[float]]:
    """How each stage of each workflow did (with how often it was on a run's measured
    critical path), each run's figures, and every stage duration."""
    key_order: list[tuple[str, str]] = []
    per_stage: dict[tuple[str, str], dict[str, Any]] = {}
    stage_durations: list[float] = []
    finished_at: dict[str, dict[str, float]] = defaultdict(dict)
    for run_id, name, state, agent, started, finished, attempts in period.stages:
        key = (period.workflow_of[run_id], name)
        figures = per_stage.get(key)
        if figures is None:
            figures = per_stage[key] = {"agent": agent, "runs": 0, "failures": 0, "attempts": 0, "ok": []}
            key_order.append(key)
        if agent:
            figures["agent"] = agent
        figures["attempts"] += attempts or 0
        if state not in ("succeeded", "failed") or started is None or finished is None:
            continue
        duration = max(finished - started, 0.0)
        stage_durations.append(duration)
        figures["runs"] += 1
        if state == "failed":
            figures["failures"] += 1
        else:
            figures["ok"].append(duration)
            finished_at[run_id][name] = finished

    runs: list[RunFigures] = []
    critical_counts: dict[tuple[str, str], int] = defaultdict(int)
    for run_id, workflow, state, started, finished, _plan in period.runs:
        after = {
            str(s.get("name")): [str(d) for d in s.get("after", ())]
            for s in period.plans[run_id].get("stages", ()) if isinstance(s, dict)
        }
        path: tuple[str, ...] = ()
        if state == "succeeded" and finished_at.get(run_id):
            path = tuple(measured_critical_path(finished_at[run_id], after))
            for name in path:
                critical_counts[(workflow, name)] += 1
        runs.append(RunFigures(id=run_id, workflow=workflow, state=state, started=started, finished=finished,
                               critical_path=path))

    estimates: dict[tuple[str, str], float] = {}
    for run_id, *_ in period.runs:
        for stage in period.plans[run_id].get("stages", ()):
            if isinstance(stage, dict) and isinstance(stage.get("estimate_s"), int | float):
                estimates[(period.workflow_of[run_id], str(stage.get("name")))] = float(stage["estimate_s"])

    stages = tuple(
        StageFigures(
            workflow=key[0], stage=key[1], agent=per_stage[key]["agent"], runs=per_stage[key]["runs"],
            failures=per_stage[key]["failures"], attempts=per_stage[key]["attempts"],
            estimate_s=estimates.get(key) or None, duration=Summary.of(per_stage[key]["ok"]),
            critical_runs=critical_counts.get(key, 0),
        )
        for key in key_order
    )
    return stages, tuple(runs), stage_durations


def _agent_usage(period: _Period, wall: float) -> tuple[AgentUsage, ...]:
    """How busy each agent was (attempt time over the period's wall time) and how its attempts ended."""
    busy: dict[str, float] = defaultdict(float)
    agent_attempts: dict[str, int] = defaultdict(int)
    agent_failures: dict[str, int] = defaultdict(int)
    for _run, _stage, started, finished, exit_code, error, agent in period.attempts:
        if not agent:
            continue
        stop = finished if finished is not None else period.until
        busy[agent] += max(stop - started, 0.0)
        agent_attempts[agent] += 1
        if finished is not None and (error or (exit_code not in (None, 0))):
            agent_failures[agent] += 1
    agent_stage_durations: dict[str, list[float]] = defaultdict(list)
    for _run, _name, state, agent, started, finished, _attempts in period.stages:
        if agent and state in ("succeeded", "failed") and started is not None and finished is not None:
            agent_stage_durations[agent].append(max(finished - started, 0.0))
    return tuple(
        AgentUsage(
            agent=name, busy_s=busy[name], wall_s=wall, attempts=agent_attempts[name],
            failures=agent_failures[name], stage_duration=Summary.of(agent_stage_durations[name]),
        )
        for name in sorted(busy)
    )


def _queue_figures(db: sqlite3.Connection, since: float, until: float) -> tuple[int, list[float]]:
    """How many runs wait in the queue now, and how long the runs submitted in the period waited."""
    if not _has_table(db, "queue"):
        return 0, []
    queue_length = int(db.execute("SELECT COUNT(*) FROM queue WHERE state = 'queued'").fetchone()[0])
    waits = [
        max(claimed - not_before, 0.0)
        for claimed, not_before in db.execute(
            "SELECT claimed, not_before FROM queue WHERE claimed IS NOT NULL AND submitted >= ?"
            " AND submitted <= ?",
            (since, until),
        )
    ]
    return queue_length, waits


def _spend_figures(db: sqlite3.Connection, period: _Period) -> tuple[WorkflowSpend, ...]:
    """Per workflow: the spend its succeeded stages reported, and its runs stopped on their budget."""
    usd: dict[str, float] = defaultdict(float)
    tokens: dict[str, float] = defaultdict(float)
    spenders: dict[str, set[str]] = defaultdict(set)
    stopped: dict[str, set[str]] = defaultdict(set)
    names = tuple(SPEND_OUTPUTS)
    for chunk in _chunks([row[0] for row in period.runs], 500):
        marks = ", ".join("?" for _ in chunk)
        # Only the rows whose outputs may name a spend are decoded.
        for run_id, outputs_text in db.execute(
            f"SELECT run, outputs FROM stages WHERE run IN ({marks}) AND state = 'succeeded'"
            " AND (" + " OR ".join("instr(outputs, ?) > 0" for _ in names) + ")",
            (*chunk, *(f'"{name}"' for name in names)),
        ):
            try:
                outputs = json.loads(outputs_text or "{}")
            except ValueError:
                continue
            amounts = spent(outputs) if isinstance(outputs, dict) else {}
            if not amounts:
                continue
            workflow = period.workflow_of[run_id]
            usd[workflow] += amounts.get("usd", 0.0)
            tokens[workflow] += amounts.get("tokens", 0.0)
            spenders[workflow].add(run_id)
        for (run_id,) in db.execute(
            f"SELECT DISTINCT run FROM events WHERE run IN ({marks}) AND type = 'budget_exceeded'", chunk
        ):
            stopped[period.workflow_of[run_id]].add(run_id)
    return tuple(
        WorkflowSpend(
            workflow=name, usd=usd[name], tokens=tokens[name], runs=len(spenders[name]),
            budget_stops=len(stopped[name]),
        )
        for name in sorted(set(spenders) | set(stopped))
    )


def _approval_figures(db: sqlite3.Connection, since: float, until: float) -> ApprovalFigures:
    """Approval stages waiting now (of running or paused runs), and the decisions of the period."""
    if not _has_table(db, "approvals"):  # made by the first approval stage that ever ran here
        return ApprovalFigures()
    waiting = tuple(
        (str(workflow), int(count))
        for workflow, count in db.execute(
            "SELECT r.workflow, COUNT(*) FROM approvals a JOIN runs r ON r.id = a.run"
            " WHERE a.decision IS NULL AND a.closed = 0 AND r.state IN ('running', 'paused')"
            " GROUP BY r.workflow ORDER BY r.workflow"
        )
    )
    decided = db.execute(
        "SELECT decision, decided_by, decided_at - requested FROM approvals"
        " WHERE decision IS NOT NULL AND decided_at >= ? AND decided_at <= ?",
        (since, until),
    ).fetchall()
    return ApprovalFigures(
        waiting=waiting,
        approved=sum(1 for d in decided if d[0] == "approved"),
        rejected=sum(1 for d in decided if d[0] == "rejected"),
        timed_out=sum(1 for d in decided if d[1] == "timeout"),
        wait=Summary.of(max(float(d[2]), 0.0) for d in decided if d[2] is not None),
    )


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- output -------------------------------------------------------------------------------

def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _summary_json(summary: Summary) -> dict[str, Any]:
    return {k: _round(v) if isinstance(v, float) else v for k, v in asdict(summary).items()}


def metrics_to_json(metrics: Metrics) -> dict[str, Any]:
    """The figures as JSON (``alfredc metrics --format json``)."""
    return {
        "since": metrics.since,
        "until": metrics.until,
        "runs": {
            "total": metrics.runs_total,
            "completed": metrics.completed,
            "failed": metrics.failed,
            "cancelled": metrics.cancelled,
            "interrupted": metrics.interrupted,
            "running": metrics.running,
            "success_rate": _round(metrics.success_rate),
        },
        "run_duration_s": _summary_json(metrics.run_duration),
        "stage_duration_s": _summary_json(metrics.stage_duration),
        "stages": [
            {
                "workflow": s.workflow,
                "stage": s.stage,
                "agent": s.agent,
                "runs": s.runs,
                "failures": s.failures,
                "attempts": s.attempts,
                "estimate_s": s.estimate_s,
                "actual_s": _summary_json(s.duration),
                "ratio": _round(s.ratio),
                "critical_runs": s.critical_runs,
            }
            for s in metrics.stages
        ],
        "agents": [
            {
                "agent": a.agent,
                "busy_s": _round(a.busy_s),
                "wall_s": _round(a.wall_s),
                "utilization": _round(a.utilization),
                "attempts": a.attempts,
                "failures": a.failures,
                "stage_duration_s": _summary_json(a.stage_duration),
            }
            for a in metrics.agents
        ],
        "queue": {"length": metrics.queue_length, "wait_s": _summary_json(metrics.queue_wait)},
        "spend": {
            "usd": _round(sum(w.usd for w in metrics.spend)),
            "tokens": _round(sum(w.tokens for w in metrics.spend)),
            "workflows": [
                {"workflow": w.workflow, "usd": _round(w.usd), "tokens": _round(w.tokens), "runs": w.runs,
                 "budget_stops": w.budget_stops}
                for w in metrics.spend
            ],
        },
        "approvals": {
            "waiting": metrics.approvals.waiting_total,
            "waiting_by_workflow": dict(metrics.approvals.waiting),
            "approved": metrics.approvals.approved,
            "rejected": metrics.approvals.rejected,
            "timed_out": metrics.approvals.timed_out,
            "wait_s": _summary_json(metrics.approvals.wait),
        },
    }


def seconds(value: float | None) -> str:
    from .._values import format_seconds

    return format_seconds(value)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def metrics_to_text(metrics: Metrics) -> str:
    """A plain text summary (``alfredc metrics``)."""
    lines = [
        f"period: {_stamp(metrics.since)} .. {_stamp(metrics.until)}",
    ]
    if metrics.runs_total == 0:
        lines.append("no run started in this period")
    lines += [
        f"runs: {metrics.runs_total} total, {metrics.completed} completed, {metrics.failed} failed,"
        f" {metrics.cancelled} cancelled, {metrics.interrupted} interrupted, {metrics.running} running",
        f"success rate: {percent(metrics.success_rate)}",
        "run duration: " + _summary_text(metrics.run_duration),
        "stage duration: " + _summary_text(metrics.stage_duration),
        f"queue: {metrics.queue_length} waiting; wait time " + _summary_text(metrics.queue_wait),
    ]
    lines += _spend_lines(metrics) + _approval_lines(metrics)
    if metrics.stages:
        lines.append("")
        lines.append("estimate vs actual (mean of successful runs):")
        for s in metrics.stages:
            ratio = "—" if s.ratio is None else f"x{s.ratio:.2f}"
            estimate = "—" if s.estimate_s is None else seconds(s.estimate_s)
            lines.append(
                f"  {s.workflow}.{s.stage}: estimate {estimate}, actual {seconds(s.duration.mean)} ({ratio}),"
                f" {s.failures}/{s.runs} failed"
            )
    if metrics.agents:
        lines.append("")
        lines.append("agent utilization (busy / wall time):")
        for a in metrics.agents:
            lines.append(
                f"  {a.agent}: {percent(a.utilization)} (busy {seconds(a.busy_s)} of {seconds(a.wall_s)}),"
                f" {a.attempts} attempts, {a.failures} failed"
            )
    return "\n".join(lines) + "\n"


def _spend_amounts(usd: float, tokens: float) -> str:
    return f"{format_amount('usd', usd)}, {format_amount('tokens', tokens)}"


def _spend_lines(metrics: Metrics) -> list[str]:
    """``spend: usd 4.20, tokens 1000`` and a line per workflow (nothing when no run spent)."""
    if not metrics.spend:
        return []
    usd = sum(w.usd for w in metrics.spend)
    tokens = sum(w.tokens for w in metrics.spend)
    stops = sum(w.budget_stops for w in metrics.spend)
    lines = [f"spend: {_spend_amounts(usd, tokens)}; budget stops: {stops}"]
    for w in metrics.spend:
        lines.append(
            f"  {w.workflow}: {_spend_amounts(w.usd, w.tokens)} over {_count(w.runs, 'run')},"
            f" budget stops: {w.budget_stops}"
        )
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _approval_lines(metrics: Metrics) -> list[str]:
    """``approvals: 1 waiting now (release 1); 2 decided ...`` (nothing when none ever ran)."""
    a = metrics.approvals
    if not a.waiting and not a.decided:
        return []
    waiting = f"{a.waiting_total} waiting now"
    if a.waiting:
        waiting += " (" + ", ".join(f"{workflow} {count}" for workflow, count in a.waiting) + ")"
    return [
        f"approvals: {waiting}; {a.decided} decided ({a.approved} approved, {a.rejected} rejected,"
        f" {a.timed_out} by the timeout); wait " + _summary_text(a.wait)
    ]


def _summary_text(summary: Summary) -> str:
    if not summary.count:
        return "—"
    return (
        f"mean {seconds(summary.mean)}, p50 {seconds(summary.p50)}, p95 {seconds(summary.p95)}"
        f" (n={summary.count})"
    )


def _stamp(moment: float) -> str:
    return format_moment(moment)
