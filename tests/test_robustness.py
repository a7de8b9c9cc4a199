"""No input makes ``alfredc check`` crash, hang or blow up.

For every input: no Python traceback, never exit status 3 (internal error), always a
diagnostic when the status is not 0, and the documented status (1 errors, 2 unreadable
input). Big inputs run as real subprocesses with a timeout and a memory limit.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import EXAMPLES, CliResult, run_alfredc
from hypothesis import HealthCheck, given, settings, strategies as st

Run = Callable[..., CliResult]
MEMORY_LIMIT = 2 * 1024**3  # bytes of address space for a subprocess
EXAMPLE_TEXTS = {
    p.name: p.read_text(encoding="utf-8")
    for p in sorted(EXAMPLES.iterdir())
    if p.is_file() and p.suffix in (".alfred", ".yaml", ".json")
}
HEADER = 'agent worker {\n  kind = command\n  run  = ["make"]\n}\n\n'


def assert_sane(
    result: CliResult | subprocess.CompletedProcess[str], *, expect: set[int] | None = None
) -> dict:
    """Common promises; returns the JSON report (the check ran with --format json)."""
    if isinstance(result, CliResult):
        status, out, err = result.status, result.stdout, result.stderr
    else:
        status, out, err = result.returncode, result.stdout, result.stderr
    assert "Traceback" not in out + err, err[-2000:]
    assert status != 3, err[-2000:]
    assert status in (expect or {0, 1}), (status, out[-2000:], err[-2000:])
    report: dict = json.loads(out)
    assert report["summary"]["errors"] == sum(1 for d in report["diagnostics"] if d["severity"] == "error")
    if status != 0:
        assert report["diagnostics"], "a failing check must say why"
    if status == 1:
        assert report["summary"]["errors"] > 0
    return report


def check_in_process(path: Path) -> dict:
    return assert_sane(run_alfredc("check", "--format", "json", str(path)))


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def check_subprocess(path: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alfred_dsl", "check", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit_memory,
        cwd=path.parent,
        check=False,
    )


def codes(report: dict) -> set[str]:
    return {d["code"] for d in report["diagnostics"]}


# -- fixed cases ------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    report = assert_sane(
        run_alfredc("check", "--format", "json", str(tmp_path / "missing.alfred")), expect={2}
    )
    assert codes(report) == {"A001"}


def test_directory(tmp_path: Path) -> None:
    report = assert_sane(run_alfredc("check", "--format", "json", str(tmp_path)), expect={2})
    assert codes(report) == {"A001"}


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.alfred"
    path.write_bytes(HEADER.encode() + 'workflow w { description = "caf\xe9" }\n'.encode("latin-1"))
    report = assert_sane(run_alfredc("check", "--format", "json", str(path)), expect={1})
    (diag,) = report["diagnostics"]
    assert diag["code"] == "A002" and diag["line"] == 6


def test_empty_and_whitespace_files(tmp_path: Path) -> None:
    for name, text in [("empty.alfred", ""), ("blank.alfred", "\n\n  \t\n"), ("comment.alfred", "# hi\n")]:
        path = tmp_path / name
        path.write_text(text)
        check_in_process(path)
    for name in ("empty.yaml", "empty.json"):
        path = tmp_path / name
        path.write_text("")
        check_in_process(path)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "random.alfred"
    path.write_bytes(bytes(range(256)) * 40)
    assert check_in_process(path)["diagnostics"]


def test_ten_megabyte_line(tmp_path: Path) -> None:
    path = tmp_path / "long.alfred"
    # A 10 MB word where a block should start: one syntax error, whose excerpt is cut.
    path.write_text(HEADER + "x" * 10_000_000 + "\n")
    result = check_subprocess(path, timeout=120)
    report = assert_sane(result, expect={1})
    assert len(result.stdout) < 200_000, "the excerpt of a huge line must be cut"
    assert report["diagnostics"]


def test_ten_megabyte_string(tmp_path: Path) -> None:
    path = tmp_path / "string.alfred"
    path.write_text(
        HEADER + 'workflow w {\n  description = "' + "y" * 10_000_000 + '"\n  stage s { agent = worker }\n}\n'
    )
    assert_sane(check_subprocess(path, timeout=120))


@pytest.mark.parametrize(
    "name,text",
    [
        (
            "deep.alfred",
            HEADER
            + "workflow w {\n  stage s {\n    agent = worker\n    inputs = { x = "
            + "[" * 10_000
            + "]" * 10_000
            + " }\n  }\n}\n",
        ),
        (
            "deep_map.alfred",
            HEADER
            + "workflow w {\n  stage s {\n    agent = worker\n    inputs = "
            + "{ a = " * 10_000
            + "1"
            + " }" * 10_000
            + "\n  }\n}\n",
        ),
        (
            "deep_expr.alfred",
            HEADER
            + "workflow w {\n  stage s {\n    agent = worker\n    when = "
            + "(" * 10_000
            + "true"
            + ")" * 10_000
            + "\n  }\n}\n",
        ),
        (
            "deep_not.alfred",
            HEADER
            + "workflow w {\n  stage s {\n    agent = worker\n    when = "
            + "not " * 10_000
            + "true\n  }\n}\n",
        ),
        ("deep.yaml", "agents: " + "[" * 10_000 + "]" * 10_000 + "\n"),
        ("deep.json", '{"agents": ' + "[" * 10_000 + "]" * 10_000 + "}\n"),
        ("unclosed.alfred", HEADER + "workflow w {\n" + "  stage s {\n" * 5_000),
    ],
    ids=lambda v: v if len(v) < 40 else "",
)
def test_deep_nesting(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    report = assert_sane(check_subprocess(path), expect={1})
    assert report["summary"]["errors"] >= 1


def test_cycle_of_five_thousand_stages(tmp_path: Path) -> None:
    n = 5_000
    stages = [f"  stage s{i} after s{(i - 1) % n} {{ agent = worker }}" for i in range(n)]
    path = tmp_path / "cycle.alfred"
    path.write_text(HEADER + "workflow w {\n" + "\n".join(stages) + "\n}\n")
    result = check_subprocess(path, timeout=120)
    report = assert_sane(result, expect={1})
    assert "A401" in codes(report)


def test_chain_of_five_thousand_stages_is_fine(tmp_path: Path) -> None:
    n = 5_000
    stages = ["  stage s0 { agent = worker }"]
    stages += [f"  stage s{i} after s{i - 1} {{ agent = worker }}" for i in range(1, n)]
    path = tmp_path / "chain.alfred"
    path.write_text(HEADER + "workflow w {\n" + "\n".join(stages) + "\n}\n")
    assert_sane(check_subprocess(path, timeout=120), expect={0})


def test_yaml_alias_bomb(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 15)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nagents: {w: {kind: command, run: *a14}}\n")
    assert_sane(check_subprocess(path, timeout=60))


def test_import_of_itself_and_of_a_directory(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "sub").mkdir()
    path = tmp_path / "self.alfred"
    path.write_text('import "self.alfred"\nimport "sub"\nimport "/etc/passwd"\n' + HEADER)
    report = assert_sane(run_alfredc("check", "--format", "json", str(path)), expect={1})
    assert {"A212", "A211"} <= codes(report)


def test_many_files_at_once(tmp_path: Path) -> None:
    paths = []
    for name, text in EXAMPLE_TEXTS.items():
        path = tmp_path / name
        path.write_text(text)
        paths.append(str(path))
    paths.append(str(tmp_path / "missing.alfred"))
    assert_sane(run_alfredc("check", "--format", "json", *paths), expect={2})


# -- generated cases --------------------------------------------------------------------

fuzz_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@fuzz_settings
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".alfred", ".yaml", ".json"]))
def test_random_bytes(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    check_in_process(path)


@fuzz_settings
@given(name=st.sampled_from(sorted(EXAMPLE_TEXTS)), cut=st.floats(0, 1))
def test_truncated_examples(tmp_path: Path, name: str, cut: float) -> None:
    text = EXAMPLE_TEXTS[name]
    path = tmp_path / name
    path.write_text(text[: int(len(text) * cut)])
    check_in_process(path)


MUTATION_ALPHABET = st.sampled_from(
    [*list('{}[]()=,;"\\$#\n\t .:-_@aZ09<>!'), "${", "}}", "after", "stage", "é", "日"]
)


@fuzz_settings
@given(
    name=st.sampled_from(sorted(EXAMPLE_TEXTS)),
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3), MUTATION_ALPHABET), min_size=1, max_size=4),
)
def test_mutated_examples(tmp_path: Path, name: str, edits: list[tuple[float, int, str]]) -> None:
    text = EXAMPLE_TEXTS[name]
    for where, delete, insert in edits:
        at = int(len(text) * where)
        text = text[:at] + insert + text[at + delete :]
    path = tmp_path / name
    path.write_text(text)
    check_in_process(path)


@fuzz_settings
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_random_text_after_a_valid_header(tmp_path: Path, text: str) -> None:
    path = tmp_path / "text.alfred"
    path.write_text(HEADER + text, encoding="utf-8")
    check_in_process(path)


def test_real_subprocess_has_no_traceback_on_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.alfred"
    path.write_bytes(os.urandom(4096))
    assert_sane(check_subprocess(path))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("w.alfred", "workflow w {\n  param n: int = " + "7" * 5000 + "\n}\n"),
        ("w.alfred", "workflow w {\n  stage a {\n    timeout = " + "7" * 5000 + "s\n  }\n}\n"),
        ("w.json", '{"version": 1, "n": ' + "7" * 5000 + "}"),
        ("w.yaml", "version: 1\nn: " + "7" * 5000 + "\n"),
    ],
    ids=["alfred-int", "alfred-duration", "json", "yaml"],
)
def test_an_integer_longer_than_python_converts_is_a_diagnostic(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    done = subprocess.run([sys.executable, "-m", "alfred_dsl", "check", name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    output = done.stdout + done.stderr
    assert "A900" not in output and "error[A106]" in output and "too long" in output
