"""What a first user trips over: each a documented behaviour of the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FLOW = """agent sh {
  kind = command
}

workflow w {
  stage a {
    agent = sh
    run   = "touch ran"
  }
}
"""


def alfredc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def test_events_into_a_missing_folder_exits_2_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "f.alfred").write_text(FLOW)
    result = alfredc("run", "f.alfred", "--events", "nope/ev.jsonl", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        "alfredc: error: cannot write events to nope/ev.jsonl:"
        " the folder nope does not exist (create it first)\n"
    )
    assert not (tmp_path / "nope").exists()  # a mistyped folder is not created
    assert not (tmp_path / "ran").exists()   # the stage never started
    assert not (tmp_path / ".alfred").exists()  # refused before the state directory is opened
    runs = alfredc("runs", "--format", "json", cwd=tmp_path)
    assert json.loads(runs.stdout)["runs"] == []  # and no run was recorded


def test_a_mistyped_command_suggests_the_right_one(tmp_path: Path) -> None:
    result = alfredc("chek", "f.alfred", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command `chek`. Did you mean `check`?" in result.stderr
    assert "Traceback" not in result.stderr
    unknown = alfredc("frobnicate", cwd=tmp_path)
    assert unknown.returncode == 2 and "Did you mean" not in unknown.stderr


def test_top_level_help_shows_each_command_with_a_whole_sentence(tmp_path: Path) -> None:
    from alfred_dsl.cli import COMMANDS, SUMMARIES

    assert list(SUMMARIES) == list(COMMANDS)
    result = alfredc("--help", cwd=tmp_path)
    assert result.returncode == 0
    listed = result.stdout.split("Commands:\n", 1)[1]
    for name, summary in SUMMARIES.items():
        assert summary.endswith(".") and not summary.endswith("..")
        line = next(line for line in listed.splitlines() if line.split()[0] == name)
        assert line.split(None, 1)[1] == summary
    assert "..." not in listed and "(e.g." not in listed


def test_plan_help_speaks_of_the_plan_not_of_the_spec(tmp_path: Path) -> None:
    result = alfredc("plan", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "spec section" not in result.stdout and "JSON object" in result.stdout


def _diagnostics_text(output: str) -> str:
    """The diagnostic blocks of a command's output: everything before the summary line."""
    blocks, summary, _ = output.partition("\nerror: ")
    assert summary, output
    return blocks


def test_a_broken_file_gets_the_same_diagnostics_from_check_plan_submit_and_docs(tmp_path: Path) -> None:
    broken = Path(__file__).parent / "data" / "check" / "many_kinds.alfred"
    (tmp_path / "broken.alfred").write_text(broken.read_text(encoding="utf-8"), encoding="utf-8")
    check = alfredc("check", "broken.alfred", cwd=tmp_path)
    plan = alfredc("plan", "broken.alfred", cwd=tmp_path)
    submit = alfredc("submit", "broken.alfred", cwd=tmp_path)
    docs = alfredc("docs", "broken.alfred", "-o", "site", cwd=tmp_path)
    assert [r.returncode for r in (check, plan, submit, docs)] == [1, 1, 1, 1]
    expected = _diagnostics_text(check.stdout)
    codes = [line.split("[", 1)[1][:4] for line in expected.splitlines() if line.startswith("broken.alfred:")]
    assert codes == ["A501", "A310", "A502", "A201", "A304", "A303", "A306", "A401", "A203"]
    assert _diagnostics_text(plan.stderr) == expected
    assert _diagnostics_text(submit.stderr) == expected
    assert _diagnostics_text(docs.stderr) == expected
    assert json.loads(alfredc("status", "--format", "json", cwd=tmp_path).stdout)["runs"] == []
