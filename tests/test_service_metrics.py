"""Metrics and the performance report: exact figures from runs whose timings we set,
a real run measured by a worker and scraped over HTTP, empty periods, trends."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from _service_setup import alfredc, flow, start_worker, wait_for, write

from alfred_dsl.runtime import StateStore
from alfred_dsl.service import RunQueue, collect
from alfred_dsl.service._metrics import percentile
from alfred_dsl.service._perf_report import build_perf_report, perf_report_to_html, perf_report_to_markdown

NOW = time.time()
B = NOW - 3600  # the runs below start one hour ago


def _record(store: StateStore, run_id: str, started: float, finished: float, state: str,
            stages: list[tuple[str, str, str, float, float, list[tuple[float, float, int]]]]) -> None:
    """A run as the runtime records it: stages (name, agent, state, start, end, attempts)."""
    plan = {"workflow": "build", "stages": [
        {"name": "compile", "estimate_s": 5, "after": []},
        {"name": "test", "estimate_s": 4, "after": ["compile"]},
    ]}
    store.create_run(run_id=run_id, workflow="build", source="build.alfred", entry=None, params={},
                     cli_params={}, plan=plan, stages=["compile", "test"], started=started)
    for name, agent, stage_state, start, end, attempts in stages:
        store.queue_stage(run_id, name, state=stage_state, agent=agent, started=start, finished=end,
                          attempts=len(attempts))
        for n, (a_start, a_end, code) in enumerate(attempts, 1):
            store.queue_attempt(run_id, name, n, started=a_start, finished=a_end, exit_code=code)
    store.queue_run_state(run_id, state, finished)
    store.flush()


@pytest.fixture()
def controlled(tmp_path: Path) -> Path:
    state = tmp_path / ".alfred"
    with StateStore(state) as store:
        _record(store, "r1", B, B + 10, "succeeded", [
            ("compile", "cc", "succeeded", B, B + 6, [(B, B + 6, 0)]),
            ("test", "tt", "succeeded", B + 6, B + 10, [(B + 6, B + 10, 0)]),
        ])
        _record(store, "r2", B + 100, B + 120, "succeeded", [
            ("compile", "cc", "succeeded", B + 100, B + 112, [(B + 100, B + 104, 1), (B + 104, B + 112, 0)]),
            ("test", "tt", "succeeded", B + 112, B + 120, [(B + 112, B + 120, 0)]),
        ])
        _record(store, "r3", B + 200, B + 230, "failed", [
            ("compile", "cc", "failed", B + 200, B + 230, [(B + 200, B + 230, 2)]),
        ])
    with RunQueue(state) as queue:
        first = queue.submit(entry="build.alfred", workflow="build", now=B - 5)
        assert queue.claim("w", lease_s=1e6, now=B) is not None
        queue.submit(entry="build.alfred", workflow="build", at=B + 90, now=B + 50)
        assert queue.claim("w", lease_s=1e6, now=B + 100) is not None
        queue.submit(entry="build.alfred", workflow="build", at=NOW + 3600, now=B + 60)  # still waiting
        assert first.id
    return state


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([7], 95) == 7
    assert percentile([10, 20, 30], 50) == 20
    assert percentile([30, 10, 20], 95) == pytest.approx(29)
    assert percentile([1, 2, 3, 4], 50) == 2.5


def test_figures_of_runs_with_known_timings(controlled: Path) -> None:
    m = collect(controlled, since=NOW - 7200, until=NOW)
    assert (m.runs_total, m.completed, m.failed, m.cancelled) == (3, 2, 1, 0)
    assert m.success_rate == pytest.approx(2 / 3)
    assert (m.run_duration.mean, m.run_duration.p50, m.run_duration.p95) == pytest.approx((20, 20, 29))
    # stage durations 6, 4, 12, 8, 30 (the failed compile included)
    assert (m.stage_duration.mean, m.stage_duration.p50, m.stage_duration.p95) == pytest.approx((12, 8, 26.4))
    stages = {s.stage: s for s in m.stages}
    assert (stages["compile"].runs, stages["compile"].failures, stages["compile"].attempts) == (3, 1, 4)
    assert stages["compile"].duration.mean == pytest.approx(9)
    assert stages["compile"].ratio == pytest.approx(1.8)
    assert stages["test"].duration.mean == pytest.approx(6) and stages["test"].ratio == pytest.approx(1.5)
    assert stages["compile"].critical_runs == stages["test"].critical_runs == 2
    agents = {a.agent: a for a in m.agents}
    assert m.wall_s == pytest.approx(60)  # 10 + 20 + 30 s during which a run was active
    assert agents["cc"].busy_s == pytest.approx(48) and agents["cc"].utilization == pytest.approx(0.8)
    assert agents["tt"].busy_s == pytest.approx(12) and agents["tt"].utilization == pytest.approx(0.2)
    assert (agents["cc"].attempts, agents["cc"].failures) == (4, 2)
    assert m.queue_length == 1
    assert (m.queue_wait.count, m.queue_wait.mean) == (2, pytest.approx(7.5))


def test_metrics_command_prints_the_same_figures(controlled: Path) -> None:
    cwd = controlled.parent
    data = json.loads(alfredc("metrics", "--since", "2h", "--format", "json", cwd=cwd, check=True).stdout)
    assert data["runs"] == {"total": 3, "completed": 2, "failed": 1, "cancelled": 0, "interrupted": 0,
                            "running": 0, "success_rate": pytest.approx(0.666667)}
    assert data["run_duration_s"]["p95"] == pytest.approx(29)
    assert {a["agent"]: a["utilization"] for a in data["agents"]} == {"cc": 0.8, "tt": 0.2}
    assert data["queue"]["length"] == 1
    text = alfredc("metrics", "--since", "2h", cwd=cwd, check=True).stdout
    assert "success rate: 66.7%" in text and "cc: 80.0%" in text
    assert "estimate 5.00s, actual 9.00s (x1.80)" in text
    # A shorter period holds none of these runs.
    assert json.loads(alfredc("metrics", "--since", "10m", "--format", "json", cwd=cwd,
                              check=True).stdout)["runs"]["total"] == 0
    assert alfredc("metrics", "--since", "yesterday", cwd=cwd).returncode == 2


def test_report_recommends_from_the_data(controlled: Path) -> None:
    report = build_perf_report(controlled, since=NOW - 7200, until=NOW)
    kinds = {(r.kind, r.subject) for r in report.recommendations}
    assert ("failure_hot_spot", "build.compile") in kinds
    assert ("over_estimate", "build.compile") in kinds and ("over_estimate", "build.test") in kinds
    assert ("saturated_agent", "cc") in kinds
    assert ("critical_path", "build") in kinds
    assert not any(subject == "tt" for _, subject in kinds)  # 20 %: neither saturated nor idle
    assert report.critical_paths["build"] == (("compile", "test"), 2, 2)
    markdown = perf_report_to_markdown(report)
    assert "compile → test" in markdown and "| build.compile | cc | 3 | 1 |" in markdown
    cwd = controlled.parent
    for fmt in ("md", "html", "json"):
        result = alfredc("report", "--since", "2h", "--format", fmt, cwd=cwd, check=True)
        assert "compile" in result.stdout
    data = json.loads(alfredc("report", "--since", "2h", "--format", "json", cwd=cwd, check=True).stdout)
    assert data["empty"] is False and data["critical_paths"]["build"]["stages"] == ["compile", "test"]


def test_trend_compares_the_two_halves(tmp_path: Path) -> None:
    state = tmp_path / ".alfred"
    # first half (B-1000 .. B): slow and failing; second half (B .. B+1000): fast and passing
    runs = [(B - 900, 50, "failed"), (B - 800, 40, "succeeded"), (B + 100, 10, "succeeded"),
            (B + 200, 12, "succeeded")]
    with StateStore(state) as store:
        for i, (start, length, outcome) in enumerate(runs):
            end = start + length
            code = 0 if outcome == "succeeded" else 1
            _record(store, f"t{i}", start, end, outcome,
                    [("compile", "cc", outcome, start, end, [(start, end, code)])])
    improving = build_perf_report(state, since=B - 1000, until=B + 1000).trend
    assert improving.direction == "improving"
    assert (improving.success_rate_before, improving.success_rate_after) == (0.5, 1.0)
    # Seen the other way round (second half only vs an empty first half): not enough data.
    unknown = build_perf_report(state, since=B - 1000 - 2000, until=B + 1000).trend
    assert unknown.direction is None and "not enough data" in unknown.reason


def test_report_over_an_empty_period_says_so(tmp_path: Path) -> None:
    report = build_perf_report(tmp_path / "nowhere", since=NOW - 3600, until=NOW)
    assert report.empty and report.metrics.success_rate is None and report.trend.direction is None
    assert "no run started" in perf_report_to_markdown(report)
    assert "no run started" in perf_report_to_html(report)
    assert not (tmp_path / "nowhere").exists()  # reading never creates a state directory
    for args in (["report"], ["report", "--since", "1h", "--format", "json"], ["metrics"],
                 ["report", "--format", "html"]):
        result = alfredc(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr and "ZeroDivision" not in result.stderr
    data = json.loads(alfredc("report", "--format", "json", cwd=tmp_path, check=True).stdout)
    assert data["empty"] is True and "no run started" in data["message"]
    assert "no run started" in alfredc("metrics", cwd=tmp_path, check=True).stdout


def test_worker_serves_prometheus_figures_of_a_real_run(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([("nap", "sleep 0.3", []), ("done", "true", ["nap"])]))
    worker = start_worker(tmp_path, "--metrics-port", "0")
    try:
        port = int(wait_for(
            lambda: re.search(r"127\.0\.0\.1:(\d+)/metrics", (tmp_path / "worker.log").read_text()),
            what="the metrics address",
        ).group(1))
        run_id = alfredc("submit", "flow.alfred", cwd=tmp_path, check=True).stdout.strip()

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                return str(response.read().decode())

        body = wait_for(lambda: (text := scrape()) and 'alfred_runs{state="completed"} 1.0' in text and text,
                        what="the run in the scraped metrics")
        actual = float(re.search(r'alfred_stage_actual_seconds\{stage="nap",workflow="flow"\} (\S+)', body)
                       .group(1))  # type: ignore[union-attr]
        assert 0.3 <= actual < 10
        assert "alfred_run_success_rate 1.0" in body
        assert re.search(r'alfred_agent_utilization\{agent="sh"\} \S+', body)
        assert "alfred_queue_length 0.0" in body
        assert json.loads(alfredc("status", run_id, "--format", "json", cwd=tmp_path,
                                  check=True).stdout)["state"] == "succeeded"
        os.kill(worker.pid, signal.SIGINT)
        assert worker.wait(timeout=20) == 130
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
