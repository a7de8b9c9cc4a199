"""The demo project runs out of the box: `alfredc run examples/demo/pipeline.alfred` exits 0 in seconds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"


DemoRun = tuple[Path, subprocess.CompletedProcess[str], float]


def alfredc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """A fresh copy of the demo, run once from the folder above it, as the README says."""
    root = tmp_path_factory.mktemp("demo")
    shutil.copytree(DEMO, root / "demo", ignore=shutil.ignore_patterns("out", ".alfred", "__pycache__"))
    started = time.monotonic()
    done = alfredc("run", "demo/pipeline.alfred", "--events", "events.jsonl", cwd=root)
    return root, done, time.monotonic() - started


def test_the_demo_succeeds_in_a_few_seconds(demo_run: DemoRun) -> None:
    _, done, elapsed = demo_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert elapsed < 30
    assert "Traceback" not in done.stderr


def test_every_stage_did_its_job(demo_run: DemoRun) -> None:
    root, done, _ = demo_run
    assert done.returncode == 0, done.stdout + done.stderr
    shown = alfredc("show", "last", "--format", "json", cwd=root)
    assert shown.returncode == 0, shown.stderr
    stages = {s["name"]: s for s in json.loads(shown.stdout)["stages"]}
    assert {n: s["state"] for n, s in stages.items()} == {
        "lint": "succeeded", "compile": "succeeded", "test": "succeeded", "count": "succeeded",
        "fetch": "succeeded", "docs": "succeeded", "report": "succeeded", "publish": "skipped",
    }
    assert stages["fetch"]["attempts"] == 2                      # the retry
    assert int(stages["count"]["outputs"]["lines"]) > 10         # an output ...
    report = (root / "demo" / "out" / "REPORT.md").read_text()   # ... passed to a later stage
    assert f"- {int(stages['count']['outputs']['lines'])} lines of code" in report
    assert "- 3 functions documented in out/API.md" in report
    api = (root / "demo" / "out" / "API.md").read_text()
    assert "## `slugify(text: str) -> str`" in api and "_internal_helper" not in api
    test_log = alfredc("logs", "last", "test", cwd=root).stdout
    assert "Ran 3 tests" in test_log and "OK" in test_log


def test_the_demo_runs_branches_in_parallel(demo_run: DemoRun) -> None:
    root, done, _ = demo_run
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]
    running: set[str] = set()
    most = 0
    for event in events:
        if event["type"] == "stage_started":
            running.add(event["stage"])
        elif event["type"] in ("stage_succeeded", "stage_failed", "stage_retrying"):
            running.discard(event["stage"])
        most = max(most, len(running))
    assert most >= 2


def test_the_demo_checks_clean_and_plans_a_critical_path() -> None:
    checked = alfredc("check", "examples/demo/pipeline.alfred", cwd=DEMO.parent.parent)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    planned = alfredc("plan", "examples/demo/pipeline.alfred", "--format", "json", cwd=DEMO.parent.parent)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["critical_path"][-1] in ("report", "publish") and plan["max_parallelism"] >= 3


def test_the_python_api_example_of_docs_runtime_md_works(tmp_path: Path) -> None:
    doc = (DEMO.parent.parent / "docs" / "runtime.md").read_text()
    code = doc.split("## The Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    state = tmp_path / "state"
    code = code.replace('"/tmp/alfred-api-example"', repr(str(state)))
    shutil.copytree(DEMO, tmp_path / "examples" / "demo", ignore=shutil.ignore_patterns("out", ".alfred"))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run_id, lines, word = done.stdout.splitlines()[0].split()
    assert word == "lines" and int(lines) > 10
    assert done.stdout.splitlines()[1] == "run_completed"
    assert (state / "runs" / run_id).is_dir()


def test_the_runtime_benchmarks_floors_run_the_graph_and_leave_no_cgroup(tmp_path: Path) -> None:
    floor = DEMO.parent.parent / "bench" / "floor.py"
    for contract in ([], ["--contract"]):
        done = subprocess.run([sys.executable, str(floor), "120", *contract], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    cgroups = Path("/sys/fs/cgroup")
    assert [p for depth in range(4) for p in cgroups.glob("*/" * depth + "alfred-bench-floor-*")] == []


def test_the_runtime_benchmark_runs_end_to_end_on_a_tiny_graph() -> None:
    bench = DEMO.parent.parent / "bench" / "runtime.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--python-stages", "100", "--command-stages", "20", "--repeat", "1",
         "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout[done.stdout.index("{\n"):])
    assert figures["python_stages"] == 100 and figures["python"]["alfred"]["wall_s"] > 0
    assert "per-stage overhead" in done.stdout
