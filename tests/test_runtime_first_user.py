"""What a first user tripped over: each is a documented behaviour, tested as a user meets it.

Every test drives ``alfredc`` as a real subprocess (``python -m alfred_dsl``) on a real
``.alfred`` file, with a real SQLite state directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def alfredc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def show(cwd: Path) -> dict[str, Any]:
    done = alfredc(cwd, "show", "last", "--format", "json")
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def stage_of(data: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in data["stages"] if s["name"] == name)
    return found


# -- $ALFRED_OUTPUTS: multi-line values, and no line silently dropped ----------------------------

OUTPUTS_FLOW = """
agent sh {
  kind = command
}
workflow outputs {
  stage notes {
    agent = sh
    run = ["sh", "-c", "cat write-outputs > \\"$ALFRED_OUTPUTS\\""]
  }
  stage publish after notes {
    agent = sh
    run = ["sh", "-c", "printf '%s' \\"$NOTES\\" > notes.txt; printf '%s' \\"$VERSION\\" > version.txt"]
    env = { NOTES = "${stages.notes.outputs.notes}", VERSION = "${stages.notes.outputs.version}" }
  }
}
"""


def _outputs_project(tmp_path: Path, outputs: str) -> Path:
    (tmp_path / "flow.alfred").write_text(OUTPUTS_FLOW)
    (tmp_path / "write-outputs").write_text(outputs)
    return tmp_path


def test_github_style_multi_line_outputs_reach_later_stages(tmp_path: Path) -> None:
    project = _outputs_project(
        tmp_path, "version=1.2\nnotes<<EOF\nfirst line\n\nthird = line\nEOF\nempty<<END\nEND\n"
    )
    done = alfredc(project, "run", "flow.alfred")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / "notes.txt").read_text() == "first line\n\nthird = line"
    assert (project / "version.txt").read_text() == "1.2"
    outputs = stage_of(show(project), "notes")["outputs"]
    assert outputs == {"version": "1.2", "notes": "first line\n\nthird = line", "empty": ""}


def test_a_malformed_outputs_line_fails_the_attempt_with_its_line_number(tmp_path: Path) -> None:
    project = _outputs_project(tmp_path, "version=1.2\n\nversion 1.3\n")
    done = alfredc(project, "run", "flow.alfred")
    assert done.returncode == 1
    notes = stage_of(show(project), "notes")
    expected = "$ALFRED_OUTPUTS line 3: `version 1.3` is neither `key=value` nor `key<<DELIMITER`"
    assert (notes["state"], notes["error"]) == ("failed", expected)
    assert stage_of(show(project), "publish")["state"] == "upstream_failed"
    assert alfredc(project, "logs", "last", "notes").stdout == f"alfred: {expected}\n"


def test_an_unclosed_multi_line_output_is_an_error_not_a_truncated_value(tmp_path: Path) -> None:
    project = _outputs_project(tmp_path, "notes<<EOF\nfirst line\nEOF \n")
    assert alfredc(project, "run", "flow.alfred").returncode == 1
    notes = stage_of(show(project), "notes")
    assert notes["error"] == "$ALFRED_OUTPUTS line 1: `notes<<EOF` is never closed by a line `EOF`"


# -- --dry-run: `when` on a stage output, and durations as written ---------------------------------

DRY_FLOW = """
agent sh {
  kind = command
}
workflow ship {
  param deploy: bool = false
  stage probe {
    agent = sh
    timeout = 2m
    retries = 2
    backoff = 1m30s
    run = "echo ok=yes > $ALFRED_OUTPUTS"
  }
  stage deploy after probe {
    agent = sh
    timeout = 1h
    when = stages.probe.outputs.ok == "yes"
    run = "touch deployed"
  }
  stage announce after probe {
    agent = sh
    timeout = 1500ms
    when = params.deploy
    run = "touch announced"
  }
}
"""


def test_dry_run_leaves_a_when_on_a_stage_output_to_the_run_and_prints_durations_as_written(
    tmp_path: Path,
) -> None:
    (tmp_path / "flow.alfred").write_text(DRY_FLOW)
    done = alfredc(tmp_path, "run", "flow.alfred", "--dry-run")
    assert done.returncode == 0, done.stderr
    blocks: dict[str, str] = {}
    name = ""
    for line in done.stdout.splitlines(keepends=True):
        if line.startswith("  ") and not line.startswith("   "):  # `  NAME`: a stage's block starts
            name = line.strip()
        elif name:
            blocks[name] = blocks.get(name, "") + line
    assert '    when     decided at run time: stages.probe.outputs.ok == "yes"\n' in blocks["deploy"]
    assert "    when     false\n" in blocks["announce"]  # a param: known before the run
    assert "    when " not in blocks["probe"]
    assert "    timeout  2m, 2 retries, backoff 1m30s\n" in blocks["probe"]
    assert "    timeout  1h, no retries\n" in blocks["deploy"]
    assert "    timeout  1.5s, no retries\n" in blocks["announce"]
    assert not (tmp_path / "deployed").exists() and not (tmp_path / "announced").exists()


# -- run --resume of a run that already succeeded ----------------------------------------------------

DONE_FLOW = """
agent sh {
  kind = command
}
workflow done {
  on success { run = "echo hook >> hooks.txt" }
  stage build {
    agent = sh
    run = "echo x >> builds.txt; echo n=1 > $ALFRED_OUTPUTS"
  }
  stage later after build {
    agent = sh
    when = false
    run = "touch later"
  }
}
"""


def _run_figures(cwd: Path) -> dict[str, Any]:
    done = alfredc(cwd, "metrics", "--format", "json")
    assert done.returncode == 0, done.stderr
    figures: dict[str, Any] = json.loads(done.stdout)
    return {key: figures[key] for key in ("runs", "run_duration_s", "stage_duration_s")}


def test_resuming_a_run_that_succeeded_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "flow.alfred").write_text(DONE_FLOW)
    first = alfredc(tmp_path, "run", "flow.alfred")
    assert first.returncode == 0, first.stdout + first.stderr
    before, figures = show(tmp_path), _run_figures(tmp_path)
    events = tmp_path / "events.jsonl"
    again = alfredc(tmp_path, "run", "--resume", "last", "--events", str(events))
    assert again.returncode == 0, again.stdout + again.stderr
    took = again.stdout.rpartition(" in ")[2].partition(";")[0]
    assert again.stdout == (
        f"run {before['id']} (done) already succeeded: 1 succeeded, 1 skipped in {took}; nothing to run\n"
    )
    assert show(tmp_path) == before  # the same times, states, attempts and outputs
    assert _run_figures(tmp_path) == figures
    assert (tmp_path / "builds.txt").read_text() == "x\n"  # not run again
    assert (tmp_path / "hooks.txt").read_text() == "hook\n"  # `on success` fired once
    assert not (tmp_path / "later").exists()  # its `when` was not evaluated again
    assert events.read_text() == ""  # no event: nothing happened


# -- a python call that cannot be imported is not retried --------------------------------------------

IMPORT_FLOW = """
agent py {
  kind = python
}
workflow calls {
  stage missing {
    agent = py
    call = "no_such_agents_module:run"
    retries = 3
    backoff = 30s
    on_failure = continue
  }
  stage typo {
    agent = py
    call = "helpers:rnu"
    retries = 3
    backoff = 30s
    on_failure = continue
  }
  stage flaky {
    agent = py
    call = "flaky:run"
    retries = 1
    on_failure = continue
  }
}
"""


def test_a_python_call_that_cannot_be_imported_fails_at_once_without_retries(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("def run(inputs):\n    return {}\n")
    # A module whose top-level code raises may do better next time (a service not up yet).
    (tmp_path / "flaky.py").write_text("raise ConnectionError('service not up yet')\n")
    (tmp_path / "flow.alfred").write_text(IMPORT_FLOW)
    done = alfredc(tmp_path, "run", "flow.alfred", "--events", "events.jsonl")
    assert done.returncode == 1
    data = show(tmp_path)
    missing, typo, flaky = (stage_of(data, name) for name in ("missing", "typo", "flaky"))
    not_retried = " (not retried: retrying cannot make it importable)"
    assert (missing["state"], missing["attempts"]) == ("failed", 1)
    assert missing["error"] == (
        "cannot import `no_such_agents_module:run`: no module named `no_such_agents_module`" + not_retried
    )
    assert (typo["state"], typo["attempts"]) == ("failed", 1)
    no_attribute = "cannot import `helpers:rnu`: module `helpers` has no attribute `rnu`"
    assert typo["error"] == no_attribute + not_retried
    assert (flaky["state"], flaky["attempts"]) == ("failed", 2)
    assert flaky["error"] == "cannot import `flaky:run`: ConnectionError: service not up yet"
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["stage"] for e in events if e["type"] == "stage_retrying"] == ["flaky"]
    failed = {e["stage"]: e["data"]["error"] for e in events if e["type"] == "stage_failed"}
    assert failed["missing"].endswith(not_retried) and failed["typo"].endswith(not_retried)
    # The 30 s backoffs were never waited for.
    assert data["finished"] - data["started"] < 10


CHECK_FLOW = """
agent py {
  kind = python
}
workflow calls {
  stage here {
    agent = py
    call = "here_agents:run"
  }
  stage elsewhere {
    agent = py
    call = "far_agents:run"
  }
  stage moved {
    agent = py
    cwd = "lib"
    call = "far_agents:run"
  }
  stage installed {
    agent = py
    call = "json:loads"
  }
}
"""


def test_check_warns_when_a_python_module_is_not_importable_from_the_stage_folder(tmp_path: Path) -> None:
    (tmp_path / "flow.alfred").write_text(CHECK_FLOW)
    # Importing would run this: `check` must only look for the module.
    (tmp_path / "here_agents.py").write_text(
        "open('imported', 'w').close()\ndef run(inputs):\n    return {}\n"
    )
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "far_agents.py").write_text("def run(inputs):\n    return {}\n")
    done = alfredc(tmp_path, "check", "--format", "json", "flow.alfred")
    assert done.returncode == 0, done.stdout + done.stderr  # a warning, not an error
    found = [(d["code"], d["line"], d["message"]) for d in json.loads(done.stdout)["diagnostics"]]
    assert found == [
        ("A504", 12, "python module `far_agents` cannot be imported from the folder of stage `elsewhere`"),
    ]
    assert not (tmp_path / "imported").exists()
    assert alfredc(tmp_path, "check", "--strict", "flow.alfred").returncode == 1


# -- a python agent's print() and logging go to its stage's log ----------------------------------

TALK_AGENTS = """
import logging
import time

import trio

log = logging.getLogger("agents")
print("imported agents")  # at import: the log of the attempt that imported it


def talk(inputs):
    for i in range(40):
        print(f"{inputs['name']} line {i}")
        if i % 10 == 0:
            log.warning("%s warned at %d", inputs["name"], i)
        time.sleep(0.001)
    return {"said": 40}


async def talk_async(inputs):
    for i in range(40):
        print(f"{inputs['name']} line {i}", flush=True)
        await trio.sleep(0.001)
    log.error("%s done", inputs["name"])
    return {}
"""


def _talk_flow(sync: int, asynchronous: int) -> str:
    calls = [(f"s{i}", "agents:talk") for i in range(sync)]
    calls += [(f"a{i}", "agents:talk_async") for i in range(asynchronous)]
    stages = "".join(
        f'  stage {name} {{\n    agent = py\n    call = "{call}"\n    inputs = {{ name = "{name}" }}\n  }}\n'
        for name, call in calls
    )
    return f"agent py {{\n  kind = python\n  concurrency = 8\n}}\nworkflow talk {{\n{stages}}}\n"


def test_print_and_logging_of_concurrent_python_stages_go_to_each_stage_log(tmp_path: Path) -> None:
    (tmp_path / "agents.py").write_text(TALK_AGENTS)
    (tmp_path / "flow.alfred").write_text(_talk_flow(sync=4, asynchronous=3))
    done = alfredc(tmp_path, "run", "flow.alfred", "-j", "8")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "line" not in done.stdout and "warned" not in done.stdout and "imported" not in done.stdout
    assert done.stderr == ""  # logging's default output is stderr: none of it reached alfredc's
    data = show(tmp_path)
    imported = 0
    for name in [f"s{i}" for i in range(4)] + [f"a{i}" for i in range(3)]:
        stage = stage_of(data, name)
        assert stage["log"] is not None, name  # `show` names the log
        lines = alfredc(tmp_path, "logs", "last", name).stdout.splitlines()
        if lines[0] == "imported agents":
            imported += 1
            lines = lines[1:]
        said = [line for line in lines if " line " in line]
        assert said == [f"{name} line {i}" for i in range(40)], name  # its own lines only, in order
        logged = [line for line in lines if " line " not in line]
        if name.startswith("s"):
            assert logged == [f"{name} warned at {i}" for i in (0, 10, 20, 30)]
        else:
            assert logged == [f"{name} done"]
    assert imported == 1  # the module is imported once, by one of the attempts
