"""Captured output of command stages: read from a pipe, the log file created at the first byte."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from _runtime_plans import plan, run_plan, stage

from alfred_dsl.runtime import _process


def alfredc(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True, timeout=60
    )


def test_a_silent_stage_has_no_log_file_and_logs_prints_nothing(tmp_path: Path) -> None:
    result, _ = run_plan(plan([stage("quiet", tmp_path, run=["true"])]), tmp_path / ".alfred")
    assert result.ok
    assert not (tmp_path / ".alfred" / "runs" / result.run_id / "quiet.1.log").exists()
    done = alfredc("logs", "last", "quiet", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def test_more_than_a_megabyte_of_output_is_captured_whole_and_in_order(tmp_path: Path) -> None:
    # Far more than a pipe holds (64 KB): the child would block for ever if nobody read.
    script = ('i=0; while [ $i -lt 40000 ]; do echo "line $i of the chatty stage"; i=$((i+1)); done;'
              ' echo end >&2')
    result, _ = run_plan(plan([stage("chatty", tmp_path, run=["sh", "-c", script], timeout_s=60)]),
                         tmp_path / ".alfred")
    assert result.ok, result.stages["chatty"].error
    expected = "".join(f"line {i} of the chatty stage\n" for i in range(40000)) + "end\n"
    assert len(expected) > 1_000_000
    log = tmp_path / ".alfred" / "runs" / result.run_id / "chatty.1.log"
    assert log.read_text() == expected
    assert alfredc("logs", "last", "chatty", cwd=tmp_path).stdout.decode() == expected


def test_a_background_grandchild_holding_stdout_does_not_keep_the_stage_running(tmp_path: Path) -> None:
    # The grandchild inherits the pipe and sleeps with it open; the stage ends with its leader.
    script = 'sleep 20 & echo $! > grandchild.pid; echo leader done'
    started = time.monotonic()
    result, _ = run_plan(plan([stage("bg", tmp_path, run=["sh", "-c", script]),
                               stage("next", tmp_path, run=["sh", "-c", "echo next ran"], after=["bg"])]),
                         tmp_path / ".alfred")
    elapsed = time.monotonic() - started
    try:
        assert result.ok
        assert elapsed < 10
        run_dir = tmp_path / ".alfred" / "runs" / result.run_id
        assert (run_dir / "bg.1.log").read_text() == "leader done\n"
        assert (run_dir / "next.1.log").read_text() == "next ran\n"
    finally:
        os.kill(int((tmp_path / "grandchild.pid").read_text()), signal.SIGKILL)


def test_output_written_before_a_timeout_is_kept(tmp_path: Path) -> None:
    result, _ = run_plan(plan([stage("slow", tmp_path, run=["sh", "-c", "echo started; exec sleep 30"],
                                     timeout_s=0.5)]), tmp_path / ".alfred")
    assert result.stages["slow"].error == "timed out after 0.5s"
    assert (tmp_path / ".alfred" / "runs" / result.run_id / "slow.1.log").read_text() == "started\n"


def test_a_secret_is_masked_even_where_output_arrives_in_several_reads(tmp_path: Path) -> None:
    # 65,530 bytes of padding put the secret across the first 64 KB read of the pipe.
    secret = "hunter2-" + uuid.uuid4().hex
    script = 'head -c 65530 /dev/zero | tr "\\0" x; echo "$API_TOKEN"; echo "again $API_TOKEN" >&2'
    result, _ = run_plan(plan([stage("leaky", tmp_path, run=["sh", "-c", script])], secrets=["API_TOKEN"]),
                         tmp_path / ".alfred", env={"API_TOKEN": secret, "PATH": "/usr/bin:/bin"})
    assert result.ok
    log = (tmp_path / ".alfred" / "runs" / result.run_id / "leaky.1.log").read_text()
    assert log == "x" * 65530 + "***\nagain ***\n"
    shown = alfredc("logs", "last", "leaky", cwd=tmp_path).stdout.decode()
    assert secret not in shown and shown.endswith("again ***\n")


def test_without_epoll_the_polling_fallback_captures_the_same(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Where there is no pidfd or epoll (not Linux), the exit is polled and the pipe read at each look.
    monkeypatch.setattr(_process, "_HAS_EPOLL", False)
    script = 'head -c 300000 /dev/zero | tr "\\0" y; sleep 20 & echo $! > grandchild.pid; echo " done"'
    try:
        result, _ = run_plan(plan([stage("chatty", tmp_path, run=["sh", "-c", script], timeout_s=10),
                                   stage("quiet", tmp_path, run=["true"])]), tmp_path / ".alfred")
        assert result.ok, result.stages["chatty"].error
        run_dir = tmp_path / ".alfred" / "runs" / result.run_id
        assert (run_dir / "chatty.1.log").read_text() == "y" * 300000 + " done\n"
        assert not (run_dir / "quiet.1.log").exists()
    finally:
        os.kill(int((tmp_path / "grandchild.pid").read_text()), signal.SIGKILL)
