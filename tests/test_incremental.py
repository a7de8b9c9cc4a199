"""Incremental runs, stage selection and ``plan --explain-skips``, end to end: every test
runs ``alfredc`` as a real process (``python -m alfred_dsl``) on a real state directory."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

COMPILE = (
    "echo ran >> compile.count && mkdir -p dist && cat src/*.py > dist/app.txt"
    ' && echo size=$(wc -c < dist/app.txt) >> \\"$ALFRED_OUTPUTS\\"'
)
PIPELINE = """\
agent sh {
  kind = command
}

workflow build {
  param flavour: string = "plain"

  stage compile {
    agent    = sh
    run      = "COMPILE"
    sources  = ["src/**/*.py"]
    produces = ["dist/*.txt"]
  }

  stage test after compile {
    agent   = sh
    run     = "echo ran >> test.count && echo ${stages.compile.outputs.size} > test.seen"
    sources = ["tests/*.py"]
  }

  stage package after test {
    agent = sh
    run   = "echo ran >> package.count && echo ${params.flavour} > package.txt"
  }
}
""".replace("COMPILE", COMPILE)


def alfredc(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
    )


def count(folder: Path, name: str) -> int:
    path = folder / f"{name}.count"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "main.py").write_text("print('v1')\n")
    (tmp_path / "src" / "pkg" / "util.py").write_text("X = 1\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("assert True\n")
    (tmp_path / "pipeline.alfred").write_text(PIPELINE)
    return tmp_path


def run_events(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    events = folder / "events.jsonl"
    events.unlink(missing_ok=True)
    result = alfredc(folder, "run", "pipeline.alfred", "--events", str(events), *args)
    lines = events.read_text().splitlines() if events.exists() else []
    return result, [json.loads(line) for line in lines]


def states(events: list[dict[str, object]]) -> dict[str, str]:
    final = {"stage_succeeded": "succeeded", "stage_up_to_date": "up_to_date", "stage_failed": "failed",
             "stage_skipped": "skipped", "stage_upstream_failed": "upstream_failed",
             "stage_cancelled": "cancelled"}
    return {str(e["stage"]): final[str(e["type"])] for e in events if e["type"] in final}


def test_second_run_skips_up_to_date_stages_and_hands_on_their_outputs(project: Path) -> None:
    first, _ = run_events(project)
    assert first.returncode == 0, first.stderr
    second, events = run_events(project)
    assert second.returncode == 0, second.stderr
    assert count(project, "compile") == 1 and count(project, "test") == 1
    assert count(project, "package") == 2  # not incremental: runs every time
    assert states(events) == {"compile": "up_to_date", "test": "up_to_date", "package": "succeeded"}
    up = next(e for e in events if e["type"] == "stage_up_to_date" and e["stage"] == "compile")
    assert str(up["data"]["reason"]).startswith("up to date (fingerprint ")  # type: ignore[index]
    assert up["data"]["outputs"] == {"size": "12"}  # type: ignore[index]
    assert "1 succeeded, 2 up_to_date" in second.stdout


def test_content_change_reruns_but_a_new_mtime_alone_does_not(project: Path) -> None:
    assert alfredc(project, "run", "pipeline.alfred").returncode == 0
    util = project / "src" / "pkg" / "util.py"
    later = time.time() + 100
    os.utime(util, (later, later))  # touched: same content
    assert alfredc(project, "run", "pipeline.alfred").returncode == 0
    assert count(project, "compile") == 1
    util.write_text("X = 2\n")  # same size, new content
    result, events = run_events(project)
    assert result.returncode == 0, result.stderr
    assert count(project, "compile") == 2
    # compile's output (the size) is the same, so test's fingerprint is unchanged
    assert states(events)["test"] == "up_to_date"


def test_missing_or_changed_product_reruns(project: Path) -> None:
    assert alfredc(project, "run", "pipeline.alfred").returncode == 0
    (project / "dist" / "app.txt").unlink()
    assert alfredc(project, "run", "pipeline.alfred").returncode == 0
    assert count(project, "compile") == 2
    (project / "dist" / "app.txt").write_text("edited by hand\n")
    assert alfredc(project, "run", "pipeline.alfred").returncode == 0
    assert count(project, "compile") == 3
    assert (project / "dist" / "app.txt").read_text() != "edited by hand\n"


def test_params_and_inputs_are_part_of_the_fingerprint(project: Path) -> None:
    text = PIPELINE.replace(
        'run     = "echo ran >> test.count', 'run     = "echo ${params.flavour} ran >> test.count'
    )
    (project / "pipeline.alfred").write_text(text)
    assert alfredc(project, "run", "pipeline.alfred").returncode == 0
    assert alfredc(project, "run", "pipeline.alfred", "-p", "flavour=spicy").returncode == 0
    assert count(project, "test") == 2  # the command's text changed with the param
    assert count(project, "compile") == 2  # params are in every fingerprint


def test_force_all_and_force_one_stage(project: Path) -> None:
    assert alfredc(project, "run", "pipeline.alfred").returncode == 0
    assert alfredc(project, "run", "pipeline.alfred", "--force", "test").returncode == 0
    assert (count(project, "compile"), count(project, "test")) == (1, 2)
    assert alfredc(project, "run", "pipeline.alfred", "--force").returncode == 0
    assert (count(project, "compile"), count(project, "test")) == (2, 3)
    # `--force FILE`: FILE is the file, not a stage name
    assert alfredc(project, "run", "--force", "pipeline.alfred").returncode == 0
    assert count(project, "compile") == 3


def test_produces_that_match_nothing_fail_the_stage(project: Path) -> None:
    text = PIPELINE.replace('produces = ["dist/*.txt"]', 'produces = ["dist/*.whl"]')
    (project / "pipeline.alfred").write_text(text)
    result, events = run_events(project)
    assert result.returncode == 1
    failed = next(e for e in events if e["type"] == "stage_failed")
    assert failed["stage"] == "compile"
    assert "produced no file matching `dist/*.whl`" in str(failed["data"]["error"])  # type: ignore[index]
    assert states(events)["test"] == "upstream_failed"


def test_only_takes_upstream_outputs_from_the_last_success(project: Path) -> None:
    fresh = alfredc(project, "run", "pipeline.alfred", "--only", "test")
    assert fresh.returncode == 1
    assert "no earlier successful run of `compile`" in fresh.stdout
    assert count(project, "test") == 0
    assert alfredc(project, "run", "pipeline.alfred").returncode == 0
    result, events = run_events(project, "--only", "package")
    assert result.returncode == 0, result.stderr
    assert states(events) == {"compile": "up_to_date", "test": "up_to_date", "package": "succeeded"}
    assert count(project, "package") == 2 and count(project, "compile") == 1


def test_from_and_until_select_a_slice(project: Path) -> None:
    assert alfredc(project, "run", "pipeline.alfred").returncode == 0
    result, events = run_events(project, "--until", "test", "--force")
    assert result.returncode == 0, result.stderr
    assert states(events) == {"compile": "succeeded", "test": "succeeded", "package": "skipped"}
    result, events = run_events(project, "--from", "test", "--force")
    assert result.returncode == 0, result.stderr
    assert states(events) == {"compile": "up_to_date", "test": "succeeded", "package": "succeeded"}
    assert count(project, "compile") == 2  # once, then with --until


def test_unknown_stage_names_exit_2_with_a_suggestion(project: Path) -> None:
    for flag in ("--only", "--from", "--until", "--force"):
        result = alfredc(project, "run", "pipeline.alfred", flag, "tset")
        assert result.returncode == 2, (flag, result.stderr)
        assert "no stage `tset`" in result.stderr and "did you mean `test`?" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (project / "test.count").exists()


def test_plan_explain_skips_says_why(project: Path) -> None:
    before = alfredc(project, "plan", "pipeline.alfred", "--explain-skips")
    assert before.returncode == 0, before.stderr
    assert "compile  would run:  no earlier successful run" in before.stdout
    assert not (project / ".alfred").exists()  # read-only: creates nothing
    assert alfredc(project, "run", "pipeline.alfred").returncode == 0
    now = alfredc(project, "plan", "pipeline.alfred", "--explain-skips").stdout
    assert "compile  would skip: up to date (fingerprint " in now
    assert "package  would run:  not incremental" in now
    (project / "src" / "main.py").write_text("print('v2')\n")
    assert "compile  would run:  sources changed (src/main.py)" in alfredc(
        project, "plan", "pipeline.alfred", "--explain-skips").stdout
    (project / "src" / "main.py").write_text("print('v1')\n")
    (project / "dist" / "app.txt").unlink()
    explained = alfredc(project, "plan", "pipeline.alfred", "--explain-skips", "--format", "json")
    data = json.loads(explained.stdout)
    assert data["stages"][0] == {"stage": "compile", "run": True, "reason": "product dist/app.txt missing"}


def test_up_to_date_is_recorded_for_show(project: Path) -> None:
    assert alfredc(project, "run", "pipeline.alfred").returncode == 0
    assert alfredc(project, "run", "pipeline.alfred").returncode == 0
    shown = alfredc(project, "show", "last")
    assert shown.returncode == 0, shown.stderr
    assert "up_to_date" in shown.stdout
    db = sqlite3.connect(project / ".alfred" / "state.db")
    rows = db.execute("SELECT stage, products FROM fingerprints ORDER BY stage").fetchall()
    assert [r[0] for r in rows] == ["compile", "test"]
    assert list(json.loads(rows[0][1])) == [os.path.join("dist", "app.txt")]


def test_a_secret_is_in_the_fingerprint_by_name_only(project: Path) -> None:
    text = PIPELINE.replace(
        'run     = "echo ran >> test.count',
        'env = { TOKEN = "${secrets.TOKEN}" }\n    run     = "echo ran >> test.count',
    )
    (project / "pipeline.alfred").write_text(text)
    command = [sys.executable, "-m", "alfred_dsl", "run", "pipeline.alfred"]
    env = {**os.environ, "TOKEN": "hunter2-first"}
    subprocess.run(command, cwd=project, env=env, check=True, capture_output=True)
    env["TOKEN"] = "hunter2-rotated"
    subprocess.run(command, cwd=project, env=env, check=True, capture_output=True)
    assert count(project, "test") == 1
    assert b"hunter2" not in (project / ".alfred" / "state.db").read_bytes()


def test_the_demo_skips_compile_and_test_the_second_time(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[1] / "examples" / "demo"
    shutil.copytree(demo, tmp_path / "demo", ignore=shutil.ignore_patterns("out", ".alfred", "__pycache__"))
    first = alfredc(tmp_path, "run", "demo/pipeline.alfred")
    assert first.returncode == 0, first.stdout + first.stderr
    second = alfredc(tmp_path, "run", "demo/pipeline.alfred", "--events", "events.jsonl")
    assert second.returncode == 0, second.stdout + second.stderr
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert {e["stage"] for e in events if e["type"] == "stage_up_to_date"} == {"compile", "test"}
    source = next((tmp_path / "demo" / "sample").rglob("*.py"))
    source.write_text(source.read_text() + "\n# changed\n")
    third = alfredc(tmp_path, "run", "demo/pipeline.alfred", "--events", "events.jsonl")
    assert third.returncode == 0, third.stdout + third.stderr
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert not [e for e in events if e["type"] == "stage_up_to_date"]


def test_plan_json_shows_the_new_attributes_only_when_set(project: Path) -> None:
    controls = '  timeout = 90m\n  concurrency_group = "b-${params.flavour}"\n'
    text = PIPELINE.replace("  param flavour", controls + "  param flavour")
    (project / "pipeline.alfred").write_text(text)
    result = alfredc(project, "plan", "pipeline.alfred", "--format", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    stages = {s["name"]: s for s in plan["stages"]}
    assert stages["compile"]["sources"] == ["src/**/*.py"] and stages["compile"]["produces"] == ["dist/*.txt"]
    assert "sources" not in stages["package"] and "run_if" not in stages["package"]
    controls_json = (plan["timeout_s"], plan["concurrency_group"], plan["cancel_in_progress"])
    assert controls_json == (5400, "b-plain", False)
