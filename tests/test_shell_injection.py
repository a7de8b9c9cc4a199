"""Values interpolated into a shell line are data in every quoting context, under dash and bash.

Each ``${...}`` reaches the shell only through an ``ALFRED_VALUE_n`` environment variable
(the GitHub Actions hardening rule): the corpus below runs many contexts x nasty values
through real ``/bin/sh`` (dash here) and ``bash`` processes and checks that no value ever
ran a command and that each arrived byte for byte.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _runtime_plans import agent, plan, run_plan, stage

from alfred_dsl.runtime._dryrun import dry_run_text
from alfred_dsl.runtime._resolve import ExprError, render_shell

SHELLS = [s for s in ("/bin/sh", shutil.which("bash") or "") if s and os.path.exists(s)]

NASTY = [
    "$(touch PWNED1)",
    "`touch PWNED2`",
    "; touch PWNED3",
    "&& touch PWNED4",
    "| touch PWNED5",
    "\ntouch PWNED6\n",
    "'; touch PWNED7; '",
    '"; touch PWNED8; "',
    "\\\"; touch PWNED9 #",
    "$(touch PWNED10) #",
    "a\nEOF\ntouch PWNED11\nEOF\n",
    "\\",
    "\\\\",
    "'",
    '"',
    "$HOME",
    "${IFS}",
    "$((1+1))",
    "*",
    "[a-z]*",
    "-n",
    "--help",
    "",
    " ",
    "  two  spaces  ",
    "\t",
    "}",
    ")",
    "a[$(touch PWNED12)]",
    "é ✓ 日本",
    "x" * 5000 + "$(touch PWNED13)",
    "'\"`$\\\n",
    "\n\n",
]


def _same(value: str) -> str:
    return value


#: (name, template, expected output for a value). ``$${`` is a literal `${` for the shell.
CONTEXTS: list[tuple[str, str, Callable[[str], str]]] = [
    ("unquoted", "printf %s ${params.v} > out", _same),
    ("double", 'printf %s "a${params.v}b" > out', lambda v: f"a{v}b"),
    ("single", "printf %s 'a${params.v}b' > out", lambda v: f"a{v}b"),
    ("assignment", 'X=${params.v}; printf %s "$X" > out', _same),
    ("heredoc", "cat > out <<EOF\n${params.v}\nEOF", lambda v: v + "\n"),
    ("heredoc-quoted", "cat > out <<'EOF'\n$HOME `x` \\ ${params.v}\nEOF",
     lambda v: f"$HOME `x` \\ {v}\n"),
    ("heredoc-tabs", "cat > out <<-EOF\n\t${params.v}\n\tEOF", lambda v: v + "\n"),
    ("heredoc-in-subst", 'x="$(cat <<EOF\n${params.v}\nEOF\nprintf .)"; printf %s "$x" > out',
     lambda v: v + "\n."),
    ("comment", "printf %s ok > out # note: ${params.v}", lambda v: "ok"),
    ("comment-two-lines", "printf %s ok > out # ${params.v}\n# ${params.v}", lambda v: "ok"),
    ("after-backslash", "printf %s \\${params.v} > out", _same),
    ("after-backslash-in-double", 'printf %s "\\${params.v}" > out',
     lambda v: v if v[:1] in ("$", "`", '"', "\\", "\n") and v else "\\" + v),
    ("even-backslashes", "printf %s \\\\${params.v} > out", lambda v: "\\" + v),
    ("subst", "printf %s \"$(printf %s ${params.v}; printf .)\" > out", lambda v: v + "."),
    ("subst-in-double", 'printf %s "$(printf %s "${params.v}"; printf .)" > out', lambda v: v + "."),
    ("backquotes", 'printf %s "`printf %s ${params.v}; printf .`" > out', lambda v: v + "."),
    ("nested-quotes", "printf %s \"x$(printf %s \"'${params.v}'\")y\" > out", lambda v: f"x'{v}'y"),
    ("subshell", "(printf %s ${params.v}) > out", _same),
    ("default", 'printf %s "$${unset_var:-${params.v}}" > out', _same),
    ("default-unquoted", "printf %s $${unset_var:-${params.v}} > out", _same),
    ("pattern", 'x="<${params.v}>"; printf %s "$${x#"<${params.v}"}" > out', lambda v: ">"),
    ("case", 'case "${params.v}" in "${params.v}") printf %s same > out;; *) printf %s no > out;; esac',
     lambda v: "same"),
    ("test", '[ "${params.v}" = ${params.v} ] && printf %s eq > out', lambda v: "eq"),
    ("two-values", "printf %s ${params.v}${params.v} > out", lambda v: v + v),
]


def _run_case(shell: str, directory: Path, template: str, value: str) -> tuple[int, str, bytes | None]:
    line = render_shell(template, {"params": {"v": value}})
    assert "PWNED" not in line.text, "a value reached the text of the line"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/home/nobody", **line.values}
    done = subprocess.run([shell, "-c", line.text], cwd=directory, env=env, capture_output=True, timeout=20)
    out = directory / "out"
    return done.returncode, done.stderr.decode(errors="replace"), out.read_bytes() if out.exists() else None


@pytest.mark.parametrize("shell", SHELLS)
def test_the_corpus_of_contexts_and_nasty_values_never_runs_a_value(tmp_path: Path, shell: str) -> None:
    cases = []
    for name, template, expected in CONTEXTS:
        for index, value in enumerate(NASTY):
            directory = tmp_path / f"{name}-{index}"
            directory.mkdir()
            cases.append((name, template, expected, value, directory))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: _run_case(shell, c[4], c[1], c[3]), cases))
    failures = []
    for (name, _, expected, value, directory), (status, stderr, out) in zip(cases, results, strict=True):
        if list(directory.glob("PWNED*")):
            failures.append(f"{name} {value[:40]!r}: the value ran a command")
        elif status != 0 or out is None:
            failures.append(f"{name} {value[:40]!r}: exit {status}: {stderr[:200]}")
        elif out.decode("utf-8", "surrogateescape") != expected(value):
            failures.append(f"{name} {value[:40]!r}: got {out[:80]!r}, want {expected(value)[:80]!r}")
    assert not list(tmp_path.glob("*/PWNED*"))
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    "template", ["printf %s $((${params.v} + 1)) > out", "(( ${params.v} > 0 )) && printf %s yes > out"]
)
def test_arithmetic_takes_integers_only_because_bash_evaluates_a_value_there(
    tmp_path: Path, shell: str, template: str
) -> None:
    if template.startswith("((") and shell == "/bin/sh" and os.path.realpath(shell).endswith("dash"):
        pytest.skip("((...)) is bash only")
    status, _, out = _run_case(shell, tmp_path, template, "41")
    assert status == 0 and out in (b"42", b"yes")
    for evil in ("a[$(touch PWNED)]", "1+x[$(touch PWNED)]", "1.5"):
        with pytest.raises(ExprError, match="must be an integer"):
            render_shell(template, {"params": {"v": evil}})


def test_a_value_cannot_be_a_heredoc_delimiter() -> None:
    with pytest.raises(ExprError, match="delimiter of a here-document"):
        render_shell("cat <<${params.v}\nx\n", {"params": {"v": "EOF"}})


# -- the reported cases, through real runs --------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "value", "expected"),
    [
        ("cat <<EOF > got.txt\n${params.v}\nEOF", "$(id>PWNED)", "$(id>PWNED)\n"),
        ("echo hi # note: ${params.v}", "\ntouch PWNED", None),
        ("echo \\${params.v} > got.txt", "$(touch PWNED) #", "$(touch PWNED) #\n"),
    ],
    ids=["heredoc", "comment-newline", "after-backslash"],
)
def test_the_reported_injections_are_data(
    tmp_path: Path, line: str, value: str, expected: str | None
) -> None:
    result, _ = run_plan(plan([stage("s", tmp_path, run=line)], params={"v": value}), tmp_path / "state")
    assert result.ok, result.stages["s"].error
    assert not list(tmp_path.glob("PWNED*"))
    if expected is not None:
        assert (tmp_path / "got.txt").read_text() == expected


def test_dry_run_shows_the_heredoc_that_really_runs_and_its_value(tmp_path: Path) -> None:
    the_plan = plan([stage("s", tmp_path, run="cat <<EOF\n${params.v}\nEOF")], params={"v": "$(id>x)"})
    text = dry_run_text(the_plan, env={})
    assert "    command  cat <<EOF\n${ALFRED_VALUE_1}\nEOF\n" in text
    assert "    values   ALFRED_VALUE_1='$(id>x)'\n" in text


def test_a_secret_in_a_shell_line_is_never_in_its_text(tmp_path: Path) -> None:
    secret = "s3cret-value-123"
    use = stage("use", tmp_path, run='printf %s "${secrets.API_TOKEN}" > got.txt; ps -o args= -p $$ > ps.txt')
    result, _ = run_plan(plan([use], secrets=["API_TOKEN"]), tmp_path / "state",
                         env={"API_TOKEN": secret, "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert result.ok, result.stages["use"].error
    assert (tmp_path / "got.txt").read_text() == secret
    # Other users see a process's command line; the value is not in it.
    if (tmp_path / "ps.txt").exists() and (tmp_path / "ps.txt").read_text().strip():
        assert secret not in (tmp_path / "ps.txt").read_text()
        assert "ALFRED_VALUE_1" in (tmp_path / "ps.txt").read_text()


def test_a_nul_byte_in_a_stage_output_fails_the_next_stage_naming_the_output(tmp_path: Path) -> None:
    make = stage("make", tmp_path, kind="python", agents=["py"], call="nul_out:make")
    (tmp_path / "nul_out.py").write_text("def make(inputs):\n    return {'x': 'a\\x00b'}\n")

    users = [
        stage("shell", tmp_path, run="echo ${stages.make.outputs.x}", after=["make"],
              on_failure="continue"),
        stage("argv", tmp_path, run=["echo", "${stages.make.outputs.x}"], after=["make"],
              on_failure="continue"),
        stage("env", tmp_path, run=["true"], env={"X": "${stages.make.outputs.x}"}, after=["make"],
              on_failure="continue"),
    ]
    result, _ = run_plan(plan([make, *users], [agent(), agent("py", kind="python")]), tmp_path / "state")
    for name in ("shell", "argv", "env"):
        error = result.stages[name].error or ""
        assert result.stages[name].state == "failed"
        assert "`${stages.make.outputs.x}` contains a NUL byte" in error, error
        assert "internal" not in error


def test_a_hook_gets_its_values_through_the_environment_too(tmp_path: Path) -> None:
    from test_hooks import _project, _run, _with_hooks

    from alfred_dsl.compiler._plan import Hook

    source, work = _project(tmp_path)
    base = plan([stage("build", work, run=["true"])], params={"v": "\ntouch PWNED"})
    hook = Hook(event="success", run="echo hi # ${params.v}\nprintf %s \"${params.v}\" > hook.txt")
    result, runner, _ = _run(_with_hooks(base, source, hook), tmp_path / "state")
    assert result.state == "succeeded" and runner.outcomes[0].ok
    assert not list(source.parent.glob("PWNED*"))
    assert (source.parent / "hook.txt").read_text() == "\ntouch PWNED"


def test_alfredc_dry_run_and_run_agree_on_a_heredoc(tmp_path: Path) -> None:
    (tmp_path / "p.alfred").write_text(
        'agent sh {\n  kind = command\n}\n'
        'workflow w {\n  param v: string = "x"\n'
        '  stage a {\n    agent = sh\n    run = "cat <<EOF > got.txt\\n${params.v}\\nEOF"\n  }\n}\n'
    )

    def alfredc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "alfred_dsl", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)

    dry = alfredc("run", "p.alfred", "--dry-run", "-p", "v=$(id>/tmp/x)")
    assert dry.returncode == 0, dry.stderr
    assert "${ALFRED_VALUE_1}" in dry.stdout and "ALFRED_VALUE_1='$(id>/tmp/x)'" in dry.stdout
    done = alfredc("run", "p.alfred", "-p", "v=$(touch PWNED)")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "got.txt").read_text() == "$(touch PWNED)\n"
    assert not (tmp_path / "PWNED").exists()

