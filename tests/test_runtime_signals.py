"""Interrupting a run: SIGINT and SIGTERM stop it cleanly (exit 130), ``kill -9`` loses
nothing that succeeded; both runs continue with resume. The runner is a real subprocess
(``tests/_runtime_plans.py``, which executes a plan the way ``alfredc run`` does)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alfred_dsl.runtime import StateStore

DRIVER = Path(__file__).with_name("_runtime_plans.py")

#: Counts its runs in runs.NAME; blocks (with a grandchild) while the file `block` exists.
STEP = (
    'echo x >> "runs.$ALFRED_STAGE"; echo "out=$ALFRED_STAGE" > "$ALFRED_OUTPUTS"; '
    'if [ -f block ]; then sleep 30 & echo $! > "$ALFRED_STAGE.grandchild"; '
    'echo $$ > "$ALFRED_STAGE.pid"; wait; fi'
)


def _spec(tmp_path: Path) -> Path:
    quick = STEP.replace("if [ -f block ]", "if false")
    stages = [
        {"name": "one", "cwd": str(tmp_path), "run": ["sh", "-c", quick]},
        {"name": "two", "cwd": str(tmp_path), "run": ["sh", "-c", STEP], "after": ["one"]},
        {"name": "three", "cwd": str(tmp_path), "run": ["sh", "-c", STEP], "after": ["two"]},
        {"name": "side", "cwd": str(tmp_path), "run": ["sh", "-c", quick]},
    ]
    spec = {"stages": stages, "agents": [{"name": "worker", "concurrency": 2}], "grace": 0.5}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def _start(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(DRIVER), str(_spec(tmp_path)), str(tmp_path / "state"), *extra],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for(path: Path, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z"


def _gone_soon(pids: list[int], timeout: float = 3) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.02)
    return False


def _resume_and_check(tmp_path: Path, run_id: str) -> None:
    (tmp_path / "block").unlink()
    resumed = subprocess.run(
        [sys.executable, str(DRIVER), str(_spec(tmp_path)), str(tmp_path / "state"), "last"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    runs = {n: len((tmp_path / f"runs.{n}").read_text().split()) for n in ("one", "two", "three", "side")}
    assert runs == {"one": 1, "two": 2, "three": 1, "side": 1}  # only the interrupted stage ran again
    with StateStore(tmp_path / "state") as store:
        record = store.run(run_id)
        assert record is not None and record.state == "succeeded"
        stages = {s.name: (s.state, dict(s.outputs)) for s in store.stages(run_id)}
    assert stages == {n: ("succeeded", {"out": n}) for n in ("one", "two", "three", "side")}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_kills_its_processes_and_the_run_resumes(tmp_path: Path, signum: int) -> None:
    (tmp_path / "block").touch()
    proc = _start(tmp_path)
    pids = [_wait_for(tmp_path / "two.pid"), _wait_for(tmp_path / "two.grandchild")]
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert _gone_soon(pids)
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["type"] == "run_interrupted"
    assert events[-1]["data"]["signal"] == signal.Signals(signum).name
    run_id = events[0]["run_id"]
    with StateStore(tmp_path / "state") as store:
        record = store.run(run_id)
        assert record is not None and record.state == "interrupted"
        assert {s.name: s.state for s in store.stages(run_id)}["two"] == "cancelled"
    _resume_and_check(tmp_path, run_id)


def test_a_second_sigint_skips_the_grace_period(tmp_path: Path) -> None:
    (tmp_path / "block").touch()
    stubborn = STEP.replace("sleep 30 &", "sh -c 'trap \"\" TERM INT; sleep 30' &")
    spec = json.loads(_spec(tmp_path).read_text())
    spec["grace"] = 20
    spec["stages"][1]["run"] = ["sh", "-c", "trap '' TERM; " + stubborn]
    (tmp_path / "spec2.json").write_text(json.dumps(spec))
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER), str(tmp_path / "spec2.json"), str(tmp_path / "state")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    pids = [_wait_for(tmp_path / "two.pid"), _wait_for(tmp_path / "two.grandchild")]
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    assert proc.poll() is None  # waiting out the 20 s grace period for the stubborn group
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert time.monotonic() - started < 3
    assert proc.returncode == 130 and "Traceback" not in err
    assert _gone_soon(pids)


def test_kill_9_loses_no_succeeded_stage_and_resume_finishes_the_run(tmp_path: Path) -> None:
    (tmp_path / "block").touch()
    proc = _start(tmp_path)
    child, grandchild = _wait_for(tmp_path / "two.pid"), _wait_for(tmp_path / "two.grandchild")
    time.sleep(0.2)  # let `one` and `side` be committed (one scheduler tick)
    proc.kill()
    out, _ = proc.communicate(timeout=10)
    run_id = json.loads(out.splitlines()[0])["run_id"]
    with StateStore(tmp_path / "state") as store:
        record = store.run(run_id)
        assert record is not None and record.state == "running"  # nobody could record the end
    # The stage's processes outlived alfred; resuming kills them before running it again.
    assert _alive(child) and _alive(grandchild)
    _resume_and_check(tmp_path, run_id)
    assert _gone_soon([child, grandchild])


def test_a_run_being_executed_cannot_be_resumed_by_a_second_process(tmp_path: Path) -> None:
    (tmp_path / "block").touch()
    proc = _start(tmp_path)
    try:
        _wait_for(tmp_path / "two.pid")
        second = subprocess.run(
            [sys.executable, str(DRIVER), str(_spec(tmp_path)), str(tmp_path / "state"), "last"],
            cwd=tmp_path, capture_output=True, text=True, timeout=30,
        )
        assert second.returncode != 0
        assert "is still running" in second.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
