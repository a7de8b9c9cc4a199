"""Workflow hooks on real runs: which events fire them, their command contract, and that they
never change a run's result."""

from __future__ import annotations

import json
import os
from pathlib import Path

import trio
from _runtime_plans import plan, stage

from alfred_dsl.compiler._plan import FrozenMap, Hook, Plan
from alfred_dsl.runtime import EventBus, RunOptions, RunResult, StateStore, execute
from alfred_dsl.runtime._hooks import HookRunner, attach


def _with_hooks(base: Plan, source: Path, *hooks: Hook) -> Plan:
    return Plan(
        workflow=base.workflow, source=str(source), agents=base.agents, stages=base.stages,
        params=base.params, secrets=base.secrets, hooks=hooks,
    )


def _run(the_plan: Plan, state: Path, *, env: dict[str, str] | None = None,
         timeout_s: float = 30.0) -> tuple[RunResult, HookRunner, list[str]]:
    reports: list[str] = []
    bus = EventBus()
    runner = attach(bus, the_plan, options=RunOptions(env=env), report=reports.append, timeout_s=timeout_s)
    assert runner is not None
    store = StateStore(state)
    try:
        result = trio.run(
            lambda: execute(the_plan, store=store, options=RunOptions(jitter=0.0, env=env), bus=bus)
        )
    finally:
        store.close()
        runner.close()
    return result, runner, reports


def _project(tmp_path: Path) -> tuple[Path, Path]:
    """A workflow folder (hooks run there) and a separate stage folder."""
    wf_dir = tmp_path / "project"
    wf_dir.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    return wf_dir / "pipeline.alfred", work


def test_failure_hook_gets_the_contract_and_the_run_still_fails(tmp_path: Path) -> None:
    source, work = _project(tmp_path)
    base = plan([stage("build", work, run=["sh", "-c", "exit 7"])], params={"who": "it's me"})
    hook_cmd = (
        'printf "%s|%s|%s|%s\\n" "$ALFRED_RUN_ID" "$ALFRED_EVENT" "$PWD" ${params.who} > failure.txt;'
        ' cp "$ALFRED_EVENT_FILE" event.json'
    )
    the_plan = _with_hooks(
        base, source, Hook(event="failure", run=hook_cmd), Hook(event="success", run="touch success.txt")
    )
    result, runner, reports = _run(the_plan, tmp_path / "state")
    assert result.state == "failed" and result.exit_status == 1
    run_id, event, cwd, who = (source.parent / "failure.txt").read_text().strip().split("|")
    assert (run_id, event, cwd, who) == (result.run_id, "failure", str(source.parent), "it's me")
    event_data = json.loads((source.parent / "event.json").read_text())
    assert event_data["type"] == "run_failed" and event_data["data"]["failed"] == ["build"]
    assert not (source.parent / "success.txt").exists()
    assert [o.event for o in runner.outcomes] == ["failure"] and runner.outcomes[0].ok
    assert reports == []


def test_success_hook_runs_after_a_successful_run_and_sees_outputs(tmp_path: Path) -> None:
    source, work = _project(tmp_path)
    base = plan([stage("build", work, run=["sh", "-c", 'echo "version=1.2.3" >> "$ALFRED_OUTPUTS"'])])
    the_plan = _with_hooks(
        base, source,
        Hook(event="success",
             run=("sh", "-c", 'echo "$1" > success.txt', "-", "${stages.build.outputs.version}")),
        Hook(event="failure", run="touch failure.txt"),
    )
    result, runner, _ = _run(the_plan, tmp_path / "state")
    assert result.state == "succeeded"
    assert (source.parent / "success.txt").read_text() == "1.2.3\n"
    assert not (source.parent / "failure.txt").exists()
    # Its log and event file live with the run.
    log = Path(runner.outcomes[0].log_path or "")
    assert log.parent == tmp_path / "state" / "runs" / result.run_id / "hooks"


def test_a_failing_hook_is_reported_and_does_not_change_the_result(tmp_path: Path) -> None:
    source, work = _project(tmp_path)
    base = plan([stage("build", work, run=["true"])])
    the_plan = _with_hooks(base, source, Hook(event="success", run="echo broken hook >&2; exit 9"))
    result, runner, reports = _run(the_plan, tmp_path / "state")
    assert result.state == "succeeded" and result.exit_status == 0
    assert len(reports) == 1 and "hook `on success` failed: exit status 9" in reports[0]
    outcome = runner.outcomes[0]
    assert not outcome.ok and outcome.exit_code == 9
    assert Path(outcome.log_path or "").read_text() == "broken hook\n"


def test_a_hook_that_cannot_start_or_hangs_is_reported(tmp_path: Path) -> None:
    source, work = _project(tmp_path)
    base = plan([stage("build", work, run=["true"])])
    the_plan = _with_hooks(
        base, source,
        Hook(event="success", run=("no-such-program-alfred-test",)),
        Hook(event="success", run="sleep 30"),
    )
    result, runner, reports = _run(the_plan, tmp_path / "state", timeout_s=0.5)
    assert result.state == "succeeded"
    assert [o.error for o in runner.outcomes] == ["cannot start: command not found", "timed out after 0.5s"]
    assert len(reports) == 2


def test_stage_failed_hook_fires_once_per_failed_stage_not_per_retry(tmp_path: Path) -> None:
    source, work = _project(tmp_path)
    base = plan(
        [
            stage("a", work, run=["false"], retries=1, backoff_s=0.01, on_failure="continue"),
            stage("b", work, run=["sh", "-c", "exit 2"], on_failure="continue"),
            stage("c", work, run=["true"]),
        ]
    )
    the_plan = _with_hooks(base, source, Hook(event="stage_failed", run='echo "$ALFRED_STAGE" >> failed.txt'))
    result, runner, _ = _run(the_plan, tmp_path / "state")
    assert result.state == "failed"
    assert sorted((source.parent / "failed.txt").read_text().split()) == ["a", "b"]
    assert sorted(o.stage or "" for o in runner.outcomes) == ["a", "b"]


def test_secrets_reach_the_hook_but_never_its_log_or_report(tmp_path: Path) -> None:
    source, work = _project(tmp_path)
    env = {"PATH": os.environ["PATH"], "DEPLOY_KEY": "k3y-v4lue"}
    base = plan([stage("build", work, run=["false"])], secrets=["DEPLOY_KEY"])
    leaky = "echo ${secrets.DEPLOY_KEY} > got.txt; echo ${secrets.DEPLOY_KEY}; exit 1"
    the_plan = _with_hooks(base, source, Hook(event="failure", run=leaky))
    _, runner, reports = _run(the_plan, tmp_path / "state", env=env)
    assert (source.parent / "got.txt").read_text() == "k3y-v4lue\n"
    outcome = runner.outcomes[0]
    assert Path(outcome.log_path or "").read_text() == "***\n"
    assert "k3y-v4lue" not in outcome.command and "k3y-v4lue" not in "".join(reports)


def test_a_plan_without_hooks_subscribes_nothing() -> None:
    bus = EventBus()
    bare = Plan(workflow="w", source="x.alfred", params=FrozenMap())
    assert attach(bus, bare, options=None) is None
