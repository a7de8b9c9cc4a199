"""Stages find the tools of alfred's own environment (docs/runtime.md, "The command contract")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import ALFREDC

FLOW = """
agent sh {
  kind = command
}
workflow tools {
  stage where {
    agent = sh
    run   = ["sh", "where.sh"]
  }
}
"""

WHERE = """\
echo "python=$(command -v python)" >> "$ALFRED_OUTPUTS"
echo "alfredc=$(command -v alfredc)" >> "$ALFRED_OUTPUTS"
echo "interpreter=$ALFRED_PYTHON" >> "$ALFRED_OUTPUTS"
"""


def _outputs(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "flow.alfred").write_text(FLOW, encoding="utf-8")
    (tmp_path / "where.sh").write_text(WHERE, encoding="utf-8")
    # The environment of a new user who did not activate the venv: only the system folders.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"}
    done = subprocess.run([*ALFREDC, "run", "flow.alfred"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    shown = subprocess.run([*ALFREDC, "show", "last", "--format", "json"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    (stage,) = json.loads(shown.stdout)["stages"]
    return {k: str(v) for k, v in stage["outputs"].items()}


def test_alfred_python_names_the_interpreter_alfred_runs_under(tmp_path: Path) -> None:
    assert _outputs(tmp_path)["interpreter"] == sys.executable


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the tests do not run in a virtual environment")
def test_an_unactivated_venv_puts_its_bin_first_for_the_stages(tmp_path: Path) -> None:
    scripts = sysconfig.get_path("scripts")
    outputs = _outputs(tmp_path)
    assert outputs["python"] == os.path.join(scripts, "python")
    assert outputs["alfredc"] == os.path.join(scripts, "alfredc")
