"""Exported workflows run on the real Airflow, Prefect and Dagster with the results of `alfredc run`.

Every bundled example and the focused workflows of tests/data/engines/focused.alfred are
exported to each engine, run there locally, and run by `alfredc run` in a separate copy of
the same folder; the two must agree on every stage's state (succeeded, failed, skipped,
upstream_failed), its outputs, its number of attempts where the engine reports it, the
files the run wrote (contents included), and whether the run succeeded.

The engines come from the package registry into venvs cached in .engines/ (tests/_engines.py);
the first run builds them (one to two minutes each), later runs reuse them. Marked `engines`:
`python -m pytest -m "not engines"` skips them. Offline or when an install fails they skip
with the reason, except under CI (``CI`` set), where they fail.

Each engine runs its cases in one batch: one Airflow home (one `db migrate`, one
`dags reserialize`, then `airflow dags test` per DAG), one Prefect process against its
ephemeral server, one Dagster process (`execute_in_process`).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _engines import PINS, EngineEnv, EngineUnavailable, ensure

pytestmark = pytest.mark.engines

REPO = Path(__file__).resolve().parent.parent
FOCUSED = REPO / "tests" / "data" / "engines"
RUNNER = FOCUSED / "run_on_engine.py"
ENGINES = tuple(PINS)


@dataclass(frozen=True, slots=True)
class Case:
    """One workflow to run both ways: ``file`` in a copy of ``folder``."""

    id: str
    folder: Path
    file: str
    workflow: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    #: Whether the run succeeds; None for the examples whose tools are not on this machine
    #: (their stand-in commands fail): for those the failure itself must be the same.
    succeeds: bool | None = None


def _examples() -> list[Case]:
    params = {"bug_fix": {"issue": "42"}, "code_review": {"pull_request": "7"},
              "feature_development": {"feature_name": "login"}}
    cases = [Case("demo", REPO / "examples" / "demo", "pipeline.alfred", succeeds=True)]
    for path in sorted((REPO / "examples").iterdir()):
        # feature_development waits for an approval before merging: no engine can (alfredc
        # export refuses it, tests/test_export.py).
        if path.suffix in (".alfred", ".yaml", ".json") and path.stem != "feature_development":
            case_id = path.stem if path.suffix == ".alfred" else f"{path.stem}_{path.suffix[1:]}"
            cases.append(Case(case_id, REPO / "examples", path.name, params=params.get(path.stem, {})))
    return cases


CASES = [
    *_examples(),
    Case("passes", FOCUSED, "focused.alfred", "passes", {"greeting": "hi"}, succeeds=True),
    Case("fails", FOCUSED, "focused.alfred", "fails", succeeds=False),
]


@dataclass
class Outcome:
    """What one run did, in alfred's terms."""

    ok: bool
    stages: dict[str, dict[str, Any]]
    files: dict[str, str]
    seconds: float
    module_text: str = ""


# -- shared set-up -------------------------------------------------------------------------


def _copy(case: Case, into: Path) -> Path:
    """A private copy of the case's folder (the runs write files into it)."""
    target = into / case.id
    shutil.copytree(case.folder, target, ignore=shutil.ignore_patterns("__pycache__", ".alfred", "broken"))
    return target


def _snapshot(folder: Path, before: dict[str, str]) -> dict[str, str]:
    """The files the run wrote or changed: relative path -> content (bytecode by name only)."""
    files: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or ".alfred" in path.parts:
            continue
        rel = path.relative_to(folder).as_posix()
        if "__pycache__" in path.parts:
            if path.suffix == ".pyc" and "sample" in path.parts:  # compileall's output in the demo
                files[rel] = "<bytecode>"
            continue
        text = path.read_bytes().decode("utf-8", errors="replace").replace(str(folder), "<project>")
        if before.get(rel) != text:
            files[rel] = text
    return files


def _contents(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes().decode("utf-8", errors="replace")
        .replace(str(folder), "<project>")
        for path in folder.rglob("*") if path.is_file()
    }


def _normal(value: Any, folder: Path) -> Any:
    """Outputs with the copy's own path replaced, so two copies compare equal."""
    return json.loads(json.dumps(value).replace(str(folder), "<project>"))


def _base_env(bin_dir: Path) -> dict[str, str]:
    """Only the programs the test set-up installed, and POSIX tools."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ALFRED_", "AIRFLOW", "PREFECT", "DAGSTER", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = str(REPO)
    return env


def _alfredc_bin(into: Path) -> Path:
    """`python` and `alfredc` for the stages of `alfredc run`: this interpreter and this checkout."""
    bin_dir = into / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    alfredc = bin_dir / "alfredc"
    alfredc.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m alfred_dsl "$@"\n', encoding="utf-8")
    alfredc.chmod(0o755)
    return bin_dir


def _alfredc_run(case: Case, into: Path, env: dict[str, str]) -> Outcome:
    folder = _copy(case, into)
    before = _contents(folder)
    state = into / f"{case.id}.state"
    args = [sys.executable, "-m", "alfred_dsl", "run", str(folder / case.file), "-q", "--state", str(state)]
    if case.workflow:
        args += ["-w", case.workflow]
    for key, value in case.params.items():
        args += ["-p", f"{key}={value}"]
    started = time.monotonic()
    done = subprocess.run(args, cwd=into, env=env, capture_output=True, text=True, check=False, timeout=300)
    seconds = time.monotonic() - started
    assert done.returncode in (0, 1), done.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "alfred_dsl", "show", "last", "--state", str(state), "--format", "json"],
        cwd=into, env=env, capture_output=True, text=True, check=True,
    )
    stages = {
        stage["name"]: {"state": stage["state"], "outputs": _normal(stage["outputs"], folder),
                        "attempts": stage["attempts"]}
        for stage in json.loads(shown.stdout)["stages"]
    }
    return Outcome(done.returncode == 0, stages, _snapshot(folder, before), seconds)


@pytest.fixture(scope="session")
def alfredc_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    into = tmp_path_factory.mktemp("alfredc-run")
    env = _base_env(_alfredc_bin(into))
    return {case.id: _alfredc_run(case, into, env) for case in CASES}


def _engine(engine: str) -> EngineEnv:
    try:
        env, seconds = ensure(engine)
    except (EngineUnavailable, OSError, subprocess.SubprocessError) as exc:
        message = f"cannot install {PINS[engine][0]} into .engines/: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message + " (needs the package registry once; -m 'not engines' skips these tests)")
    if seconds:
        print(f"\nengines: built {env.root.name} in {seconds:.0f} s")
    return env


def _export(case: Case, folder: Path, engine: str, out: Path) -> None:
    args = [sys.executable, "-m", "alfred_dsl", "export", str(folder / case.file), "--to", engine,
            "-o", str(out)]
    if case.workflow:
        args += ["-w", case.workflow]
    for key, value in case.params.items():
        args += ["-p", f"{key}={value}"]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"export of {case.id} to {engine} failed:\n{done.stderr}"


# -- the engines ---------------------------------------------------------------------------


def _run_airflow(env: EngineEnv, into: Path) -> dict[str, Outcome]:
    home = into / "airflow-home"
    dags = home / "dags"
    dags.mkdir(parents=True)
    folders: dict[str, tuple[Path, dict[str, str]]] = {}
    for case in CASES:
        folder = _copy(case, into)
        folders[case.id] = folder, _contents(folder)
        module = dags / f"{case.id}.py"
        _export(case, folder, "airflow", module)
        # release.yaml, release.json and templates.alfred are one workflow written three
        # ways: one dags folder needs a DAG id per file.
        text = re.sub(r"dag_id='[^']*'", f"dag_id={case.id!r}", module.read_text(encoding="utf-8"), count=1)
        module.write_text(text, encoding="utf-8")
    base = _base_env(env.bin)
    base.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
                AIRFLOW__CORE__LOAD_EXAMPLES="False")

    def airflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["airflow", *args], cwd=into, env=base, capture_output=True, text=True,
                              check=False, timeout=600)

    for step in (("db", "migrate"), ("dags", "reserialize")):
        done = airflow(*step)
        assert done.returncode == 0, f"airflow {' '.join(step)} failed:\n{done.stdout}\n{done.stderr}"
    seconds: dict[str, float] = {}
    for case in CASES:
        started = time.monotonic()
        done = airflow("dags", "test", case.id)
        seconds[case.id] = time.monotonic() - started
        assert "Traceback" not in done.stderr or done.returncode in (0, 1), done.stderr[-3000:]
    states = {"success": "succeeded", "failed": "failed", "skipped": "skipped",
              "upstream_failed": "upstream_failed"}
    outcomes: dict[str, Outcome] = {}
    with sqlite3.connect(home / "airflow.db") as db:
        for case in CASES:
            folder, before = folders[case.id]
            stages: dict[str, dict[str, Any]] = {}
            # Airflow's task ids are the stage names made valid (`test[shard=1]` -> `test__shard-1`):
            # the exported module's TASK_IDS says which is which.
            module = ast.parse((dags / f"{case.id}.py").read_text(encoding="utf-8"))
            task_ids = next(
                ast.literal_eval(node.value) for node in module.body
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "TASK_IDS"
            )
            stage_of = {task_id: name for name, task_id in task_ids.items()}
            rows = db.execute("SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ?",
                              (case.id,)).fetchall()
            for task_id, state, tries in rows:
                stages[stage_of.get(task_id, task_id)] = {
                    "state": states.get(state, f"airflow:{state}"), "attempts": tries,
                }
            for task_id, value in db.execute(
                "SELECT task_id, value FROM xcom WHERE dag_id = ? AND key = 'return_value'", (case.id,)
            ):
                while isinstance(value, str | bytes):
                    value = json.loads(value)
                stages[stage_of.get(task_id, task_id)]["outputs"] = _normal(value, folder)
            run_state = db.execute("SELECT state FROM dag_run WHERE dag_id = ?", (case.id,)).fetchone()
            assert run_state is not None, f"airflow dags test {case.id} made no DAG run"
            module = (dags / f"{case.id}.py").read_text(encoding="utf-8")
            outcomes[case.id] = Outcome(run_state[0] == "success", stages, _snapshot(folder, before),
                                        seconds[case.id], module)
    return outcomes


def _run_in_process(engine: str, env: EngineEnv, into: Path) -> dict[str, Outcome]:
    folders: dict[str, tuple[Path, dict[str, str]]] = {}
    modules = into / "modules"
    modules.mkdir()
    cases = []
    for case in CASES:
        folder = _copy(case, into)
        folders[case.id] = folder, _contents(folder)
        module = modules / f"{case.id}.py"
        _export(case, folder, engine, module)
        cases.append(f"{case.id}={module}")
    base = _base_env(env.bin)
    base.update(PREFECT_HOME=str(into / "prefect-home"), DAGSTER_HOME=str(into / "dagster-home"),
                PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    (into / "dagster-home").mkdir()
    out = into / "results.json"
    done = subprocess.run([str(env.python), str(RUNNER), engine, str(out), *cases], cwd=into, env=base,
                          capture_output=True, text=True, check=False, timeout=900)
    assert done.returncode == 0, f"{engine} runner failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    results = json.loads(out.read_text(encoding="utf-8"))
    outcomes = {}
    for case in CASES:
        folder, before = folders[case.id]
        result = results[case.id]
        stages = {name: {**record, **({"outputs": _normal(record["outputs"], folder)}
                                      if record.get("outputs") is not None else {})}
                  for name, record in result["stages"].items()}
        outcomes[case.id] = Outcome(result["ok"], stages, _snapshot(folder, before), result["seconds"])
    return outcomes


_BATCHES: dict[str, dict[str, Outcome]] = {}


def _batch(engine: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    if engine not in _BATCHES:
        env = _engine(engine)
        into = tmp_path_factory.mktemp(f"on-{engine}")
        if engine == "airflow":
            _BATCHES[engine] = _run_airflow(env, into)
        else:
            _BATCHES[engine] = _run_in_process(engine, env, into)
    return _BATCHES[engine]


# -- the comparison ------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("engine", ENGINES)
def test_engine_run_matches_alfredc_run(
    engine: str, case: Case, alfredc_outcomes: dict[str, Outcome], tmp_path_factory: pytest.TempPathFactory
) -> None:
    expected = alfredc_outcomes[case.id]
    actual = _batch(engine, tmp_path_factory)[case.id]
    if case.succeeds is not None:
        assert expected.ok is case.succeeds, expected.stages
    assert actual.ok is expected.ok, (actual.stages, expected.stages)
    assert set(actual.stages) == set(expected.stages)
    # A stage `alfredc run` cancelled because another stage failed with `on_failure = stop` is
    # left out: which stages are in flight at that moment is timing on either side, and
    # the engines let them run to their end (loss A605, reported by the export).
    compared = {name: s for name, s in expected.stages.items() if s["state"] != "cancelled"}
    expected_states = {name: s["state"] for name, s in compared.items()}
    assert {name: actual.stages[name]["state"] for name in compared} == expected_states
    for name, stage in compared.items():
        got = actual.stages[name]
        if stage["state"] == "succeeded":
            assert got.get("outputs", {}) == stage["outputs"], name
        if stage["state"] in ("succeeded", "failed") and "attempts" in got:
            assert got["attempts"] == stage["attempts"], name
    assert actual.files == expected.files


def test_retries_really_retry(alfredc_outcomes: dict[str, Outcome]) -> None:
    """The focused workflows do what the engine comparison relies on: without this, two
    engines that never retried would still agree with each other."""
    passes, fails = alfredc_outcomes["passes"], alfredc_outcomes["fails"]
    assert passes.files["work/flaky.log"] == "attempt 1\nattempt 2\nattempt 3\n"
    assert passes.stages["flaky"] == {"state": "succeeded", "outputs": {"tries": "3"}, "attempts": 3}
    assert passes.stages["summary"]["outputs"] == {"line": "hi 3-seirt x1"}
    assert passes.files["work/argv.txt"] == "hi tries-3 cwd=work\n"
    assert {passes.stages[s]["state"] for s in ("ship", "announce")} == {"skipped"}
    assert fails.files["work/broken.log"] == "broken\nbroken\n"
    assert {name: s["state"] for name, s in fails.stages.items()} == {
        "broken": "failed", "after_broken": "upstream_failed", "independent": "succeeded"
    }


def test_demo_wall_time(
    alfredc_outcomes: dict[str, Outcome], tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The demo's wall time on each engine and on `alfredc run`, measured in this run (docs/exports.md)."""
    lines = [f"  alfredc run          {alfredc_outcomes['demo'].seconds:6.1f} s  (the whole command)"]
    for engine in ENGINES:
        outcome = _batch(engine, tmp_path_factory)["demo"]
        assert outcome.ok
        how = "airflow dags test demo" if engine == "airflow" else "the run in-process, engine loaded"
        lines.append(f"  {engine:<20} {outcome.seconds:6.1f} s  ({how})")
    with capsys.disabled():
        print("\nengines: the demo's wall time on this machine\n" + "\n".join(lines))
