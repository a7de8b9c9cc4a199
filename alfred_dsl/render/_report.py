"""The HTML report of one run: a self-contained page (no network, no script needed).

It shows a Gantt timeline of every attempt in per-agent lanes (retries visible, colour
by state), the planned critical path next to the measured one, each stage's exit
code, duration, outputs and log tail, the approval stages (who decided what and when,
their comment, how long the run waited) and the spend (per stage and in total, against
the workflow's budget, with the reason of a budget stop). Secret values are masked before
anything is rendered, and every piece of text is escaped by the autoescaping template.

The measured critical path is the chain of stages found by starting from the stage
that finished last and repeatedly stepping to the dependency that finished last.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._values import format_duration, format_elapsed, format_moment, format_seconds
from ..compiler._budget import format_amount, spent
from ..compiler._graph import measured_critical_path
from ._templating import html_environment

if TYPE_CHECKING:
    from .._statedb import AttemptRecord, RunRecord, StageRecord

__all__ = [
    "ApprovalView",
    "AttemptView",
    "Lane",
    "RunReport",
    "SpendView",
    "StageView",
    "build_report",
    "mask",
    "report_to_html",
]

MASK = "***"
_TAIL_LINES = 40
_TAIL_BYTES = 64 * 1024
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptView:
    stage: str
    n: int                     # 1-based
    agent: str
    state: str                 # succeeded | failed | timeout | running | interrupted
    start_s: float             # seconds since the run started
    end_s: float
    exit_code: int | None
    error: str | None
    on_measured_path: bool = False

    @property
    def duration_s(self) -> float:
        return max(self.end_s - self.start_s, 0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class StageView:
    name: str
    state: str
    agent: str
    after: tuple[str, ...]
    estimate_s: float
    attempts: tuple[AttemptView, ...]
    exit_code: int | None
    duration_s: float | None    # first attempt start to last attempt end
    outputs: tuple[tuple[str, str], ...]
    error: str | None
    log_tail: str
    log_path: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Lane:
    agent: str
    rows: tuple[tuple[AttemptView, ...], ...]   # attempts that overlap in time go to separate rows


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalView:
    """One approval stage's request and decision."""

    stage: str
    by: tuple[str, ...]             # the roles or users its `by` names
    users: tuple[str, ...]          # who may decide
    requested_at: float | None
    deadline: float | None
    on_timeout: str
    decision: str | None            # approved | rejected; None while waiting
    decided_by: str | None          # the user (the OS user or --as), or "timeout"
    comment: str
    decided_at: float | None
    waited_s: float | None          # decided - requested; while waiting, up to the report's time

    @property
    def state(self) -> str:
        return self.decision or "waiting"


@dataclass(frozen=True, slots=True, kw_only=True)
class SpendView:
    """What the stages reported they spent (``cost_usd``, ``tokens`` outputs) against the budget."""

    units: tuple[str, ...]                                        # usd, tokens: those spent or budgeted
    totals: tuple[tuple[str, float], ...]                         # (unit, amount)
    budget: tuple[tuple[str, float], ...]                         # (unit, limit), usd/tokens/time
    stages: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]  # (stage, ((unit, amount), ...))
    stop: str | None                                              # "budget exceeded: usd 6.70 > 5"

    def total(self, unit: str) -> float:
        return dict(self.totals).get(unit, 0.0)

    def limit(self, unit: str) -> float | None:
        return dict(self.budget).get(unit)

    def share(self, unit: str) -> float | None:
        """The total as a fraction of the budget (None without a positive budget for ``unit``)."""
        limit = self.limit(unit)
        return self.total(unit) / limit if limit else None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunReport:
    run_id: str
    workflow: str
    source: str
    state: str
    started_at: float           # epoch seconds
    elapsed_s: float
    params: tuple[tuple[str, str], ...]
    stages: tuple[StageView, ...]
    lanes: tuple[Lane, ...]
    planned_path: tuple[tuple[str, float], ...]      # (stage, estimate_s)
    planned_duration_s: float
    measured_path: tuple[tuple[str, float], ...]     # (stage, measured duration_s)
    measured_duration_s: float
    reason: str | None = None                        # why the run failed, when it says (a budget stop)
    approvals: tuple[ApprovalView, ...] = ()
    spend: SpendView | None = None                   # None: nothing spent and no budget

    @property
    def attempts(self) -> tuple[AttemptView, ...]:
        return tuple(a for stage in self.stages for a in stage.attempts)


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret value (longest first, so overlapping values stay hidden) with ``***``."""
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def _clean(text: str, secrets: Sequence[str]) -> str:
    return _CONTROL.sub("", _ANSI.sub("", mask(text, secrets)))


def _read_tail(path: Path | None, lines: int) -> str:
    if path is None or not path.is_file():
        return ""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(size - _TAIL_BYTES, 0))
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _attempt_state(attempt: AttemptRecord, run_state: str) -> str:
    if attempt.finished is None:
        return "running" if run_state == "running" else "interrupted"
    if attempt.exit_code == 0 and not attempt.error:
        return "succeeded"
    if attempt.error and "timeout" in attempt.error.lower():
        return "timeout"
    return "failed"


def _lanes(attempts: Sequence[AttemptView]) -> tuple[Lane, ...]:
    agents: list[str] = []
    for attempt in attempts:
        if attempt.agent not in agents:
            agents.append(attempt.agent)
    lanes: list[Lane] = []
    for agent in agents:
        rows: list[list[AttemptView]] = []
        for attempt in sorted((a for a in attempts if a.agent == agent), key=lambda a: (a.start_s, a.end_s)):
            for row in rows:   # first row where it does not overlap the previous bar
                if row[-1].end_s <= attempt.start_s:
                    row.append(attempt)
                    break
            else:
                rows.append([attempt])
        lanes.append(Lane(agent=agent, rows=tuple(tuple(r) for r in rows)))
    return tuple(lanes)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def build_report(
    run: RunRecord,
    stages: Sequence[StageRecord],
    attempts: Sequence[AttemptRecord],
    *,
    secrets: Iterable[str] = (),
    base_dir: Path | None = None,
    now: float | None = None,
    tail_lines: int = _TAIL_LINES,
    approvals: Mapping[str, Mapping[str, Any]] | None = None,
    reason: str | None = None,
) -> RunReport:
    """Assemble the report of ``run`` from the state store's records.

    ``secrets`` are values to mask wherever they appear; ``base_dir`` resolves relative
    log paths (the state directory). ``approvals`` are the run's approval requests by stage
    (by, users, requested, deadline, on_timeout, decision, decided_by, comment, decided_at:
    what the runtime's ``pending_approvals`` reads); ``reason`` is why the run failed, when
    its final event says (a budget stop, the workflow's timeout).
    """
    secret_values = [s for s in secrets if s]
    plan = run.plan if isinstance(run.plan, Mapping) else {}
    plan_stages = {
        str(s.get("name")): s for s in plan.get("stages", ()) if isinstance(s, Mapping) and "name" in s
    }
    starts = [a.started for a in attempts]
    origin = min([run.started, *starts])
    ends = [a.finished for a in attempts if a.finished is not None]
    if run.state == "running" and run.finished is None:
        horizon = now if now is not None else time.time()
    else:
        horizon = run.finished if run.finished is not None else max([*ends, *starts, run.started])
    horizon = max([horizon, *ends, *starts])
    records = {s.name: s for s in stages}
    names = list(records) + [n for n in plan_stages if n not in records]

    def agent_of(name: str) -> str:
        record = records.get(name)
        if record is not None and record.agent:
            return record.agent
        planned = plan_stages.get(name, {}).get("agent")
        if not planned and plan_stages.get(name, {}).get("approve"):
            return "(approval)"  # a person decides: its wait is a bar of its own lane
        return str(planned) if planned else "(no agent)"

    def after_of(name: str) -> tuple[str, ...]:
        raw = plan_stages.get(name, {}).get("after", ())
        return tuple(str(d) for d in raw) if isinstance(raw, list | tuple) else ()

    by_stage: dict[str, list[AttemptRecord]] = {}
    for attempt in attempts:
        by_stage.setdefault(attempt.stage, []).append(attempt)
        if attempt.stage not in names:
            names.append(attempt.stage)
    finished_at = {
        name: max(a.finished for a in rows if a.finished is not None) - origin
        for name, rows in by_stage.items()
        if any(a.finished is not None for a in rows)
    }
    measured = measured_critical_path(
        {n: finished_at[n] for n in names if n in finished_at}, {n: after_of(n) for n in names}
    )
    on_path = set(measured)
    views: list[StageView] = []
    for name in names:
        record = records.get(name)
        rows = sorted(by_stage.get(name, []), key=lambda a: a.n)
        attempt_views = tuple(
            AttemptView(
                stage=name,
                n=a.n,
                agent=a.worker or agent_of(name),  # a cluster worker is the attempt's lane
                state=_attempt_state(a, run.state),
                start_s=a.started - origin,
                end_s=(a.finished if a.finished is not None else horizon) - origin,
                exit_code=a.exit_code,
                error=_clean(a.error, secret_values) if a.error else None,
                on_measured_path=name in on_path,
            )
            for a in rows
        )
        last = rows[-1] if rows else None
        log_path: Path | None = None
        if last is not None and last.log_path:
            log_path = Path(last.log_path)
            if not log_path.is_absolute() and base_dir is not None:
                log_path = base_dir / log_path
        outputs = record.outputs if record is not None and isinstance(record.outputs, Mapping) else {}
        estimate = plan_stages.get(name, {}).get("estimate_s", 0)
        views.append(
            StageView(
                name=name,
                state=record.state if record is not None else ("pending" if not rows else "running"),
                agent=agent_of(name),
                after=after_of(name),
                estimate_s=float(estimate) if isinstance(estimate, int | float) else 0.0,
                attempts=attempt_views,
                exit_code=last.exit_code if last is not None else None,
                duration_s=(attempt_views[-1].end_s - attempt_views[0].start_s) if attempt_views else None,
                outputs=tuple((_clean(str(k), secret_values), _clean(_text(v), secret_values))
                              for k, v in outputs.items()),
                error=_clean(record.error, secret_values) if record is not None and record.error else None,
                log_tail=_clean(_read_tail(log_path, tail_lines), secret_values),
                log_path=str(log_path) if log_path is not None else None,
            )
        )
    view_of = {v.name: v for v in views}
    planned = [str(n) for n in plan.get("critical_path", ()) if isinstance(n, str)]
    planned_duration = plan.get("duration_s", 0)
    measured_path = tuple((n, view_of[n].duration_s or 0.0) for n in measured)
    measured_duration = (
        finished_at[measured[-1]] - min(a.start_s for a in view_of[measured[0]].attempts) if measured else 0.0
    )
    params = run.params if isinstance(run.params, Mapping) else {}
    clean_reason = _clean(reason, secret_values) if reason else None
    return RunReport(
        run_id=run.id,
        workflow=run.workflow,
        source=run.source,
        state=run.state,
        started_at=run.started,
        elapsed_s=horizon - origin,
        params=tuple((str(k), _clean(_text(v), secret_values)) for k, v in params.items()),
        stages=tuple(views),
        lanes=_lanes([a for v in views for a in v.attempts]),
        planned_path=tuple((n, view_of[n].estimate_s if n in view_of else 0.0) for n in planned),
        planned_duration_s=float(planned_duration) if isinstance(planned_duration, int | float) else 0.0,
        measured_path=measured_path,
        measured_duration_s=measured_duration,
        reason=clean_reason,
        approvals=_approval_views(approvals or {}, horizon, secret_values),
        spend=_spend_view(plan, [(r.name, r.outputs) for r in stages], clean_reason),
    )


def _approval_views(
    approvals: Mapping[str, Mapping[str, Any]], horizon: float, secrets: Sequence[str]
) -> tuple[ApprovalView, ...]:
    def number(value: Any) -> float | None:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    views = []
    for stage, a in approvals.items():
        requested, decided = number(a.get("requested")), number(a.get("decided_at"))
        end = decided if decided is not None else horizon
        views.append(ApprovalView(
            stage=_clean(str(stage), secrets),
            by=tuple(_clean(str(b), secrets) for b in a.get("by") or ()),
            users=tuple(_clean(str(u), secrets) for u in a.get("users") or ()),
            requested_at=requested,
            deadline=number(a.get("deadline")),
            on_timeout=str(a.get("on_timeout") or "reject"),
            decision=str(a["decision"]) if a.get("decision") else None,
            decided_by=_clean(str(a["decided_by"]), secrets) if a.get("decided_by") else None,
            comment=_clean(str(a.get("comment") or ""), secrets),
            decided_at=decided,
            waited_s=max(end - requested, 0.0) if requested is not None else None,
        ))
    return tuple(views)


def _spend_view(
    plan: Mapping[str, Any], outputs: Sequence[tuple[str, Any]], reason: str | None
) -> SpendView | None:
    raw_budget = plan.get("budget")
    budget = {
        str(k): float(v) for k, v in (raw_budget.items() if isinstance(raw_budget, Mapping) else ())
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    totals: dict[str, float] = {}
    per_stage: list[tuple[str, tuple[tuple[str, float], ...]]] = []
    for name, stage_outputs in outputs:
        amounts = spent(stage_outputs) if isinstance(stage_outputs, Mapping) else {}
        if amounts:
            per_stage.append((name, tuple(amounts.items())))
        for unit, amount in amounts.items():
            totals[unit] = totals.get(unit, 0.0) + amount
    if not totals and not budget:
        return None
    units = tuple(u for u in ("usd", "tokens") if u in totals or u in budget)
    return SpendView(
        units=units,
        totals=tuple((u, totals.get(u, 0.0)) for u in units),
        budget=tuple(budget.items()),
        stages=tuple(per_stage),
        stop=reason if reason and reason.startswith("budget exceeded") else None,
    )


def _ticks(span: float) -> list[float]:
    if span <= 0:
        return [0.0]
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400):
        if span / step <= 10:
            break
    count = int(span // step)
    return [i * step for i in range(count + 1)]


def report_to_html(report: RunReport) -> str:
    """The report as one self-contained HTML document."""
    span = max(report.elapsed_s, 1e-6)

    def pct(seconds: float) -> str:
        return f"{max(0.0, min(100.0, seconds / span * 100)):.3f}"

    def width(attempt: AttemptView) -> str:
        return f"{max(attempt.duration_s / span * 100, 0.35):.3f}"

    ticks = [(pct(t), format_seconds(t) if span < 120 else format_duration(t)) for t in _ticks(span)]

    def amount(unit: str, value: float) -> str:
        return format_amount(unit, value).split(" ", 1)[1]

    def moment(value: float | None) -> str:
        return "—" if value is None else format_moment(value)

    def left(deadline: float | None) -> str:
        if deadline is None:
            return "no timeout"
        remaining = deadline - time.time()
        return f"{format_elapsed(int(remaining))} left" if remaining > 0 else "past its deadline"

    return html_environment().get_template("report.html.j2").render(
        report=report,
        pct=pct,
        width=width,
        ticks=ticks,
        amount=amount,
        moment=moment,
        left=left,
        elapsed=format_elapsed,
        started=format_moment(report.started_at),
        measured_names=[name for name, _ in report.measured_path],
        planned_names=[name for name, _ in report.planned_path],
    )
