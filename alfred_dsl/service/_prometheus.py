"""The figures of a period in the Prometheus text format (``alfredc worker --metrics-port``).

Computed by :func:`~._metrics.collect` at each scrape, over the last ``window_s``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._metrics import collect

__all__ = ["PrometheusCollector", "serve_prometheus"]

class PrometheusCollector:
    """A ``prometheus_client`` collector: the figures of the last ``window_s``, read on each scrape."""

    def __init__(self, state_dir: str | Path, *, window_s: float = 86400.0) -> None:
        self.state_dir = Path(state_dir)
        self.window_s = window_s

    def describe(self) -> list[Any]:
        return []  # computed at scrape time: nothing to check at registration

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        now = time.time()
        m = collect(self.state_dir, since=now - self.window_s, until=now)
        runs = GaugeMetricFamily("alfred_runs", "Runs started in the window, by state", labels=["state"])
        for state, count in (
            ("total", m.runs_total), ("completed", m.completed), ("failed", m.failed),
            ("cancelled", m.cancelled), ("interrupted", m.interrupted), ("running", m.running),
        ):
            runs.add_metric([state], count)
        yield runs
        rate = GaugeMetricFamily("alfred_run_success_rate", "Completed / finished runs in the window (0-1)")
        if m.success_rate is not None:
            rate.add_metric([], m.success_rate)
        yield rate
        for name, text, summary in (
            ("alfred_run_duration_seconds", "Run durations in the window", m.run_duration),
            ("alfred_stage_duration_seconds", "Stage durations in the window", m.stage_duration),
            ("alfred_queue_wait_seconds", "Queue wait times in the window", m.queue_wait),
        ):
            family = GaugeMetricFamily(name, text, labels=["stat"])
            for stat in ("mean", "p50", "p95"):
                value = getattr(summary, stat)
                if value is not None:
                    family.add_metric([stat], value)
            family.add_metric(["count"], summary.count)
            yield family
        estimate = GaugeMetricFamily(
            "alfred_stage_estimate_seconds", "Planned duration of a stage", labels=["workflow", "stage"]
        )
        actual = GaugeMetricFamily(
            "alfred_stage_actual_seconds", "Mean duration of a stage's successful runs",
            labels=["workflow", "stage"],
        )
        for s in m.stages:
            if s.estimate_s is not None:
                estimate.add_metric([s.workflow, s.stage], s.estimate_s)
            if s.duration.mean is not None:
                actual.add_metric([s.workflow, s.stage], s.duration.mean)
        yield estimate
        yield actual
        utilization = GaugeMetricFamily(
            "alfred_agent_utilization", "Busy time / wall time of an agent in the window", labels=["agent"]
        )
        busy = GaugeMetricFamily(
            "alfred_agent_busy_seconds", "Busy time of an agent in the window", labels=["agent"]
        )
        for a in m.agents:
            if a.utilization is not None:
                utilization.add_metric([a.agent], a.utilization)
            busy.add_metric([a.agent], a.busy_s)
        yield utilization
        yield busy
        yield GaugeMetricFamily("alfred_queue_length", "Runs waiting in the queue", value=m.queue_length)
        # Sums over the window (they fall as runs leave it): gauges, not counters.
        usd = GaugeMetricFamily(
            "alfred_spend_usd", "USD the runs started in the window reported (cost_usd outputs)",
            labels=["workflow"],
        )
        tokens = GaugeMetricFamily(
            "alfred_spend_tokens", "Tokens the runs started in the window reported (tokens outputs)",
            labels=["workflow"],
        )
        stops = GaugeMetricFamily(
            "alfred_budget_stops", "Runs started in the window that stopped on their budget",
            labels=["workflow"],
        )
        for w in m.spend:
            usd.add_metric([w.workflow], w.usd)
            tokens.add_metric([w.workflow], w.tokens)
            stops.add_metric([w.workflow], w.budget_stops)
        yield usd
        yield tokens
        yield stops
        waiting = GaugeMetricFamily(
            "alfred_approvals_waiting", "Approval stages waiting for a decision now", labels=["workflow"]
        )
        for workflow, count in m.approvals.waiting:
            waiting.add_metric([workflow], count)
        yield waiting
        wait = GaugeMetricFamily(
            "alfred_approval_wait_seconds", "How long decided approvals waited, decided in the window",
            labels=["stat"],
        )
        for stat in ("mean", "p50", "p95"):
            value = getattr(m.approvals.wait, stat)
            if value is not None:
                wait.add_metric([stat], value)
        wait.add_metric(["count"], m.approvals.wait.count)
        yield wait


def serve_prometheus(state_dir: str | Path, port: int, *, window_s: float = 86400.0) -> Any:
    """Serve the figures in the Prometheus text format on 127.0.0.1:``port`` (a daemon thread).

    Returns the server (``.shutdown()`` stops it). Raises OSError when the port is taken.
    """
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(PrometheusCollector(state_dir, window_s=window_s))
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    return server
