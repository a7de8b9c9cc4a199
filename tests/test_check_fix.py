"""``alfredc check --fix``, ``--format github``, ``--statistics``, ``# alfred: ignore[...]``
comments and ``alfred.toml`` ``[check] select/ignore``, run as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from alfred_dsl._diagnostics import Diagnostic, Edit, Label, Severity
from alfred_dsl.compiler._fixing import _fix_file
from alfred_dsl.compiler.load import read_source

GOLDEN = REPO_ROOT / "tests" / "golden" / "fix"
Golden = Callable[[Path, str], None]


def check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "alfred_dsl", "check", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder (alfred.toml marks its root) holding the three-fixes example."""
    (tmp_path / "alfred.toml").write_text("", encoding="utf-8")
    shutil.copy(GOLDEN / "three_fixes.alfred", tmp_path / "ci.alfred")
    return tmp_path


WORKER = """\
agent worker {
  kind = command
  run  = ["make"]
}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# -- --fix ----------------------------------------------------------------------------------


def test_fix_writes_the_corrected_file_and_a_second_fix_changes_nothing(
    project: Path, golden: Golden
) -> None:
    before = check("ci.alfred", cwd=project)
    assert before.returncode == 1  # the misspelt agent is an error
    result = check("--fix", "ci.alfred", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "fixed 4 problems in ci.alfred\nok: 1 file checked, no problems found\n"
    fixed = (project / "ci.alfred").read_text(encoding="utf-8")
    golden(GOLDEN / "three_fixes.fixed.alfred", fixed)
    again = check("--fix", "ci.alfred", cwd=project)
    assert again.returncode == 0
    assert again.stdout == "ok: 1 file checked, no problems found\n"
    assert (project / "ci.alfred").read_text(encoding="utf-8") == fixed


def test_fix_with_json_says_what_was_fixed_and_what_remains(project: Path) -> None:
    path = project / "ci.alfred"
    path.write_text(path.read_text(encoding="utf-8").replace("agent = builder\n  }\n\n  stage package",
                                                             "agent = nobody\n  }\n\n  stage package"),
                    encoding="utf-8")
    result = check("--fix", "--format", "json", "ci.alfred", cwd=project)
    report = json.loads(result.stdout)
    assert result.returncode == 1
    assert report["fixed"] == [
        {"file": "ci.alfred", "count": 4, "codes": ["A201", "A502", "A503", "A503"]}
    ]
    # `nobody` is like no agent: no fix, so it remains, and the exit status says so.
    assert [(d["code"], d["message"]) for d in report["diagnostics"]] == [("A201", "unknown agent `nobody`")]


def test_fix_applies_renames_and_after_removals_in_yaml(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    path = write(tmp_path, "ci.yaml", """\
agents:
  worker: {kind: command, run: [make]}
workflows:
  ci:
    stages:
      build: {agent: worker}
      test: {agent: wroker, after: [build]}
      package: {agent: worker, after: [build, test]}
""")
    result = check("--fix", "ci.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fixed 2 problems in ci.yaml" in result.stdout
    assert path.read_text(encoding="utf-8").splitlines()[-2:] == [
        "      test: {agent: worker, after: [build]}",
        "      package: {agent: worker, after: [test]}",
    ]


def test_fix_never_writes_text_that_would_not_parse(tmp_path: Path) -> None:
    path = write(tmp_path, "ci.alfred", WORKER)
    source, problems = read_source(path)
    assert source is not None and not problems
    brace = source.text.index("{")
    breaking = Diagnostic(
        code="A201", severity=Severity.ERROR, message="made up", primary=Label(source.span(0, 5)),
        fix=(Edit(source.span(brace, brace + 1), "("),),
    )
    codes, reason = _fix_file(source, [breaking])
    assert codes == [] and reason is not None and "would not parse" in reason
    assert path.read_text(encoding="utf-8") == WORKER


# -- --format github ------------------------------------------------------------------------


def test_github_format_golden(project: Path, golden: Golden) -> None:
    result = check("--format", "github", "ci.alfred", cwd=project)
    assert result.returncode == 1
    golden(GOLDEN / "three_fixes.github", result.stdout)


def test_github_format_escapes_properties_and_message(tmp_path: Path) -> None:
    write(tmp_path, "a,b:c.alfred", WORKER + 'workflow w {\n  stage s {\n    agent = "50%"\n  }\n}\n')
    result = check("--format", "github", "a,b:c.alfred", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3  # one line per diagnostic: newlines inside a message are escaped
    assert lines[0].startswith("::warning file=a%2Cb%3Ac.alfred,line=1,col=7,")
    (schema,) = [line for line in lines if "A301" in line]
    assert schema.startswith(
        "::error file=a%2Cb%3Ac.alfred,line=7,col=13,endLine=7,endColumn=18,"
        'title=A301 schema-violation::`agent` must be a name, found "50%25"%0A'
    )


# -- ignore comments and alfred.toml ----------------------------------------------------------


PARAMS = WORKER + """
workflow ci {
  param a: bool = false  # alfred: ignore[A502]
  param b: bool = false  # alfred: ignore[A503, A501]
  param c: bool = false  # alfred: ignore
  param d: bool = false

  stage build {
    agent = worker  # alfred: ignore[A201]
  }
  stage test {
    agent = workr  # alfred: ignore[A201]
  }
}
"""


def test_ignore_comments_suppress_warnings_of_their_line_only(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path, "ci.alfred", PARAMS)
    result = check("--format", "json", "ci.alfred", cwd=tmp_path)
    found = [(d["code"], d["line"]) for d in json.loads(result.stdout)["diagnostics"]]
    # a (named) and c (bare) are suppressed; b names other codes; d has no comment;
    # an error (A201, line 16) is reported whatever its comment says.
    assert found == [("A502", 8), ("A502", 10), ("A201", 16)]
    assert result.returncode == 1


def test_alfred_toml_select_and_ignore_by_prefix(tmp_path: Path) -> None:
    write(tmp_path, "alfred.toml", '[check]\nselect = ["A5", "A502"]\nignore = ["A50"]\n')
    write(tmp_path, "ci.alfred", WORKER + """
workflow ci {
  param unused: bool = false
  stage build {
    agent = worker
  }
  stage test after build {
    agent = worker
  }
  stage package after build, test {
    agent = worker
  }
}
""")
    result = check("--format", "json", "ci.alfred", cwd=tmp_path)
    # A50 (longer than A5) drops A503; A502 (longer than A50) keeps A502.
    assert [d["code"] for d in json.loads(result.stdout)["diagnostics"]] == ["A502"]
    assert result.returncode == 0
    write(tmp_path, "alfred.toml", '[check]\nignore = ["A5"]\n')
    quiet = check("ci.alfred", cwd=tmp_path)
    assert quiet.stdout == "ok: 1 file checked, no problems found\n"


def test_an_invalid_alfred_toml_is_a_diagnostic_with_its_place_and_exit_2(tmp_path: Path) -> None:
    write(tmp_path, "alfred.toml", '[check]\nselect = ["A5"]\nignroe = ["A9x"]\n')
    write(tmp_path, "ci.alfred", PARAMS)
    result = check("ci.alfred", cwd=tmp_path)
    assert result.returncode == 2
    assert "alfred.toml:3:1: error[A004]: unknown key `ignroe` in `[check]`" in result.stdout
    assert "did you mean `ignore`?" in result.stdout
    write(tmp_path, "alfred.toml", "[check\n")
    broken = check("--fix", "ci.alfred", cwd=tmp_path)
    assert broken.returncode == 2
    assert "alfred.toml:1:7: error[A004]: `alfred.toml` is not valid TOML" in broken.stdout
    assert (tmp_path / "ci.alfred").read_text(encoding="utf-8") == PARAMS  # --fix fixed nothing


# -- --statistics ------------------------------------------------------------------------------


def test_statistics_count_codes_most_frequent_first(project: Path) -> None:
    result = check("--statistics", "ci.alfred", cwd=project)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "2\tA503\t[*] redundant-after",
        "1\tA201\t[*] unknown-agent",
        "1\tA502\t[*] unused-param",
    ]
    report = json.loads(check("--statistics", "--format", "json", "ci.alfred", cwd=project).stdout)
    assert report["statistics"][0] == {"code": "A503", "name": "redundant-after", "count": 2, "fixable": 2}
    assert report["summary"] == {"errors": 1, "warnings": 3}


def test_statistics_refuses_sarif(project: Path) -> None:
    result = check("--statistics", "--format", "sarif", "ci.alfred", cwd=project)
    assert result.returncode == 2
    assert "--statistics prints text or json" in result.stderr
