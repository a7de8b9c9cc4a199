"""The bundled examples check clean; every broken example produces its code, exactly as in its goldens.

``examples/broken/CODE-name.EXT`` holds one input per diagnostic code a file can produce;
``CODE-name.txt``, ``.json`` and ``.sarif`` beside it are the expected outputs of
``alfredc check`` (run from the repository root). ``pytest --update-golden`` rewrites them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import EXAMPLES, REPO_ROOT, CliResult

from alfred_dsl import __version__
from alfred_dsl._codes import CODES

BROKEN = EXAMPLES / "broken"
INPUT_SUFFIXES = (".alfred", ".yaml", ".yml", ".json")
#: Codes no file can produce: they come from the command line or from alfred itself.
#: A6xx come from `alfredc export`.
#: A004 comes from alfred.toml (tests/test_check_fix.py).
#: A318 comes from `check --online` (a server that does not answer: tests/test_context7.py).
NOT_FROM_A_FILE = {"A001", "A004", "A209", "A308", "A318", "A900"} | {c for c in CODES if c.startswith("A6")}

GOOD_EXAMPLES = sorted(p for p in EXAMPLES.iterdir() if p.is_file() and p.suffix in INPUT_SUFFIXES)
#: Broken inputs are .alfred or YAML files: a .json beside them is a golden output.
BROKEN_SUFFIXES = (".alfred", ".yaml", ".yml")
BROKEN_EXAMPLES = sorted(
    p for p in BROKEN.iterdir() if p.is_file() and p.suffix in BROKEN_SUFFIXES and p.name[:4] in CODES
)
NO_COLOUR = {"NO_COLOR": "1"}


def rel(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def test_there_are_examples() -> None:
    names = {p.name for p in GOOD_EXAMPLES}
    assert {
        "feature_development.alfred",
        "bug_fix.alfred",
        "code_review.alfred",
        "templates.alfred",
        "release.yaml",
        "release.json",
    } <= names


@pytest.mark.parametrize(
    "path", [*GOOD_EXAMPLES, EXAMPLES / "demo" / "pipeline.alfred"], ids=lambda p: p.name
)
def test_example_checks_without_errors(path: Path, alfredc: Callable[..., CliResult]) -> None:
    result = alfredc("check", "--format", "json", rel(path), cwd=REPO_ROOT)
    report = json.loads(result.stdout)
    problems = [f"{d['line']}:{d['column']} {d['code']} {d['message']}" for d in report["diagnostics"]]
    assert result.status == 0, problems
    assert report["summary"]["errors"] == 0, problems
    # The examples teach the language: they should not even warn.
    assert problems == []


def test_every_code_a_file_can_produce_has_a_broken_example() -> None:
    covered = {p.name[:4] for p in BROKEN_EXAMPLES}
    missing = sorted(set(CODES) - NOT_FROM_A_FILE - covered)
    assert missing == [], f"no examples/broken/ file for {missing}"
    unknown = sorted({p.name[:4] for p in BROKEN.iterdir() if p.suffix in BROKEN_SUFFIXES} - set(CODES))
    assert unknown == []


@pytest.mark.parametrize("path", BROKEN_EXAMPLES, ids=lambda p: p.stem)
def test_broken_example_reports_its_code(path: Path, alfredc: Callable[..., CliResult]) -> None:
    code = path.name[:4]
    result = alfredc("check", "--format", "json", rel(path), cwd=REPO_ROOT)
    report = json.loads(result.stdout)
    codes = [d["code"] for d in report["diagnostics"]]
    assert code in codes, f"{path.name} should report {code}, got {codes}"
    warning_only = code.startswith("A5")
    assert result.status == (0 if warning_only else 1)
    if warning_only:
        assert alfredc("check", "--strict", rel(path), cwd=REPO_ROOT, env=NO_COLOUR).status == 1
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("path", BROKEN_EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("fmt,suffix", [("text", ".txt"), ("json", ".json"), ("sarif", ".sarif")])
def test_broken_example_output_matches_golden(
    path: Path, fmt: str, suffix: str, alfredc: Callable[..., CliResult], golden: Callable[[Path, str], None]
) -> None:
    result = alfredc("check", "--format", fmt, rel(path), cwd=REPO_ROOT, env=NO_COLOUR)
    # The tool version is not part of the expected output: a release must not rewrite goldens.
    output = result.stdout.replace(f'"version": "{__version__}"', '"version": "VERSION"')
    output = output.replace(f'"semanticVersion": "{__version__}"', '"semanticVersion": "VERSION"')
    # Nor is where the checkout lives (A211 names the project root).
    output = output.replace(f"{REPO_ROOT}/", "<root>/").replace(f"{REPO_ROOT}`", "<root>`")
    output = output.replace(f"{REPO_ROOT.parent}/", "<root>/../")
    golden(path.with_suffix(suffix), output)


def test_dsl_examples_are_formatted(alfredc: Callable[..., CliResult]) -> None:
    """The examples are what users copy: they are in the canonical layout of `alfredc fmt`."""
    paths = [rel(p) for p in GOOD_EXAMPLES if p.suffix == ".alfred"]
    result = alfredc("fmt", "--check", *paths, cwd=REPO_ROOT)
    assert result.status == 0, result.stdout + result.stderr
