"""The compiled-plan cache (.alfred/cache/): reused when nothing it depends on changed,
ignored when it is damaged or foreign, bypassed by --no-cache, and exact."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import ALFREDC, EXAMPLES, REPO_ROOT

from alfred_dsl._render_diag import render_text
from alfred_dsl.compiler import _plancache
from alfred_dsl.compiler._pipeline import compile_path
from alfred_dsl.compiler._plan import Plan
from alfred_dsl.compiler._plancache import compile_cached

AGENTS = """\
agent sh {
  kind = command
  env = { WHO = "agent" }
}
"""

PIPELINE = """\
import "agents.alfred"

workflow hello {
  param greeting: string = "hi"
  stage say {
    agent = sh
    run = "echo ${params.greeting} $WHO > said.txt"
  }
}
"""

#: A503 (a redundant `after`) is a warning: the plan is made and the warning printed.
WARNS = """\
agent sh {
  kind = command
}

workflow w {
  stage a {
    agent = sh
    run = "true"
  }
  stage b {
    agent = sh
    run = "true"
    after = [a]
  }
  stage c {
    agent = sh
    run = "true"
    after = [a, b]
  }
}
"""


def cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``alfredc ARGS`` as a process, with ``ALFRED_DEBUG`` so it says what the cache did."""
    full_env = {**os.environ, "ALFRED_DEBUG": "1", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [*ALFREDC, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )


def cache_said(result: subprocess.CompletedProcess[str]) -> str:
    """What the cache did: hit, stored, compiled or off."""
    for line in result.stderr.splitlines():
        if line.startswith("alfredc: debug: plan cache: "):
            return line.removeprefix("alfredc: debug: plan cache: ").split()[0]
    raise AssertionError(f"no plan cache line in:\n{result.stderr}")


def entries(project: Path) -> list[Path]:
    folder = project / ".alfred" / "cache"
    return sorted(folder.glob("*.plan")) if folder.is_dir() else []


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "agents.alfred").write_text(AGENTS, encoding="utf-8")
    (tmp_path / "pipeline.alfred").write_text(PIPELINE, encoding="utf-8")
    return tmp_path


def test_a_second_run_reads_the_plan_from_the_cache(project: Path) -> None:
    first = cli(project, "run", "pipeline.alfred")
    assert first.returncode == 0, first.stderr
    assert cache_said(first) == "stored"
    (project / "said.txt").unlink()
    second = cli(project, "run", "pipeline.alfred")
    assert second.returncode == 0, second.stderr
    assert cache_said(second) == "hit"
    assert (project / "said.txt").read_text() == "hi agent\n"  # the cached plan ran the stage
    assert len(entries(project)) == 1
    # Without ALFRED_DEBUG nothing about the cache is printed.
    quiet = subprocess.run([*ALFREDC, "run", "pipeline.alfred"], cwd=project, capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "ALFRED_DEBUG"}, timeout=120)
    assert quiet.returncode == 0 and "cache" not in quiet.stdout + quiet.stderr


def test_editing_the_file_an_import_or_the_params_compiles_again(project: Path) -> None:
    assert cache_said(cli(project, "run", "pipeline.alfred")) == "stored"
    # The imported file changes what the stage runs: the new value must reach the command.
    (project / "agents.alfred").write_text(AGENTS.replace('"agent"', '"edited"'), encoding="utf-8")
    edited_import = cli(project, "run", "pipeline.alfred")
    assert cache_said(edited_import) == "stored" and (project / "said.txt").read_text() == "hi edited\n"
    (project / "pipeline.alfred").write_text(PIPELINE.replace("> said.txt", "> told.txt"), encoding="utf-8")
    edited = cli(project, "run", "pipeline.alfred")
    assert cache_said(edited) == "stored" and (project / "told.txt").read_text() == "hi edited\n"
    with_param = cli(project, "run", "pipeline.alfred", "-p", "greeting=hello")
    assert cache_said(with_param) == "stored" and (project / "told.txt").read_text() == "hello edited\n"
    again = cli(project, "run", "pipeline.alfred", "-p", "greeting=hello")
    assert cache_said(again) == "hit"
    # One entry per file, params and workflow (as one .pyc per module): the newest text's.
    (project / "pipeline.alfred").write_text(PIPELINE, encoding="utf-8")
    assert cache_said(cli(project, "run", "pipeline.alfred")) == "stored"
    assert cache_said(cli(project, "run", "pipeline.alfred")) == "hit"
    assert len(entries(project)) == 2  # without params, and with greeting=hello


def test_the_same_text_at_another_path_is_another_entry(project: Path) -> None:
    (project / ".alfred").mkdir()
    assert cache_said(cli(project, "plan", "pipeline.alfred", "--state", ".alfred")) == "stored"
    other = project / "copy"
    other.mkdir()
    for name in ("agents.alfred", "pipeline.alfred"):
        (other / name).write_text((project / name).read_text(), encoding="utf-8")
    moved = cli(project, "plan", "--format", "json", "copy/pipeline.alfred", "--state", ".alfred")
    assert cache_said(moved) == "stored"  # a stage runs in its file's folder: not the same plan
    assert json.loads(moved.stdout)["source"].endswith("copy/pipeline.alfred")


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "other format", "garbage", "empty",
                                    "other key", "plan of another shape"])
def test_a_damaged_or_foreign_entry_is_ignored_and_the_run_is_right(project: Path, damage: str) -> None:
    assert cache_said(cli(project, "run", "pipeline.alfred")) == "stored"
    (entry,) = entries(project)
    data = entry.read_bytes()
    header, checksum, body = data.split(b"\n", 2)
    content = json.loads(body)
    if damage == "truncated":
        broken = data[: len(data) // 2]
    elif damage == "flipped byte":
        broken = data.replace(b"said.txt", b"evil.txt")  # the checksum no longer matches
    elif damage == "other format":
        broken = b"alfred-plan-cache/999\n" + checksum + b"\n" + body
    elif damage == "garbage":
        broken = os.urandom(4096)
    elif damage == "empty":
        broken = b""
    else:
        if damage == "other key":  # an entry written for other inputs (another alfred, say)
            content["key"]["alfred"] = "0.0.0"
        else:  # a field the plan does not have: a format this alfred does not know
            content["plan"][2]["no_such_field"] = 1
        new_body = json.dumps(content).encode("utf-8")
        broken = header + b"\n" + hashlib.sha256(new_body).hexdigest().encode() + b"\n" + new_body
    entry.write_bytes(broken)
    result = cli(project, "run", "pipeline.alfred")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert cache_said(result) == "stored"  # compiled, and the entry written anew
    assert (project / "said.txt").read_text() == "hi agent\n" and not (project / "evil.txt").exists()
    assert cache_said(cli(project, "run", "pipeline.alfred")) == "hit"


def test_no_cache_neither_reads_nor_writes(project: Path) -> None:
    result = cli(project, "run", "--no-cache", "pipeline.alfred")
    assert result.returncode == 0, result.stderr
    assert cache_said(result) == "off" and "--no-cache" in result.stderr
    assert entries(project) == []
    assert cache_said(cli(project, "run", "pipeline.alfred")) == "stored"
    for command in (["plan"], ["graph"], ["run"]):
        bypassed = cli(project, *command, "--no-cache", "pipeline.alfred")
        assert bypassed.returncode == 0, bypassed.stderr
        assert cache_said(bypassed) == "off"


def test_read_only_commands_use_an_existing_state_directory_and_never_create_one(project: Path) -> None:
    result = cli(project, "plan", "pipeline.alfred")
    assert result.returncode == 0 and cache_said(result) == "off"
    assert not (project / ".alfred").exists()
    (project / ".alfred").mkdir()
    assert cache_said(cli(project, "graph", "pipeline.alfred")) == "stored"
    assert cache_said(cli(project, "plan", "pipeline.alfred")) == "hit"


def test_warnings_come_back_with_a_cached_plan(tmp_path: Path) -> None:
    (tmp_path / "warns.alfred").write_text(WARNS, encoding="utf-8")
    (tmp_path / ".alfred").mkdir()
    first = cli(tmp_path, "plan", "warns.alfred")
    second = cli(tmp_path, "plan", "warns.alfred")
    assert (cache_said(first), cache_said(second)) == ("stored", "hit")
    assert "warning[A503]" in second.stderr and "18 |     after = [a, b]" in second.stderr

    def printed(result: subprocess.CompletedProcess[str]) -> str:
        return "\n".join(line for line in result.stderr.splitlines() if "plan cache" not in line)

    assert printed(first) == printed(second) and first.stdout == second.stdout


def test_errors_are_not_cached(tmp_path: Path) -> None:
    (tmp_path / "bad.alfred").write_text(WARNS.replace("agent = sh\n    run = \"true\"\n  }\n  stage b",
                                                       "agent = hs\n    run = \"true\"\n  }\n  stage b"))
    for _ in range(2):
        result = cli(tmp_path, "run", "bad.alfred")
        assert result.returncode == 1 and "error[A201]" in result.stderr
        assert cache_said(result) == "compiled"
    assert entries(tmp_path) == []


def test_a_python_module_that_appears_or_goes_is_seen(tmp_path: Path) -> None:
    """A504 depends on what Python finds, not on the files: a cached plan is not reused
    when a python stage's module appeared or went."""
    (tmp_path / "flow.alfred").write_text(
        'agent py {\n  kind = python\n}\n\nworkflow w {\n  stage s {\n    agent = py\n'
        '    call = "helper_mod_xyz:main"\n  }\n}\n', encoding="utf-8")
    (tmp_path / ".alfred").mkdir()
    missing = cli(tmp_path, "plan", "flow.alfred")
    assert "warning[A504]" in missing.stderr and cache_said(missing) == "stored"
    assert "warning[A504]" in cli(tmp_path, "plan", "flow.alfred").stderr
    (tmp_path / "helper_mod_xyz.py").write_text("def main():\n    return {}\n", encoding="utf-8")
    found = cli(tmp_path, "plan", "flow.alfred")
    assert "A504" not in found.stderr and cache_said(found) == "stored"
    assert cache_said(cli(tmp_path, "plan", "flow.alfred")) == "hit"
    (tmp_path / "helper_mod_xyz.py").unlink()
    gone = cli(tmp_path, "plan", "flow.alfred")
    assert "warning[A504]" in gone.stderr and cache_said(gone) == "stored"


def test_concurrent_compiles_leave_one_whole_entry(project: Path) -> None:
    (project / ".alfred").mkdir()
    env = {**os.environ, "ALFRED_DEBUG": "1"}
    procs = [subprocess.Popen([*ALFREDC, "plan", "--format", "json", "pipeline.alfred"], cwd=project, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    assert len({out for out, _ in outputs}) == 1
    assert len(entries(project)) == 1
    assert not list((project / ".alfred" / "cache").glob(".tmp-*"))
    assert cache_said(cli(project, "plan", "pipeline.alfred")) == "hit"


def test_the_folder_keeps_the_most_recently_used_entries(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setattr(_plancache, "MAX_ENTRIES", 3)
    cache = project / ".alfred" / "cache"
    results = [compile_cached("pipeline.alfred", None, {"greeting": f"g{n}"}, cache) for n in range(6)]
    assert [r.outcome for r in results] == ["stored"] * 6
    assert sorted(p.name for p in cache.glob("*.plan")) == sorted(r.entry.name for r in results[3:])  # type: ignore[union-attr]
    assert (cache.stat().st_mode & 0o777) == 0o700
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in cache.glob("*.plan"))


def test_a_workflow_written_in_python_is_not_cached(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(
        "from alfred_dsl import Agent, Workflow\n"
        "sh = Agent('sh', kind='command', run='true')\n"
        "flow = Workflow('flow')\n"
        "flow.add_stage('one', sh)\n", encoding="utf-8")
    result = cli(tmp_path, "run", "flows.py:flow")
    assert result.returncode == 0, result.stderr
    assert cache_said(result) == "compiled" and entries(tmp_path) == []


def test_the_worker_reads_and_writes_the_cache(project: Path) -> None:
    def run_one(*flags: str) -> None:
        assert cli(project, "submit", "pipeline.alfred", *flags).returncode == 0
        worker = cli(project, "worker", "--until-empty", "--poll", "100ms", *flags)
        assert worker.returncode == 0, worker.stderr
        assert (project / "said.txt").read_text() == "hi agent\n"
        (project / "said.txt").unlink()

    run_one()
    # submit's entry (for the file's first workflow) and the worker's (for the queued name)
    assert len(entries(project)) == 2
    for entry in entries(project):
        entry.write_bytes(b"not an entry")
    run_one()  # both ignored, compiled again, written anew
    assert all(entry.read_bytes().startswith(b"alfred-plan-cache/") for entry in entries(project))
    # A hit reads the file in place and marks it used; a store would replace the file.
    before = {entry: (entry.stat().st_ino, entry.read_bytes()) for entry in entries(project)}
    for entry in before:
        os.utime(entry, (1, 1))
    run_one()
    for entry, (inode, data) in before.items():
        assert (entry.stat().st_ino, entry.read_bytes()) == (inode, data) and entry.stat().st_mtime > 1
    for entry in entries(project):
        entry.write_bytes(b"not an entry")
    run_one("--no-cache")
    assert all(entry.read_bytes() == b"not an entry" for entry in entries(project))


# -- the plan from the cache is the plan ------------------------------------------------------

def _bundled() -> list[Path]:
    suffixes = (".alfred", ".yaml", ".json")
    examples = [p for p in EXAMPLES.iterdir() if p.suffix in suffixes]
    return sorted([*examples, EXAMPLES / "demo" / "pipeline.alfred"])


def _with_required_params(path: Path) -> tuple[Plan, dict[str, str]]:
    """A fresh compile of ``path``, giving each required param a value."""
    params: dict[str, str] = {}
    for _ in range(10):
        plan, diagnostics = compile_path(str(path), None, params)
        if plan is not None:
            return plan, params
        missing = [d for d in diagnostics if d.code == "A213"]
        assert missing, [d.message for d in diagnostics]
        for diagnostic in missing:
            params[diagnostic.message.split("`")[1]] = "42"
    raise AssertionError(path)


def _spans(plan: Plan) -> list[tuple[str, int, int] | None]:
    return [None if item.span is None else (item.span.file, item.span.start, item.span.end)
            for item in (*plan.agents, *plan.stages, *plan.hooks)]


@pytest.mark.parametrize("path", _bundled(), ids=lambda p: p.name)
def test_the_cached_plan_of_every_bundled_example_is_the_compiled_plan(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    fresh, params = _with_required_params(path)
    _, fresh_diagnostics = compile_path(str(path), None, params)
    stored = compile_cached(str(path), None, params, tmp_path / "cache")
    cached = compile_cached(str(path), None, params, tmp_path / "cache")
    assert (stored.outcome, cached.outcome) == ("stored", "hit")
    assert cached.plan is not None
    assert cached.plan == fresh
    assert cached.plan.to_json() == fresh.to_json()
    assert _spans(cached.plan) == _spans(fresh)
    assert hash(cached.plan) == hash(fresh)
    assert render_text(cached.diagnostics) == render_text(fresh_diagnostics)
    # Interpolating strings come back parsed, as the compiler leaves them.
    for stage, again in zip(fresh.stages, cached.plan.stages, strict=True):
        assert type(stage.run) is type(again.run) and type(stage.when) is type(again.when)


def test_reading_an_entry_runs_no_code(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the plan's own classes are built from an entry: a class name from elsewhere is refused."""
    monkeypatch.chdir(project)
    cache = project / ".alfred" / "cache"
    assert compile_cached("pipeline.alfred", None, {}, cache).outcome == "stored"
    (entry,) = cache.glob("*.plan")
    header, _, body = entry.read_bytes().split(b"\n", 2)
    content = json.loads(body)
    content["plan"] = ["D", "Popen", {"args": ["touch", str(tmp_path / "pwned")]}]
    new_body = json.dumps(content).encode("utf-8")
    entry.write_bytes(header + b"\n" + hashlib.sha256(new_body).hexdigest().encode() + b"\n" + new_body)
    result = compile_cached("pipeline.alfred", None, {}, cache)
    assert result.outcome == "stored" and result.plan is not None
    assert not (tmp_path / "pwned").exists()
