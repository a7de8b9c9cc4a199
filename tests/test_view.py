"""The run view (plain, quiet, live under a real pseudo-terminal), the --events file and --dry-run."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from _runtime_plans import agent, plan, stage
from _terminal import run_on_terminal

from alfred_dsl.compiler._plan import Plan
from alfred_dsl.runtime import Event, EventBus, RunOptions, RunResult, StateStore, execute
from alfred_dsl.runtime._dryrun import dry_run, dry_run_json, dry_run_text
from alfred_dsl.runtime._eventlog import (
    EventLogError,
    attach as attach_events,
    open_event_log,
    read_event_log,
)
from alfred_dsl.runtime._view import attach as attach_view, choose_mode, open_view

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _events() -> list[Event]:
    def ev(
        kind: str, dt: float, stage: str | None = None, attempt: int | None = None, **data: object
    ) -> Event:
        return Event(type=kind, run_id="R1", time=T0 + dt, stage=stage, attempt=attempt, data=data)

    return [
        ev("run_started", 0, workflow="release", stages=["build", "test", "publish"], state_dir="/s"),
        ev("stage_ready", 0, "build"),
        ev("stage_started", 0, "build", 1, agent="worker", log="/s/runs/R1/build.1.log"),
        ev("stage_retrying", 1, "build", 1, error="exit status 1", delay_s=0.5),
        ev("stage_started", 1.5, "build", 2, agent="worker", log="/s/runs/R1/build.2.log"),
        ev("stage_succeeded", 2.25, "build", 2, outputs={}, duration_s=2.25),
        ev("stage_started", 2.5, "test", 1, agent="tester", log="/s/runs/R1/test.1.log"),
        ev("stage_failed", 3.5, "test", 1, error="exit status 2", exit_code=2, duration_s=1.0),
        ev("stage_upstream_failed", 3.5, "publish", upstream="test"),
        ev("run_failed", 3.5, state="failed", counts={"succeeded": 1, "failed": 1, "upstream_failed": 1},
           failed=["test"], duration_s=3.5),
    ]


def _plan() -> Plan:
    return plan([stage(n, "/tmp") for n in ("build", "test", "publish")], workflow="release")


def _render(mode: str) -> str:
    stream = io.StringIO()
    with open_view(_plan(), mode=mode, stream=stream) as handle:  # type: ignore[arg-type]
        for event in _events():
            handle(event)
    return stream.getvalue()


def test_plain_view_prints_one_line_per_event_and_the_summary() -> None:
    assert _render("plain") == (
        "22:13:20 run_started release (run R1, 3 stages)\n"
        "22:13:20 stage_started build (agent worker, attempt 1)\n"
        "22:13:21 stage_retrying build (attempt 1 failed: exit status 1, retry in 0.5s)\n"
        "22:13:21 stage_started build (agent worker, attempt 2)\n"
        "22:13:22 stage_succeeded build (2.2s)\n"
        "22:13:22 stage_started test (agent tester, attempt 1)\n"
        "22:13:23 stage_failed test (attempt 1, exit status 2, 1.0s, log /s/runs/R1/test.1.log)\n"
        "22:13:23 stage_upstream_failed publish (upstream test failed)\n"
        "22:13:23 run_failed release (1 succeeded, 1 failed, 1 upstream_failed in 3.5s)\n"
        "run R1 (release) failed: 1 succeeded, 1 failed, 1 upstream_failed in 3.5s\n"
    )


def test_quiet_view_prints_only_failures_and_the_summary() -> None:
    assert _render("quiet") == (
        "error: stage_failed test (attempt 1, exit status 2, 1.0s, log /s/runs/R1/test.1.log)\n"
        "run R1 (release) failed: 1 succeeded, 1 failed, 1 upstream_failed in 3.5s\n"
    )


def test_a_run_that_never_ends_still_gets_a_summary_line() -> None:
    stream = io.StringIO()
    with open_view(_plan(), mode="quiet", stream=stream) as handle:
        for event in _events()[:5]:
            handle(event)
    assert stream.getvalue() == "run R1 (release) unfinished: 2 pending, 1 running\n"


def test_mode_is_plain_off_a_terminal_and_quiet_when_asked() -> None:
    assert choose_mode(io.StringIO()) == "plain"
    assert choose_mode(io.StringIO(), quiet=True) == "quiet"


def test_view_of_a_real_run_ends_with_its_summary(tmp_path: Path) -> None:
    stages = [
        stage("a", tmp_path, run=["true"]),
        stage("b", tmp_path, run=["sh", "-c", "exit 3"], after=["a"]),
    ]
    stream = io.StringIO()
    the_plan = plan(stages)
    bus = EventBus()
    finish = attach_view(bus, the_plan, quiet=False, colour=False, stream=stream)
    result = _execute(the_plan, tmp_path / "state", bus)
    finish(result)
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 2)[1] for line in lines[:-1]] == [
        "run_started", "stage_started", "stage_succeeded", "stage_started", "stage_failed", "run_failed",
    ]
    assert "exit status 3" in lines[4]
    took = lines[-1].rsplit(" ", 1)[1]
    assert lines[-1] == f"run {result.run_id} (wf) failed: 1 succeeded, 1 failed in {took}"


def _execute(the_plan: Plan, state: Path, bus: EventBus, env: dict[str, str] | None = None) -> RunResult:
    """Run ``the_plan`` for real, its events delivered to ``bus`` (the subscriber under test)."""
    store = StateStore(state)
    try:
        options = RunOptions(jitter=0.0, env=env)
        return trio.run(lambda: execute(the_plan, store=store, options=options, bus=bus))
    finally:
        store.close()


# -- the live view, on a real pseudo-terminal ------------------------------------------

_LIVE_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from _runtime_plans import plan, stage
from alfred_dsl.runtime import Event
from alfred_dsl.runtime._view import choose_mode, open_view
p = plan([stage(n, "/tmp") for n in ("build", "test")], workflow="release")
mode = choose_mode(sys.stdout)
print("mode=" + mode, flush=True)
t = time.time()
with open_view(p, mode=mode, stream=sys.stdout) as h:
    h(Event(type="run_started", run_id="R9", time=t, data={{"stages": ["build", "test"]}}))
    h(Event(type="stage_started", run_id="R9", time=t, stage="build", attempt=1, data={{"agent": "worker"}}))
    time.sleep(0.3)
    h(Event(type="stage_succeeded", run_id="R9", time=t, stage="build", attempt=1,
            data={{"duration_s": 0.6}}))
    h(Event(type="stage_started", run_id="R9", time=t, stage="test", attempt=2, data={{"agent": "tester"}}))
    time.sleep(0.3)
    h(Event(type="stage_succeeded", run_id="R9", time=t, stage="test", attempt=2,
            data={{"duration_s": 0.6}}))
    h(Event(type="run_completed", run_id="R9", time=t, data={{"state": "succeeded",
        "counts": {{"succeeded": 2}}, "duration_s": 1.2}}))
print("after-view", flush=True)
"""


def _run_in_pty(script: str, env: dict[str, str]) -> tuple[int, bytes]:
    return run_on_terminal([sys.executable, "-c", script], env, timeout=20)


def _pty_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(TERM="xterm-256color", COLUMNS="100", LINES="30", **extra)
    return env


def test_live_view_draws_progress_and_running_stages_and_ends_cleanly() -> None:
    script = _LIVE_SCRIPT.format(tests=str(Path(__file__).parent))
    status, output = _run_in_pty(script, _pty_env())
    text = output.decode("utf-8", errors="replace")
    assert status == 0, text
    assert "mode=live" in text
    assert "1/2 stages" in text                          # the progress bar's counter
    assert "agent tester" in text and "attempt 2" in text  # a running stage's line
    assert "━" in text                                   # the bar itself
    assert "✔ build succeeded (0.6s)" in text            # a line per finished stage
    assert "\x1b[" in text                               # colour on a terminal
    assert "\x1b[?25l" in text and "\x1b[?25h" in text   # cursor hidden, then restored
    summary = "run R9 (release) succeeded: 2 succeeded in 1.2s"
    assert summary in text
    # The summary comes after the last redraw, and the program goes on normally.
    assert text.rindex(summary) > text.rindex("stages") and text.rstrip().endswith("after-view")


def test_live_view_honours_no_color() -> None:
    script = _LIVE_SCRIPT.format(tests=str(Path(__file__).parent))
    status, output = _run_in_pty(script, _pty_env(NO_COLOR="1"))
    text = output.decode("utf-8", errors="replace")
    assert status == 0, text
    assert "1/2 stages" in text
    assert "\x1b[3" not in text and "\x1b[1;3" not in text  # no foreground colours


# -- --events FILE ---------------------------------------------------------------------


def test_events_file_has_one_json_object_per_line_as_it_happens(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "events.jsonl"
    with open_event_log(path, secrets={"TOKEN": "hunter2"}) as write:
        write(_events()[0])
        # Flushed at once: another reader sees the line before the file is closed.
        assert json.loads(path.read_text().splitlines()[0])["type"] == "run_started"
        write(Event(type="stage_failed", run_id="R1", time=T0, stage="x", attempt=1,
                    data={"error": "bad token hunter2", "nested": {"list": ["hunter2!"]}}))
    records = read_event_log(path)
    assert [r["type"] for r in records] == ["run_started", "stage_failed"]
    assert records[1]["data"] == {"error": "bad token ***", "nested": {"list": ["***!"]}}
    assert set(records[0]) == {"seq", "type", "run_id", "time", "stage", "attempt", "data"}
    assert "hunter2" not in path.read_text()


def test_events_file_of_a_real_run_masks_secrets(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "API_TOKEN": "s3cr3t-value"}
    leak = stage("leak", tmp_path, run="echo ${secrets.API_TOKEN} && exit 4")
    the_plan = plan([leak], secrets=["API_TOKEN"])
    bus = EventBus()
    close = attach_events(bus, tmp_path / "events.jsonl")
    try:
        _execute(the_plan, tmp_path / "state", bus, env)
    finally:
        close()
    text = (tmp_path / "events.jsonl").read_text()
    types = [json.loads(line)["type"] for line in text.splitlines()]
    assert types[0] == "run_started" and types[-1] == "run_failed" and "stage_failed" in types
    assert "s3cr3t-value" not in text


def test_an_unwritable_events_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(EventLogError, match="cannot write events to"), open_event_log(tmp_path / "dir"):
        pass


# -- --dry-run ---------------------------------------------------------------------------


def _dry_plan(tmp_path: Path) -> Plan:
    stages = [
        stage("build", tmp_path, run="make ${params.target} MSG=${params.msg}", retries=2, backoff_s=1.5,
              timeout_s=60),
        stage("upload", tmp_path, run=["curl", "-H", "Authorization: ${secrets.TOKEN}", "${params.url}"],
              after=["build"], inputs={"artifact": "${stages.build.outputs.path}"}, env={"MODE": "x"}),
        stage("notify", tmp_path, agents=("py",), kind="python", after=["upload"],
              when="${params.notify}"),
    ]
    agents = [agent(env={"LOG_LEVEL": "info"}), agent("py", "python", call="tools:notify")]
    base = plan(stages, agents, workflow="ship",
                params={"target": "all", "msg": "it's done; rm -rf /", "url": "https://x", "notify": False},
                secrets=["TOKEN"])
    return Plan(**{**{f: getattr(base, f) for f in base.__dataclass_fields__},
                   "layers": (("build",), ("upload",), ("notify",)), "hooks": ()})


def test_dry_run_shows_layers_and_resolved_quoted_commands_without_running(tmp_path: Path) -> None:
    text = dry_run_text(_dry_plan(tmp_path), env={"TOKEN": "real-secret"})
    assert "real-secret" not in text
    assert "layer 0:\n  build\n" in text and "layer 1:\n  upload\n" in text and "layer 2:\n  notify\n" in text
    # The shell line that really runs reads each value from a variable, shown after it.
    assert '    command  make "${ALFRED_VALUE_1}" MSG="${ALFRED_VALUE_2}"\n' in text
    assert "    values   ALFRED_VALUE_1=all ALFRED_VALUE_2='it'\"'\"'s done; rm -rf /'\n" in text
    # argv: joined for reading, the secret shown as ***.
    assert "    command  curl -H 'Authorization: ***' https://x\n" in text
    assert "    inputs   artifact=<stages.build.outputs.path>\n" in text
    runtime_env = "ALFRED_RUN_ID ALFRED_STAGE ALFRED_ATTEMPT ALFRED_INPUTS ALFRED_OUTPUTS"
    assert f"    env      LOG_LEVEL MODE {runtime_env}\n" in text
    assert "    timeout  1m, 2 retries, backoff 1.5s\n" in text
    assert "    agent    py (python)\n    command  call tools:notify(inputs)\n" in text
    assert "    when     false\n" in text
    assert not list(tmp_path.iterdir())  # nothing ran, nothing was written


def test_dry_run_json_and_exit_status(tmp_path: Path) -> None:
    data = dry_run_json(_dry_plan(tmp_path), env={})
    assert data["layers"] == [["build"], ["upload"], ["notify"]]
    assert data["stages"][1]["command"] == "curl -H 'Authorization: ***' https://x"
    assert data["stages"][0]["values"] == {"ALFRED_VALUE_1": "all", "ALFRED_VALUE_2": "it's done; rm -rf /"}
    assert data["stages"][1]["env"][:2] == ["LOG_LEVEL", "MODE"]
    out = io.StringIO()
    assert dry_run(_dry_plan(tmp_path), stream=out, env={}) == 0
    broken = stage("x", tmp_path, run="echo ${env.SURELY_NOT_SET_ANYWHERE}")
    out = io.StringIO()
    assert dry_run(plan([broken]), stream=out, env={}) == 1
    assert "error" in out.getvalue() and "SURELY_NOT_SET_ANYWHERE" in out.getvalue()


def test_plain_view_through_a_pipe_in_a_real_process(tmp_path: Path) -> None:
    script = _LIVE_SCRIPT.format(tests=str(Path(__file__).parent))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "mode=plain"
    assert [line.split(" ")[1] for line in lines[1:-2]] == [
        "run_started", "stage_started", "stage_succeeded",
        "stage_started", "stage_succeeded", "run_completed",
    ]
    assert lines[-2] == "run R9 (release) succeeded: 2 succeeded in 1.2s"
    assert "\x1b" not in done.stdout


def test_alfredc_run_with_events_file_and_an_unwritable_one(tmp_path: Path) -> None:
    (tmp_path / "p.alfred").write_text(
        'agent sh {\n  kind = command\n}\n'
        'workflow w {\n  stage a {\n    agent = sh\n    run = "echo hi"\n  }\n}\n'
    )

    def alfredc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "alfred_dsl", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)

    done = alfredc("run", "p.alfred", "--events", "ev.jsonl")
    assert done.returncode == 0, done.stdout + done.stderr
    types = [json.loads(line)["type"] for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert types[0] == "run_started" and types[-1] == "run_completed"
    assert done.stdout.splitlines()[-1].endswith("(w) succeeded: 1 succeeded in " + done.stdout.split()[-1])
    bad = alfredc("run", "p.alfred", "--events", "/proc/no-such-dir/ev.jsonl")
    assert bad.returncode == 2
    assert bad.stderr.startswith("alfredc: error: cannot write events to /proc/no-such-dir/ev.jsonl")
