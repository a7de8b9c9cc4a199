"""Many processes opening one fresh state directory at once: never "database is locked".

SQLite's switch to WAL does not wait on the busy timeout, so two processes setting up a fresh
database in the same millisecond used to fail one of them. These tests start real processes
in step (each imports alfred first, then all wait for one instant) so that their opens
collide, or hold the database's write lock while they open it (which reproduces the failure
every time, however loaded the machine). ALFRED_STATE_DIR_TRIALS=N repeats the racing tests
N times and adds N rounds of 8 `alfredc run` + 3 workers started at one instant (too slow for
every test run, and on a loaded 2-core machine the race rarely shows at that level).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

STRESS_TRIALS = int(os.environ.get("ALFRED_STATE_DIR_TRIALS", "0"))
TRIALS = max(STRESS_TRIALS, 1)

#: Wait for an instant given in argv: sleep until just before it, then spin, so that the
#: processes start within microseconds of each other.
_AT_THE_INSTANT = """
def wait_until(instant):
    while (left := instant - time.time()) > 0.002:
        time.sleep(left - 0.002)
    while time.time() < instant:
        pass
"""

#: Open fresh directories 1..COUNT under BASE, meeting the other openers before each one
#: (a spin barrier in shared memory: each opener writes how far it got in its own slot).
OPENER = """
import mmap, struct, sys
from alfred_dsl.runtime import StateStore
from alfred_dsl.service import RunQueue
base, board, me, openers, count, kind = sys.argv[1:7]
me, openers, count = int(me), int(openers), int(count)
opener = StateStore if kind == "store" else RunQueue
with open(board, "r+b") as handle:
    slots = mmap.mmap(handle.fileno(), 8 * openers)
failed = 0
for i in range(1, count + 1):
    struct.pack_into("q", slots, 8 * me, i)
    while min(struct.unpack_from(f"{openers}q", slots)) < i:
        pass
    try:
        opener(f"{base}/{i}").close()
    except Exception as exc:
        failed += 1
        print(f"{i}: {exc}")
sys.exit(1 if failed else 0)
"""


def _check_database(state_dir: Path, tables: set[str]) -> None:
    db = sqlite3.connect(state_dir / "state.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        present = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables <= present, f"{state_dir}: missing {tables - present}"
    finally:
        db.close()


@pytest.mark.parametrize("trial", range(TRIALS))
def test_processes_opening_fresh_state_directories_at_once_all_succeed(tmp_path: Path, trial: int) -> None:
    # Four processes (two open the runtime's store, two the service's queue) open 40 fresh
    # directories together. Before the set-up lock 1 to 9 directories in a hundred failed one
    # of their openers with "database is locked" on a loaded 2-core machine.
    count, kinds = 40, ("store", "queue", "store", "queue")
    board = tmp_path / "board"
    board.write_bytes(bytes(8 * len(kinds)))
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, *map(str, (tmp_path, board, me, len(kinds), count)), kind],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for me, kind in enumerate(kinds)
    ]
    outputs = [opener.communicate(timeout=120)[0] for opener in openers]
    failures = [output for opener, output in zip(openers, outputs, strict=True) if opener.returncode != 0]
    assert not failures, "".join(failures)
    for i in range(1, count + 1):
        _check_database(tmp_path / str(i), {"runs", "stages", "attempts", "events", "queue", "workers"})


#: `python -m alfred_dsl ARGS...` started at an instant: alfred is imported first (the slow
#: part, which would spread the processes over a second), then the CLI runs as `-m` runs it.
CLI_AT = f"""
import runpy, sys, time
import alfred_dsl.cli, alfred_dsl.runtime, alfred_dsl.service
{_AT_THE_INSTANT}
wait_until(float(sys.argv.pop(1)))
runpy.run_module("alfred_dsl", run_name="__main__", alter_sys=True)
"""

FLOW = """\
agent sh {
  kind = command
  run = ["true"]
}
workflow flow {
  stage one {
    agent = sh
    run = "echo one >> out.txt"
  }
}
"""


#: What a test starts on one state directory: 8 runs and 3 workers, as a busy user would.
COMMANDS = [["run", "flow.alfred"]] * 8 + [["worker", "--until-empty", "--poll", "50ms"]] * 3


def _start(cwd: Path, launcher: list[str]) -> list[subprocess.Popen[str]]:
    (cwd / "flow.alfred").write_text(FLOW, encoding="utf-8")
    env = {**os.environ, "NO_COLOR": "1"}
    return [
        subprocess.Popen([*launcher, *command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for command in COMMANDS
    ]


def _check_finished(cwd: Path, procs: list[subprocess.Popen[str]]) -> None:
    results = [(command, proc.communicate(timeout=120)[0], proc.returncode)
               for command, proc in zip(COMMANDS, procs, strict=True)]
    for command, output, status in results:
        assert "database is locked" not in output, output
        assert "Traceback" not in output, output
        assert status == 0, f"alfredc {' '.join(command)} -> {status}\n{output}"
    _check_database(cwd / ".alfred", {"runs", "stages", "queue", "workers"})
    with sqlite3.connect(cwd / ".alfred" / "state.db") as db:
        states = [row[0] for row in db.execute("SELECT state FROM runs")]
    assert states == ["succeeded"] * 8
    assert (cwd / "out.txt").read_text(encoding="utf-8").splitlines() == ["one"] * 8


@pytest.mark.parametrize("trial", range(STRESS_TRIALS))
def test_eight_runs_and_three_workers_started_at_once_on_one_fresh_state_directory(
    tmp_path: Path, trial: int
) -> None:
    procs = _start(tmp_path, [sys.executable, "-c", CLI_AT, str(time.time() + 1.5)])
    _check_finished(tmp_path, procs)


def _has_open(pid: int, path: Path) -> bool:
    try:
        return any(os.path.realpath(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # it exited meanwhile
        return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the processes' open files")
def test_runs_and_workers_wait_while_another_process_creates_the_database(tmp_path: Path) -> None:
    # The race, held open: another process (an older alfred that takes no set-up lock, or an
    # alfred a microsecond ahead) has created state.db and holds its write lock. SQLite's
    # switch to WAL then fails at once, whatever the busy timeout: every process below
    # failed with "database is locked" before the fix. Now they wait for it.
    (tmp_path / ".alfred").mkdir()
    database = (tmp_path / ".alfred" / "state.db").resolve()
    creator = sqlite3.connect(database, isolation_level=None)
    creator.execute("BEGIN IMMEDIATE")
    procs = _start(tmp_path, [sys.executable, "-m", "alfred_dsl"])
    try:
        # Hold the lock until every process is inside its open (or has given up).
        deadline = time.monotonic() + 60
        while not all(proc.poll() is not None or _has_open(proc.pid, database) for proc in procs):
            assert time.monotonic() < deadline, "the processes never opened the database"
            time.sleep(0.02)
        time.sleep(0.2)
    finally:
        creator.execute("COMMIT")
        creator.close()
    _check_finished(tmp_path, procs)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the processes' open files")
def test_a_run_waits_while_another_process_sets_up_the_state_directory(tmp_path: Path) -> None:
    # `state.lock` held (as by a process creating the database): a run neither creates nor
    # touches state.db until it is released, then runs normally.
    (tmp_path / "flow.alfred").write_text(FLOW, encoding="utf-8")
    (tmp_path / ".alfred").mkdir()
    lock = (tmp_path / ".alfred" / "state.lock").resolve()
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        run = subprocess.Popen([sys.executable, "-m", "alfred_dsl", "run", "flow.alfred"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while run.poll() is None and not _has_open(run.pid, lock):
            assert time.monotonic() < deadline, "the run never opened state.lock"
            time.sleep(0.02)
        time.sleep(0.3)
        assert run.poll() is None, f"the run did not wait for the set-up lock:\n{run.communicate()[0]}"
        assert not (tmp_path / ".alfred" / "state.db").exists()
    output = run.communicate(timeout=60)[0]
    assert run.returncode == 0, output
    _check_database(tmp_path / ".alfred", {"runs", "stages"})
