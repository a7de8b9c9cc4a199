"""``alfredc run`` as a user runs it: a real subprocess on a real .alfred file."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from conftest import ALFREDC

FLOW = """
agent sh {
  kind = command
  concurrency = 2
}
workflow demo {
  param name: string = "world"
  param fail: bool = false
  stage hello {
    agent = sh
    run = "echo hello ${params.name}; echo greeting=hi > $ALFRED_OUTPUTS; echo x >> runs.hello"
  }
  stage wait after hello {
    agent = sh
    run = ["sh", "-c", "echo x >> runs.wait; if [ -f block ]; then echo $$ > wait.pid; sleep 30; fi"]
  }
  stage last after wait {
    agent = sh
    run = ["sh", "-c", "echo ${stages.hello.outputs.greeting} > last.txt; test ${params.fail} = false"]
  }
}
"""


def _alfredc(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ALFREDC, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)


def _project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "flow.alfred").write_text(FLOW)
    return tmp_path


def test_a_successful_run_exits_0_and_passes_outputs_and_quoted_params(tmp_path: Path) -> None:
    _project(tmp_path)
    evil = 'name=a"; touch pwned; "'
    result = _alfredc(tmp_path, "run", "flow.alfred", "--param", evil, "--events", "ev.jsonl")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "pwned").exists()
    assert (tmp_path / "last.txt").read_text() == "hi\n"
    logs = list((tmp_path / ".alfred" / "runs").glob("*/hello.1.log"))
    assert [p.read_text() for p in logs] == ['hello a"; touch pwned; "\n']
    events = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert events[0]["type"] == "run_started" and events[-1]["type"] == "run_completed"


def test_a_failed_stage_exits_1(tmp_path: Path) -> None:
    _project(tmp_path)
    result = _alfredc(tmp_path, "run", "flow.alfred", "--param", "fail=true", "--state", "elsewhere")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (tmp_path / "elsewhere" / "state.db").exists() and not (tmp_path / ".alfred").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    _project(tmp_path)
    assert _alfredc(tmp_path, "run").returncode == 2
    unknown = _alfredc(tmp_path, "run", "--resume", "no-such-run")
    assert unknown.returncode == 2 and "no run `no-such-run`" in unknown.stderr


def test_ctrl_c_exits_130_kills_the_stage_and_the_run_resumes(tmp_path: Path) -> None:
    _project(tmp_path)
    (tmp_path / "block").touch()
    proc = subprocess.Popen([*ALFREDC, "run", "flow.alfred", "--grace", "0.5"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not (tmp_path / "wait.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = int((tmp_path / "wait.pid").read_text())
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 130 and "Traceback" not in err
    time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    (tmp_path / "block").unlink()
    resumed = _alfredc(tmp_path, "run", "--resume", "last")
    assert resumed.returncode == 0, resumed.stderr
    assert len((tmp_path / "runs.hello").read_text().split()) == 1  # not run again
    assert len((tmp_path / "runs.wait").read_text().split()) == 2
    assert (tmp_path / "last.txt").read_text() == "hi\n"


def test_the_python_api_runs_a_file_and_raises_diagnostics_on_errors(tmp_path: Path) -> None:
    import pytest

    from alfred_dsl import DiagnosticError
    from alfred_dsl._api import run

    _project(tmp_path)
    seen: list[str] = []
    result = run(tmp_path / "flow.alfred", params={"name": "api", "fail": False},
                 state_dir=tmp_path / "st", on_event=lambda e: seen.append(e.type))
    assert result.state == "succeeded" and result.exit_status == 0
    assert result.stages["hello"].outputs == {"greeting": "hi"} and result.stages["hello"].attempts == 1
    assert seen[0] == "run_started" and seen[-1] == "run_completed"
    (tmp_path / "bad.alfred").write_text("workflow w {\n  stage s {\n    agent = nobody\n  }\n}\n")
    with pytest.raises(DiagnosticError) as raised:
        run(tmp_path / "bad.alfred", state_dir=tmp_path / "st")
    assert any(d.code == "A201" for d in raised.value.diagnostics)


# -- the live view on a terminal ------------------------------------------------------

SIMPLE = (
    'agent sh {\n  kind = command\n}\n'
    'workflow w {\n  stage a {\n    agent = sh\n    run = "echo hi"\n  }\n}\n'
)


def _alfredc_on_a_terminal(tmp_path: Path, *args: str, stderr_to: Path | None = None) -> tuple[int, str]:
    """``alfredc ARGS`` with stdout on a pseudo-terminal (stderr too, unless ``stderr_to``)."""
    import os

    from _terminal import run_on_terminal

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
    status, output = run_on_terminal([*ALFREDC, *args], env, cwd=tmp_path, stderr_to=stderr_to)
    return status, output.decode("utf-8", errors="replace")


def test_an_unwritable_events_file_exits_2_and_leaves_the_terminal_cursor_visible(tmp_path: Path) -> None:
    (tmp_path / "p.alfred").write_text(SIMPLE)
    status, text = _alfredc_on_a_terminal(tmp_path, "run", "p.alfred", "--events", "/proc/nope/ev.jsonl")
    assert status == 2, text
    assert "alfredc: error: cannot write events to /proc/nope/ev.jsonl" in text
    assert "Traceback" not in text
    # Whatever the view did, a hidden cursor (ESC[?25l) is shown again (ESC[?25h).
    assert text.count("\x1b[?25l") <= text.count("\x1b[?25h")
    assert not (tmp_path / ".alfred" / "runs").exists() or not any((tmp_path / ".alfred" / "runs").iterdir())


def test_colour_follows_stdout_where_the_view_is_drawn(tmp_path: Path) -> None:
    (tmp_path / "p.alfred").write_text(SIMPLE)
    # stdout on a terminal, stderr to a file: the live view is drawn, in colour.
    status, text = _alfredc_on_a_terminal(tmp_path, "run", "p.alfred", stderr_to=tmp_path / "err.txt")
    assert status == 0, text + (tmp_path / "err.txt").read_text()
    assert "\x1b[?25l" in text and "\x1b[?25h" in text  # the live view ran, and restored the cursor
    assert "\x1b[3" in text or "\x1b[1;3" in text      # foreground colours
    status, text = _alfredc_on_a_terminal(tmp_path, "run", "p.alfred", "--colour", "never")
    assert status == 0, text
    assert "\x1b[3" not in text and "\x1b[1;3" not in text


WHEN_FLOW = """
agent sh {
  kind = command
}
workflow w {
  param answer: string = "yes"
  stage probe {
    agent = sh
    run = "echo ok=${params.answer} > $ALFRED_OUTPUTS"
  }
  stage deploy after probe {
    agent = sh
    when = stages.probe.outputs.ok == "yes"
    run = "touch deployed"
  }
  stage announce after deploy {
    agent = sh
    run = "touch announced"
  }
}
"""


def test_when_on_a_stage_output_is_evaluated_at_run_time(tmp_path: Path) -> None:
    (tmp_path / "w.alfred").write_text(WHEN_FLOW)
    no = _alfredc(tmp_path, "run", "w.alfred", "--param", "answer=no", "--events", "no.jsonl")
    assert no.returncode == 0, no.stderr
    assert not (tmp_path / "deployed").exists() and not (tmp_path / "announced").exists()
    skipped = [json.loads(line) for line in (tmp_path / "no.jsonl").read_text().splitlines()]
    assert [(e["stage"], e["data"]["reason"]) for e in skipped if e["type"] == "stage_skipped"] == [
        ("deploy", "`when` is false"), ("announce", "`deploy` was skipped"),
    ]
    yes = _alfredc(tmp_path, "run", "w.alfred")
    assert yes.returncode == 0, yes.stderr
    assert (tmp_path / "deployed").exists() and (tmp_path / "announced").exists()
