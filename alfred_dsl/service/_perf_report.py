"""The performance report of a period (``alfredc report --since 24h``): metrics, trend,
per-agent performance and recommendations derived from the data.

Trend: the period is cut in two halves by time; a success rate that moved by more than
5 points, or a mean run duration that moved by more than 10 %, counts as a change. Both
better (or one better, the other unchanged) is ``improving``; both worse (or one worse)
is ``declining``; no change, or one better and one worse, is ``stable``. When a half has
no finished run there is no trend (``None``), and the report says why.
"""

from __future__ import annotations

import html
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._values import format_moment
from ._metrics import Metrics, collect, metrics_to_json, percent, seconds

__all__ = [
    "PerfReport",
    "Recommendation",
    "Trend",
    "build_perf_report",
    "perf_report_to_html",
    "perf_report_to_json",
    "perf_report_to_markdown",
]

#: Thresholds of the recommendations (documented in docs/service.md).
HOT_SPOT_FAILURE_RATE = 0.2
OVER_ESTIMATE_RATIO = 1.2
SATURATED_UTILIZATION = 0.8
IDLE_UTILIZATION = 0.1
SUCCESS_RATE_CHANGE = 0.05
DURATION_CHANGE = 0.10


@dataclass(frozen=True, slots=True, kw_only=True)
class Trend:
    direction: str | None              # improving | stable | declining | None (not enough data)
    success_rate_before: float | None
    success_rate_after: float | None
    duration_before: float | None
    duration_after: float | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Recommendation:
    kind: str        # failure_hot_spot | over_estimate | saturated_agent | idle_agent | critical_path
    subject: str     # workflow.stage, agent name or workflow name
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PerfReport:
    metrics: Metrics
    trend: Trend
    recommendations: tuple[Recommendation, ...]
    critical_paths: dict[str, tuple[tuple[str, ...], int, int]]  # workflow -> (path, runs with it, runs)

    @property
    def empty(self) -> bool:
        return self.metrics.runs_total == 0

    @property
    def empty_message(self) -> str:
        return (
            f"no run started between {_stamp(self.metrics.since)} and {_stamp(self.metrics.until)}:"
            " nothing to report (submit runs, or choose a longer period with --since)"
        )


def _trend(first: Metrics, second: Metrics) -> Trend:
    before_rate, after_rate = first.success_rate, second.success_rate
    before_duration, after_duration = first.run_duration.mean, second.run_duration.mean
    if before_rate is None or after_rate is None:
        return Trend(
            direction=None, success_rate_before=before_rate, success_rate_after=after_rate,
            duration_before=before_duration, duration_after=after_duration,
            reason="not enough data: a half of the period has no finished run",
        )
    score = 0
    reasons: list[str] = []
    if after_rate - before_rate > SUCCESS_RATE_CHANGE:
        score += 1
        reasons.append(f"success rate up from {percent(before_rate)} to {percent(after_rate)}")
    elif before_rate - after_rate > SUCCESS_RATE_CHANGE:
        score -= 1
        reasons.append(f"success rate down from {percent(before_rate)} to {percent(after_rate)}")
    if before_duration and after_duration is not None:
        change = (after_duration - before_duration) / before_duration
        if change < -DURATION_CHANGE:
            score += 1
            reasons.append(f"mean run duration down {abs(change) * 100:.0f}%")
        elif change > DURATION_CHANGE:
            score -= 1
            reasons.append(f"mean run duration up {change * 100:.0f}%")
    direction = "improving" if score > 0 else "declining" if score < 0 else "stable"
    return Trend(
        direction=direction, success_rate_before=before_rate, success_rate_after=after_rate,
        duration_before=before_duration, duration_after=after_duration,
        reason="; ".join(reasons) or "success rate and run duration about the same in both halves",
    )


def _recommendations(m: Metrics) -> tuple[list[Recommendation], dict[str, tuple[tuple[str, ...], int, int]]]:
    found: list[Recommendation] = []
    hot = sorted(
        (s for s in m.stages if s.failures and s.failure_rate >= HOT_SPOT_FAILURE_RATE),
        key=lambda s: (-s.failure_rate, -s.failures, s.workflow, s.stage),
    )
    for s in hot:
        found.append(Recommendation(
            kind="failure_hot_spot", subject=f"{s.workflow}.{s.stage}",
            message=(
                f"`{s.stage}` of `{s.workflow}` failed {s.failures} of {s.runs} times"
                f" ({percent(s.failure_rate)}): read its logs (`alfredc logs RUN_ID {s.stage}`),"
                " add retries if the failures are transient"
            ),
        ))
    over = sorted(
        (s for s in m.stages if s.ratio is not None and s.ratio > OVER_ESTIMATE_RATIO),
        key=lambda s: -(s.ratio or 0),
    )
    for s in over:
        found.append(Recommendation(
            kind="over_estimate", subject=f"{s.workflow}.{s.stage}",
            message=(
                f"`{s.stage}` of `{s.workflow}` takes {seconds(s.duration.mean)} on average, x{s.ratio:.1f}"
                f" its estimate of {seconds(s.estimate_s)}: raise `estimate` to about"
                f" {seconds(s.duration.p95)} (its p95) so plans and critical paths are right, or speed it up"
            ),
        ))
    for a in m.agents:
        if a.utilization is None:
            continue
        if a.utilization >= SATURATED_UTILIZATION:
            found.append(Recommendation(
                kind="saturated_agent", subject=a.agent,
                message=(
                    f"agent `{a.agent}` was busy {percent(a.utilization)} of the time runs were active:"
                    " raise its `concurrency` or add an agent with the same capabilities"
                ),
            ))
        elif a.utilization <= IDLE_UTILIZATION:
            found.append(Recommendation(
                kind="idle_agent", subject=a.agent,
                message=(
                    f"agent `{a.agent}` was busy only {percent(a.utilization)} of the time runs were active:"
                    " its capacity could serve other stages"
                ),
            ))
    paths: dict[str, tuple[tuple[str, ...], int, int]] = {}
    by_workflow: dict[str, Counter[tuple[str, ...]]] = {}
    for run in m.runs:
        if run.critical_path:
            by_workflow.setdefault(run.workflow, Counter())[run.critical_path] += 1
    stage_means = {(s.workflow, s.stage): s.duration.mean or 0.0 for s in m.stages}
    for workflow, counter in sorted(by_workflow.items()):
        path, count = counter.most_common(1)[0]
        total = sum(counter.values())
        paths[workflow] = (path, count, total)
        longest = max(path, key=lambda name: stage_means.get((workflow, name), 0.0))
        found.append(Recommendation(
            kind="critical_path", subject=workflow,
            message=(
                f"the measured critical path of `{workflow}` is {' → '.join(path)} ({count} of {total}"
                f" successful runs): only these stages shorten the run; the longest is `{longest}`"
                f" ({seconds(stage_means.get((workflow, longest)))} on average)"
            ),
        ))
    return found, paths


def build_perf_report(state_dir: str | Path, *, since: float, until: float | None = None) -> PerfReport:
    """The report of the runs that started in ``[since, until]``."""
    end = time.time() if until is None else until
    whole = collect(state_dir, since=since, until=end)
    middle = since + (end - since) / 2
    trend = _trend(collect(state_dir, since=since, until=middle), collect(state_dir, since=middle, until=end))
    recommendations, paths = _recommendations(whole)
    return PerfReport(
        metrics=whole, trend=trend, recommendations=tuple(recommendations), critical_paths=paths
    )


# -- output -------------------------------------------------------------------------------

def perf_report_to_json(report: PerfReport) -> dict[str, Any]:
    t = report.trend
    data = metrics_to_json(report.metrics)
    data["empty"] = report.empty
    if report.empty:
        data["message"] = report.empty_message
    data["trend"] = {
        "direction": t.direction, "reason": t.reason,
        "success_rate_before": t.success_rate_before, "success_rate_after": t.success_rate_after,
        "run_duration_before_s": t.duration_before, "run_duration_after_s": t.duration_after,
    }
    data["critical_paths"] = {
        workflow: {"stages": list(path), "runs": count, "of": total}
        for workflow, (path, count, total) in report.critical_paths.items()
    }
    data["recommendations"] = [
        {"kind": r.kind, "subject": r.subject, "message": r.message} for r in report.recommendations
    ]
    return data


def _md(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _sections(report: PerfReport) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of each table: shared by the Markdown and HTML forms."""
    m = report.metrics
    overview = [
        ["runs", str(m.runs_total)], ["completed", str(m.completed)], ["failed", str(m.failed)],
        ["cancelled", str(m.cancelled)], ["interrupted", str(m.interrupted)], ["running", str(m.running)],
        ["success rate", percent(m.success_rate)],
        ["run duration (mean / p50 / p95)", _triple(m.run_duration)],
        ["stage duration (mean / p50 / p95)", _triple(m.stage_duration)],
        ["queue length", str(m.queue_length)], ["queue wait (mean / p50 / p95)", _triple(m.queue_wait)],
    ]
    stages = [
        [f"{s.workflow}.{s.stage}", s.agent or "—", str(s.runs), str(s.failures),
         seconds(s.estimate_s) if s.estimate_s else "—", seconds(s.duration.mean), seconds(s.duration.p95),
         "—" if s.ratio is None else f"x{s.ratio:.2f}", str(s.critical_runs)]
        for s in m.stages
    ]
    agents = [
        [a.agent, percent(a.utilization), seconds(a.busy_s), str(a.attempts), str(a.failures),
         seconds(a.stage_duration.mean)]
        for a in m.agents
    ]
    spend = [
        [w.workflow, f"{w.usd:.2f}", f"{w.tokens:g}", str(w.runs), str(w.budget_stops)] for w in m.spend
    ]
    a = m.approvals
    approvals = [[f"waiting now: {workflow}", str(count)] for workflow, count in a.waiting]
    if a.decided:
        approvals += [
            ["approved", str(a.approved)], ["rejected", str(a.rejected)],
            ["decided by the timeout", str(a.timed_out)],
            ["wait for a decision (mean / p50 / p95)", _triple(a.wait)],
        ]
    return [
        ("Overview", ["figure", "value"], overview),
        ("Stages: estimate vs actual", ["stage", "agent", "runs", "failed", "estimate", "mean", "p95",
                                        "actual/estimate", "on critical path"], stages),
        ("Agents", ["agent", "utilization", "busy", "attempts", "failed", "mean stage"], agents),
        ("Spend", ["workflow", "usd", "tokens", "runs that spent", "budget stops"], spend),
        ("Approvals", ["figure", "value"], approvals),
    ]


def _triple(summary: Any) -> str:
    if not summary.count:
        return "—"
    return f"{seconds(summary.mean)} / {seconds(summary.p50)} / {seconds(summary.p95)}"


def _trend_line(t: Trend) -> str:
    return f"{t.direction or 'unknown'}: {t.reason}"


def perf_report_to_markdown(report: PerfReport) -> str:
    m = report.metrics
    lines = ["# alfred performance report", "", f"Period: {_stamp(m.since)} .. {_stamp(m.until)}", ""]
    if report.empty:
        return "\n".join([*lines, report.empty_message, ""])
    lines += [f"**Trend**: {_md(_trend_line(report.trend))}", ""]
    for title, header, rows in _sections(report):
        if not rows:
            continue
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
        lines.append("")
    lines += ["## Recommendations", ""]
    lines += [f"- {_md(r.message)}" for r in report.recommendations] or ["- nothing stands out"]
    return "\n".join(lines) + "\n"


def perf_report_to_html(report: PerfReport) -> str:
    """One self-contained page (no script, no external resource); every text is escaped."""
    m = report.metrics
    e = html.escape
    body = [f"<h1>alfred performance report</h1><p>Period: {e(_stamp(m.since))} .. {e(_stamp(m.until))}</p>"]
    if report.empty:
        body.append(f"<p class=empty>{e(report.empty_message)}</p>")
    else:
        body.append(f"<p><strong>Trend</strong>: {e(_trend_line(report.trend))}</p>")
        for title, header, rows in _sections(report):
            if not rows:
                continue
            head = "".join(f"<th>{e(h)}</th>" for h in header)
            cells = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
            body.append(f"<h2>{e(title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
        items = "".join(f"<li>{e(r.message)}</li>" for r in report.recommendations)
        items = items or "<li>nothing stands out</li>"
        body.append(f"<h2>Recommendations</h2><ul>{items}</ul>")
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}"
    )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>alfred performance report</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _stamp(moment: float) -> str:
    return format_moment(moment)
