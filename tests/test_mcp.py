"""``kind = mcp`` agents against real MCP servers (the SDK's ``MCPServer``) over stdio and
streamable HTTP: outputs, interpolated arguments, timeouts, crashes, retries, and servers
that never outlive the run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

PY = sys.executable
DATA = Path(__file__).parent / "data" / "mcp"
FIXTURE = DATA / "context7_fixture.py"
MISBEHAVING = DATA / "misbehaving.py"


def _alfredc(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
    )


def _show(cwd: Path) -> dict[str, Any]:
    shown = _alfredc(cwd, "show", "last", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    data: dict[str, Any] = json.loads(shown.stdout)
    return data


def _stages(cwd: Path) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in _show(cwd)["stages"]}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (its parent, the test, may not have reaped it).
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text(encoding="utf-8").split()] if path.exists() else []


def _wait_gone(pids: list[int], seconds: float = 15) -> list[int]:
    deadline = time.monotonic() + seconds
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _alive(pid)]
        time.sleep(0.1)
    return alive


def _server(script: Path) -> str:
    return json.dumps([PY, str(script)])


CALLS = """\
agent docs {{
  kind   = mcp
  server = {server}
}}

workflow calls {{
  param n: int = 40

  stage sum {{
    agent     = docs
    tool      = "add"
    arguments = {{ a = 2, b = "${{params.n}}" }}
  }}

  stage said {{
    agent     = docs
    tool      = "echo"
    arguments = {{ message = "the sum is ${{stages.sum.outputs.sum}}" }}
  }}

  stage parsed {{
    agent = docs
    tool  = "get-library-docs"
    arguments = {{ context7CompatibleLibraryID = "/fixture/httpx" }}
  }}
}}
"""


def test_stdio_tool_results_become_outputs(tmp_path: Path) -> None:
    (tmp_path / "calls.alfred").write_text(CALLS.format(server=_server(FIXTURE)), encoding="utf-8")
    result = _alfredc(tmp_path, "run", "calls.alfred")
    assert result.returncode == 0, result.stdout + result.stderr
    stages = _stages(tmp_path)
    assert stages["sum"]["outputs"] == {"sum": 42}  # structured content, the param interpolated
    assert stages["said"]["outputs"] == {"text": "the sum is 42"}  # plain text, an upstream output
    assert "httpx.Client()" in stages["parsed"]["outputs"]["text"]
    log = Path(stages["said"]["log"]).read_text(encoding="utf-8")
    assert 'call echo {"message": "the sum is 42"}' in log


MISBEHAVING_WF = """\
agent flaky {{
  kind   = mcp
  server = {server}
  env    = {{ MISBEHAVING_PIDS = "{pids}" }}
}}

workflow misbehave {{
  stage first {{
    agent = flaky
    tool  = "pid"
  }}

  stage slow after first {{
    agent      = flaky
    tool       = "slow"
    arguments  = {{ seconds = 30 }}
    timeout    = 1s
    on_failure = continue
  }}

  stage after-slow after slow {{
    agent     = flaky
    run_if    = always
    tool      = "json_text"
  }}

  stage refused after after-slow {{
    agent      = flaky
    tool       = "fail"
    arguments  = {{ reason = "the tool said no" }}
    on_failure = continue
  }}

  stage crash-then-ok after refused {{
    agent     = flaky
    run_if    = always
    tool      = "flaky"
    arguments = {{ marker = "{marker}" }}
    retries   = 1
  }}
}}
"""


def test_timeouts_tool_errors_and_crashes_are_failed_attempts(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    text = MISBEHAVING_WF.format(server=_server(MISBEHAVING), pids=pids, marker=tmp_path / "crashed")
    (tmp_path / "wf.alfred").write_text(text, encoding="utf-8")
    started = time.monotonic()
    result = _alfredc(tmp_path, "run", "wf.alfred")
    elapsed = time.monotonic() - started
    stages = _stages(tmp_path)
    assert stages["slow"]["state"] == "failed"
    assert "timed out after 1s" in stages["slow"]["error"]
    assert elapsed < 25, "the timeout did not stop the 30s call"
    # The server survived the cancelled call: the next stage used the same one.
    assert stages["after-slow"]["outputs"] == {"answer": 42, "unit": "none"}
    assert stages["refused"]["state"] == "failed"
    assert "the tool said no" in stages["refused"]["error"]
    # The server died during attempt 1; attempt 2 started a new one.
    crash = stages["crash-then-ok"]
    assert crash["state"] == "succeeded", crash
    assert crash["attempts"] == 2
    assert crash["attempt_details"][0]["error"].startswith("MCP call `flaky` failed")
    assert crash["outputs"] == {"text": "second time lucky"}
    started_pids = _pids(pids)
    assert len(started_pids) == 2, "one server per agent per run, and one more after the crash"
    assert result.returncode == 1, result.stdout + result.stderr  # two stages failed
    assert _wait_gone(started_pids) == [], "a server outlived the run"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def http_fixture() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [PY, str(FIXTURE), "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, "the HTTP fixture server did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def test_streamable_http_server(tmp_path: Path, http_fixture: str) -> None:
    agent = f'url    = "{http_fixture}"\n  headers = {{{{ Authorization = "Bearer t" }}}}'
    text = CALLS.replace("server = {server}", agent)
    (tmp_path / "calls.alfred").write_text(text.format(), encoding="utf-8")
    result = _alfredc(tmp_path, "run", "calls.alfred")
    assert result.returncode == 0, result.stdout + result.stderr
    stages = _stages(tmp_path)
    assert stages["sum"]["outputs"] == {"sum": 42}
    assert stages["said"]["outputs"] == {"text": "the sum is 42"}


def test_unreachable_http_server_is_a_failed_attempt(tmp_path: Path) -> None:
    text = CALLS.replace("server = {server}", f'url    = "http://127.0.0.1:{_free_port()}/mcp"')
    (tmp_path / "calls.alfred").write_text(text.format(), encoding="utf-8")
    result = _alfredc(tmp_path, "run", "calls.alfred")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    error = _stages(tmp_path)["sum"]["error"]
    assert error.startswith("cannot connect to MCP server `http://127.0.0.1:"), error


INTERRUPTED = """\
agent slowpoke {{
  kind   = mcp
  server = {server}
  env    = {{ MISBEHAVING_PIDS = "{pids}" }}
}}

workflow wait {{
  stage forever {{
    agent     = slowpoke
    tool      = "slow"
    arguments = {{ seconds = 600 }}
  }}
}}
"""


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_server_never_outlives_the_run(tmp_path: Path, how: signal.Signals) -> None:
    pids = tmp_path / "pids"
    (tmp_path / "wf.alfred").write_text(
        INTERRUPTED.format(server=_server(MISBEHAVING), pids=pids), encoding="utf-8"
    )
    proc = subprocess.Popen(
        [PY, "-m", "alfred_dsl", "run", "wf.alfred"], cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _pids(pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        started = _pids(pids)
        assert started, "the server never started"
        time.sleep(0.5)  # the call is under way
        proc.send_signal(how)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Ctrl-C: alfred closes the connection and kills the server's group. kill -9: the
    # kernel kills the server (its parent-death signal), busy as it is.
    assert _wait_gone(started, 20) == [], "the server outlived alfredc"


def test_check_reports_mcp_agent_and_stage_problems(tmp_path: Path) -> None:
    (tmp_path / "bad.alfred").write_text(
        """\
agent nowhere { kind = mcp }

agent both {
  kind   = mcp
  server = ["srv"]
  url    = "http://localhost/mcp"
}

agent sh { run = ["true"] }

workflow w {
  stage a { agent = nowhere; tool = "x" }
  stage b { agent = both }
  stage c { agent = sh; tool = "x" }
}
""",
        encoding="utf-8",
    )
    result = _alfredc(tmp_path, "check", "--format", "json", "bad.alfred")
    assert result.returncode == 1
    found = [(d["code"], d["line"], d["message"]) for d in json.loads(result.stdout)["diagnostics"]]
    assert ("A313", 1, "mcp agent `nowhere` names no server") in found
    assert ("A313", 3, "mcp agent `both` has both `server` and `url`") in found
    assert ("A314", 13, "stage `b` runs on mcp agent `both` but names no `tool`") in found
    assert ("A314", 14, "stage `c` has `tool`, but its agent `sh` is a command agent") in found


def test_an_exported_mcp_stage_calls_its_tool_as_alfredc_run_does(tmp_path: Path) -> None:
    # What an exported module runs per task (alfred_dsl.export.runtime.run_stage), here
    # without an engine: the data `alfredc export` writes, then one attempt per stage.
    import alfred_dsl
    from alfred_dsl.export import runtime as export_runtime
    from alfred_dsl.export._common import stage_data, workflow_data

    (tmp_path / "calls.alfred").write_text(CALLS.format(server=_server(FIXTURE)), encoding="utf-8")
    plan = alfred_dsl.compile(tmp_path / "calls.alfred")
    workflow = workflow_data(plan)
    outputs: dict[str, dict[str, Any]] = {}
    for name in ("sum", "said"):
        stage = stage_data(plan, plan.stage(name))
        json.dumps(stage)  # what the exported module holds is plain data
        upstream = {dep: outputs[dep] for dep in stage["after"]}
        outputs[name] = export_runtime.run_stage(
            workflow, stage, params={"n": 40}, upstream=upstream, run_id="exported", attempt=1,
            log=lambda _line: None,
        )
    assert outputs == {"sum": {"sum": 42}, "said": {"text": "the sum is 42"}}


def test_exported_mcp_tasks_running_at_once_do_not_close_each_others_server(tmp_path: Path) -> None:
    # Prefect runs a flow's tasks in threads of one process, all with the flow run's id: a
    # task that ends stops its own server, never the one a task beside it is still using.
    import threading

    import alfred_dsl
    from alfred_dsl.export import runtime as export_runtime
    from alfred_dsl.export._common import stage_data, workflow_data

    (tmp_path / "two.alfred").write_text(f"""\
agent tools {{
  kind   = mcp
  server = {_server(MISBEHAVING)}
}}
workflow two {{
  stage slow  {{ agent = tools; tool = "slow"; arguments = {{ seconds = 2 }} }}
  stage quick {{ agent = tools; tool = "json_text" }}
}}
""", encoding="utf-8")
    plan = alfred_dsl.compile(tmp_path / "two.alfred")
    workflow = workflow_data(plan)
    results: dict[str, Any] = {}

    def task(name: str) -> None:
        try:
            results[name] = export_runtime.run_stage(
                workflow, stage_data(plan, plan.stage(name)), params={}, upstream={}, run_id="flow-run",
                attempt=1, log=lambda _line: None,
            )
        except Exception as exc:  # the assertion below shows it
            results[name] = exc

    slow = threading.Thread(target=task, args=("slow",))
    slow.start()
    time.sleep(0.5)
    task("quick")
    slow.join(timeout=60)
    assert not isinstance(results["quick"], Exception), results["quick"]
    assert not isinstance(results["slow"], Exception), results["slow"]
