"""Shared test fixtures.

``--update-golden`` rewrites golden files (expected outputs) instead of comparing them;
tests that compare against golden files use the ``golden`` fixture.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO_ROOT = Path(__file__).resolve().parent.parent
# How tests start the CLI as a separate process: the interpreter running the tests, never a
# program found on PATH (which may be an older alfredc installed by hand, or none at all).
ALFREDC = [sys.executable, "-m", "alfred_dsl"]
EXAMPLES = REPO_ROOT / "examples"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files with the current output instead of comparing",
    )


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run was started with ``--update-golden``."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def golden(update_golden: bool) -> Callable[[Path, str], None]:
    """Compare ``actual`` with the golden file at ``path`` (or rewrite it with --update-golden)."""

    def check(path: Path, actual: str) -> None:
        if update_golden:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"golden file {path} is missing; run pytest --update-golden to create it")
        expected = path.read_text(encoding="utf-8")
        assert actual == expected, f"output differs from {path} (pytest --update-golden rewrites it)"

    return check


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


@dataclass(frozen=True, slots=True)
class CliResult:
    """What one in-process ``alfredc`` invocation printed, and its exit status."""

    status: int
    stdout: str
    stderr: str


@contextmanager
def _chdir(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_alfredc(*args: str, cwd: Path | None = None, env: dict[str, str | None] | None = None) -> CliResult:
    """Run ``alfredc ARGS`` in-process through ``cli.main`` (the real entry point, exit statuses included)."""
    from alfred_dsl.cli import main

    runner = CliRunner()
    status = 0
    with _chdir(cwd), runner.isolation(env=env) as (stdout, stderr, _output):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code
            status = code if isinstance(code, int) else (0 if code is None else 1)
        out = stdout.getvalue().decode("utf-8", "replace")
        err = stderr.getvalue().decode("utf-8", "replace")
    return CliResult(status, out, err)


@pytest.fixture
def alfredc() -> Callable[..., CliResult]:
    """``alfredc(*args, cwd=None, env=None) -> CliResult``: run the CLI in-process."""
    return run_alfredc
