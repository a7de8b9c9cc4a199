"""The pre-commit hooks other repositories use: valid, and their entries really run."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))


def _hook(hook_id: str) -> dict[str, object]:
    return next(hook for hook in HOOKS if hook["id"] == hook_id)


def _run_entry(hook_id: str, *files: str) -> subprocess.CompletedProcess[str]:
    """Run a hook's entry as pre-commit does: the entry, then the matching file names."""
    hook = _hook(hook_id)
    pattern = re.compile(str(hook["files"]))
    assert all(pattern.search(name) for name in files)
    words = shlex.split(str(hook["entry"]))
    assert words[0] == "alfredc"
    command = [sys.executable, "-m", "alfred_dsl", *words[1:], *files]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_hooks_have_what_pre_commit_requires() -> None:
    assert {hook["id"] for hook in HOOKS} == {"alfredc-check", "alfredc-fmt"}
    for hook in HOOKS:
        assert {"id", "name", "entry", "language", "files"} <= set(hook)
        assert hook["language"] == "python"


def test_check_hook_passes_a_good_file_and_fails_a_broken_one() -> None:
    assert _run_entry("alfredc-check", "examples/feature_development.alfred").returncode == 0
    broken = _run_entry("alfredc-check", "examples/broken/A201-unknown-agent.alfred")
    assert broken.returncode == 1 and "A201" in broken.stdout


def test_fmt_hook_passes_formatted_files_and_writes_nothing() -> None:
    before = (ROOT / "examples/bug_fix.alfred").read_bytes()
    done = _run_entry("alfredc-fmt", "examples/bug_fix.alfred", "examples/code_review.alfred")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (ROOT / "examples/bug_fix.alfred").read_bytes() == before


def test_check_hook_leaves_ordinary_yaml_alone() -> None:
    pattern = re.compile(str(_hook("alfredc-check")["files"]))
    assert not pattern.search(".github/workflows/ci.yml")


def test_readme_snippet_pins_a_commit_and_names_real_hooks() -> None:
    """No tag exists in this repository: the README must not name one as `rev`."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    snippet = next(block for block in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "repos:" in block)
    [repo] = yaml.safe_load(snippet)["repos"]
    assert repo["repo"] == "https://github.com/alfred-dsl/alfred"
    assert repo["rev"] == "COMMIT_SHA" or re.fullmatch(r"[0-9a-f]{40}", repo["rev"])
    assert {hook["id"] for hook in repo["hooks"]} <= {hook["id"] for hook in HOOKS}
    prose = " ".join(readme.split())
    assert "pin a commit" in prose and "pre-commit autoupdate --freeze" in prose
