"""The command table of `alfredc` (alfred_dsl/cli/__init__.py) and its one error format."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from alfred_dsl import cli


def test_a_command_whose_module_is_missing_is_an_internal_error_not_an_absent_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(cli.COMMANDS, "ghost", "alfred_dsl.cli._no_such_module:ghost")
    monkeypatch.delenv("ALFRED_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["ghost"])
    err = capsys.readouterr().err
    assert exit_.value.code == 3, err
    assert "alfredc: internal error [A900]: ModuleNotFoundError" in err
    assert "No such command" not in err


def test_errors_of_commands_all_start_alike(tmp_path: Path) -> None:
    import subprocess

    # `report` of an unknown run (a click error) and `fmt` of a YAML file (a command's own
    # error) used to print `Error: ...` and `alfredc fmt: ...`.
    (tmp_path / "flow.yaml").write_text("workflows: {}\n")
    for args in (["report", "nope"], ["fmt", "flow.yaml"]):
        done = subprocess.run(
            [sys.executable, "-m", "alfred_dsl", *args], cwd=tmp_path, capture_output=True, text=True,
            timeout=60, check=False,
        )
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("alfredc: error: "), (args, done.stderr)
