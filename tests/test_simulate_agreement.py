"""``alfredc simulate`` schedules exactly as the runtime: the fast simulator against the real
scheduler run on Trio's virtual clock (``runtime/_virtual.py``).

Both follow the same script of attempts (how long each one takes, whether it succeeds), so
any difference is one of scheduling: which stage starts when, on which agent, how often it
is tried, how it ends. Each hand-made case also checks the times worked out by hand; the
property test at the end throws random small plans at both.

Events at the same instant are taken in the order Trio picks, which it randomises on
purpose: the random plans give each attempt a distinct binary fraction of a second on top
of its whole seconds, so that no two events ever coincide (a sum of distinct powers of two
identifies its terms) and both schedulers face the same, unambiguous sequence.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from alfred_dsl.compiler._pipeline import compile_path
from alfred_dsl.compiler._plan import Plan
from alfred_dsl.compiler._simulate import Outcome, SimOptions, SimTrial, simulate
from alfred_dsl.runtime._virtual import run_virtual

#: Per stage, the (duration, succeeds) of each attempt; the last one repeats.
Script = Mapping[str, Sequence[tuple[float, bool]]]


def compile_text(directory: Path, text: str) -> Plan:
    path = directory / "flow.alfred"
    path.write_text(text, encoding="utf-8")
    plan, diags = compile_path(str(path), None, {})
    assert isinstance(plan, Plan), diags
    return plan


def scripted(plan: Plan, script: Script) -> Outcome:
    """Attempt n of a stage as the script says (else its estimate, succeeding)."""
    estimates = {s.name: s.estimate_s for s in plan.stages}

    def outcome(stage: str, attempt: int, agent: str) -> tuple[float, bool]:
        steps = script.get(stage)
        if not steps:
            return estimates[stage], True
        return steps[min(attempt, len(steps)) - 1]

    return outcome


def both(
    directory: Path, plan: Plan, script: Script, *, concurrency: int, cleanup_grace_s: float = 300.0
) -> tuple[SimTrial, SimTrial]:
    """One simulated trial and one run of the real scheduler on Trio's virtual clock."""
    outcome = scripted(plan, script)
    simulated = simulate(plan, SimOptions(
        trials=1, seed=1, concurrency=concurrency, jitter=0.0, cleanup_grace_s=cleanup_grace_s,
        outcome=outcome,
    )).sample
    state_dir = directory / f"state{len(list(directory.glob('state*')))}"
    virtual = run_virtual(
        plan, outcome, state_dir=state_dir, concurrency=concurrency, cleanup_grace_s=cleanup_grace_s,
    )
    return simulated, virtual


def attempts(trial: SimTrial) -> list[tuple[str, int, str, float, float, str]]:
    return sorted((a.stage, a.n, a.agent, a.start_s, a.end_s, a.state) for a in trial.attempts)


def assert_agree(simulated: SimTrial, virtual: SimTrial) -> None:
    """Same attempts (stage, number, agent, start, end, how it ended), same final states and
    end times for every stage, same run state."""
    sim, run = attempts(simulated), attempts(virtual)
    assert [a[:3] + a[5:] for a in sim] == [a[:3] + a[5:] for a in run], (sim, run)
    for s, r in zip(sim, run, strict=True):
        assert s[3] == pytest.approx(r[3], abs=1e-6) and s[4] == pytest.approx(r[4], abs=1e-6), (s, r)
    assert simulated.stages == virtual.stages
    assert not any(math.isnan(t) for t in virtual.finished_s)
    assert list(simulated.finished_s) == pytest.approx(list(virtual.finished_s), abs=1e-6)
    assert simulated.state == virtual.state
    assert simulated.makespan_s == pytest.approx(virtual.makespan_s, abs=1e-6)


def timeline(trial: SimTrial) -> dict[str, list[tuple[str, float, float, str]]]:
    """Per stage, its attempts as (agent, start, end, how it ended)."""
    found: dict[str, list[tuple[str, float, float, str]]] = {}
    for a in sorted(trial.attempts, key=lambda a: (a.stage, a.n)):
        found.setdefault(a.stage, []).append((a.agent, a.start_s, a.end_s, a.state))
    return found


def states(trial: SimTrial) -> dict[str, str]:
    return dict(trial.stages)


# -- hand-made cases: each checks the hand-computed times and that both schedulers agree --------

def test_priorities_compete_for_one_slot(tmp_path: Path) -> None:
    plan = compile_text(tmp_path, """
agent a { run = "true"; concurrency = 1 }
workflow w {
  stage low    { agent = a; estimate = 10s; spread = 0s; priority = low }
  stage normal { agent = a; estimate = 20s; spread = 0s }
  stage high   { agent = a; estimate = 30s; spread = 0s; priority = high }
  stage top    { agent = a; estimate = 5s; spread = 0s; priority = 90 }
}
""")
    simulated, virtual = both(tmp_path, plan, {}, concurrency=8)
    assert_agree(simulated, virtual)
    assert timeline(virtual) == {
        "top": [("a", 0, 5, "succeeded")],
        "high": [("a", 5, 35, "succeeded")],
        "normal": [("a", 35, 55, "succeeded")],
        "low": [("a", 55, 65, "succeeded")],
    }


def test_agent_concurrency_limits(tmp_path: Path) -> None:
    plan = compile_text(tmp_path, """
agent a { run = "true"; concurrency = 2 }
agent b { run = "true"; concurrency = 1 }
workflow w {
  stage a1 { agent = a; estimate = 10s; spread = 0s }
  stage a2 { agent = a; estimate = 20s; spread = 0s }
  stage a3 { agent = a; estimate = 30s; spread = 0s }
  stage b1 { agent = b; estimate = 15s; spread = 0s }
  stage b2 { agent = b; estimate = 15s; spread = 0s }
}
""")
    simulated, virtual = both(tmp_path, plan, {}, concurrency=16)
    assert_agree(simulated, virtual)
    # Equal priorities: the least slack first (the plan's: a3 0s, a2 10s, a1 20s), two on a at
    # once; a1 waits for a2's slot, b2 for b1's.
    starts = {stage: runs[0][1] for stage, runs in timeline(virtual).items()}
    assert starts == {"a3": 0, "a2": 0, "a1": 20, "b1": 0, "b2": 15}
    assert virtual.makespan_s == 30


def test_max_concurrency_below_the_agents_sum(tmp_path: Path) -> None:
    plan = compile_text(tmp_path, """
agent a { run = "true"; concurrency = 2 }
agent b { run = "true"; concurrency = 2 }
workflow w {
  stage a1 { agent = a; estimate = 40s; spread = 0s }
  stage a2 { agent = a; estimate = 30s; spread = 0s }
  stage b1 { agent = b; estimate = 20s; spread = 0s }
  stage b2 { agent = b; estimate = 10s; spread = 0s }
}
""")
    simulated, virtual = both(tmp_path, plan, {}, concurrency=3)
    assert_agree(simulated, virtual)
    # -j 3: the three with the least slack start (a1, a2, b1); b2 waits for the first to end.
    starts = {stage: runs[0][1] for stage, runs in timeline(virtual).items()}
    assert starts == {"a1": 0, "a2": 0, "b1": 0, "b2": 20}
    assert virtual.makespan_s == 40


def test_capabilities_go_to_the_least_busy_agent(tmp_path: Path) -> None:
    plan = compile_text(tmp_path, """
agent x { run = "true"; concurrency = 2; capabilities = ["c"] }
agent y { run = "true"; concurrency = 2; capabilities = ["c"] }
workflow w {
  stage pinned { agent = x; estimate = 50s; spread = 0s; priority = high }
  stage r1 { requires = ["c"]; estimate = 30s; spread = 0s }
  stage r2 { requires = ["c"]; estimate = 20s; spread = 0s }
  stage r3 { requires = ["c"]; estimate = 10s; spread = 0s }
  stage r4 { requires = ["c"]; estimate = 5s; spread = 0s; after = [r3] }
}
""")
    simulated, virtual = both(tmp_path, plan, {}, concurrency=8)
    assert_agree(simulated, virtual)
    # pinned (high) takes x; then by slack: r1 goes to the least busy agent, y; r2 finds x and
    # y equally busy and takes x, declared first; r3 the last free slot, on y; at 10s r4 goes
    # to y again (x is full).
    assert timeline(virtual) == {
        "pinned": [("x", 0, 50, "succeeded")],
        "r1": [("y", 0, 30, "succeeded")],
        "r2": [("x", 0, 20, "succeeded")],
        "r3": [("y", 0, 10, "succeeded")],
        "r4": [("y", 10, 15, "succeeded")],
    }


def test_retries_wait_their_backoff_and_move_to_another_agent(tmp_path: Path) -> None:
    plan = compile_text(tmp_path, """
agent x { run = "true"; concurrency = 1; capabilities = ["c"] }
agent y { run = "true"; concurrency = 1; capabilities = ["c"] }
workflow w {
  stage flaky  { requires = ["c"]; estimate = 10s; spread = 0s; priority = high
                 retries = 3; backoff = 10s; max_backoff = 15s }
  stage pinned { agent = x; estimate = 100s; spread = 0s }
}
""")
    script = {"flaky": [(4.0, False), (6.0, False), (3.0, False), (7.0, True)]}
    simulated, virtual = both(tmp_path, plan, script, concurrency=8)
    assert_agree(simulated, virtual)
    # flaky goes first (high) on x (both idle: the first declared) and holds it while it waits
    # 10s; its retry moves to y (equally busy: not the one that failed), which frees x for
    # pinned at 14s. The next waits are 15s (20s capped) twice, on y, the only free agent.
    assert timeline(virtual) == {
        "flaky": [("x", 0, 4, "failed"), ("y", 14, 20, "failed"), ("y", 35, 38, "failed"),
                  ("y", 53, 60, "succeeded")],
        "pinned": [("x", 14, 114, "succeeded")],
    }


def test_on_failure_stop_cancels_and_continue_goes_on(tmp_path: Path) -> None:
    text = """
agent a { run = "true"; concurrency = 4 }
workflow w {
  stage bad   { agent = a; estimate = 10s; spread = 0s; on_failure = ON_FAILURE }
  stage after_bad { agent = a; estimate = 5s; spread = 0s; after = [bad] }
  stage long  { agent = a; estimate = 30s; spread = 0s }
  stage next  { agent = a; estimate = 5s; spread = 0s; after = [long] }
}
"""
    stop = compile_text(tmp_path, text.replace("ON_FAILURE", "stop"))
    simulated, virtual = both(tmp_path, stop, {"bad": [(10.0, False)]}, concurrency=8)
    assert_agree(simulated, virtual)
    assert states(virtual) == {"bad": "failed", "after_bad": "upstream_failed", "long": "cancelled",
                               "next": "cancelled"}
    assert timeline(virtual)["long"] == [("a", 0, 10, "cancelled")]
    assert virtual.makespan_s == 10

    carry_on = compile_text(tmp_path, text.replace("ON_FAILURE", "continue"))
    simulated, virtual = both(tmp_path, carry_on, {"bad": [(10.0, False)]}, concurrency=8)
    assert_agree(simulated, virtual)
    assert states(virtual) == {"bad": "failed", "after_bad": "upstream_failed", "long": "succeeded",
                               "next": "succeeded"}
    assert virtual.makespan_s == 35


def test_a_stage_timeout_cuts_the_attempt_and_a_tie_goes_to_the_deadline(tmp_path: Path) -> None:
    plan = compile_text(tmp_path, """
agent a { run = "true"; concurrency = 4 }
workflow w {
  stage slow  { agent = a; estimate = 10s; spread = 0s; timeout = 8s; retries = 1; backoff = 2s }
  stage exact { agent = a; estimate = 5s; spread = 0s; timeout = 5s; on_failure = continue }
}
""")
    simulated, virtual = both(tmp_path, plan, {"slow": [(20.0, True), (6.0, True)]}, concurrency=8)
    assert_agree(simulated, virtual)
    assert timeline(virtual) == {
        "slow": [("a", 0, 8, "timeout"), ("a", 10, 16, "succeeded")],
        # Lasting exactly its timeout: the deadline wins (the simulator once let it succeed).
        "exact": [("a", 0, 5, "timeout")],
    }


def test_run_if_always_cleans_up_after_a_failure(tmp_path: Path) -> None:
    plan = compile_text(tmp_path, """
agent a { run = "true"; concurrency = 1 }
agent b { run = "true"; concurrency = 4 }
workflow w {
  stage deploy  { agent = b; estimate = 10s; spread = 0s }
  stage long    { agent = b; estimate = 60s; spread = 0s }
  stage verify  { agent = b; estimate = 5s; spread = 0s; after = [deploy] }
  stage cleanup { agent = a; estimate = 7s; spread = 0s; after = [verify, long]; run_if = always }
  stage notify  { agent = a; estimate = 3s; spread = 0s; after = [verify]; run_if = failure }
  stage report  { agent = b; estimate = 2s; spread = 0s; after = [deploy] }
}
""")
    simulated, virtual = both(tmp_path, plan, {"verify": [(5.0, False)]}, concurrency=8)
    assert_agree(simulated, virtual)
    # verify fails at 15s: the run stops (long cancelled), notify and then cleanup run on a.
    assert states(virtual) == {
        "deploy": "succeeded", "long": "cancelled", "verify": "failed", "cleanup": "succeeded",
        "notify": "succeeded", "report": "succeeded",
    }
    assert timeline(virtual)["notify"] == [("a", 15, 18, "succeeded")]
    assert timeline(virtual)["cleanup"] == [("a", 18, 25, "succeeded")]


def test_a_ready_cleanup_stage_still_runs_when_the_run_stops(tmp_path: Path) -> None:
    plan = compile_text(tmp_path, """
agent a { run = "true"; concurrency = 4 }
workflow w {
  stage first { agent = a; estimate = 10s; spread = 0s; priority = high }
  stage later { agent = a; estimate = 10s; spread = 0s }
  stage tidy  { agent = a; estimate = 4s; spread = 0s; run_if = always }
}
""")
    simulated, virtual = both(tmp_path, plan, {"first": [(10.0, False)]}, concurrency=1)
    assert_agree(simulated, virtual)
    # -j 1: tidy is ready from the start but waits for first's slot. Both schedulers once
    # dropped it when first failed: the simulator left it pending, the run never ended.
    assert states(virtual) == {"first": "failed", "later": "cancelled", "tidy": "succeeded"}
    assert timeline(virtual)["tidy"] == [("a", 10, 14, "succeeded")]


def test_the_workflow_timeout_and_the_cleanup_grace(tmp_path: Path) -> None:
    plan = compile_text(tmp_path, """
agent a { run = "true"; concurrency = 4 }
workflow w {
  timeout = 1m
  stage first   { agent = a; estimate = 20s; spread = 0s }
  stage second  { agent = a; estimate = 50s; spread = 0s; after = [first] }
  stage third   { agent = a; estimate = 5s; spread = 0s; after = [second] }
  stage tidy    { agent = a; estimate = 30s; spread = 0s; after = [second]; run_if = always }
  stage too_long { agent = a; estimate = 90s; spread = 0s; after = [second]; run_if = always }
}
""")
    simulated, virtual = both(tmp_path, plan, {}, concurrency=8, cleanup_grace_s=60.0)
    assert_agree(simulated, virtual)
    # At 60s the run stops: second is cancelled, third cancelled; the cleanup stages start at
    # once; tidy ends at 90s, too_long is cancelled when the grace ends at 120s.
    assert states(virtual) == {
        "first": "succeeded", "second": "cancelled", "third": "cancelled", "tidy": "succeeded",
        "too_long": "cancelled",
    }
    assert timeline(virtual)["tidy"] == [("a", 60, 90, "succeeded")]
    assert timeline(virtual)["too_long"] == [("a", 60, 120, "cancelled")]
    assert virtual.state == "failed" and virtual.makespan_s == 120


def test_with_wide_limits_and_exact_durations_both_give_the_cpm_duration(tmp_path: Path) -> None:
    plan = compile_text(tmp_path, """
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
""")
    simulated, virtual = both(tmp_path, plan, {}, concurrency=64)
    assert_agree(simulated, virtual)
    assert virtual.makespan_s == plan.duration_s == 41 * 60
    assert virtual.critical_path == simulated.critical_path == plan.critical_path


# -- the property: random small plans, both schedulers, the same answer --------------------------

PRIORITIES = ("low", "medium", "high", "critical", "10", "60")


@st.composite
def random_plans(draw: st.DrawFn) -> tuple[str, dict[str, list[tuple[float, bool]]], int]:
    """A random small DAG on 1-3 agents, its script of attempts and a -j.

    At most two ``run_if`` stages, on an agent of their own: when a run stops, the stages it
    cancels end at the same instant, in an order Trio picks (a real run: the order their
    processes die), and more cleanup stages competing for slots then would make the start of
    some of them depend on that order.
    """
    agents = draw(st.integers(1, 3))
    lines = []
    for a in range(agents):
        caps = draw(st.lists(st.sampled_from(("c", "d")), max_size=2, unique=True))
        capabilities = "; capabilities = [" + ", ".join(f'"{c}"' for c in caps) + "]" if caps else ""
        lines.append(f'agent g{a} {{ run = "true"; concurrency = {draw(st.integers(1, 2))}{capabilities} }}')
    offered = {c for line in lines for c in ("c", "d") if f'"{c}"' in line}
    count = draw(st.integers(2, 8))
    lines.append('agent tidy { run = "true"; concurrency = 2 }')
    lines.append("workflow w {")
    cleanups = 0
    if draw(st.integers(0, 3)) == 0:
        lines.append(f"  timeout = {draw(st.integers(5, 60))}s")
    script: dict[str, list[tuple[float, bool]]] = {}
    bit = 1
    for i in range(count):
        fields = []
        if i and cleanups < 2 and draw(st.integers(0, 4)) == 0:
            cleanups += 1
            fields.append(f"agent = tidy; run_if = {draw(st.sampled_from(('always', 'failure')))}")
        elif offered and draw(st.booleans()):
            fields.append(f'requires = ["{draw(st.sampled_from(sorted(offered)))}"]')
        else:
            fields.append(f"agent = g{draw(st.integers(0, agents - 1))}")
        estimate = draw(st.integers(1, 30))
        fields.append(f"estimate = {estimate}s; spread = 0s")
        fields.append(f"priority = {draw(st.sampled_from(PRIORITIES))}")
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        if deps:
            fields.append("after = [" + ", ".join(f"s{d}" for d in deps) + "]")
        retries = draw(st.integers(0, 2))
        if retries:
            fields.append(f"retries = {retries}; backoff = {draw(st.integers(0, 5))}s")
        if draw(st.integers(0, 4)) == 0:
            fields.append("on_failure = continue")
        steps = []
        for _attempt in range(retries + 1):
            # Whole seconds plus a binary fraction no other attempt has: no two events coincide.
            duration = draw(st.integers(1, 30)) + bit / 2**40  # exact in binary floating point
            bit *= 2
            steps.append((float(duration), draw(st.integers(0, 5)) > 0))
        script[f"s{i}"] = steps
        lines.append(f"  stage s{i} {{ {'; '.join(fields)} }}")
    lines.append("}")
    return "\n".join(lines) + "\n", script, draw(st.integers(1, 5))


@settings(max_examples=60, deadline=None)
@given(case=random_plans())
def test_random_plans_are_scheduled_alike(tmp_path_factory: pytest.TempPathFactory,
                                          case: tuple[str, dict[str, list[tuple[float, bool]]], int]) -> None:
    text, script, concurrency = case
    directory = tmp_path_factory.mktemp("agree")
    plan = compile_text(directory, text)
    simulated, virtual = both(directory, plan, script, concurrency=concurrency)
    assert_agree(simulated, virtual)


# -- alfredc simulate --engine trio: the trials on the runtime's scheduler -----------------------

def alfredc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True, text=True, check=False,
        timeout=300,
    )


ENGINES = """
agent a { run = "true"; concurrency = 2; capabilities = ["x"] }
agent b { run = "true"; concurrency = 1; capabilities = ["x"]; fail_rate = 1 }
workflow w {
  stage fetch { agent = a; estimate = 5m; spread = 0s }
  stage build { requires = ["x"]; estimate = 20m; spread = 0s; after = [fetch]; retries = 1; backoff = 1m }
  stage lint  { requires = ["x"]; estimate = 3m; spread = 0s; after = [fetch]; priority = high }
  stage docs  { agent = b; estimate = 12m; spread = 0s; after = [fetch]; on_failure = continue }
  stage test  { requires = ["x"]; estimate = 15m; spread = 0s; after = [build, lint] }
  stage ship  { agent = a; estimate = 1m; spread = 0s; after = [test]; run_if = always }
}
"""


def test_engine_trio_gives_what_the_fast_engine_gives_when_nothing_is_random(tmp_path: Path) -> None:
    (tmp_path / "w.alfred").write_text(ENGINES)
    outputs = {}
    for engine in ("fast", "trio"):
        result = alfredc(tmp_path, "simulate", "w.alfred", "-n", "5", "-j", "2", "--seed", "1",
                         "--jitter", "0", "--format", "json", "--engine", engine)
        assert result.returncode == 0, result.stderr
        outputs[engine] = json.loads(result.stdout)
    assert outputs["trio"] == outputs["fast"]
    # -j 2. At 5m lint (high) takes a, build the less busy b, docs waits for b. Every attempt
    # on b fails (fail_rate = 1): build at 25m, then waits 1m holding b and its slot, retries on
    # a (equally busy, not the one that failed) and b goes to docs, which fails at 38m; build
    # ends at 46m, test at 61m, ship at 62m. docs fails with `continue`: the run fails.
    attempts = [(a["stage"], a["agent"], a["start_s"], a["end_s"], a["state"])
                for a in outputs["trio"]["sample"]["attempts"]]
    assert sorted(attempts, key=lambda a: (a[2], a[0])) == [
        ("fetch", "a", 0, 300, "succeeded"),
        ("build", "b", 300, 1500, "failed"),
        ("lint", "a", 300, 480, "succeeded"),
        ("build", "a", 1560, 2760, "succeeded"),
        ("docs", "b", 1560, 2280, "failed"),
        ("test", "a", 2760, 3660, "succeeded"),
        ("ship", "a", 3660, 3720, "succeeded"),
    ]
    assert outputs["trio"]["failure_rate"] == 1.0


def test_engine_trio_is_repeatable_with_a_seed(tmp_path: Path) -> None:
    text = ENGINES.replace("spread = 0s", "spread = 2m").replace("fail_rate = 1", "fail_rate = 0.3")
    (tmp_path / "w.alfred").write_text(text)
    runs = [
        alfredc(tmp_path, "simulate", "w.alfred", "-n", "20", "-j", "2", "--seed", "9", "--format", "json",
                "--engine", "trio")
        for _ in range(2)
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert len(set(json.loads(runs[0].stdout)["makespan_s"].values())) > 1  # the draws differ by trial


def test_engine_trio_refuses_an_approval(tmp_path: Path) -> None:
    (tmp_path / "w.alfred").write_text("""
agent a { run = "true" }
workflow w {
  approvers = { lead = ["alice"] }
  stage fetch { agent = a; estimate = 5m }
  stage ok { approve = { by = ["lead"], timeout = 1h }; after = [fetch] }
}
""")
    result = alfredc(tmp_path, "simulate", "w.alfred", "--engine", "trio", "-n", "3")
    assert result.returncode == 2
    assert "stage `ok` waits for an approval: --engine trio cannot run it" in result.stderr
    assert "Traceback" not in result.stderr
