"""Stages grounded in documentation from a Context7-like MCP server (the SDK's ``MCPServer``
fixture, over stdio and streamable HTTP): ``check --online`` against the tools' schemas,
``alfredc lock`` and ``alfred.lock``, and runs that read the pinned texts offline."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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
REPO = Path(__file__).resolve().parent.parent


def _alfredc(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
    )


def _diagnostics(result: subprocess.CompletedProcess[str]) -> list[tuple[str, int, int, str]]:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    found = json.loads(result.stdout)["diagnostics"]
    return [(d["code"], d["line"], d["column"], d["message"]) for d in found]


def _stages(cwd: Path) -> dict[str, dict[str, Any]]:
    shown = _alfredc(cwd, "show", "last", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    return {s["name"]: s for s in json.loads(shown.stdout)["stages"]}


def _docs_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "server-docs"
    shutil.copytree(DATA / "docs", folder)
    return folder


CALLS = """\
agent docs {{
  kind   = mcp
  {server}
}}

workflow calls {{
  param n: int = 40

  stage sum {{
    agent     = docs
    tool      = "add"
    arguments = {{ a = "two", b = "${{params.n}}" }}
  }}

  stage resolve {{
    agent     = docs
    tool      = "resolve-library"
    arguments = {{ libraryName = "trio" }}
  }}

  stage read {{
    agent     = docs
    tool      = "get-library-docs"
    arguments = {{ topic = "nurseries", tokenz = 5000 }}
  }}
}}
"""

#: (code, line, column, message) of each problem in CALLS, whichever transport lists the tools.
CALL_PROBLEMS = [
    ("A317", 12, 23, "argument `a` of tool `add`: 'two' is not of type 'integer'"),
    ("A316", 17, 17, "the server of agent `docs` has no tool `resolve-library`"),
    ("A317", 24, 5, "tool `get-library-docs` requires the argument `context7CompatibleLibraryID`"),
    ("A317", 24, 40, "tool `get-library-docs` takes no argument `tokenz`"),
]


def test_check_online_validates_tools_and_arguments_over_stdio(tmp_path: Path) -> None:
    (tmp_path / "calls.alfred").write_text(
        CALLS.format(server=f"server = {json.dumps([PY, str(FIXTURE)])}"), encoding="utf-8"
    )
    offline = _alfredc(tmp_path, "check", "--format", "json", "calls.alfred")
    assert offline.returncode == 0 and _diagnostics(offline) == []  # nothing is started without --online
    online = _alfredc(tmp_path, "check", "--online", "--format", "json", "calls.alfred")
    assert online.returncode == 1
    assert _diagnostics(online) == CALL_PROBLEMS
    # `${params.n}` is a string now and an int at run time: its type is not held against it.
    text = _alfredc(tmp_path, "check", "--online", "calls.alfred").stdout
    assert "did you mean `resolve-library-id`?" in text
    assert "did you mean `tokens`?" in text
    plan = _alfredc(tmp_path, "plan", "--online", "calls.alfred")
    assert plan.returncode == 1 and "error[A316]" in plan.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve_http(port: int, docs: Path | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, **({"FIXTURE_DOCS": str(docs)} if docs else {})}
    proc = subprocess.Popen(
        [PY, str(FIXTURE), "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        assert proc.poll() is None, "the HTTP fixture server did not start"
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the HTTP fixture server never listened")


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    proc = _serve_http(port, _docs_copy(tmp_path))
    try:
        yield f"http://127.0.0.1:{port}/mcp", proc
    finally:
        proc.terminate()
        proc.wait(10)


def test_check_online_over_streamable_http(tmp_path: Path, http_server: tuple[str, Any]) -> None:
    url, _ = http_server
    (tmp_path / "calls.alfred").write_text(CALLS.format(server=f'url    = "{url}"'), encoding="utf-8")
    online = _alfredc(tmp_path, "check", "--online", "--format", "json", "calls.alfred")
    assert _diagnostics(online) == CALL_PROBLEMS


def test_an_unreachable_server_is_a318_and_nothing_starts_without_online(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    server = [PY, "-c", f"open({str(marker)!r}, 'w').close()"]
    text = CALLS.format(server=f"server = {json.dumps(server)}")
    (tmp_path / "calls.alfred").write_text(text, encoding="utf-8")
    assert _alfredc(tmp_path, "check", "calls.alfred").returncode == 0
    assert not marker.exists(), "check started an MCP server without --online"
    online = _alfredc(tmp_path, "check", "--online", "--format", "json", "calls.alfred")
    assert online.returncode == 1
    (found,) = _diagnostics(online)
    assert found[:3] == ("A318", 1, 7) and "cannot list the tools of agent `docs`" in found[3]
    assert marker.exists()


GROUNDED = """\
agent context7 {{
  kind   = mcp
  {server}
}}

agent sh {{ run = "cat \\"$ALFRED_DOCS\\" > docs-seen.md" }}

workflow grounded {{
  stage implement {{
    agent = sh
    docs  = [{{ library = "trio", topic = "{topic}" }}, {{ library = "httpx" }}]
  }}
}}
"""


def _stdio(docs: Path) -> str:
    return f'server = {json.dumps([PY, str(FIXTURE)])}\n  env    = {{ FIXTURE_DOCS = "{docs}" }}'


def _write(folder: Path, text: str) -> None:
    (folder / "wf.alfred").write_text(text, encoding="utf-8")


def _codes(cwd: Path) -> list[str]:
    return [d[0] for d in _diagnostics(_alfredc(cwd, "check", "--format", "json", "wf.alfred"))]


def test_lock_pins_ids_versions_and_hashes_and_check_sees_it_stale(tmp_path: Path) -> None:
    docs = _docs_copy(tmp_path)
    workflow = tmp_path / "wf.alfred"
    workflow.write_text(GROUNDED.format(server=_stdio(docs), topic="nurseries"), encoding="utf-8")
    assert _codes(tmp_path) == ["A508"]  # no lock yet

    locked = _alfredc(tmp_path, "lock", "wf.alfred")
    assert locked.returncode == 0, locked.stderr
    lock = json.loads((tmp_path / "alfred.lock").read_text(encoding="utf-8"))
    entries = {d["library"]: d for d in lock["files"]["wf.alfred"]["docs"]}
    trio_text = "TOPIC: nurseries\n\n" + (docs / "trio.md").read_text(encoding="utf-8")
    assert entries["trio"]["library_id"] == "/fixture/trio"
    assert entries["trio"]["version"] == "0.27"
    assert entries["trio"]["sha256"] == hashlib.sha256(trio_text.encode()).hexdigest()
    assert entries["httpx"]["version"] == "0.28"
    tools = {t["name"] for t in lock["files"]["wf.alfred"]["servers"]["context7"]["tools"]}
    assert {"resolve-library-id", "get-library-docs"} <= tools
    cached = tmp_path / ".alfred" / "docs" / entries["trio"]["sha256"]
    assert cached.read_text(encoding="utf-8") == trio_text
    assert _codes(tmp_path) == []

    # The docs block changes: the lock is stale there.
    workflow.write_text(GROUNDED.format(server=_stdio(docs), topic="cancellation"), encoding="utf-8")
    result = _alfredc(tmp_path, "check", "--format", "json", "wf.alfred")
    assert result.returncode == 0
    (stale,) = _diagnostics(result)
    assert stale[:3] == ("A509", 12, 14) and "topic `cancellation`" in stale[3]
    workflow.write_text(GROUNDED.format(server=_stdio(docs), topic="nurseries"), encoding="utf-8")

    # The server's text changes: only --online can see it.
    (docs / "trio.md").write_text("# trio 0.28: nurseries\n\nRewritten.\n", encoding="utf-8")
    assert _codes(tmp_path) == []
    online = _diagnostics(_alfredc(tmp_path, "check", "--online", "--format", "json", "wf.alfred"))
    assert [(d[0], d[1]) for d in online] == [("A509", 12)]
    assert "changed on its server" in online[0][3]


def test_run_reads_the_pinned_text_offline(tmp_path: Path) -> None:
    port = _free_port()
    docs = _docs_copy(tmp_path)
    server = _serve_http(port, docs)
    workflow = tmp_path / "wf.alfred"
    workflow.write_text(GROUNDED.format(server=f'url    = "http://127.0.0.1:{port}/mcp"', topic="nurseries"),
                        encoding="utf-8")
    try:
        assert _alfredc(tmp_path, "lock", "wf.alfred").returncode == 0
        first = _alfredc(tmp_path, "run", "wf.alfred")
        assert first.returncode == 0, first.stdout + first.stderr
        seen = (tmp_path / "docs-seen.md").read_text(encoding="utf-8")
        assert "A nursery is a place where child tasks live." in seen
        assert "httpx.Client()" in seen
    finally:
        server.terminate()
        server.wait(10)
    (tmp_path / "docs-seen.md").unlink()
    # The server is gone: the run reads the pinned texts from .alfred/docs.
    again = _alfredc(tmp_path, "run", "wf.alfred")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "docs-seen.md").read_text(encoding="utf-8") == seen
    log = Path(_stages(tmp_path)["implement"]["log"]).read_text(encoding="utf-8")
    assert "docs trio: pinned /fixture/trio 0.27" in log and "from the cache" in log
    # Without the cache nor the server, the stage fails, saying why, without a traceback.
    shutil.rmtree(tmp_path / ".alfred" / "docs")
    failed = _alfredc(tmp_path, "run", "wf.alfred")
    assert failed.returncode == 1
    error = _stages(tmp_path)["implement"]["error"]
    assert error.startswith("cannot give the stage its docs: cannot talk to MCP server"), error


def test_run_refuses_a_text_that_no_longer_matches_the_lock(tmp_path: Path) -> None:
    docs = _docs_copy(tmp_path)
    _write(tmp_path, GROUNDED.format(server=_stdio(docs), topic="nurseries"))
    assert _alfredc(tmp_path, "lock", "wf.alfred").returncode == 0
    (docs / "httpx.md").write_text("# httpx 0.29: clients\n\nNew text.\n", encoding="utf-8")
    # The cache holds the pinned texts: the run is the locked one, whatever the server says now.
    assert _alfredc(tmp_path, "run", "wf.alfred").returncode == 0
    assert "httpx.Client()" in (tmp_path / "docs-seen.md").read_text(encoding="utf-8")
    # Without the cache the server's new text does not hash as pinned: the stage fails.
    shutil.rmtree(tmp_path / ".alfred" / "docs")
    assert _alfredc(tmp_path, "run", "wf.alfred").returncode == 1
    error = _stages(tmp_path)["implement"]["error"]
    assert "the documentation of `httpx` changed since alfred.lock pinned it" in error
    assert "alfredc lock wf.alfred" in error


def test_without_a_lock_each_run_reads_the_server(tmp_path: Path) -> None:
    docs = _docs_copy(tmp_path)
    _write(tmp_path, GROUNDED.format(server=_stdio(docs), topic="nurseries"))
    assert _alfredc(tmp_path, "run", "wf.alfred").returncode == 0
    assert "TOPIC: nurseries" in (tmp_path / "docs-seen.md").read_text(encoding="utf-8")
    (docs / "trio.md").write_text("# trio 0.28: nurseries\n\nRewritten.\n", encoding="utf-8")
    assert _alfredc(tmp_path, "run", "wf.alfred").returncode == 0
    assert "Rewritten." in (tmp_path / "docs-seen.md").read_text(encoding="utf-8")
    log = Path(_stages(tmp_path)["implement"]["log"]).read_text(encoding="utf-8")
    assert "not pinned by alfred.lock" in log


PYTHON_STAGE = """\
agent context7 {{
  kind   = mcp
  {server}
}}

agent reader {{
  kind = python
  call = "reader:read"
}}

workflow grounded {{
  stage implement {{
    agent = reader
    docs  = [{{ library = "trio" }}]
  }}
}}
"""


def test_a_python_stage_gets_the_path_in_its_inputs(tmp_path: Path) -> None:
    (tmp_path / "reader.py").write_text(
        "from pathlib import Path\n\n"
        "def read(inputs):\n    return {'first': Path(inputs['ALFRED_DOCS']).read_text().splitlines()[2]}\n",
        encoding="utf-8",
    )
    _write(tmp_path, PYTHON_STAGE.format(server=_stdio(_docs_copy(tmp_path))))
    assert _alfredc(tmp_path, "lock", "wf.alfred").returncode == 0
    result = _alfredc(tmp_path, "run", "wf.alfred")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _stages(tmp_path)["implement"]["outputs"] == {"first": "# trio 0.27: nurseries"}


def test_docs_agents_are_checked(tmp_path: Path) -> None:
    (tmp_path / "wf.alfred").write_text(
        """\
agent context7 { run = ["true"] }
agent docs { kind = mcp; server = ["srv"] }
agent sh { run = ["true"] }

workflow w {
  stage a { agent = sh; docs = [{ library = "trio" }] }
  stage b { agent = sh; docs = [{ library = "trio", agent = "doc" }] }
}
""",
        encoding="utf-8",
    )
    found = _diagnostics(_alfredc(tmp_path, "check", "--format", "json", "wf.alfred"))
    codes = [(d[0], d[1]) for d in found]
    assert ("A315", 6) in codes
    assert ("A201", 7) in codes
    assert not any(d[0] == "A501" and "`context7`" in d[3] for d in found), "a docs agent is used"
    refused = _alfredc(tmp_path, "lock", "wf.alfred")
    assert refused.returncode == 1 and "error[A315]" in refused.stderr
    assert not (tmp_path / "alfred.lock").exists()


def test_the_feature_example_runs_offline_with_its_pinned_docs(tmp_path: Path) -> None:
    """examples/feature_development.alfred: spec to merge on stand-in agents, its implementation
    grounded in the trio docs examples/alfred.lock pins, served by the local Context7 stand-in;
    the merge waits for an approval; the budget adds up what the stages report."""
    examples = tmp_path / "examples"
    ignored = shutil.ignore_patterns(".alfred", "out", "__pycache__")
    shutil.copytree(REPO / "examples", examples, ignore=ignored)
    state = tmp_path / "state"
    run = subprocess.Popen(
        [PY, "-m", "alfred_dsl", "run", "feature_development.alfred", "-p", "feature_name=dark-mode",
         "--state", str(state)],
        cwd=examples, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            shown = _alfredc(examples, "show", "last", "--state", str(state), "--format", "json")
            if shown.returncode == 0 and json.loads(shown.stdout).get("approvals", {}).get("merge-approval"):
                break
            assert run.poll() is None, run.communicate()[0]
            time.sleep(0.3)
        approved = _alfredc(
            examples, "approve", "last", "merge-approval", "--as", "alice", "--state", str(state)
        )
        assert approved.returncode == 0, approved.stderr
        output, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, output
    shown = json.loads(_alfredc(examples, "show", "last", "--state", str(state), "--format", "json").stdout)
    states = {s["name"]: s["state"] for s in shown["stages"]}
    assert states["merge"] == "succeeded" and states["close-branch"] == "skipped"
    assert shown["spend"]["spent"]["usd"] == 0.8
    implementation = next(s for s in shown["stages"] if s["name"] == "implementation")
    log = Path(implementation["log"]).read_text(encoding="utf-8")
    assert "grounded in # trio 0.27: nurseries" in log
    pinned = json.loads((REPO / "examples" / "alfred.lock").read_text(encoding="utf-8"))
    (entry,) = pinned["files"]["feature_development.alfred"]["docs"]
    assert f"sha256 {entry['sha256'][:12]}" in log  # the text the lock pins, none other


@pytest.mark.parametrize("damage", [b"\xff\xfe\x00 not json", b'{"alfred_lock": 1, "files": 5}'])
def test_a_damaged_lock_beside_tool_calls_is_a509_not_silence(tmp_path: Path, damage: bytes) -> None:
    broken = REPO / "examples" / "broken"
    shutil.copy(broken / "A316-unknown-tool.alfred", tmp_path / "flow.alfred")
    (tmp_path / "alfred.lock").write_bytes(damage)
    done = _alfredc(tmp_path, "check", "flow.alfred")
    assert done.returncode == 0, done.stderr
    assert "warning[A509]: alfred.lock cannot be used" in done.stdout + done.stderr
    assert "flow.alfred:10:5" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
