"""``alfredc simulate``: the plan on a virtual clock, against hand-computed cases and CPM."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from alfred_dsl.compiler._pipeline import compile_path
from alfred_dsl.compiler._plan import Plan
from alfred_dsl.compiler._simulate import SimOptions, SimResult, simulate


def compile_text(tmp_path: Path, text: str) -> Plan:
    path = tmp_path / "flow.alfred"
    path.write_text(text, encoding="utf-8")
    plan, diags = compile_path(str(path), None, {})
    assert isinstance(plan, Plan), diags
    return plan


def run_sim(tmp_path: Path, text: str, **options: object) -> SimResult:
    settings: dict[str, object] = {"trials": 20, "seed": 7, "concurrency": 64, "jitter": 0.0}
    settings.update(options)
    return simulate(compile_text(tmp_path, text), SimOptions(**settings))  # type: ignore[arg-type]


def alfredc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


DIAMOND = """
agent a { run = "true"; concurrency = 8 }
agent b { run = "true"; concurrency = 8 }
workflow w {
  stage fetch { agent = a; estimate = 5m; spread = 0s }
  stage build { agent = a; estimate = 20m; spread = 0s; after = [fetch] }
  stage lint  { agent = b; estimate = 3m; spread = 0s; after = [fetch] }
  stage docs  { agent = b; estimate = 12m; spread = 0s; after = [fetch] }
  stage test  { agent = a; estimate = 15m; spread = 0s; after = [build, lint] }
  stage ship  { agent = b; estimate = 1m; spread = 0s; after = [test, docs] }
}
"""


def test_zero_spread_and_wide_limits_give_the_cpm_duration(tmp_path: Path) -> None:
    plan = compile_text(tmp_path, DIAMOND)
    result = simulate(plan, SimOptions(trials=50, seed=1, concurrency=100, jitter=0.0))
    assert plan.duration_s == 41 * 60
    assert set(result.makespans) == {plan.duration_s}
    assert result.failure_rate == 0
    # The stages CPM puts on the critical path are on it in every trial.
    assert {name for name, share in result.critical if share == 1.0} == set(plan.critical_path)
    assert result.sample.critical_path == plan.critical_path


def test_the_cli_prints_the_distribution_as_json(tmp_path: Path) -> None:
    (tmp_path / "flow.alfred").write_text(DIAMOND, encoding="utf-8")
    done = alfredc("simulate", "flow.alfred", "--format", "json", "--trials", "30", "--seed", "3", "-j", "16",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["trials"] == 30 and data["seed"] == 3 and data["concurrency"] == 16
    assert data["makespan_s"]["p50"] == data["makespan_s"]["p99"] == data["cpm_duration_s"] == 2460
    assert {u["agent"] for u in data["utilisation"]} == {"a", "b"}


def test_two_parallel_stages_on_one_slot_take_the_sum(tmp_path: Path) -> None:
    text = """
agent solo {{ run = "true"; concurrency = {n} }}
workflow w {{
  stage x {{ agent = solo; estimate = 10s; spread = 0s }}
  stage y {{ agent = solo; estimate = 5s; spread = 0s }}
}}
"""
    one = run_sim(tmp_path, text.format(n=1))
    assert set(one.makespans) == {15.0}
    assert one.utilisation == (("solo", 1.0),)
    two = run_sim(tmp_path, text.format(n=2))
    assert set(two.makespans) == {10.0}
    assert two.utilisation == (("solo", 15 / 20),)
    # -j 1 serialises them too, whatever the agent allows.
    assert set(run_sim(tmp_path, text.format(n=2), concurrency=1).makespans) == {15.0}


def test_failures_retry_after_doubling_backoff(tmp_path: Path) -> None:
    result = run_sim(tmp_path, """
agent box { run = "true" }
workflow w {
  stage flaky { agent = box; estimate = 2s; spread = 0s; fail_rate = 1; retries = 2; backoff = 1s }
  stage after_it { agent = box; estimate = 1s; spread = 0s; after = [flaky] }
}
""")
    attempts = [(a.n, a.start_s, a.end_s, a.state) for a in result.sample.attempts]
    # 2s, wait 1s, 2s, wait 2s, 2s.
    assert attempts == [(1, 0.0, 2.0, "failed"), (2, 3.0, 5.0, "failed"), (3, 7.0, 9.0, "failed")]
    assert set(result.makespans) == {9.0}
    assert result.failure_rate == 1.0
    assert dict(result.sample.stages) == {"flaky": "failed", "after_it": "upstream_failed"}


def test_jitter_shortens_the_wait_within_its_bound(tmp_path: Path) -> None:
    result = run_sim(tmp_path, """
agent box { run = "true" }
workflow w {
  stage flaky { agent = box; estimate = 1s; spread = 0s; fail_rate = 1; retries = 1; backoff = 10s }
}
""", jitter=0.5, trials=200)
    # 1s + a wait in [5s, 10s] + 1s; never the same for all trials.
    assert all(7.0 <= m <= 12.0 for m in result.makespans)
    assert result.makespans[0] < result.makespans[-1]


def test_max_backoff_caps_the_wait(tmp_path: Path) -> None:
    result = run_sim(tmp_path, """
agent box { run = "true" }
workflow w {
  stage flaky {
    agent = box; estimate = 1s; spread = 0s; fail_rate = 1; retries = 3; backoff = 2s; max_backoff = 3s
  }
}
""")
    starts = [a.start_s for a in result.sample.attempts]
    assert starts == [0.0, 3.0, 7.0, 11.0]  # waits 2s, 3s (4s capped), 3s (8s capped)


def test_priority_orders_ready_stages(tmp_path: Path) -> None:
    result = run_sim(tmp_path, """
agent solo { run = "true" }
workflow w {
  stage first  { agent = solo; estimate = 1s; spread = 0s }
  stage low    { agent = solo; estimate = 1s; spread = 0s; priority = low }
  stage urgent { agent = solo; estimate = 1s; spread = 0s; priority = critical }
}
""")
    order = [a.stage for a in sorted(result.sample.attempts, key=lambda a: a.start_s)]
    assert order == ["urgent", "first", "low"]  # then declaration order among equals


def test_a_stage_goes_to_the_least_busy_matching_agent(tmp_path: Path) -> None:
    result = run_sim(tmp_path, """
agent one { run = "true"; capabilities = ["gpu"] }
agent two { run = "true"; capabilities = ["gpu"] }
workflow w {
  stage p { requires = ["gpu"]; estimate = 4s; spread = 0s }
  stage q { requires = ["gpu"]; estimate = 4s; spread = 0s }
  stage r { requires = ["gpu"]; estimate = 4s; spread = 0s }
}
""")
    placed = [(a.stage, a.agent, a.start_s) for a in result.sample.attempts]
    assert sorted(placed) == [("p", "one", 0.0), ("q", "two", 0.0), ("r", "one", 4.0)]
    assert set(result.makespans) == {8.0}


def test_on_failure_stop_cancels_and_continue_goes_on(tmp_path: Path) -> None:
    text = """
agent box {{ run = "true"; concurrency = 4 }}
workflow w {{
  stage bad  {{ agent = box; estimate = 1s; spread = 0s; fail_rate = 1; on_failure = {mode} }}
  stage long {{ agent = box; estimate = 10s; spread = 0s }}
  stage next {{ agent = box; estimate = 1s; spread = 0s; after = [long] }}
}}
"""
    stop = run_sim(tmp_path, text.format(mode="stop"))
    assert dict(stop.sample.stages) == {"bad": "failed", "long": "cancelled", "next": "cancelled"}
    assert set(stop.makespans) == {1.0}
    go_on = run_sim(tmp_path, text.format(mode="continue"))
    assert dict(go_on.sample.stages) == {"bad": "failed", "long": "succeeded", "next": "succeeded"}
    assert set(go_on.makespans) == {11.0}
    assert go_on.failure_rate == 1.0


def test_timeout_ends_a_long_attempt(tmp_path: Path) -> None:
    result = run_sim(tmp_path, """
agent box { run = "true" }
workflow w { stage slow { agent = box; estimate = 10s; spread = 0s; timeout = 4s } }
""")
    assert [(a.end_s, a.state) for a in result.sample.attempts] == [(4.0, "timeout")]


def test_when_false_skips_and_agent_fail_rate_applies(tmp_path: Path) -> None:
    result = run_sim(tmp_path, """
agent shaky { run = "true"; fail_rate = 1 }
agent sure { run = "true" }
workflow w {
  stage never { agent = sure; estimate = 5s; when = false }
  stage downstream { agent = sure; estimate = 5s; after = [never] }
  stage inherits { agent = shaky; estimate = 1s; spread = 0s; on_failure = continue }
  stage overrides { agent = shaky; estimate = 1s; spread = 0s; fail_rate = 0 }
}
""")
    assert dict(result.sample.stages) == {
        "never": "skipped", "downstream": "skipped", "inherits": "failed", "overrides": "succeeded",
    }


def test_durations_follow_the_estimate_and_spread(tmp_path: Path) -> None:
    result = run_sim(tmp_path, """
agent box { run = "true" }
workflow w { stage one { agent = box; estimate = 100s; spread = 30s } }
""", trials=20000)
    values = result.makespans
    assert statistics.fmean(values) == pytest.approx(100, rel=0.02)
    assert statistics.stdev(values) == pytest.approx(30, rel=0.05)
    assert min(values) > 0 and result.percentile(50) < 100  # lognormal: the median is below the mean
    # Default spread: a quarter of the estimate.
    default = run_sim(tmp_path, """
agent box { run = "true" }
workflow w { stage one { agent = box; estimate = 100s } }
""", trials=20000)
    assert statistics.stdev(default.makespans) == pytest.approx(25, rel=0.05)


def test_the_same_seed_gives_the_same_result(tmp_path: Path) -> None:
    (tmp_path / "flow.alfred").write_text(DIAMOND.replace("spread = 0s; ", ""), encoding="utf-8")
    args = ("simulate", "flow.alfred", "--seed", "11", "--trials", "200")
    runs = [alfredc(*args, cwd=tmp_path) for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert "P50" in runs[0].stdout and "P99" in runs[0].stdout
    other = alfredc("simulate", "flow.alfred", "--seed", "12", "--trials", "200", cwd=tmp_path)
    assert other.stdout != runs[0].stdout


def test_gantt_of_the_sample_run(tmp_path: Path) -> None:
    (tmp_path / "flow.alfred").write_text(DIAMOND, encoding="utf-8")
    done = alfredc("simulate", "flow.alfred", "--trials", "5", "--gantt", "out.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "out.html").read_text(encoding="utf-8")
    for stage in ("fetch", "build", "lint", "docs", "test", "ship"):
        assert f'data-stage="{stage}"' in html
    assert "simulated: trial" in html
    bad = alfredc("simulate", "flow.alfred", "--trials", "5", "--gantt", "missing/dir/out.html", cwd=tmp_path)
    assert bad.returncode == 2 and "cannot write" in bad.stderr and "Traceback" not in bad.stderr


def test_fail_rate_out_of_range_is_a_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "flow.alfred").write_text(
        'agent box { run = "true" }\nworkflow w { stage s { agent = box; fail_rate = 1.5 } }\n',
        encoding="utf-8",
    )
    done = alfredc("simulate", "flow.alfred", cwd=tmp_path)
    assert done.returncode == 1
    assert "flow.alfred:2:" in done.stderr and "fail_rate" in done.stderr and "maximum of 1" in done.stderr
    assert "Traceback" not in done.stderr


def test_percentiles_are_nearest_rank() -> None:
    from alfred_dsl.compiler._simulate import percentile

    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 99)) == (50.0, 90.0, 99.0)
    assert percentile([3.0], 99) == 3.0 and math.isclose(percentile([], 50), 0.0)


def test_spread_may_come_from_a_duration_param_and_is_type_checked(tmp_path: Path) -> None:
    text = """
agent box {{ run = "true" }}
workflow w {{
  param s: {type} = {value}
  stage a {{ agent = box; estimate = 10s; spread = "${{params.s}}" }}
}}
"""
    plan = compile_text(tmp_path, text.format(type="duration", value="0s"))
    assert plan.stage("a").spread_s == 0
    assert set(simulate(plan, SimOptions(trials=5, seed=1)).makespans) == {10.0}
    (tmp_path / "bad.alfred").write_text(text.format(type="string", value='"x"'), encoding="utf-8")
    done = alfredc("check", "bad.alfred", cwd=tmp_path)
    assert done.returncode == 1 and "A302" in done.stdout + done.stderr
