"""Dynamic fan-out: `for_each = stages.X.outputs.KEY` expands at run time, durably, as real processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from conftest import ALFREDC

# `list` prints the JSON array in list.txt; each instance logs its item (from the environment
# and from the shell line) to ran.txt, waits for the file `go` when its item says so, and
# outputs its item; `all` gets the map of the instances' outputs.
FLOW = """
agent sh {
  kind = command
  concurrency = 4
}

workflow convert {
  stage list {
    agent   = sh
    outputs = [files]
    run     = "echo list >> calls.txt; printf 'files=%s\\\\n' \\"$(cat list.txt)\\" > $ALFRED_OUTPUTS"
  }

  stage each-file {
    agent    = sh
    for_each = stages.list.outputs.files
    env      = { ITEM = "${each.item}" }
    run      = "echo \\"$ALFRED_STAGE|$ITEM|${each.item}|${each.index}\\" >> ran.txt; WAIT; @OUT@"
  }

  stage all {
    agent  = sh
    inputs = { converted = stages.each-file.outputs }
    run    = "cp \\"$ALFRED_INPUTS\\" all.json"
  }
}
"""
FLOW = FLOW.replace("@OUT@", "echo got=${each.item} > $ALFRED_OUTPUTS")
NO_WAIT = FLOW.replace("WAIT", "true")
# An item starting with `slow` waits (for at most 60 s) until the file `go` exists.
WAITING = FLOW.replace(
    "WAIT",
    'case \\"$ITEM\\" in slow*) n=0; while [ ! -e go ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done;;'
    " esac",
)


def _alfredc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ALFREDC, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _project(tmp_path: Path, items: Any, text: str = NO_WAIT) -> Path:
    (tmp_path / ".git").mkdir(exist_ok=True)
    (tmp_path / "flow.alfred").write_text(text)
    (tmp_path / "list.txt").write_text(items if isinstance(items, str) else json.dumps(items))
    return tmp_path


def _show(cwd: Path) -> dict[str, Any]:
    result = _alfredc(cwd, "show", "last", "--format", "json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _states(data: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["state"] for s in data["stages"]}


def _ran(cwd: Path) -> list[list[str]]:
    path = cwd / "ran.txt"
    return [line.split("|") for line in path.read_text().splitlines()] if path.exists() else []


def test_three_items_give_three_instances_with_their_item(tmp_path: Path) -> None:
    items = ["a b", "$(touch pwned); `touch pwned2`", "it's \"quoted\""]
    _project(tmp_path, items)
    result = _alfredc(tmp_path, "run", "flow.alfred", "--events", "events.jsonl")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stage_expanded each-file (3 instances, over stages.list.outputs.files)" in result.stdout
    # Each instance got its item, through the environment and in its shell line, as data.
    ran = sorted(_ran(tmp_path))
    assert ran == [[f"each-file[{i}]", item, item, str(i)] for i, item in enumerate(items)]
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    # The stage after it got every instance's outputs, by index.
    assert json.loads((tmp_path / "all.json").read_text()) == {
        "converted": {str(i): {"got": item} for i, item in enumerate(items)}
    }
    data = _show(tmp_path)
    assert [s["name"] for s in data["stages"]] == [
        "list", "each-file", "each-file[0]", "each-file[1]", "each-file[2]", "all",
    ]
    assert set(_states(data).values()) == {"succeeded"}
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    expanded = [e for e in events if e["type"] == "stage_expanded"]
    assert len(expanded) == 1 and expanded[0]["stage"] == "each-file"
    assert expanded[0]["data"]["count"] == 3 and expanded[0]["data"]["items"] == items
    # Every instance starts after the expansion, and `all` after every instance.
    order = [(e["type"], e.get("stage")) for e in events]
    first_start = min(order.index(("stage_started", f"each-file[{i}]")) for i in range(3))
    assert order.index(("stage_expanded", "each-file")) < first_start
    last_end = max(order.index(("stage_succeeded", f"each-file[{i}]")) for i in range(3))
    assert last_end < order.index(("stage_succeeded", "each-file")) < order.index(("stage_started", "all"))
    # The report's table and Gantt chart show the instances.
    report = _alfredc(tmp_path, "report", "last", "-o", "report.html")
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "report.html").read_text()
    assert all(html.count(f"each-file[{i}]") >= 2 for i in range(3))


def _wait_for(predicate: Any, proc: subprocess.Popen[str], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _stage_state(cwd: Path, name: str) -> str | None:
    db = cwd / ".alfred" / "state.db"
    if not db.exists():
        return None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            row = conn.execute("SELECT state FROM stages WHERE name = ?", (name,)).fetchone()
        except sqlite3.OperationalError:
            return None
    return None if row is None else str(row[0])


def test_resume_after_kill_reuses_the_recorded_expansion(tmp_path: Path) -> None:
    _project(tmp_path, ["fast", "slow-1", "slow-2"], WAITING)
    proc = subprocess.Popen(
        [*ALFREDC, "run", "flow.alfred"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The expansion is recorded and the quick instance has succeeded; the others wait.
        _wait_for(lambda: _stage_state(tmp_path, "each-file[0]") == "succeeded", proc, "each-file[0]")
        _wait_for(lambda: len(_ran(tmp_path)) == 3, proc, "the slow instances to start")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.communicate()
    db = tmp_path / ".alfred" / "state.db"
    with sqlite3.connect(db) as conn:
        recorded = conn.execute("SELECT stage, items FROM expansions").fetchall()
        assert recorded == [("each-file", '["fast","slow-1","slow-2"]')]
        # `list` would now give another list, and even its recorded outputs say so: the
        # resumed run must take the recorded expansion, not expand again.
        other = json.dumps(["x", "y", "z", "w", "slow-v"])
        conn.execute("UPDATE stages SET outputs = ? WHERE name = 'list'", (json.dumps({"files": other}),))
    (tmp_path / "list.txt").write_text(other)
    (tmp_path / "go").write_text("")
    resumed = _alfredc(tmp_path, "run", "flow.alfred", "--resume", "last")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    data = _show(tmp_path)
    assert [s["name"] for s in data["stages"]] == [
        "list", "each-file", "each-file[0]", "each-file[1]", "each-file[2]", "all",
    ]
    assert set(_states(data).values()) == {"succeeded"}
    assert (tmp_path / "calls.txt").read_text().splitlines() == ["list"]  # `list` ran once
    ran = _ran(tmp_path)
    # The quick instance ran once; the two that were running when the run was killed ran again.
    assert [line[0] for line in ran].count("each-file[0]") == 1
    assert sorted(line[0] for line in ran[3:]) == ["each-file[1]", "each-file[2]"]
    assert {line[1] for line in ran} == {"fast", "slow-1", "slow-2"}
    assert json.loads((tmp_path / "all.json").read_text())["converted"] == {
        "0": {"got": "fast"}, "1": {"got": "slow-1"}, "2": {"got": "slow-2"},
    }


def _failed(tmp_path: Path, items: Any) -> dict[str, Any]:
    _project(tmp_path, items)
    result = _alfredc(tmp_path, "run", "flow.alfred")
    assert result.returncode == 1, result.stdout + result.stderr
    stage: dict[str, Any] = next(s for s in _show(tmp_path)["stages"] if s["name"] == "each-file")
    assert stage["state"] == "failed"
    assert _states(_show(tmp_path))["all"] == "upstream_failed"
    assert not _ran(tmp_path)
    return stage


def test_a_value_that_is_not_a_json_array_fails_the_stage(tmp_path: Path) -> None:
    stage = _failed(tmp_path, "a.txt b.txt")
    assert stage["error"] == (
        "`for_each`: stages.list.outputs.files is not a list: 'a.txt b.txt' is not a JSON array"
        ' (write it as `KEY=["a", "b"]`)'
    )


def test_an_object_or_a_nested_item_fails_the_stage(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    whole.mkdir()
    stage = _failed(whole, {"a": 1})
    assert "is not a list but an object" in stage["error"]
    nested = tmp_path / "nested"
    nested.mkdir()
    stage = _failed(nested, ["ok", ["nested"]])
    assert stage["error"] == (
        "`for_each`: item 1 of stages.list.outputs.files is a list; items are strings, numbers or booleans"
    )


def test_more_items_than_the_cap_fail_the_stage(tmp_path: Path) -> None:
    stage = _failed(tmp_path, list(range(10_001)))
    assert stage["error"] == (
        "`for_each`: stages.list.outputs.files has 10001 items, more than the 10000 allowed"
    )


def test_an_empty_list_succeeds_with_no_instance(tmp_path: Path) -> None:
    _project(tmp_path, [])
    result = _alfredc(tmp_path, "run", "flow.alfred")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _states(_show(tmp_path)) == {"list": "succeeded", "each-file": "succeeded", "all": "succeeded"}
    assert json.loads((tmp_path / "all.json").read_text()) == {"converted": {}}
    assert not _ran(tmp_path)


def test_a_failed_instance_stops_the_stages_after_it(tmp_path: Path) -> None:
    text = NO_WAIT.replace("echo got=", "test \\\"$ITEM\\\" != bad && echo got=")
    _project(tmp_path, ["good", "bad"], text)
    result = _alfredc(tmp_path, "run", "flow.alfred")
    assert result.returncode == 1, result.stdout + result.stderr
    states = _states(_show(tmp_path))
    assert states["each-file[1]"] == "failed"
    assert states["each-file"] == "upstream_failed" and states["all"] == "upstream_failed"


def test_when_is_decided_per_instance(tmp_path: Path) -> None:
    text = NO_WAIT.replace(
        "for_each = stages.list.outputs.files",
        'for_each = stages.list.outputs.files\n    when = "${each.item != \\"skip\\"}"',
    )
    _project(tmp_path, ["one", "skip", "three"], text)
    result = _alfredc(tmp_path, "run", "flow.alfred")
    assert result.returncode == 0, result.stdout + result.stderr
    states = _states(_show(tmp_path))
    assert states["each-file[1]"] == "skipped" and states["all"] == "succeeded"
    assert json.loads((tmp_path / "all.json").read_text())["converted"] == {
        "0": {"got": "one"}, "2": {"got": "three"},
    }


def test_plan_shows_the_stage_as_dynamic(tmp_path: Path) -> None:
    text = NO_WAIT.replace(
        "for_each = stages.list.outputs.files",
        "for_each = stages.list.outputs.files\n    estimate = 30s\n    spread = 5s\n    fail_rate = 0.1",
    )
    _project(tmp_path, [], text)
    result = _alfredc(tmp_path, "plan", "flow.alfred", "--format", "json")
    assert result.returncode == 0, result.stderr
    stages = {s["name"]: s for s in json.loads(result.stdout)["stages"]}
    assert stages["each-file"]["for_each"] == {"stage": "list", "output": "files"}
    assert stages["each-file"]["after"] == ["list"]  # reading the list implies `after list`
    assert stages["all"]["after"] == ["each-file"]   # reading the map implies `after each-file`
    assert stages["each-file"]["spread_s"] == 5 and stages["each-file"]["fail_rate"] == 0.1
    assert "for_each" not in stages["all"] and "spread_s" not in stages["all"]
    # The critical path counts one instance.
    assert stages["all"]["earliest_start_s"] == 30
    text_plan = _alfredc(tmp_path, "plan", "flow.alfred")
    assert ("dynamic: each-file runs once per item of stages.list.outputs.files"
            " (instances known at run time; timings count one)") in text_plan.stdout


def _diagnostics(tmp_path: Path, text: str) -> list[dict[str, Any]]:
    (tmp_path / ".git").mkdir(exist_ok=True)
    (tmp_path / "flow.alfred").write_text(text)
    result = _alfredc(tmp_path, "check", "flow.alfred", "--format", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    found: list[dict[str, Any]] = data["diagnostics"]
    return found


def test_checks_name_the_problem_and_the_fix(tmp_path: Path) -> None:
    text = NO_WAIT.replace("stages.list.outputs.files", "stages.lsit.outputs.files", 1)
    text = text.replace("${each.index}", "${each.indx}")
    text = text.replace("inputs = { converted = stages.each-file.outputs }",
                        'inputs = { converted = stages.each-file.outputs.got, item = "${each.item}" }')
    found = {(d["code"], d["message"]): d for d in _diagnostics(tmp_path, text)}
    unknown = found[("A202", "unknown stage `lsit` in workflow `convert`")]
    assert unknown["notes"] == ["did you mean `list`?"]
    assert found[("A218", "`each.indx` is neither `each.item` nor `each.index`")]["notes"] == [
        "did you mean `index`?"
    ]
    assert ("A218", "`each.item` is used in a stage without `for_each`") in found
    assert (
        "A210", "`stages.each-file.outputs.got`: `each-file` is a `for_each` stage, whose outputs are one map"
    ) in found


def test_check_fix_repairs_a_misspelt_each_key(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "flow.alfred").write_text(NO_WAIT.replace("${each.index}", "${each.indx}"))
    fixed = _alfredc(tmp_path, "check", "flow.alfred", "--fix")
    assert "${each.index}" in (tmp_path / "flow.alfred").read_text(), fixed.stdout + fixed.stderr
    assert _alfredc(tmp_path, "check", "flow.alfred").returncode == 0


def test_for_each_is_one_output_reference_and_not_on_a_matrix(tmp_path: Path) -> None:
    text = NO_WAIT.replace("for_each = stages.list.outputs.files",
                           'for_each = "${stages.list.outputs.files} more"')
    found = _diagnostics(tmp_path, text)
    assert [(d["code"], d["message"]) for d in found] == [
        ("A319", "`for_each` must be one reference to another stage's output")
    ]
    text = NO_WAIT.replace("for_each = stages.list.outputs.files",
                           "for_each = stages.list.outputs.files\n    matrix = { shard = [1, 2] }")
    found = _diagnostics(tmp_path, text)
    assert [(d["code"], d["message"]) for d in found] == [
        ("A319", "stage `each-file` has both `matrix` and `for_each`")
    ]


def test_dry_run_shows_the_item_as_known_at_run_time(tmp_path: Path) -> None:
    _project(tmp_path, ["a"])
    result = _alfredc(tmp_path, "run", "flow.alfred", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "='<each.item>'" in result.stdout and "='<each.index>'" in result.stdout
    assert "error" not in result.stdout
    assert not _ran(tmp_path)


def test_export_warns_that_the_engine_does_not_fan_out(tmp_path: Path) -> None:
    _project(tmp_path, ["a"])
    result = _alfredc(tmp_path, "export", "flow.alfred", "--to", "prefect", "-o", "flow_module.py")
    assert result.returncode == 0, result.stderr
    assert ("warning[A608]: Prefect does not fan out `for_each` stage `each-file`: it runs once and fails on"
            " `${each.item}`") in result.stderr
    strict = _alfredc(tmp_path, "export", "flow.alfred", "--to", "prefect", "--strict", "-o", "strict.py")
    assert strict.returncode == 1 and "error[A608]" in strict.stderr


def test_a_missing_output_fails_the_stage(tmp_path: Path) -> None:
    text = NO_WAIT.replace("    outputs = [files]\n", "").replace(
        "printf 'files=%s\\\\n' \\\"$(cat list.txt)\\\" > $ALFRED_OUTPUTS", "true"
    )
    assert "true" in text
    stage = _failed_with(tmp_path, [], text)
    assert stage["error"] == "`for_each`: stage `list` succeeded without output `files`"


def _failed_with(tmp_path: Path, items: Any, text: str) -> dict[str, Any]:
    _project(tmp_path, items, text)
    result = _alfredc(tmp_path, "run", "flow.alfred")
    assert result.returncode == 1, result.stdout + result.stderr
    stages = {s["name"]: s for s in _show(tmp_path)["stages"]}
    assert stages["each-file"]["state"] == "failed" and stages["all"]["state"] == "upstream_failed"
    found: dict[str, Any] = stages["each-file"]
    return found
