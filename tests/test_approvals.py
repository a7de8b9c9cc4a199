"""Approval stages and budgets, with real processes: a run waits in one process and is
decided from another (also after kill -9), and a budget stops a run before it overspends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import alfred_dsl

PY = sys.executable

GATED = """\
agent sh {{ kind = command; run = ["/bin/sh", "-c", "echo ok"] }}

workflow release {{
  approvers = {{ lead = ["alice", "bob"] }}

  stage build {{ agent = sh }}

  stage gate after build {{
    approve    = {{ by = ["lead"], timeout = {timeout}, on_timeout = {on_timeout} }}
    on_failure = continue
  }}

  stage ship after gate {{
    agent = sh
    run   = ["{py}", "-c", "open('shipped', 'w').write('yes')"]
  }}

  stage rollback after gate {{
    agent = sh
    when  = stages.gate.outputs.decision == "rejected"
    run   = ["{py}", "-c", "open('rolled-back', 'w').write('yes')"]
  }}
}}
"""


def _write(tmp_path: Path, timeout: str = "1h", on_timeout: str = "reject") -> Path:
    path = tmp_path / "release.alfred"
    path.write_text(GATED.format(timeout=timeout, on_timeout=on_timeout, py=PY), encoding="utf-8")
    return path


def _alfredc(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "alfred_dsl", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PY, "-m", "alfred_dsl", "run", "release.alfred", *args], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "NO_COLOR": "1"},
    )


def _wait_until_waiting(tmp_path: Path, proc: subprocess.Popen[str] | None = None) -> dict[str, Any]:
    """The run's show JSON once its gate waits for a decision."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = _alfredc(tmp_path, "show", "last", "--format", "json")
        if shown.returncode == 0:
            data: dict[str, Any] = json.loads(shown.stdout)
            gate = data.get("approvals", {}).get("gate")
            if gate is not None and gate["decision"] is None:
                return data
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended before waiting: {proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.1)
    pytest.fail("the run never waited for its approval")


def _show(tmp_path: Path) -> dict[str, Any]:
    shown = _alfredc(tmp_path, "show", "last", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    data: dict[str, Any] = json.loads(shown.stdout)
    return data


def _states(data: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["state"] for s in data["stages"]}


def test_approve_from_another_process(tmp_path: Path) -> None:
    _write(tmp_path)
    proc = _start(tmp_path)
    try:
        _wait_until_waiting(tmp_path, proc)
        decided = _alfredc(tmp_path, "approve", "last", "gate", "--as", "alice", "-m", "ship it")
        assert decided.returncode == 0, decided.stderr
        assert "approved by alice" in decided.stdout
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "waiting for approval by lead (alfredc approve" in out
    data = _show(tmp_path)
    assert _states(data) == {
        "build": "succeeded", "gate": "succeeded", "ship": "succeeded", "rollback": "skipped",
    }
    gate = next(s for s in data["stages"] if s["name"] == "gate")
    assert gate["outputs"]["decision"] == "approved"
    assert gate["outputs"]["by"] == "alice" and gate["outputs"]["comment"] == "ship it"
    assert data["approvals"]["gate"]["decided_by"] == "alice"
    assert (tmp_path / "shipped").exists() and not (tmp_path / "rolled-back").exists()


def test_reject_runs_the_rejection_path(tmp_path: Path) -> None:
    _write(tmp_path)
    proc = _start(tmp_path)
    try:
        _wait_until_waiting(tmp_path, proc)
        # Through the Python API, from this (third) process.
        decision = alfred_dsl.reject("last", "gate", user="bob", comment="not today",
                                     state_dir=tmp_path / ".alfred")
        assert decision.decision == "rejected"
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1, out
    data = _show(tmp_path)
    assert _states(data) == {
        "build": "succeeded", "gate": "failed", "ship": "upstream_failed", "rollback": "succeeded",
    }
    gate = next(s for s in data["stages"] if s["name"] == "gate")
    assert gate["error"] == "rejected by bob: not today"
    assert (tmp_path / "rolled-back").exists() and not (tmp_path / "shipped").exists()


def test_decision_taken_while_killed_is_honoured_on_resume(tmp_path: Path) -> None:
    _write(tmp_path)
    proc = _start(tmp_path)
    try:
        waiting = _wait_until_waiting(tmp_path, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    # Nobody runs it now; the decision is recorded all the same.
    decided = _alfredc(tmp_path, "approve", waiting["id"][:12], "gate", "--as", "bob")
    assert decided.returncode == 0, decided.stderr
    resumed = _alfredc(tmp_path, "run", "release.alfred", "--resume", "last")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    data = _show(tmp_path)
    assert data["id"] == waiting["id"]
    assert _states(data)["ship"] == "succeeded"
    gate = next(s for s in data["stages"] if s["name"] == "gate")
    assert gate["outputs"]["by"] == "bob"


def test_killed_run_resumes_still_waiting(tmp_path: Path) -> None:
    _write(tmp_path)
    proc = _start(tmp_path)
    try:
        _wait_until_waiting(tmp_path, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    resumed = _start(tmp_path, "--resume", "last")
    try:
        _wait_until_waiting(tmp_path, resumed)
        assert _alfredc(tmp_path, "approve", "last", "gate", "--as", "alice").returncode == 0
        out, _ = resumed.communicate(timeout=30)
    finally:
        resumed.kill()
    assert resumed.returncode == 0, out
    assert _states(_show(tmp_path))["ship"] == "succeeded"


def test_timeout_takes_the_on_timeout_decision(tmp_path: Path) -> None:
    _write(tmp_path, timeout="1s", on_timeout="approve")
    started = time.monotonic()
    result = _alfredc(tmp_path, "run", "release.alfred")
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started >= 1
    gate = next(s for s in _show(tmp_path)["stages"] if s["name"] == "gate")
    assert gate["outputs"]["decision"] == "approved" and gate["outputs"]["by"] == "timeout"


def test_deciding_refuses_bad_requests(tmp_path: Path) -> None:
    _write(tmp_path)
    proc = _start(tmp_path)
    try:
        _wait_until_waiting(tmp_path, proc)
        typo = _alfredc(tmp_path, "approve", "last", "gat", "--as", "alice")
        assert typo.returncode == 2 and "did you mean `gate`?" in typo.stderr
        stranger = _alfredc(tmp_path, "approve", "last", "gate", "--as", "mallory")
        assert stranger.returncode == 2 and "`mallory` may not decide stage `gate`" in stranger.stderr
        not_waiting = _alfredc(tmp_path, "approve", "last", "ship", "--as", "alice")
        assert not_waiting.returncode == 2 and "waiting: `gate`" in not_waiting.stderr
        assert _alfredc(tmp_path, "reject", "last", "gate", "--as", "alice").returncode == 0
        again = _alfredc(tmp_path, "approve", "last", "gate", "--as", "bob")
        assert again.returncode == 2, again.stderr
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert "Traceback" not in typo.stderr + stranger.stderr + again.stderr


def test_check_reports_approval_problems(tmp_path: Path) -> None:
    path = tmp_path / "w.alfred"
    path.write_text(
        'workflow w {\n  approvers = { lead = ["alice"] }\n'
        '  stage gate { approve = { by = ["laed"] } }\n}\n',
        encoding="utf-8",
    )
    result = _alfredc(tmp_path, "check", "w.alfred")
    assert result.returncode == 1
    assert "error[A217]" in result.stdout and "did you mean `lead`?" in result.stdout
    assert "error[A312]" in result.stdout


BUDGETED = """\
agent spender {{
  kind = command
  run  = ["{py}", "-c", "import os; open(os.environ['ALFRED_OUTPUTS'], 'a').write({spend})"]
  cost = {{ usd = 2.5 }}
}}

workflow costly {{
  budget = {{ usd = 5 }}

  stage one {{ agent = spender }}
  stage two after one {{ agent = spender }}
  stage three after two {{ agent = spender }}
}}
"""


def test_budget_stops_the_run_before_it_overspends(tmp_path: Path) -> None:
    spend = "'cost_usd=2.10\\\\ntokens=500\\\\n'"
    (tmp_path / "release.alfred").write_text(BUDGETED.format(py=PY, spend=spend), encoding="utf-8")
    check = _alfredc(tmp_path, "check", "release.alfred")
    assert "warning[A506]" in check.stdout and "usd 7.50 > 5" in check.stdout
    result = _alfredc(tmp_path, "run", "release.alfred")
    # one and two spend 4.20; three declares 2.50: 6.70 would pass 5, so it never starts.
    assert result.returncode == 1, result.stdout + result.stderr
    assert "budget exceeded: usd 6.70 > 5" in result.stdout
    data = _show(tmp_path)
    assert _states(data) == {"one": "succeeded", "two": "succeeded", "three": "cancelled"}
    assert data["reason"] == "budget exceeded: usd 6.70 > 5"
    assert data["spend"]["spent"] == {"usd": pytest.approx(4.2), "tokens": 1000}
    text = _alfredc(tmp_path, "show", "last").stdout
    assert "spend: usd 4.20 of 5" in text and "budget exceeded" in text
