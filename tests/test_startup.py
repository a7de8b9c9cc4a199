"""Start-up: each command imports what it needs and nothing heavy besides (docs/design.md).

Wall times depend on the machine; which modules a command loads does not, and it is what
makes `alfredc --version` or the run of a cached plan start at once. bench/startup.py
measures the times.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ONE_STAGE = """\
agent sh {
  kind = command
}

workflow one {
  stage hello {
    agent = sh
    run = "true"
  }
}
"""

#: Print, at exit, which of the watched packages and alfred modules were imported.
PROBE = (
    "import atexit, sys\n"
    "def _report():\n"
    "    top = {m.split('.')[0] for m in sys.modules}\n"
    "    names = sorted(m for m in sys.modules if m.startswith('alfred_dsl.')) + sorted(top)\n"
    "    sys.stderr.write('IMPORTED=' + ','.join(names) + '\\n')\n"
    "atexit.register(_report)\n"
    "from alfred_dsl.cli import main\n"
    "main(sys.argv[1:])\n"
)

#: What no command needs unless the input asks for it.
NEVER = {
    "rich", "jinja2", "networkx", "jsonschema", "pygls", "dask", "distributed", "mcp", "tomllib", "asyncio",
}
THE_COMPILER = {"lark", "yaml", "fastjsonschema", "alfred_dsl.compiler.syntax", "alfred_dsl.compiler.load",
                "alfred_dsl.compiler._pipeline", "alfred_dsl.compiler._ast", "alfred_dsl.compiler._bind",
                "alfred_dsl.compiler._graph"}
THE_RUNTIME = {"trio", "sqlite3", "alfred_dsl.runtime"}
#: Parts of the runtime only some plans use: approvals, incremental stages, fan-outs.
ON_DEMAND = {"alfred_dsl.runtime._approval", "alfred_dsl.runtime._incremental", "alfred_dsl.compiler._fanout",
             "alfred_dsl.compiler._document", "getpass"}
#: What only a problem needs: the diagnostics printer, and difflib for "did you mean".
ON_ERROR = {"alfred_dsl._render_diag", "difflib"}


def imported(cwd: Path, *args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("IMPORTED="))
    return set(filter(None, line.removeprefix("IMPORTED=").split(",")))


def loaded(names: set[str], watched: set[str]) -> set[str]:
    """The watched packages (or alfred modules, with their submodules) among ``names``."""
    return {w for w in watched if any(n == w or n.startswith(w + ".") for n in names)}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "one.alfred").write_text(ONE_STAGE, encoding="utf-8")
    (tmp_path / ".alfred").mkdir()
    return tmp_path


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_import_neither_the_compiler_nor_the_runtime(project: Path, flag: str) -> None:
    names = imported(project, flag)
    assert loaded(names, NEVER | THE_COMPILER | THE_RUNTIME) == set()
    assert not any(n.startswith("alfred_dsl.compiler") for n in names), names


def test_check_imports_the_compiler_only(project: Path) -> None:
    names = imported(project, "check", "one.alfred")
    assert loaded(names, NEVER | THE_RUNTIME | {"yaml"}) == set()  # no YAML file: no PyYAML
    assert "lark" in loaded(names, THE_COMPILER)  # the probe sees what it watches


def test_plan_of_a_cached_plan_does_not_load_the_compiler(project: Path) -> None:
    imported(project, "plan", "one.alfred")  # compiles and fills the cache
    names = imported(project, "plan", "one.alfred")
    assert loaded(names, NEVER | THE_COMPILER | THE_RUNTIME | ON_ERROR) == set()
    compiled = imported(project, "plan", "--no-cache", "one.alfred")
    assert loaded(compiled, NEVER | THE_RUNTIME | {"yaml"}) == set()
    assert "lark" in loaded(compiled, THE_COMPILER)


def test_a_one_stage_run_of_a_cached_plan_loads_the_runtime_only(project: Path) -> None:
    imported(project, "run", "one.alfred")
    names = imported(project, "run", "one.alfred")
    assert loaded(names, NEVER | THE_COMPILER | ON_DEMAND | ON_ERROR) == set()
    assert loaded(names, THE_RUNTIME) == THE_RUNTIME
    compiled = imported(project, "run", "--no-cache", "one.alfred")
    assert loaded(compiled, NEVER | {"yaml"}) == set()


def test_a_mistyped_stage_name_still_gets_its_did_you_mean(project: Path) -> None:
    """difflib loads when a name is wrong (not at every start-up): the hint is still there."""
    result = subprocess.run(
        [sys.executable, "-m", "alfred_dsl", "run", "one.alfred", "--only", "helo"], cwd=project,
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "did you mean `hello`?" in result.stderr


#: Count the cyclic collections from the moment the CLI starts loading to the process's end.
GC_PROBE = (
    "import atexit, gc, sys\n"
    "import alfred_dsl\n"  # the package (and typing) first: what the CLI itself loads is counted
    "runs = [0, 0, 0]\n"
    "def _count(phase, info):\n"
    "    if phase == 'start':\n"
    "        runs[info['generation']] += 1\n"
    "gc.callbacks.append(_count)\n"
    "atexit.register(lambda: sys.stderr.write('COLLECTIONS=' + ','.join(map(str, runs)) + '\\n'))\n"
    "from alfred_dsl.cli import main\n"
    "main(sys.argv[1:])\n"
)


def test_the_cyclic_collector_does_not_run_while_a_short_run_loads(project: Path) -> None:
    """What a command loads lives until the process ends: with Python's default thresholds the
    collector ran ~20 times over click, trio and alfred's modules in a 1-stage run (7-12 ms);
    the CLI sets its thresholds before it imports anything (cli/__init__.py)."""
    imported(project, "run", "one.alfred")  # fills the plan cache
    result = subprocess.run(
        [sys.executable, "-c", GC_PROBE, "run", "one.alfred"], cwd=project, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("COLLECTIONS="))
    young, middle, old = map(int, line.removeprefix("COLLECTIONS=").split(","))
    assert young + middle + old <= 2, line


APPROVED_AND_INCREMENTAL = """\
agent sh {
  kind = command
}

workflow one {
  approvers = { lead = ["nobody"] }

  stage build {
    agent = sh
    run = "echo built > out.txt"
    produces = ["out.txt"]
  }
  stage gate after build {
    approve = { by = ["lead"], timeout = 100ms, on_timeout = approve }
  }
}
"""


def test_approvals_and_incremental_stages_load_their_modules_when_a_plan_has_them(project: Path) -> None:
    (project / "two.alfred").write_text(APPROVED_AND_INCREMENTAL, encoding="utf-8")
    names = imported(project, "run", "two.alfred")
    assert {"alfred_dsl.runtime._approval", "alfred_dsl.runtime._incremental"} <= names


FAILS_LOUDLY = """\
agent sh {
  kind = command
}

workflow one {
  stage hello {
    agent = sh
    run = "echo from-the-stage; exit 3"
  }
}
"""


def test_the_process_exit_keeps_what_python_s_exit_does(project: Path) -> None:
    """`alfredc` ends without Python's teardown of every module (cli.entry), yet as
    `sys.exit` would: its exit status, its whole output through a pipe, its atexit duties
    (in cgroup mode, the runner's cgroup folder removed)."""
    from alfred_dsl.runtime import _contain

    (project / "bad.alfred").write_text(FAILS_LOUDLY, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "alfred_dsl", "run", "bad.alfred", "--events", "-"], cwd=project,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    lines = out.splitlines()
    assert any(" run_failed one " in line for line in lines), out
    assert " failed: " in lines[-1], out  # the last line too: flushed
    mount, own = _contain._cgroup2_mount(), _contain._own_cgroup()
    if mount is not None and own is not None:
        shared = Path(mount + own) / "alfred"
        left = list(shared.glob(f"proc-{proc.pid}-*")) if shared.is_dir() else []
        assert left == [], f"the runner's cgroup folder outlived it: {left}"
