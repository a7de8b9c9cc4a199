"""``alfredc runs``, ``show`` and ``logs`` as real processes over a state directory of real runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _runtime_plans import agent, plan, run_plan, stage

from alfred_dsl.runtime import RunResult

Recorded = tuple[Path, RunResult, RunResult]


def alfredc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """A state directory holding two runs: one that succeeded, then one that failed after a retry."""
    root = tmp_path_factory.mktemp("runs")
    state = root / ".alfred"
    ok_plan = plan([stage("hello", root, run=["sh", "-c", "echo hello out; echo hello err >&2"])],
                   workflow="greet")
    ok, _ = run_plan(ok_plan, state)
    failing = plan(
        [
            stage("build", root, run=["sh", "-c", "echo built"]),
            stage("test", root, run=["sh", "-c", 'echo "try $ALFRED_ATTEMPT"; exit 3'], after=["build"],
                  retries=1, backoff_s=0.01),
            stage("publish", root, run=["true"], after=["test"]),
        ],
        workflow="release",
    )
    failed, _ = run_plan(failing, state)
    return root, ok, failed


def test_runs_lists_the_most_recent_first(recorded: Recorded) -> None:
    root, ok, failed = recorded
    done = alfredc("runs", cwd=root)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["RUN", "WORKFLOW", "STATE", "STARTED", "DURATION"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [failed.run_id, "release", "failed"],
        [ok.run_id, "greet", "succeeded"],
    ]


def test_runs_json_and_another_state_directory(recorded: Recorded,
                                               tmp_path: Path) -> None:
    root, ok, failed = recorded
    done = alfredc("runs", "--state", str(root / ".alfred"), "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["runs"]
    assert [(r["id"], r["workflow"], r["state"]) for r in runs] == [
        (failed.run_id, "release", "failed"), (ok.run_id, "greet", "succeeded"),
    ]
    assert runs[0]["duration_s"] == pytest.approx(failed.duration_s, abs=0.01)
    # A directory where nothing ran: an empty list, and no state directory is created.
    empty = alfredc("runs", "--format", "json", cwd=tmp_path)
    assert json.loads(empty.stdout) == {"runs": []} and not (tmp_path / ".alfred").exists()
    assert alfredc("runs", cwd=tmp_path).stdout == "no runs recorded in .alfred\n"


def test_show_last_has_states_attempts_exit_codes_and_logs(recorded: Recorded) -> None:
    root, _, failed = recorded
    done = alfredc("show", "last", cwd=root)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.splitlines()[0] == f"run {failed.run_id}  workflow release  failed"
    names = ("build", "test", "publish")
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith(names)}
    assert rows["build"][1:3] == ["succeeded", "1"] and rows["build"][4] == "0"
    assert rows["test"][1:3] == ["failed", "2"] and rows["test"][4] == "3"
    assert rows["test"][5] == f".alfred/runs/{failed.run_id}/test.2.log"
    assert rows["publish"][1:5] == ["upstream_failed", "0", "-", "-"]
    assert "errors:\n  test: exit status 3" in text


def test_show_json_by_id_prefix(recorded: Recorded) -> None:
    root, ok, _ = recorded
    done = alfredc("show", ok.run_id[:-2], "--format", "json", cwd=root)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["id"] == ok.run_id and data["state"] == "succeeded"
    (hello,) = data["stages"]
    summary = (hello["name"], hello["state"], hello["attempts"], hello["exit_code"])
    assert summary == ("hello", "succeeded", 1, 0)
    assert Path(hello["log"]).read_text() in ("hello out\nhello err\n", "hello err\nhello out\n")


def test_logs_prints_the_last_attempt_or_the_one_asked_for(recorded: Recorded) -> None:
    root, _, failed = recorded
    assert alfredc("logs", failed.run_id, "test", cwd=root).stdout == "try 2\n"
    assert alfredc("logs", "last", "test", "--attempt", "1", cwd=root).stdout == "try 1\n"
    assert alfredc("logs", "last", "build", cwd=root).stdout == "built\n"


def test_unknown_run_stage_or_attempt_is_a_clear_error_with_exit_2(
    recorded: Recorded, tmp_path: Path
) -> None:
    root, _, failed = recorded
    stage_typo = alfredc("logs", "last", "tset", cwd=root)
    assert stage_typo.returncode == 2 and stage_typo.stdout == ""
    assert stage_typo.stderr == (
        f"alfredc: error: run {failed.run_id} has no stage `tset`\n  help: did you mean `test`?\n"
    )
    run_typo = alfredc("show", failed.run_id[:-1] + "x", cwd=root)
    assert run_typo.returncode == 2
    assert f"no run `{failed.run_id[:-1]}x`" in run_typo.stderr
    assert f"did you mean `{failed.run_id}`?" in run_typo.stderr
    attempt = alfredc("logs", "last", "test", "--attempt", "7", cwd=root)
    assert attempt.returncode == 2 and "has no attempt 7" in attempt.stderr
    assert "attempts: 1, 2" in attempt.stderr
    never_ran = alfredc("logs", "last", "publish", cwd=root)
    assert never_ran.returncode == 2 and "never ran" in never_ran.stderr
    nothing = alfredc("show", "last", cwd=tmp_path)
    assert nothing.returncode == 2 and nothing.stderr == "alfredc: error: no runs recorded in .alfred\n"
    ambiguous = alfredc("show", failed.run_id[:2], cwd=root)
    assert ambiguous.returncode == 2 and "ambiguous" in ambiguous.stderr
    assert "Traceback" not in "".join(
        p.stderr for p in (stage_typo, run_typo, attempt, never_ran, nothing, ambiguous)
    )


def test_show_names_the_agent_of_each_attempt_when_a_retry_moved(tmp_path: Path) -> None:
    agents = [agent("a1", env={"AGENT": "a1"}), agent("a2", env={"AGENT": "a2"}), agent("solo")]
    picky = stage("picky", tmp_path, agents=["a1", "a2"], retries=2, backoff_s=0.01,
                  run=["sh", "-c", '[ "$AGENT" = a2 ]'])    # fails on a1, succeeds on a2
    steady = stage("steady", tmp_path, agents=["solo"], run=["true"])
    result, _ = run_plan(plan([picky, steady], agents), tmp_path / ".alfred")
    assert result.ok
    done = alfredc("show", "last", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("STAGE"))
    assert header.split()[-1] == "AGENT"
    rows = {line.split()[0]: line.split() for line in lines if line.startswith(("picky", "steady"))}
    assert rows["picky"][2] == "2" and rows["picky"][-1] == "a1,a2"
    assert rows["steady"][-1] == "solo"
