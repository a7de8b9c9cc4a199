"""The plan carries its templates parsed: the runtime evaluates them without the parser."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

from alfred_dsl._expr import Interpolated, Template
from alfred_dsl.compiler._pipeline import compile_path
from alfred_dsl.compiler._plan import Plan, thaw
from alfred_dsl.render import plan_to_json

WORKFLOW = """\
agent sh { kind = command }
workflow main {
  param who: string = "world"
  param loud: bool = true
  stage greet {
    agent = sh
    run = "echo hello ${params.who} > out.txt"
    env = { GREETING = "hi ${params.who}" }
    when = "${params.loud}"
  }
}
"""

# Runs a pickled plan with the parser made impossible to import.
RUN_WITHOUT_PARSER = """\
import pickle, sys
sys.modules["alfred_dsl.compiler.syntax"] = None  # importing it now raises ImportError
plan = pickle.load(open(sys.argv[1], "rb"))
import trio
from alfred_dsl.runtime import EventBus, RunOptions, StateStore, execute
store = StateStore(sys.argv[2])
result = trio.run(lambda: execute(plan, store=store, options=RunOptions(jitter=0.0), bus=EventBus()))
store.close()
print(result.state, sys.modules["alfred_dsl.compiler.syntax"] is not None)
"""


def _compiled(tmp_path: Path) -> Plan:
    source = tmp_path / "wf.alfred"
    source.write_text(WORKFLOW, encoding="utf-8")
    plan, diagnostics = compile_path(str(source))
    assert plan is not None, diagnostics
    return plan


def test_interpolating_values_of_a_compiled_plan_hold_their_parsed_template(tmp_path: Path) -> None:
    plan = _compiled(tmp_path)
    stage = plan.stages[0]
    for value in (stage.run, stage.env["GREETING"]):
        assert isinstance(value, Interpolated) and isinstance(value.template, Template), value
    assert stage.run == "echo hello ${params.who} > out.txt"  # still the text, for every output
    assert json.dumps(thaw(stage.env)) == '{"GREETING": "hi ${params.who}"}'
    assert plan_to_json(plan)["params"] == {"who": "world", "loud": True}


def test_the_runtime_runs_a_compiled_plan_without_the_parser(tmp_path: Path) -> None:
    plan = _compiled(tmp_path)
    pickled = tmp_path / "plan.pickle"
    pickled.write_bytes(pickle.dumps(plan))
    done = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_PARSER, str(pickled), str(tmp_path / ".alfred")],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["succeeded", "False"]
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "hello world\n"
