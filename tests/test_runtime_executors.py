"""The command, python and http executors against real processes, modules and servers."""

from __future__ import annotations

import http.server
import json
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from _runtime_plans import agent, plan, run_plan, stage
from hypothesis import HealthCheck, given, settings, strategies as st

from alfred_dsl.runtime import StateStore


def test_a_missing_command_fails_with_a_clear_error(tmp_path: Path) -> None:
    result, _ = run_plan(plan([stage("s", tmp_path, run=["no-such-command-alfred"])]), tmp_path / "state")
    assert result.exit_status == 1
    assert result.stages["s"].error == "command not found: no-such-command-alfred"


def test_a_missing_command_in_a_shell_line_fails_with_exit_127(tmp_path: Path) -> None:
    result, _ = run_plan(plan([stage("s", tmp_path, run="no-such-command-alfred --x")]), tmp_path / "state")
    assert result.stages["s"].error == "exit status 127 (command not found)"
    log = next((tmp_path / "state" / "runs" / result.run_id).glob("s.1.log")).read_text()
    assert "no-such-command-alfred" in log


def test_a_missing_working_directory_is_reported(tmp_path: Path) -> None:
    result, _ = run_plan(plan([stage("s", tmp_path / "nope", run=["true"])]), tmp_path / "state")
    assert result.stages["s"].error == f"working directory {tmp_path / 'nope'} does not exist"


def test_a_shell_line_runs_under_sh_and_output_is_captured_per_attempt(tmp_path: Path) -> None:
    result, _ = run_plan(plan([stage("s", tmp_path, run="echo out; echo err >&2; echo $((1+2))")]),
                         tmp_path / "state")
    assert result.ok
    log = tmp_path / "state" / "runs" / result.run_id / "s.1.log"
    assert log.read_text().split() == ["out", "err", "3"]


def test_argv_is_never_passed_through_a_shell(tmp_path: Path) -> None:
    result, _ = run_plan(plan([stage("s", tmp_path, run=["touch", "a; touch pwned", "$(touch pwned2)"])]),
                         tmp_path / "state")
    assert result.ok
    created = sorted(p.name for p in tmp_path.iterdir() if p.name != "state")
    assert created == ["$(touch pwned2)", "a; touch pwned"]


@pytest.mark.parametrize(
    "line",
    [
        "printf %s ${params.name} > got.txt",
        'printf %s "${params.name}" > got.txt',
        "printf %s '${params.name}' > got.txt",
        "printf %s \"a'b\"${params.name}'c\"d' > got.txt",
        'printf %s "$(printf %s ${params.name})" > got.txt',
        'printf %s "$(printf %s "${params.name}")" > got.txt',
        "printf %s $(printf %s ${params.name}) > got.txt",
        'printf %s "`printf %s ${params.name}`" > got.txt',
        "printf %s `printf %s '${params.name}'` > got.txt",
        'printf %s "$( (printf %s ${params.name}) )" > got.txt',
    ],
    ids=["bare", "double", "single", "mixed", "subst-in-double", "double-in-subst", "subst-bare",
         "backtick-in-double", "single-in-backtick", "subshell-in-subst"],
)
def test_interpolated_param_is_shell_quoted_wherever_it_stands(tmp_path: Path, line: str) -> None:
    evil = '"; touch pwned; "\' $(touch pwned2) `touch pwned3`'
    result, _ = run_plan(plan([stage("s", tmp_path, run=line)], params={"name": evil}), tmp_path / "state")
    assert result.ok, result.stages["s"].error
    assert not list(tmp_path.glob("pwned*"))
    mixed = line.startswith('printf %s "a')
    if "$(" in line or "`" in line:
        # The inner printf prints the value; unquoted, its output is split into words.
        quoted = '"$(' in line or '"`' in line
        assert (tmp_path / "got.txt").read_text() == (evil if quoted else "".join(evil.split()))
        return
    assert (tmp_path / "got.txt").read_text() == (f"a'b{evil}c\"d" if mixed else evil)


_NO_CS: tuple[Literal["Cs"]] = ("Cs",)  # not encodable: no process can receive them


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(st.characters(blacklist_categories=_NO_CS, blacklist_characters="\x00"), max_size=12))
def test_any_param_value_reaches_the_shell_verbatim(
    tmp_path_factory: pytest.TempPathFactory, value: str
) -> None:
    directory = tmp_path_factory.mktemp("q")
    line = (
        'printf %s ${params.v} > a.txt; printf %s "${params.v}" > b.txt; printf %s \'${params.v}\' > c.txt; '
        # Command substitutions (which drop trailing newlines: hence the `.`), in and out of "...".
        'd="$(printf %s ${params.v}; printf .)"; printf %s "$${d%.}" > d.txt; '
        'e="`printf %s ${params.v}; printf .`"; printf %s "$${e%.}" > e.txt; '
        'f=$(printf %s "${params.v}"; printf .); printf %s "$${f%.}" > f.txt'
    )
    result, _ = run_plan(plan([stage("s", directory, run=line)], params={"v": value}), directory / "state")
    assert result.ok, result.stages["s"].error
    for name in ("a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt"):
        assert (directory / name).read_bytes().decode("utf-8", "surrogateescape") == value, name


def test_secrets_are_masked_in_logs_outputs_events_and_the_database(tmp_path: Path) -> None:
    script = 'echo "token is $API_TOKEN"; echo "key=$API_TOKEN" > "$ALFRED_OUTPUTS"; exit 1'
    leaky = stage("leaky", tmp_path, run=["sh", "-c", script], on_failure="continue")
    show = stage("show", tmp_path, run=["sh", "-c", 'echo "v=$API_TOKEN" > "$ALFRED_OUTPUTS"'])
    secret = "hunter2-" + uuid.uuid4().hex
    result, events = run_plan(plan([leaky, show], secrets=["API_TOKEN"]), tmp_path / "state",
                              env={"API_TOKEN": secret, "PATH": "/usr/bin:/bin"})
    assert result.stages["show"].outputs == {"v": secret}  # the API caller gets the real value
    log = (tmp_path / "state" / "runs" / result.run_id / "leaky.1.log").read_text()
    assert log == "token is ***\n"
    assert secret not in json.dumps([e.to_json() for e in events])
    dump = "\n".join(sqlite3.connect(tmp_path / "state" / "state.db").iterdump())
    assert secret not in dump and '"v":"***"' in dump


def test_no_file_of_the_state_directory_keeps_a_secret_after_the_attempt(tmp_path: Path) -> None:
    # The command needs the real value in $ALFRED_INPUTS while it runs, and may write it to
    # $ALFRED_OUTPUTS; once the attempt is over, neither file may keep it.
    script = 'cat "$ALFRED_INPUTS" > seen.json; echo "v=$API_TOKEN" > "$ALFRED_OUTPUTS"'
    use = stage("use", tmp_path, run=["sh", "-c", script], inputs={"token": "${secrets.API_TOKEN}"})
    secret = "hunter2-" + uuid.uuid4().hex
    result, _ = run_plan(plan([use], secrets=["API_TOKEN"]), tmp_path / "state",
                         env={"API_TOKEN": secret, "PATH": "/usr/bin:/bin"})
    assert result.ok and result.stages["use"].outputs == {"v": secret}
    assert json.loads((tmp_path / "seen.json").read_text()) == {"token": secret}
    leaks = [p for p in (tmp_path / "state").rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaks == []


def _write_module(tmp_path: Path, source: str) -> str:
    name = "agents_" + uuid.uuid4().hex[:8]
    (tmp_path / f"{name}.py").write_text(source)
    return name


def test_python_sync_and_async_callables_take_inputs_and_return_outputs(tmp_path: Path) -> None:
    module = _write_module(tmp_path, (
        "import threading, trio\n"
        "def double(inputs):\n"
        "    return {'value': inputs['n'] * 2, 'thread': threading.current_thread().name}\n"
        "async def later(inputs):\n"
        "    await trio.sleep(0.01)\n"
        "    return {'seen': sorted(inputs)}\n"
        "def nothing(inputs):\n"
        "    return None\n"
    ))
    stages = [
        stage("sync", tmp_path, kind="python", agents=["py"], call=f"{module}:double", inputs={"n": 21}),
        stage("async", tmp_path, kind="python", agents=["py"], call=f"{module}:later",
              inputs={"a": 1, "b": 2}),
        stage("none", tmp_path, kind="python", agents=["py"], call=f"{module}:nothing"),
    ]
    result, _ = run_plan(plan(stages, [agent("py", kind="python", concurrency=3)]), tmp_path / "state")
    assert result.ok
    assert result.stages["sync"].outputs["value"] == 42
    assert result.stages["sync"].outputs["thread"] != "MainThread"  # plain functions run in a worker thread
    assert result.stages["async"].outputs == {"seen": ["a", "b"]}
    assert result.stages["none"].outputs == {}


def test_two_projects_with_a_module_of_the_same_name_each_call_their_own(tmp_path: Path) -> None:
    # One process (a worker) runs workflows of two projects whose agents share a module name.
    name = "agents_" + uuid.uuid4().hex[:8]
    results = {}
    for project in ("one", "two"):
        folder = tmp_path / project
        (folder / name).mkdir(parents=True)
        source = f"def who(inputs):\n    return {{'project': {project!r}}}\n"
        (folder / name / "__init__.py").write_text(source)
        the_plan = plan([stage("s", folder, kind="python", agents=["py"], call=f"{name}:who")],
                        [agent("py", kind="python")])
        result, _ = run_plan(the_plan, folder / "state")
        results[project] = result.stages["s"].outputs
    assert results == {"one": {"project": "one"}, "two": {"project": "two"}}


def test_a_python_callable_that_raises_fails_the_attempt_with_its_message(tmp_path: Path) -> None:
    module = _write_module(
        tmp_path, "def boom(inputs):\n    raise ValueError('bad input ' + str(inputs['x']))\n"
    )
    failing = stage("s", tmp_path, kind="python", agents=["py"], call=f"{module}:boom", inputs={"x": 7},
                    retries=1)
    result, _ = run_plan(plan([failing], [agent("py", kind="python")]), tmp_path / "state")
    assert result.stages["s"].state == "failed" and result.stages["s"].attempts == 2
    assert result.stages["s"].error == "ValueError: bad input 7"
    log = (tmp_path / "state" / "runs" / result.run_id / "s.1.log").read_text()
    assert "Traceback" in log and "bad input 7" in log  # the traceback goes to the log, not the terminal


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ("no_such_module_alfred:f",
         "cannot import `no_such_module_alfred:f`: no module named `no_such_module_alfred`"),
        ("json:no_such_function", "cannot import `json:no_such_function`: module `json` has no attribute "
                                  "`no_such_function`"),
        ("json", "invalid call `json`: expected `module:function`"),
        ("json:__doc__", "cannot import `json:__doc__`: `__doc__` is not callable"),
    ],
)
def test_a_callable_that_cannot_be_imported_is_a_clear_error(tmp_path: Path, call: str, error: str) -> None:
    bad = stage("s", tmp_path, kind="python", agents=["py"], call=call)
    result, _ = run_plan(plan([bad], [agent("py", kind="python")]), tmp_path / "state")
    assert result.stages["s"].error == error


def test_a_python_callable_returning_a_non_dict_fails(tmp_path: Path) -> None:
    module = _write_module(tmp_path, "def f(inputs):\n    return 3\n")
    bad = stage("s", tmp_path, kind="python", agents=["py"], call=f"{module}:f")
    result, _ = run_plan(plan([bad], [agent("py", kind="python")]), tmp_path / "state")
    assert result.stages["s"].error == f"`{module}:f` returned int, expected a dict of outputs"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/fail":
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"overloaded")
            return
        payload = {"echo": body, "stage": self.headers["X-Alfred-Stage"], "auth": self.headers.get("X-Key")}
        data = json.dumps(payload).encode() if self.path != "/list" else b"[1, 2]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_http_agent_posts_inputs_and_reads_outputs_from_a_real_server(tmp_path: Path, server: str) -> None:
    agents = [
        agent("api", kind="http", url=server + "/ok", options={"headers": {"X-Key": "k1"}}),
        agent("down", kind="http", url=server + "/fail"),
        agent("odd", kind="http", url=server + "/list"),
    ]
    stages = [
        stage("call", tmp_path, kind="http", agents=["api"], inputs={"q": "hello", "n": 2}),
        stage("failing", tmp_path, kind="http", agents=["down"], on_failure="continue"),
        stage("not_object", tmp_path, kind="http", agents=["odd"], on_failure="continue"),
    ]
    result, _ = run_plan(plan(stages, agents), tmp_path / "state")
    assert result.stages["call"].outputs == {"echo": {"q": "hello", "n": 2}, "stage": "call", "auth": "k1"}
    assert result.stages["failing"].error == "HTTP 503 Service Unavailable"
    assert result.stages["failing"].exit_code == 503
    assert "overloaded" in (tmp_path / "state" / "runs" / result.run_id / "failing.1.log").read_text()
    assert result.stages["not_object"].error == "the response is not a JSON object"


def test_http_agent_whose_server_is_down_fails_the_attempt(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/run"
    down = stage("s", tmp_path, kind="http", agents=["api"], retries=1, backoff_s=0.01)
    result, _ = run_plan(plan([down], [agent("api", kind="http", url=url)]), tmp_path / "state")
    assert result.stages["s"].state == "failed" and result.stages["s"].attempts == 2
    assert result.stages["s"].error is not None
    assert result.stages["s"].error.startswith(f"cannot reach {url}: ")
    assert "refused" in result.stages["s"].error.lower()


def test_an_attempt_that_cannot_start_says_why_in_its_log(tmp_path: Path) -> None:
    # `alfredc logs RUN STAGE` reads the attempt's log: it must not be empty or missing.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stages = [
        stage("missing", tmp_path, run=["no-such-command-alfred"], on_failure="continue"),
        stage("noimport", tmp_path, kind="python", agents=["py"], call="no_such_module_alfred:f",
              on_failure="continue"),
        stage("down", tmp_path, kind="http", agents=["api"], on_failure="continue"),
    ]
    agents = [agent(), agent("py", kind="python"), agent("api", kind="http", url=f"http://127.0.0.1:{port}/")]
    result, _ = run_plan(plan(stages, agents), tmp_path / "state")
    with StateStore(tmp_path / "state") as store:
        for name in ("missing", "noimport", "down"):
            (attempt,) = store.attempts(result.run_id, name)
            assert attempt.log_path is not None, name
            error = result.stages[name].error
            assert error is not None and error in Path(attempt.log_path).read_text(), name


# -- where processes are spawned ----------------------------------------------------------


def _spawns(timer: Any, count: int, on_loop_s: float, in_thread_s: float = 0.002) -> list[bool]:
    """``count`` spawns as run_in_group makes them: the side the timer picks, then the time
    the spawn took there; returns the sides (True: a worker thread)."""
    sides = []
    for _ in range(count):
        in_thread = timer.next_in_thread()
        timer.record(in_thread_s if in_thread else on_loop_s, in_thread)
        sides.append(in_thread)
    return sides


def test_slow_spawns_move_to_worker_threads_and_quick_ones_come_back() -> None:
    from alfred_dsl.runtime._process import _SpawnTimer

    timer = _SpawnTimer()
    assert not any(_spawns(timer, 30, 0.0003))    # quick spawns stay on the event loop
    sides = _spawns(timer, 10, 0.005)
    assert sides[-1]                              # a loaded machine: spawn in worker threads
    _spawns(timer, 1, 0.0009)
    assert timer.in_thread                        # hysteresis: no flapping around one value
    # In thread mode one spawn in `probe_every` runs on the loop (a probe); a thread's own
    # time (it waits for the GIL) does not count, however quick.
    timer = _SpawnTimer()
    _spawns(timer, 10, 0.005)
    assert timer.in_thread
    sides = _spawns(timer, 3 * timer.probe_every, 0.005, in_thread_s=0.0001)
    assert timer.in_thread
    # Probes that find the loop still slow come less and less often.
    assert 2 <= sides.count(False) < 3
    sides = _spawns(timer, 16 * timer.probe_every, 0.005)
    assert sides.count(False) <= 4
    # Once the machine is quiet again, the probes bring the spawns back to the loop.
    sides = _spawns(timer, 64 * timer.probe_every, 0.0003)
    assert not timer.in_thread and not sides[-1]
    assert sides.count(True) <= 20 * timer.probe_every  # back within a few hundred spawns


def test_one_very_slow_spawn_does_not_send_spawns_to_threads() -> None:
    # A run's first cgroup moves wait for an RCU grace period (~11 ms): the first spawns that
    # slow must not move the run's spawns to worker threads, which cost more CPU per stage.
    from alfred_dsl.runtime._process import _SpawnTimer

    timer = _SpawnTimer()
    _spawns(timer, 2, 0.011)
    assert not any(_spawns(timer, 5, 0.0003))
    _spawns(timer, 5, 0.003)                      # a machine that stays slow still moves them
    assert timer.in_thread


@pytest.fixture(params=["event loop", "worker thread"])
def spawn_side(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with spawns forced to one side (each must behave the same)."""
    from alfred_dsl.runtime import _process

    timer = _process._SPAWN_TIMER
    saved = (timer.to_thread_above_s, timer.to_loop_below_s, timer.in_thread, timer.probe_every)
    if request.param == "worker thread":
        timer.to_loop_below_s, timer.in_thread, timer.probe_every = -1.0, True, 0
    else:
        timer.to_thread_above_s, timer.in_thread = 1e9, False
    yield str(request.param)
    timer.to_thread_above_s, timer.to_loop_below_s, timer.in_thread, timer.probe_every = saved


def test_commands_run_fail_and_time_out_alike_on_either_side(tmp_path: Path, spawn_side: str) -> None:
    stages = [
        stage("ok", tmp_path, run=["sh", "-c", 'echo "x=$ALFRED_STAGE" > "$ALFRED_OUTPUTS"'],
              inputs={"n": 1}, on_failure="continue"),
        stage("missing", tmp_path, run=["no-such-command-alfred"], on_failure="continue"),
        stage("nowhere", tmp_path / "nope", run=["true"], on_failure="continue"),
        stage("slow", tmp_path, run=["sleep", "30"], timeout_s=0.3, on_failure="continue"),
    ]
    result, _ = run_plan(plan(stages, [agent(concurrency=4)]), tmp_path / "state", kill_grace_s=0.2)
    assert result.stages["ok"].outputs == {"x": "ok"}
    assert result.stages["missing"].error == "command not found: no-such-command-alfred"
    assert result.stages["nowhere"].error == f"working directory {tmp_path / 'nope'} does not exist"
    assert result.stages["slow"].error == "timed out after 0.3s"


def test_a_command_that_closes_its_output_early_is_still_waited_for(tmp_path: Path, spawn_side: str) -> None:
    # The end of the output pipe usually comes microseconds before the exit; here the
    # process goes on for a while after it, and its outputs and exit status still count.
    line = ('echo early; exec >/dev/null 2>&1; sleep 0.3; echo "late=$ALFRED_STAGE" > "$ALFRED_OUTPUTS";'
            " exit {}")
    stages = [
        stage("ok", tmp_path, run=["sh", "-c", line.format(0)], on_failure="continue"),
        stage("bad", tmp_path, run=["sh", "-c", line.format(3)], on_failure="continue"),
    ]
    result, _ = run_plan(plan(stages, [agent(concurrency=2)]), tmp_path / "state")
    assert result.stages["ok"].state == "succeeded" and result.stages["ok"].outputs == {"late": "ok"}
    assert result.stages["bad"].error == "exit status 3"
    log = next((tmp_path / "state" / "runs" / result.run_id).glob("ok.1.log")).read_text()
    assert log == "early\n"


def test_spawn_threads_do_not_wait_behind_busy_python_stages(tmp_path: Path) -> None:
    from alfred_dsl.runtime import _process

    module = _write_module(tmp_path, (
        "import time, trio\n"
        "def busy(inputs):\n    time.sleep(0.8)\n"
        "async def gate(inputs):\n    await trio.sleep(0.2)\n"
    ))
    # 40 plain functions hold every thread of Trio's default limiter for 0.8 s; `quick`
    # spawns at 0.2 s, once they all run (the gate is async: it takes no thread).
    busy = [
        stage(f"busy{i}", tmp_path, kind="python", agents=["py"], call=f"{module}:busy") for i in range(40)
    ]
    gate = stage("gate", tmp_path, kind="python", agents=["py"], call=f"{module}:gate")
    quick = stage("quick", tmp_path, run=["sh", "-c", 'echo "t=$(date +%s.%N)" > "$ALFRED_OUTPUTS"'],
                  after=["gate"])
    timer = _process._SPAWN_TIMER
    saved = (timer.to_loop_below_s, timer.in_thread, timer.probe_every)
    timer.to_loop_below_s, timer.in_thread, timer.probe_every = -1.0, True, 0
    try:
        started = time.time()
        agents = [agent("py", kind="python", concurrency=41), agent()]
        result, _ = run_plan(plan([*busy, gate, quick], agents), tmp_path / "state", max_concurrency=42)
    finally:
        timer.to_loop_below_s, timer.in_thread, timer.probe_every = saved
    assert result.ok
    assert float(result.stages["quick"].outputs["t"]) - started < 0.6  # not after the busy ones


def test_more_than_40_plain_python_stages_run_at_once_when_concurrency_allows(tmp_path: Path) -> None:
    module = _write_module(tmp_path, "import time\ndef nap(inputs):\n    time.sleep(0.5)\n")
    naps = [stage(f"nap{i}", tmp_path, kind="python", agents=["py"], call=f"{module}:nap") for i in range(45)]
    started = time.monotonic()
    result, _ = run_plan(plan(naps, [agent("py", kind="python", concurrency=45)]), tmp_path / "state",
                         max_concurrency=45)
    assert result.ok
    assert time.monotonic() - started < 0.9  # one wave (0.5 s), not 40 then 5 (1 s)


@pytest.fixture(params=["posix_spawn, descriptors listed", "posix_spawn, closefrom", "Popen"])
def spawn_path(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Stages in ``tmp_path / "work"``: run from that folder (started by ``os.posix_spawn``)
    or from another one (``Popen``, which changes folder); each must behave the same.
    ``posix_spawn`` closes the inheritable descriptors it lists from ``/proc/self/fd``, or,
    where Python has ``POSIX_SPAWN_CLOSEFROM`` (3.13), the child closes all from 3 up."""
    import os

    from alfred_dsl.runtime import _process

    posix_spawn = str(request.param).startswith("posix_spawn")
    if request.param == "posix_spawn, closefrom" and _process._SPAWN_CLOSEFROM is None:
        pytest.skip("os.POSIX_SPAWN_CLOSEFROM needs Python >= 3.13 (and glibc >= 2.34)")
    if request.param == "posix_spawn, descriptors listed":
        monkeypatch.setattr(_process, "_SPAWN_CLOSEFROM", None)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work if posix_spawn else tmp_path)
    # On the event loop's thread (a worker thread spawns with Popen), however loaded the machine.
    monkeypatch.setattr(_process._SPAWN_TIMER, "to_thread_above_s", 1e9)
    monkeypatch.setattr(_process._SPAWN_TIMER, "in_thread", False)
    spawned: list[int] = []
    real = os.posix_spawn

    def spy(*args: object, **kwargs: object) -> int:
        pid = real(*args, **kwargs)  # type: ignore[arg-type]
        spawned.append(pid)
        return pid

    monkeypatch.setattr(os, "posix_spawn", spy)
    yield str(request.param)
    assert bool(spawned) == posix_spawn  # the path this case is about


def _log(tmp_path: Path, run_id: str, name: str) -> str:
    return (tmp_path / "state" / "runs" / run_id / f"{name}.1.log").read_text()


def test_a_stage_process_starts_clean_whichever_way_it_is_spawned(tmp_path: Path, spawn_path: str) -> None:
    import os
    import sys

    work = tmp_path / "work"
    # A descriptor alfred inherited without close-on-exec (a make jobserver's pipe, say).
    leaked_read, leaked_write = os.pipe()
    os.set_inheritable(leaked_write, True)
    probe = (
        "import os, sys\n"
        f"try:\n    os.fstat({leaked_write})\n    print('inherited')\nexcept OSError:\n    print('closed')\n"
        "print('group leader', os.getpgid(0) == os.getpid())\n"
        "print('cwd', os.getcwd())\n"
        "print('stdin', repr(sys.stdin.read()))\n"
        "print('value', os.environ['ALFRED_STAGE'])\n"
    )
    stages = [
        stage("probe", work, run=[sys.executable, "-c", probe], on_failure="continue"),
        # SIGPIPE (bit 13), which Python ignores, is back to its default in the child.
        stage("signals", work, run=["grep", "SigIgn", "/proc/self/status"], on_failure="continue"),
        stage("killed", work, run=["sh", "-c", "kill -TERM $$"], on_failure="continue"),
        stage("status", work, run=["sh", "-c", "exit 3"], on_failure="continue"),
        stage("missing", work, run=["no-such-command-alfred"], on_failure="continue"),
        stage("denied", work, run=[str(tmp_path / "not-executable")], on_failure="continue"),
    ]
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    try:
        result, _ = run_plan(plan(stages, [agent(concurrency=6)]), tmp_path / "state")
    finally:
        os.close(leaked_read)
        os.close(leaked_write)
    assert result.stages["probe"].state == "succeeded", result.stages["probe"].error
    assert _log(tmp_path, result.run_id, "probe").splitlines() == [
        "closed", "group leader True", f"cwd {work}", "stdin ''", "value probe",
    ]
    ignored = int(_log(tmp_path, result.run_id, "signals").split()[1], 16)
    assert not ignored & (1 << (13 - 1))
    assert result.stages["killed"].error == "killed by SIGTERM"
    assert result.stages["status"].error == "exit status 3"
    assert result.stages["status"].exit_code == 3
    assert result.stages["missing"].error == "command not found: no-such-command-alfred"
    assert result.stages["denied"].error == f"cannot execute {tmp_path / 'not-executable'}: permission denied"


def test_a_timeout_kills_the_whole_group_whichever_way_it_is_spawned(tmp_path: Path, spawn_path: str) -> None:
    work = tmp_path / "work"
    line = "sleep 30 & echo $! > child.pid; wait"
    slow = stage("slow", work, run=["sh", "-c", line], timeout_s=0.5)
    result, _ = run_plan(plan([slow]), tmp_path / "state", kill_grace_s=0.2)
    assert result.stages["slow"].error == "timed out after 0.5s"
    pid = int((work / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
