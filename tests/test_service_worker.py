"""Workers on real processes and a real SQLite queue: races, kill -9, cancel, pause, Ctrl-C."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

from _service_setup import alfredc, flow, lines, start_worker, status, submit, wait_for, write
from conftest import run_alfredc

from alfred_dsl.service import RunQueue


def _enqueue(cwd: Path, count: int = 1, **fields: object) -> list[str]:
    """Queue runs in-process (the CLI's `submit` is tested in test_service_queue.py)."""
    with RunQueue(cwd / ".alfred") as queue:
        return [queue.submit(entry=cwd / "flow.alfred", workflow="flow", **fields).id  # type: ignore[arg-type]
                for _ in range(count)]


def _events(state: Path, run_id: str) -> list[str]:
    with sqlite3.connect(state / "state.db") as db:
        return [r[0] for r in db.execute("SELECT type FROM events WHERE run = ? ORDER BY seq", (run_id,))]


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_two_workers_racing_execute_each_run_exactly_once(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([
        ("one", "echo one $ALFRED_RUN_ID >> out.txt", []),
        ("two", "echo two $ALFRED_RUN_ID >> out.txt", ["one"]),
    ]))
    ids = _enqueue(tmp_path, 10)
    workers = [
        start_worker(tmp_path, "--until-empty", "--max-workflows", "2", log=tmp_path / f"w{i}.log")
        for i in range(2)
    ]
    try:
        for proc in workers:
            assert proc.wait(timeout=60) == 0, (tmp_path / "w0.log").read_text()
    finally:
        for proc in workers:
            _stop(proc)
    counts = Counter(lines(tmp_path / "out.txt"))
    assert counts == Counter({f"{stage} {run_id}": 1 for run_id in ids for stage in ("one", "two")})
    for run_id in ids:
        assert status(tmp_path, run_id)["state"] == "succeeded"


def test_priority_then_age_and_not_before_at(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([("only", "echo $ALFRED_RUN_ID >> order.txt", [])]))
    [low] = _enqueue(tmp_path, priority=0)
    [medium_old] = _enqueue(tmp_path)
    later = submit(tmp_path, "flow.alfred", "--priority", "critical", "--at", "+1h")
    [critical] = _enqueue(tmp_path, priority=3)
    [medium_new] = _enqueue(tmp_path)
    assert status(tmp_path, later)["state"] == "scheduled"
    alfredc("cancel", later, cwd=tmp_path, check=True)  # else --until-empty would wait an hour
    worker = start_worker(tmp_path, "--until-empty")
    assert worker.wait(timeout=60) == 0
    assert lines(tmp_path / "order.txt") == [critical, medium_old, medium_new, low]
    assert status(tmp_path, later)["state"] == "cancelled"


def test_worker_killed_with_sigkill_is_resumed_by_another_and_nothing_that_succeeded_runs_twice(
    tmp_path: Path,
) -> None:
    write(tmp_path / "flow.alfred", flow([
        ("first", "echo first >> out.txt", []),
        # The first execution hangs (the worker is killed during it); the resumed one is quick.
        ("second", "echo second >> out.txt; if [ ! -e hung ]; then touch hung; sleep 30; fi", ["first"]),
        ("third", "echo third >> out.txt", ["second"]),
    ]))
    [run_id] = _enqueue(tmp_path)
    doomed = start_worker(tmp_path, "--lease", "1s", log=tmp_path / "doomed.log")
    try:
        wait_for(lambda: "second" in lines(tmp_path / "out.txt"), what="the second stage to start")
        time.sleep(0.3)  # let the first stage's success be committed
        os.kill(doomed.pid, signal.SIGKILL)  # the worker only: its stage's `sleep 30` is orphaned
        doomed.wait(timeout=10)
    finally:
        _stop(doomed)
    assert status(tmp_path, run_id)["state"] == "running"  # as the dead worker left it
    started = time.monotonic()
    rescuer = start_worker(tmp_path, "--until-empty", "--lease", "1s", log=tmp_path / "rescuer.log")
    try:
        assert rescuer.wait(timeout=60) == 0, (tmp_path / "rescuer.log").read_text()
    finally:
        _stop(rescuer)
    assert time.monotonic() - started < 20  # the orphaned `sleep 30` was not waited for
    assert lines(tmp_path / "out.txt") == ["first", "second", "second", "third"]
    data = status(tmp_path, run_id)
    assert data["state"] == "succeeded"
    states = {s["name"]: s["state"] for s in data["stages"]}
    assert states == dict.fromkeys(("first", "second", "third"), "succeeded")
    assert "resuming" in (tmp_path / "rescuer.log").read_text()
    assert "run_resumed" in _events(tmp_path / ".alfred", run_id)


def test_cancel_arriving_while_a_stage_runs(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([
        ("slow", "echo slow >> out.txt; sleep 30", []),
        ("after_slow", "echo after >> out.txt", ["slow"]),
    ]))
    [run_id] = _enqueue(tmp_path)
    worker = start_worker(tmp_path, "--until-empty")
    try:
        wait_for(lambda: lines(tmp_path / "out.txt"), what="the stage to start")
        sent = time.monotonic()
        result = alfredc("cancel", run_id, cwd=tmp_path)
        assert result.returncode == 0 and "cancel requested" in result.stdout
        assert worker.wait(timeout=30) == 0
        assert time.monotonic() - sent < 10  # the `sleep 30` was killed, not waited for
    finally:
        _stop(worker)
    data = status(tmp_path, run_id)
    assert data["state"] == "cancelled"
    assert {s["name"]: s["state"] for s in data["stages"]} == {"slow": "cancelled", "after_slow": "cancelled"}
    assert lines(tmp_path / "out.txt") == ["slow"]
    assert _events(tmp_path / ".alfred", run_id)[-1] == "run_cancelled"
    again = alfredc("cancel", run_id, cwd=tmp_path)
    assert again.returncode == 1 and "already finished" in again.stderr


def test_pause_lets_the_running_stage_finish_and_starts_nothing_until_resume(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([
        ("a", "echo a-start >> out.txt; sleep 1; echo a-end >> out.txt", []),
        ("b", "echo b >> out.txt", ["a"]),
    ]))
    [run_id] = _enqueue(tmp_path)
    worker = start_worker(tmp_path, "--until-empty")
    try:
        wait_for(lambda: "a-start" in lines(tmp_path / "out.txt"), what="stage a to start")
        assert alfredc("pause", run_id, cwd=tmp_path).returncode == 0
        wait_for(lambda: "a-end" in lines(tmp_path / "out.txt"), what="stage a to finish")
        wait_for(lambda: status(tmp_path, run_id)["state"] == "paused", what="the run to be paused")
        time.sleep(0.5)  # ten control polls: b must still not start
        assert lines(tmp_path / "out.txt") == ["a-start", "a-end"]
        stages = {s["name"]: s["state"] for s in status(tmp_path, run_id)["stages"]}
        assert stages == {"a": "succeeded", "b": "pending"}
        assert alfredc("resume", run_id, cwd=tmp_path).returncode == 0
        assert worker.wait(timeout=30) == 0
    finally:
        _stop(worker)
    assert lines(tmp_path / "out.txt") == ["a-start", "a-end", "b"]
    assert status(tmp_path, run_id)["state"] == "succeeded"
    events = _events(tmp_path / ".alfred", run_id)
    assert events.index("run_paused") < events.index("run_resumed") < events.index("run_completed")


def test_ctrl_c_stops_the_worker_and_leaves_its_run_resumable(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([
        ("quick", "echo quick >> out.txt", []),
        ("hang", "echo hang >> out.txt; if [ ! -e hung ]; then touch hung; sleep 30; fi", ["quick"]),
    ]))
    [run_id] = _enqueue(tmp_path)
    worker = start_worker(tmp_path)
    try:
        wait_for(lambda: "hang" in lines(tmp_path / "out.txt"), what="the hanging stage")
        time.sleep(0.2)
        os.kill(worker.pid, signal.SIGINT)
        assert worker.wait(timeout=20) == 130
    finally:
        _stop(worker)
    data = status(tmp_path, run_id)
    assert data["state"] == "interrupted"
    assert data["queue_state"] == "queued"  # given back at once, no lease to wait for
    again = start_worker(tmp_path, "--until-empty", log=tmp_path / "again.log")
    try:
        assert again.wait(timeout=30) == 0
    finally:
        _stop(again)
    assert status(tmp_path, run_id)["state"] == "succeeded"
    assert lines(tmp_path / "out.txt") == ["quick", "hang", "hang"]


def test_unknown_run_is_a_usage_error_with_a_suggestion(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([("only", "true", [])]))
    [run_id] = _enqueue(tmp_path)
    typo = run_id[:-1] + ("0" if run_id[-1] != "0" else "1")
    for command in ("pause", "resume", "cancel", "status"):
        result = run_alfredc(command, typo, cwd=tmp_path)
        assert result.status == 2, command
        assert f"did you mean `{run_id}`?" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_file_broken_after_submission_ends_the_run_as_invalid(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([("only", "true", [])]))
    [run_id] = _enqueue(tmp_path)
    write(tmp_path / "flow.alfred", flow([("only", "true", ["nowhere"])]))
    worker = start_worker(tmp_path, "--until-empty")
    try:
        assert worker.wait(timeout=30) == 0
    finally:
        _stop(worker)
    data = status(tmp_path, run_id)
    assert data["state"] == "invalid"
    assert "error" in data["error"] and "flow.alfred" in data["error"]
    assert "stages" not in data  # it never started


_TIMED_FLOW = """agent one {{
  kind = command
  run = ["true"]
  concurrency = 1
}}
workflow {name} {{
  stage a {{
    agent = one
    run = "s=$(date +%s.%N); sleep 0.3; e=$(date +%s.%N); echo \\"$s $e {name}\\" >> ../times.txt"
  }}
  stage b {{
    agent = one
    run = "s=$(date +%s.%N); sleep 0.3; e=$(date +%s.%N); echo \\"$s $e {name}\\" >> ../times.txt"
  }}
}}
"""


def _intervals(path: Path) -> list[tuple[float, float, str]]:
    rows = [line.split() for line in lines(path)]
    return sorted((float(s), float(e), name) for s, e, name in rows)


def test_agent_concurrency_holds_across_the_runs_of_one_worker(tmp_path: Path) -> None:
    # Three runs of one file, all claimed at once: the agent (concurrency 1) never runs two
    # stages at once, whichever run they belong to.
    (tmp_path / "p").mkdir()
    write(tmp_path / "p" / "flow.alfred", _TIMED_FLOW.format(name="flow"))
    with RunQueue(tmp_path / ".alfred") as queue:
        ids = [queue.submit(entry=tmp_path / "p" / "flow.alfred", workflow="flow").id for _ in range(3)]
    worker = start_worker(tmp_path, "--until-empty", "--max-workflows", "3")
    try:
        assert worker.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()
    finally:
        _stop(worker)
    for run_id in ids:
        assert status(tmp_path, run_id)["state"] == "succeeded"
    spans = _intervals(tmp_path / "times.txt")
    assert len(spans) == 6
    for (_, end, _), (start, _, _) in itertools.pairwise(spans):
        assert start >= end, f"two stages of agent `one` overlapped: {spans}"


def test_agents_of_different_files_keep_their_own_limit(tmp_path: Path) -> None:
    # Same agent name, two declaring files: two agents, one slot each.
    for name in ("left", "right"):
        (tmp_path / name).mkdir()
        write(tmp_path / name / "flow.alfred", _TIMED_FLOW.format(name=name))
    with RunQueue(tmp_path / ".alfred") as queue:
        for name in ("left", "right"):
            queue.submit(entry=tmp_path / name / "flow.alfred", workflow=name)
    worker = start_worker(tmp_path, "--until-empty", "--max-workflows", "2")
    try:
        assert worker.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()
    finally:
        _stop(worker)
    spans = _intervals(tmp_path / "times.txt")
    assert len(spans) == 4
    overlapping = [
        (a, b) for a, b in itertools.pairwise(spans) if b[0] < a[1] and a[2] != b[2]
    ]
    assert overlapping, f"the two files' agents never ran at once: {spans}"
