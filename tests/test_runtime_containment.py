"""What a stopped or killed run leaves behind: nothing.

Real ``alfredc run`` processes, real signals, real ``kill -9``: two SIGINTs close together
end the run ``interrupted`` with exit status 130; a process that leaves its process group
(``setsid``) dies with its attempt however the attempt is stopped; a runner killed at
any moment leaves no process unrecorded, and ``--resume`` kills what it left before
starting the stages again, under the next attempt number.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ALFREDC = [sys.executable, "-m", "alfred_dsl"]

TWO_SLEEPERS = """
agent sh {
  kind = command
  concurrency = 2
}
workflow w {
  stage s1 {
    agent = sh
    run = "touch started.$ALFRED_STAGE; sleep 30"
  }
  stage s2 {
    agent = sh
    run = "touch started.$ALFRED_STAGE; sleep 30"
  }
}
"""


def _wait_for(condition: object, timeout: float = 20.0, what: str = "condition") -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _run_state(folder: Path) -> str:
    with sqlite3.connect(folder / ".alfred" / "state.db") as db:
        return str(db.execute("SELECT state FROM runs").fetchone()[0])


def _two_sigints(folder: Path, gap_s: float) -> tuple[int, str, str]:
    (folder / "w.alfred").write_text(TWO_SLEEPERS)
    proc = subprocess.Popen(
        [*ALFREDC, "run", "w.alfred"], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: all((folder / f"started.{s}").exists() for s in ("s1", "s2")), what="stages")
        proc.send_signal(signal.SIGINT)
        time.sleep(gap_s)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, _run_state(folder), err


def test_two_sigints_close_together_always_end_the_run_interrupted_with_status_130(tmp_path: Path) -> None:
    # Before the fix about a third of these gave an internal error (exit 3, run left
    # `running`) or died of the second signal: the gap decides where the second one lands.
    trials = 20
    folders = [tmp_path / f"t{i}" for i in range(trials)]
    for folder in folders:
        folder.mkdir()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: _two_sigints(folders[i], 0.0015 * i), range(trials)))
    bad = [(i, r) for i, r in enumerate(results) if r[0] != 130 or r[1] != "interrupted" or "A900" in r[2]]
    assert not bad, bad


# -- setsid: a process that left the attempt's process group dies with the attempt ------------

#: The stage leads a process group; `setsid` puts a `sleep` in a session (and group) of its own.
ESCAPER = """
agent sh {{
  kind = command
}}
workflow w {{
  stage escape {{
    agent = sh
    {timeout}
    run = "setsid sleep 1003 & echo $! > escaped.pid; sleep 300"
  }}
}}
"""

MODES = {"cgroup": {}, "subreaper": {"ALFRED_NO_CGROUP": "1"}}


def _env(mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ALFRED_NO_CGROUP"}
    return {**env, **MODES[mode], "NO_COLOR": "1"}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _escaped(folder: Path) -> int:
    """The pid of the `setsid sleep`, once it runs in a session of its own."""
    pid_file = folder / "escaped.pid"
    _wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the setsid process")
    pid = int(pid_file.read_text())
    _wait_for(lambda: os.getsid(pid) == pid, what="setsid")  # it left the stage's group
    return pid


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)  # leave the machine clean, and fail
            return False
        time.sleep(0.02)
    return True


def _containment_mode(folder: Path, mode: str) -> None:
    """The mode the runner used, from the cgroup column of the attempts it recorded."""
    with sqlite3.connect(folder / ".alfred" / "state.db") as db:
        groups = [row[0] for row in db.execute("SELECT cgroup FROM attempts")]
    assert groups and all((group is not None) == (mode == "cgroup") for group in groups), groups


def _cgroup_writable() -> bool:
    probe = subprocess.run(
        [*ALFREDC, "doctor", "--format", "json"], capture_output=True, text=True, env=_env("cgroup")
    )
    return '"mode": "cgroup"' in probe.stdout


def _skip_unless_possible(mode: str) -> None:
    if mode == "cgroup" and not _cgroup_writable():
        pytest.skip("cgroup v2 is not writable here")




@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("how", ["timeout", "SIGINT", "SIGTERM"])
def test_a_setsid_process_dies_with_its_attempt_stopped_by_alfredc_run(
    tmp_path: Path, mode: str, how: str
) -> None:
    _skip_unless_possible(mode)
    timeout = "timeout = 1s" if how == "timeout" else ""
    (tmp_path / "w.alfred").write_text(ESCAPER.format(timeout=timeout))
    proc = subprocess.Popen(
        [*ALFREDC, "run", "w.alfred", "--grace", "1s"], cwd=tmp_path, env=_env(mode),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        escaped = _escaped(tmp_path)
        if how != "timeout":
            proc.send_signal(getattr(signal, how))
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == (1 if how == "timeout" else 130), out
    assert _gone(escaped), f"the setsid process {escaped} outlived its attempt ({how}, {mode})"
    _containment_mode(tmp_path, mode)


#: The same as an argv command: the runner, not the shell, moves it into its cgroup after the
#: spawn, and the `setsid` is forked at once, likely before that move.
ARGV_ESCAPER = """
agent sh {
  kind = command
}
workflow w {
  stage escape {
    agent = sh
    timeout = 1s
    run = ["sh", "-c", "setsid sleep 1004 & echo $! > escaped.pid; sleep 300"]
  }
}
"""


@pytest.mark.parametrize("mode", list(MODES))
def test_a_setsid_process_forked_at_once_by_an_argv_command_dies_with_its_attempt(
    tmp_path: Path, mode: str
) -> None:
    _skip_unless_possible(mode)
    (tmp_path / "w.alfred").write_text(ARGV_ESCAPER)
    proc = subprocess.Popen(
        [*ALFREDC, "run", "w.alfred", "--grace", "1s"], cwd=tmp_path, env=_env(mode),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        escaped = _escaped(tmp_path)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 1, out
    assert _gone(escaped), f"the setsid process {escaped} outlived its attempt ({mode})"
    _containment_mode(tmp_path, mode)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("how", ["cancel", "worker SIGTERM"])
def test_a_setsid_process_dies_with_its_attempt_stopped_in_a_worker(
    tmp_path: Path, mode: str, how: str
) -> None:
    _skip_unless_possible(mode)
    (tmp_path / "w.alfred").write_text(ESCAPER.format(timeout=""))
    env = {**_env(mode), "PYTHONUNBUFFERED": "1"}
    submitted = subprocess.run(
        [*ALFREDC, "submit", "w.alfred"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    run_id = submitted.stdout.strip()
    worker = subprocess.Popen(
        [*ALFREDC, "worker", "--until-empty", "--poll", "50ms", "--control-interval", "50ms",
         "--grace", "1s"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        escaped = _escaped(tmp_path)
        if how == "cancel":
            cancel = subprocess.run(
                [*ALFREDC, "cancel", run_id], cwd=tmp_path, env=env, capture_output=True, text=True
            )
            assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        else:
            worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=30)
    finally:
        worker.kill()
        worker.wait()
    assert _gone(escaped), f"the setsid process {escaped} outlived its attempt ({how}, {mode}):\n{out}"
    _containment_mode(tmp_path, mode)


# -- kill -9 of the runner at any moment: nothing unrecorded, nothing left, no number reused ---

def _forty_sleepers() -> str:
    stages = "".join(
        f'  stage s{i} {{\n    agent = sh\n'
        f'    run = "echo $ALFRED_ATTEMPT >> att.$ALFRED_STAGE; [ -f quick ] || sleep 1000"\n  }}\n'
        for i in range(40)
    )
    return f"agent sh {{\n  kind = command\n  concurrency = 64\n}}\nworkflow w {{\n{stages}}}\n"


def _processes_of(run_id: str) -> dict[int, tuple[str, int]]:
    """pid -> (stage, attempt) of the live processes whose environment names ``run_id``."""
    found: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            variables = dict(
                v.split(b"=", 1) for v in (entry / "environ").read_bytes().split(b"\0") if b"=" in v
            )
        except OSError:
            continue
        if variables.get(b"ALFRED_RUN_ID") == run_id.encode() and _alive(int(entry.name)):
            stage = variables.get(b"ALFRED_STAGE", b"").decode()
            found[int(entry.name)] = (stage, int(variables.get(b"ALFRED_ATTEMPT", b"0")))
    return found


def _kill_9_trial(folder: Path, mode: str, delay_s: float) -> list[str]:
    """One trial; returns what went wrong (nothing, when all holds)."""
    folder.mkdir()
    (folder / "w.alfred").write_text(_forty_sleepers())
    env = _env(mode)
    proc = subprocess.Popen(
        [*ALFREDC, "run", "w.alfred", "-j", "64", "--grace", "1s"], cwd=folder, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: any(folder.glob("att.*")), what="the first stage")
        time.sleep(delay_s)  # the runner is spawning the forty stages now
    finally:
        proc.kill()  # kill -9
        proc.wait()
    problems: list[str] = []
    with sqlite3.connect(folder / ".alfred" / "state.db") as db:
        run_id = str(db.execute("SELECT id FROM runs").fetchone()[0])
        recorded = {(str(s), int(n)) for s, n in db.execute("SELECT stage, n FROM attempts")}
    # The attempts journal, appended before each spawn: started<TAB>stage<TAB>attempt<TAB>cgroup.
    journal = folder / ".alfred" / "runs" / run_id / "attempts.started"
    if journal.exists():
        recorded |= {(f[1], int(f[2])) for f in (ln.split("\t") for ln in journal.read_text().splitlines())}
    left = _processes_of(run_id)
    unrecorded = sorted({a for a in left.values() if a not in recorded})
    if unrecorded:
        problems.append(f"{len(unrecorded)} attempts ran unrecorded: {unrecorded[:3]}")
    (folder / "quick").touch()
    resumed = subprocess.run(
        [*ALFREDC, "run", "--resume", "last", "-j", "64"], cwd=folder, env=env, capture_output=True,
        text=True, timeout=60,
    )
    if resumed.returncode != 0:
        problems.append(f"resume exited {resumed.returncode}: {resumed.stderr[-300:]}")
    survivors = [pid for pid in left if _alive(pid)]
    if survivors:
        problems.append(f"{len(survivors)} processes of the killed run survived --resume")
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
    for stage_file in folder.glob("att.*"):
        numbers = [int(n) for n in stage_file.read_text().split()]
        if numbers != sorted(set(numbers)):
            problems.append(f"{stage_file.name}: attempt numbers {numbers} (one ran twice)")
    return problems


@pytest.mark.parametrize("mode", list(MODES))
def test_kill_9_at_any_moment_leaves_nothing_unrecorded_and_resume_kills_it_first(
    tmp_path: Path, mode: str
) -> None:
    # Before the fix nearly every trial left 20-30 sleeps with no pid recorded, started
    # again beside the old ones. A bigger loop (ALFRED_KILL9_TRIALS) is in the closing note.
    _skip_unless_possible(mode)
    trials = int(os.environ.get("ALFRED_KILL9_TRIALS", "3"))
    failures = {}
    for i in range(trials):
        problems = _kill_9_trial(tmp_path / f"t{i}", mode, 0.005 * (i % 8))
        if problems:
            failures[i] = problems
    assert not failures, failures


def test_doctor_says_which_containment_mode_is_in_use_and_why(tmp_path: Path) -> None:
    forced = subprocess.run(
        [*ALFREDC, "doctor"], cwd=tmp_path, env=_env("subreaper"), capture_output=True, text=True
    )
    assert forced.returncode == 0, forced.stderr
    assert "containment  subreaper: ALFRED_NO_CGROUP is set" in forced.stdout
    assert f"state dir    {tmp_path / '.alfred'}" in forced.stdout
    default = subprocess.run(
        [*ALFREDC, "doctor", "--format", "json"], cwd=tmp_path, env=_env("cgroup"), capture_output=True,
        text=True,
    )
    assert default.returncode == 0, default.stderr
    contain = json.loads(default.stdout)["containment"]
    assert contain["mode"] in MODES and contain["reason"]
    assert (contain["cgroup"] is not None) == (contain["mode"] == "cgroup")


@pytest.mark.parametrize("mode", list(MODES))
def test_the_next_worker_kills_what_a_worker_killed_by_kill_9_left(tmp_path: Path, mode: str) -> None:
    _skip_unless_possible(mode)
    (tmp_path / "w.alfred").write_text(ESCAPER.format(timeout="").replace(
        'run = "setsid', 'run = "echo $ALFRED_ATTEMPT >> attempts; [ -e hung ] && exit 0; touch hung; setsid'
    ))
    env = {**_env(mode), "PYTHONUNBUFFERED": "1"}
    subprocess.run([*ALFREDC, "submit", "w.alfred"], cwd=tmp_path, env=env, capture_output=True, check=True)
    worker = [*ALFREDC, "worker", "--poll", "50ms", "--lease", "1s", "--grace", "1s"]
    doomed = subprocess.Popen(
        worker, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        escaped = _escaped(tmp_path)
    finally:
        doomed.kill()  # kill -9 of the worker alone: its stage's processes are orphaned
        doomed.wait()
    assert _alive(escaped)
    rescuer = subprocess.run(
        [*worker, "--until-empty"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert rescuer.returncode == 0, rescuer.stdout + rescuer.stderr
    assert "resuming" in rescuer.stdout + rescuer.stderr
    assert _gone(escaped), f"the setsid process {escaped} of the dead worker's attempt survived ({mode})"
    assert (tmp_path / "attempts").read_text().split() == ["1", "2"]
    _containment_mode(tmp_path, mode)
