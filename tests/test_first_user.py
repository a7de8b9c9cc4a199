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


# -- a non-UTF-8 locale ----------------------------------------------------------------------

C_LOCALE = {"PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "LC_ALL": "C", "NO_COLOR": "1"}

UNICODE_FLOW = """agent sh {
  kind = command
}

agent vector {
  kind = command
  run  = [
    "%(python)s", "-c", "import os, sys; open('argv.txt', 'wb').write(os.fsencode(sys.argv[1]))",
    "${params.v}",
  ]
}

workflow w {
  description = "déploiement ${params.v}"
  param v: string = "x"

  stage shell {
    agent = sh
    run   = "printf '%%s' ${params.v} > shell.txt; printf '%%s' \\"$V\\" > env.txt"
    env   = { V = "${params.v}" }
  }

  stage argv {
    agent = vector
  }
}
"""


def c_locale_alfredc(*args: str | bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    import os

    env = {key: value for key, value in os.environ.items() if not key.startswith(("LC_", "LANG"))}
    return subprocess.run([sys.executable, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True,
                          timeout=60, check=False, env={**env, **C_LOCALE})


def test_a_non_ascii_param_reaches_argv_shell_and_env_under_the_c_locale(tmp_path: Path) -> None:
    (tmp_path / "u.alfred").write_text(UNICODE_FLOW % {"python": sys.executable}, encoding="utf-8")
    done = c_locale_alfredc("run", "u.alfred", "-p", "v=héllo wörld", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    for name in ("argv.txt", "shell.txt", "env.txt"):
        assert (tmp_path / name).read_bytes() == "héllo wörld".encode(), name
    shown = c_locale_alfredc("show", "last", "--format", "json", cwd=tmp_path)
    assert shown.returncode == 0 and json.loads(shown.stdout)["state"] == "succeeded"


def test_a_param_that_is_not_utf8_is_refused_with_a_message_under_the_c_locale(tmp_path: Path) -> None:
    (tmp_path / "u.alfred").write_text(UNICODE_FLOW % {"python": sys.executable}, encoding="utf-8")
    refused = c_locale_alfredc("run", "u.alfred", "-p", b"v=h\xe9llo", cwd=tmp_path)
    assert refused.returncode == 2
    assert b"the value of `v` is not UTF-8 text" in refused.stderr and b"Traceback" not in refused.stderr
    assert not (tmp_path / "shell.txt").exists()


def test_non_ascii_diagnostics_and_plans_print_under_the_c_locale(tmp_path: Path) -> None:
    (tmp_path / "u.alfred").write_text(UNICODE_FLOW % {"python": sys.executable}, encoding="utf-8")
    plan = c_locale_alfredc("plan", "u.alfred", "-p", "v=héllo", "--format", "json", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr.decode("utf-8", "replace")
    assert json.loads(plan.stdout)["params"] == {"v": "héllo"}
    docs = c_locale_alfredc("docs", "u.alfred", "-o", "site", cwd=tmp_path)
    assert docs.returncode == 0, docs.stderr.decode("utf-8", "replace")
    assert "déploiement" in (tmp_path / "site" / "w.md").read_text(encoding="utf-8")
    (tmp_path / "bad.alfred").write_text("workflow w {\n  stage s {\n    agent = bâtisseur\n  }\n}\n",
                                         encoding="utf-8")
    for command in (("check", "bad.alfred"), ("plan", "bad.alfred")):
        result = c_locale_alfredc(*command, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        output = (result.stdout + result.stderr).decode("utf-8")
        assert "bad.alfred:3:14: error[A101]: unexpected character `â`" in output
        assert "agent = bâtisseur" in output and "internal error" not in output
