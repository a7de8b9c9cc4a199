"""``alfredc check`` and ``alfredc explain`` as a user runs them: exit statuses, formats, colour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _terminal import run_on_terminal
from conftest import EXAMPLES, REPO_ROOT, CliResult

from alfred_dsl._codes import CODES

Run = Callable[..., CliResult]

CLEAN = """\
agent implementer {
  kind = command
  run  = ["make", "build"]
}

workflow ci {
  stage build {
    agent = implementer
  }

  stage test after build {
    agent = implementer
  }
}
"""
# The second stage's agent misspelt (line 12); the first still uses the agent.
TYPO = CLEAN[::-1].replace("implementer"[::-1], "implementor"[::-1], 1)[::-1]
UNUSED_AGENT = CLEAN + '\nagent deployer {\n  kind = command\n  run  = ["make", "deploy"]\n}\n'


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- explain ------------------------------------------------------------------------


def test_explain_prints_the_registry_entry_and_the_doc_example(alfredc: Run) -> None:
    result = alfredc("explain", "A201")
    assert result.status == 0
    entry = CODES["A201"]
    assert entry.name in result.stdout and entry.summary in result.stdout
    assert entry.explanation.splitlines()[0] in result.stdout
    assert "Example:" in result.stdout and "agent = implementor" in result.stdout


@pytest.mark.parametrize("query", ["a201", " A201 ", "unknown-agent"])
def test_explain_accepts_lowercase_and_names(alfredc: Run, query: str) -> None:
    result = alfredc("explain", query)
    assert result.status == 0 and result.stdout.startswith("A201 (unknown-agent)")


def test_explain_unknown_code_suggests_and_exits_2(alfredc: Run) -> None:
    result = alfredc("explain", "A2011")
    assert result.status == 2
    assert "unknown code `A2011`" in result.stderr and "`A201`" in result.stderr
    assert result.stdout == ""


def test_explain_without_code_lists_every_code(alfredc: Run) -> None:
    result = alfredc("explain")
    assert result.status == 0
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == list(CODES)


def test_every_code_has_an_example_to_explain(alfredc: Run) -> None:
    missing = [code for code in CODES if "Example:" not in alfredc("explain", code).stdout]
    assert missing == []


# -- check: exit statuses -----------------------------------------------------------


def test_clean_file_exits_0_and_says_ok(alfredc: Run, tmp_path: Path) -> None:
    path = write(tmp_path, "ok.alfred", CLEAN)
    result = alfredc("check", str(path))
    assert result.status == 0, result.stdout
    assert result.stdout.startswith("ok: 1 file checked")


def test_error_exits_1_with_the_spec_text(alfredc: Run, tmp_path: Path) -> None:
    write(tmp_path, "typo.alfred", TYPO)
    result = alfredc("check", "typo.alfred", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert result.status == 1
    assert result.stdout.startswith("typo.alfred:12:13: error[A201]: unknown agent `implementor`\n")
    assert "12 |     agent = implementor\n" in result.stdout
    assert "\n   |             ^^^^^^^^^^^ did you mean `implementer`?\n" in result.stdout
    assert "error: 1 error, 0 warnings" in result.stdout
    assert "run 'alfredc explain A201' for more" in result.stdout


def test_warnings_pass_unless_strict(alfredc: Run, tmp_path: Path) -> None:
    path = write(tmp_path, "warn.alfred", UNUSED_AGENT)
    relaxed = alfredc("check", str(path))
    assert relaxed.status == 0
    assert "warning[A501]" in relaxed.stdout and "deployer" in relaxed.stdout
    assert alfredc("check", "--strict", str(path)).status == 1


def test_missing_file_and_directory_exit_2_with_a001(alfredc: Run, tmp_path: Path) -> None:
    missing = alfredc("check", "--format", "json", str(tmp_path / "nope.alfred"))
    assert missing.status == 2
    assert [d["code"] for d in json.loads(missing.stdout)["diagnostics"]] == ["A001"]
    directory = alfredc("check", str(tmp_path))
    assert directory.status == 2 and "A001" in directory.stdout


def test_io_error_wins_over_errors_in_other_files(alfredc: Run, tmp_path: Path) -> None:
    path = write(tmp_path, "typo.alfred", TYPO)
    result = alfredc("check", "--format", "json", str(path), str(tmp_path / "nope.alfred"))
    assert result.status == 2
    assert {d["code"] for d in json.loads(result.stdout)["diagnostics"]} == {"A001", "A201"}


def test_several_files_are_all_reported(alfredc: Run, tmp_path: Path) -> None:
    one = write(tmp_path, "one.alfred", TYPO)
    two = write(tmp_path, "two.alfred", TYPO)
    result = alfredc("check", "--format", "json", str(one), str(two))
    files = sorted(d["file"] for d in json.loads(result.stdout)["diagnostics"] if d["code"] == "A201")
    assert files == [str(one), str(two)]
    assert result.status == 1


def test_usage_errors_exit_2(alfredc: Run, tmp_path: Path) -> None:
    assert alfredc("check").status == 2
    bad_format = alfredc("check", "--format", "xml", "x.alfred")
    assert bad_format.status == 2 and "xml" in bad_format.stderr


# -- check: formats and colour --------------------------------------------------------


def test_json_and_sarif_stdout_is_only_the_document(alfredc: Run, tmp_path: Path) -> None:
    path = write(tmp_path, "typo.alfred", TYPO)
    report = json.loads(alfredc("check", "--format", "json", str(path)).stdout)
    (diag,) = report["diagnostics"]
    assert (diag["line"], diag["column"], diag["end_line"], diag["end_column"]) == (12, 13, 12, 24)
    assert report["summary"] == {"errors": 1, "warnings": 0}
    sarif = json.loads(alfredc("check", "--format", "sarif", str(path)).stdout)
    assert sarif["version"] == "2.1.0"
    assert sarif["runs"][0]["results"][0]["ruleId"] == "A201"
    clean = write(tmp_path, "ok.alfred", CLEAN)
    assert json.loads(alfredc("check", "--format", "json", str(clean)).stdout)["diagnostics"] == []


def test_colour_only_when_asked_or_on_a_terminal(alfredc: Run, tmp_path: Path) -> None:
    path = write(tmp_path, "typo.alfred", TYPO)
    assert "\x1b[" not in alfredc("check", str(path)).stdout  # not a terminal
    assert "\x1b[" in alfredc("check", "--colour", "always", str(path)).stdout
    assert "\x1b[" not in alfredc("check", "--format", "json", "--colour", "always", str(path)).stdout


def test_no_color_is_honoured_on_a_terminal(tmp_path: Path) -> None:
    """A real pseudo-terminal: colour by default, none with NO_COLOR."""
    path = write(tmp_path, "typo.alfred", TYPO)
    script = "import sys; from alfred_dsl.cli import main; main(sys.argv[1:])"

    def run_on_tty(env: dict[str, str]) -> bytes:
        return run_on_terminal([sys.executable, "-c", script, "check", str(path)], env)[1]

    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    env["TERM"] = "xterm"
    assert b"\x1b[" in run_on_tty(env)
    assert b"\x1b[" not in run_on_tty({**env, "NO_COLOR": "1"})


def test_check_as_a_real_subprocess(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alfred_dsl", "check", "--format", "json", str(EXAMPLES / "bug_fix.alfred")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["summary"] == {"errors": 0, "warnings": 0}


def test_check_does_not_import_the_runtime_libraries(tmp_path: Path) -> None:
    """The start-up budget of `alfredc check`: no trio, rich or jinja2 (docs/design.md)."""
    path = write(tmp_path, "ok.alfred", CLEAN)
    script = (
        "import atexit, sys\n"
        "heavy = ('trio', 'rich', 'jinja2')\n"
        "atexit.register(lambda: sys.stderr.write('HEAVY=' + ','.join(sorted("
        "m for m in sys.modules if m.split('.')[0] in heavy)) + '\\n'))\n"
        "from alfred_dsl.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "check", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HEAVY=\n" in result.stderr
