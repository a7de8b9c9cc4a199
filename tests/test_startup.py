"""Start-up: each command imports what it needs and nothing heavy besides (docs/design.md).

Wall times depend on the machine; which modules a command loads does not, and it is what
makes `alfredc --version` or the run of a cached plan start at once. bench/startup.py
measures the times.
"""

from __future__ import annotations

import json
import os
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


#: Count the snippets of text that dataclasses and attrs compile, then run `alfredc` as its
#: script does (`cli.entry`, which caches that code).
COMPILE_PROBE = (
    "import builtins, sys\n"
    "counted = [0]\n"
    "GENERATORS = {'dataclasses', 'attr._make', 'alfred_dsl._codecache'}\n"
    "def _counting(real):\n"
    "    def call(source, *args, **kwargs):\n"
    "        if isinstance(source, str) and sys._getframe(1).f_globals.get('__name__') in GENERATORS:\n"
    "            counted[0] += 1\n"
    "        return real(source, *args, **kwargs)\n"
    "    return call\n"
    "builtins.exec, builtins.compile = _counting(builtins.exec), _counting(builtins.compile)\n"
    "import atexit\n"
    "atexit.register(lambda: sys.stderr.write(f'COMPILED={counted[0]}\\n'))\n"
    "from alfred_dsl.cli import entry\n"
    "entry()\n"
)


def compiled_snippets(cwd: Path, env: dict[str, str], *args: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", COMPILE_PROBE, *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("COMPILED="))
    return int(line.removeprefix("COMPILED="))


@pytest.fixture
def bytecode_env(tmp_path: Path) -> dict[str, str]:
    """Python as a user's: bytecode written, here under a folder of the test's own."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    return env


def test_the_methods_classes_generate_are_compiled_once_per_install(
    project: Path, tmp_path: Path, bytecode_env: dict[str, str]
) -> None:
    """~300 snippets (the dataclasses' and trio's attrs classes' methods), 20-30 ms of a short
    run, are compiled by the first `alfredc` process and read back by the next ones."""
    first = compiled_snippets(project, bytecode_env, "run", "one.alfred")
    assert first > 100
    assert compiled_snippets(project, bytecode_env, "run", "one.alfred") == 0
    assert compiled_snippets(project, {**bytecode_env, "PYTHONHASHSEED": "0"}, "run", "one.alfred") == 0
    [cache] = (tmp_path / "pycache").rglob("*.generated")

    # A damaged file is compiled around, and written again.
    cache.write_bytes(cache.read_bytes()[:1000])
    assert compiled_snippets(project, bytecode_env, "run", "one.alfred") > 100
    assert compiled_snippets(project, bytecode_env, "run", "one.alfred") == 0

    # No bytecode written (PYTHONDONTWRITEBYTECODE): no file either.
    cache.unlink()
    compiled_snippets(project, {**bytecode_env, "PYTHONDONTWRITEBYTECODE": "1"}, "check", "one.alfred")
    assert not cache.exists()


#: The code of every method that dataclasses or attrs generated in this process.
METHODS_PROBE = (
    "import sys, json, types\n"
    "if sys.argv[1] == 'cached':\n"
    "    from alfred_dsl import _codecache\n"
    "    _codecache.enable(); _codecache.cover_dataclasses()\n"
    "import alfred_dsl.runtime, alfred_dsl.compiler._pipeline, alfred_dsl.runtime._view\n"
    "FIELDS = ['co_code', 'co_names', 'co_varnames', 'co_freevars', 'co_cellvars', 'co_filename',\n"
    "          'co_name', 'co_qualname', 'co_firstlineno', 'co_flags', 'co_argcount', 'co_posonlyargcount',\n"
    "          'co_kwonlyargcount', 'co_exceptiontable', 'co_consts']\n"
    "if sys.argv[2] == 'columns':\n"
    "    FIELDS.append('co_linetable')  # lines and columns\n"
    "else:\n"
    "    FIELDS.append('co_lines')  # lines only\n"
    "def describe(value):\n"
    "    if isinstance(value, types.CodeType):\n"
    "        return [describe(getattr(value, name)) for name in FIELDS]\n"
    "    if callable(value):\n"
    "        return repr(list(value()))\n"
    "    if isinstance(value, tuple):\n"
    "        return [describe(item) for item in value]\n"
    "    if isinstance(value, frozenset):  # equal sets may iterate in another order\n"
    "        return sorted(map(repr, value))\n"
    "    return repr(value)\n"
    "methods = {}\n"
    "for name, module in sorted(sys.modules.items()):\n"
    "    for cls in list(vars(module).values()):\n"
    "        if isinstance(cls, type) and cls.__module__ == name and (\n"
    "                '__dataclass_fields__' in vars(cls) or '__attrs_attrs__' in vars(cls)):\n"
    "            for attribute, function in vars(cls).items():\n"
    "                if isinstance(function, types.FunctionType):\n"
    "                    methods[f'{name}.{cls.__qualname__}.{attribute}'] = [\n"
    "                        describe(function.__code__), repr(function.__annotations__)]\n"
    "compiled = len(_codecache._compiled) if sys.argv[1] == 'cached' else None\n"
    "print(json.dumps({'methods': methods, 'compiled': compiled}))\n"
)


def test_methods_read_from_the_cache_are_those_python_compiles(
    project: Path, bytecode_env: dict[str, str]
) -> None:
    """The same code, names, constants, line numbers and annotations (attrs' are strings: it
    compiles under `from __future__ import annotations`, and so must the cache) as without it."""

    def methods(mode: str, seed: str, detail: str = "columns") -> tuple[dict[str, object], int | None]:
        result = subprocess.run(
            [sys.executable, "-c", METHODS_PROBE, mode, detail], cwd=project,
            env={**bytecode_env, "PYTHONHASHSEED": seed}, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        return found["methods"], found["compiled"]

    plain, _ = methods("plain", "1")
    assert len(plain) > 300
    assert any(".PlanStage.__init__" in name for name in plain)
    assert any(name.startswith("trio.") for name in plain)
    assert any(name.startswith("attr._make.") for name in plain)  # attrs' own, made as it loads
    first, compiled = methods("cached", "1")  # writes the file
    assert first == plain and compiled is not None and compiled > 100  # (Python 3.13: one per class)
    cached, compiled = methods("cached", "1")  # reads it back...
    assert compiled == 0
    assert cached == plain  # ...as what the compiler makes

    # attrs writes hash("<attrs generated hash CLASS>") into a class's `__hash__`: the cache
    # puts this process's number in, as the compile would (whose code differs from the cached
    # one only in the end column of that constant, when the numbers differ in length).
    plain, _ = methods("plain", "2", "lines")
    cached, compiled = methods("cached", "2", "lines")
    assert compiled == 0
    assert cached == plain
