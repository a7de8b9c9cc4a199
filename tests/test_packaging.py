"""The wheel: it builds, installs into a fresh venv, and works there without the checkout.

The grammar and the schema must be inside the wheel (``alfred_dsl/_data/``), else the
installed ``alfredc`` could only work from a source checkout.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import EXAMPLES, REPO_ROOT

pytestmark = pytest.mark.slow


def run(args: list[str | Path], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheels")
    # Build from a copy so that the build leaves nothing in the working tree.
    source = tmp_path_factory.mktemp("src") / "alfred"
    ignore = shutil.ignore_patterns(
        ".git", ".venv", ".venv-*", ".engines", "test-artifacts", "*.pyc", "__pycache__", ".alfred",
        ".hypothesis", "*.egg-info", ".*_cache",
    )
    shutil.copytree(REPO_ROOT, source, ignore=ignore)
    # hatchling comes with the test dependencies: without build isolation nothing is downloaded.
    assert importlib.util.find_spec("hatchling") is not None, "pip install -e '.[test]' installs hatchling"
    result = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, source],
        cwd=out,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("alfred_dsl-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its bin/.

    Its dependencies come from the environment running the tests, named explicitly by a
    ``.pth`` line (offline, and whether that environment is a venv or the system's). The
    ``.pth`` files *of* that folder are not processed, so an editable install of the checkout
    there stays invisible: the venv imports the wheel.
    """
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=True, symlinks=True).create(env_dir)
    bindir = env_dir / "bin"
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    probe = run([bindir / "python", "-c", where], cwd=env_dir)
    site_packages = Path(probe.stdout.strip())
    dependencies = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site_packages / "_alfred_test_dependencies.pth").write_text("\n".join(sorted(dependencies)) + "\n")
    result = run([bindir / "python", "-m", "pip", "install", "--no-deps", "-q", wheel], cwd=env_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    return bindir


def test_wheel_ships_grammar_schema_and_types(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "alfred_dsl/_data/alfred.lark" in names
    assert "alfred_dsl/_data/workflow.schema.json" in names
    for template in ("feature_development", "bug_fix", "code_review"):  # alfred_dsl.templates
        assert f"alfred_dsl/_data/{template}.alfred" in names
    assert "alfred_dsl/py.typed" in names
    assert "alfred_dsl/cli/_check.py" in names and "alfred_dsl/_render_diag.py" in names
    assert not any(name.startswith(("tests/", "examples/")) for name in names)


def test_venv_imports_the_installed_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    result = run([installed / "python", "-c", "import alfred_dsl; print(alfred_dsl.__file__)"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    location = Path(result.stdout.strip())
    assert installed.parent in location.parents, location
    assert REPO_ROOT not in location.parents


def test_installed_alfredc_checks_an_example(installed: Path, tmp_path: Path) -> None:
    example = tmp_path / "bug_fix.alfred"
    shutil.copy(EXAMPLES / "bug_fix.alfred", example)
    shutil.copytree(EXAMPLES / "myteam", tmp_path / "myteam")  # the module its python agents call (A504)
    ok = run([installed / "alfredc", "check", example.name], cwd=tmp_path, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("ok: 1 file checked")
    broken = tmp_path / "broken.alfred"
    broken.write_text(example.read_text().replace("agent    = fixer", "agent    = fxer"))
    bad = run([installed / "alfredc", "check", broken.name], cwd=tmp_path, timeout=60)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "error[A201]" in bad.stdout and "did you mean `fixer`?" in bad.stdout


def test_installed_alfredc_explains_a_code(installed: Path, tmp_path: Path) -> None:
    result = run([installed / "alfredc", "explain", "A401"], cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "dependency-cycle" in result.stdout
    # The example comes from docs/diagnostics.md, which the wheel ships as _data/diagnostics.md.
    assert "Example:" in result.stdout
