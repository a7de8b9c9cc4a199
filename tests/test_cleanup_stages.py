"""``run_if`` cleanup and notification stages, the workflow ``timeout`` and concurrency
groups, end to end with real ``alfredc run`` processes (two at once for the groups)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def alfredc(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
    )


def start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "alfred_dsl", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "NO_COLOR": "1"},
    )


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


CLEANUP = """\
agent sh {
  kind = command
}

workflow w {
  stage build {
    agent = sh
    run   = "BUILD"
  }
  stage publish after build {
    agent = sh
    run   = "touch published"
  }
  stage cleanup after publish {
    agent  = sh
    run    = "touch cleaned"
    run_if = always
  }
  stage notify after publish {
    agent  = sh
    run    = "touch notified"
    run_if = failure
  }
}
"""


def write(folder: Path, build: str, extra: str = "") -> None:
    text = CLEANUP.replace("BUILD", build).replace("workflow w {\n", "workflow w {\n" + extra)
    (folder / "w.alfred").write_text(text)


def test_after_a_failure_always_and_failure_stages_run(tmp_path: Path) -> None:
    write(tmp_path, "exit 4")
    result = alfredc(tmp_path, "run", "w.alfred")
    assert result.returncode == 1
    assert (tmp_path / "cleaned").exists() and (tmp_path / "notified").exists()
    assert not (tmp_path / "published").exists()
    assert "stage_upstream_failed publish" in result.stdout


def test_on_success_a_failure_stage_is_skipped_and_always_runs(tmp_path: Path) -> None:
    write(tmp_path, "true")
    result = alfredc(tmp_path, "run", "w.alfred")
    assert result.returncode == 0, result.stdout
    assert (tmp_path / "cleaned").exists() and not (tmp_path / "notified").exists()
    assert "stage_skipped notify (nothing failed (`run_if = failure`))" in result.stdout


def test_ctrl_c_still_runs_cleanup_stages_then_exits_130(tmp_path: Path) -> None:
    write(tmp_path, "touch started && sleep 30")
    process = start(tmp_path, "run", "w.alfred")
    wait_for(tmp_path / "started")
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 130, out
    assert (tmp_path / "cleaned").exists() and (tmp_path / "notified").exists()
    assert not (tmp_path / "published").exists()


def test_cleanup_grace_bounds_a_cleanup_stage(tmp_path: Path) -> None:
    text = CLEANUP.replace("BUILD", "touch started && sleep 30").replace('"touch cleaned"', '"sleep 30"')
    (tmp_path / "w.alfred").write_text(text)
    process = start(tmp_path, "run", "w.alfred", "--cleanup-grace", "1s", "--grace", "1s")
    wait_for(tmp_path / "started")
    began = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    assert time.monotonic() - began < 10
    assert "stage_cancelled cleanup" in out


def test_workflow_timeout_fails_the_run_and_runs_cleanup(tmp_path: Path) -> None:
    write(tmp_path, "sleep 30", extra="  timeout = 1s\n")
    began = time.monotonic()
    result = alfredc(tmp_path, "run", "w.alfred")
    assert result.returncode == 1
    assert time.monotonic() - began < 20
    assert "the workflow timed out after 1s" in result.stdout
    assert (tmp_path / "cleaned").exists() and (tmp_path / "notified").exists()


def test_a_cleanup_stage_waiting_for_a_slot_runs_after_the_run_stops(tmp_path: Path) -> None:
    # -j 1: `tidy` is ready from the start but waits for `first`'s slot; `first` fails and stops
    # the run. The run once dropped the waiting `tidy` and never ended (found by the simulator's
    # agreement test, tests/test_simulate_agreement.py).
    (tmp_path / "w.alfred").write_text("""
agent sh { kind = command }
workflow w {
  stage first { agent = sh; run = "exit 3" }
  stage later { agent = sh; run = "touch later" }
  stage tidy  { agent = sh; run = "touch tidied"; run_if = always }
}
""")
    result = alfredc(tmp_path, "run", "w.alfred", "-j", "1", timeout=30)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (tmp_path / "tidied").exists() and not (tmp_path / "later").exists()
    assert "stage_cancelled later" in result.stdout


def test_check_warns_about_a_failure_stage_that_never_runs(tmp_path: Path) -> None:
    (tmp_path / "w.alfred").write_text(
        'agent sh {\n  kind = command\n}\n\nworkflow w {\n'
        '  stage a {\n    agent = sh\n    run = "true"\n  }\n'
        '  stage notify {\n    agent = sh\n    run = "true"\n    run_if = failure\n  }\n}\n'
    )
    result = alfredc(tmp_path, "check", "w.alfred")
    assert "warning[A507]" in result.stderr + result.stdout


GROUP = """\
agent sh {
  kind = command
}

workflow deploy {
  param env: string = "prod"
  concurrency_group  = "deploy-${params.env}"
  cancel_in_progress = CANCEL

  stage go {
    agent = sh
    run   = "echo start-${params.env}-$$ >> order.txt; touch started.$$; sleep 3; echo end-$$ >> order.txt"
  }
  stage cleanup after go {
    agent  = sh
    run    = "echo cleanup-$$ >> order.txt"
    run_if = always
  }
}
"""


@pytest.mark.parametrize("cancel", ["false", "true"])
def test_a_second_run_in_the_group_waits_or_cancels_the_first(tmp_path: Path, cancel: str) -> None:
    (tmp_path / "d.alfred").write_text(GROUP.replace("CANCEL", cancel))
    first = start(tmp_path, "run", "d.alfred")
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("started.*")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = alfredc(tmp_path, "run", "d.alfred")
    first_out, _ = first.communicate(timeout=30)
    lines = [line.split("-")[0] for line in (tmp_path / "order.txt").read_text().splitlines()]
    if cancel == "false":
        assert first.returncode == 0 and second.returncode == 0
        assert "waiting for run" in second.stderr
        assert lines == ["start", "end", "cleanup", "start", "end", "cleanup"]  # never overlapping
    else:
        assert first.returncode == 1 and "cancelled" in first_out
        assert second.returncode == 0
        assert lines == ["start", "cleanup", "start", "end", "cleanup"]  # the first never ended


def test_other_groups_do_not_wait(tmp_path: Path) -> None:
    (tmp_path / "d.alfred").write_text(GROUP.replace("CANCEL", "false"))
    first = start(tmp_path, "run", "d.alfred")
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("started.*")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = alfredc(tmp_path, "run", "d.alfred", "-p", "env=staging")
    first.communicate(timeout=30)
    assert "waiting" not in second.stderr
    lines = (tmp_path / "order.txt").read_text().splitlines()
    assert lines[0].startswith("start-prod") and lines[1].startswith("start-staging")
