"""`alfredc export`: the generated modules, the loss report (A6xx) and --strict.

The runs on the real engines are in test_export_engines.py (marked `engines`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from alfred_dsl.export import TARGETS, ExportError, export_plan
from alfred_dsl.export._compiler import compile_path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = [
    *sorted(p for p in (REPO / "examples").iterdir() if p.suffix in (".alfred", ".yaml", ".json")),
    REPO / "examples" / "demo" / "pipeline.alfred",
]

#: The values of the bundled examples' required params.
EXAMPLE_PARAMS = {
    "bug_fix": {"issue": "42"},
    "code_review": {"pull_request": "7"},
    "feature_development": {"feature_name": "login"},
}

EVERY_FEATURE = """
agent a { kind = command; concurrency = 2; capabilities = ["x"]; max_log = 1KB }
agent b { kind = command; capabilities = ["x"] }
agent p { kind = python; call = "mod:fn" }
agent h { kind = http; url = "http://localhost:1/x" }

workflow all {
  param n: int = 1
  schedule = "0 9 * * 1-5"
  defaults { retries = 3; backoff = 1s; max_backoff = 3s; timeout = 1m; priority = high; on_failure = stop }
  on failure { run = "echo failed" }
  stage one { agent = a; run = "echo ${params.n} ${secrets.TOKEN}" }
  stage two after one { requires = ["x"]; run = ["echo", "${stages.one.outputs.v}"]; when = params.n > 0 }
  stage three { agent = p; on_failure = continue }
  stage four { agent = h; inputs = { k = params.n } }
}
"""


def alfredc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_exports_to_valid_python(example: Path, target: str) -> None:
    plan, diags = compile_path(str(example), None, EXAMPLE_PARAMS.get(example.stem, {}))
    assert plan is not None, diags
    approvals = [stage.name for stage in plan.stages if stage.kind == "approval"]
    if approvals:  # feature_development: no engine can wait for `alfredc approve`
        with pytest.raises(ExportError, match=f"stage `{approvals[0]}` waits for a person's approval"):
            export_plan(plan, target)
        return
    exported = export_plan(plan, target)
    tree = ast.parse(exported.text)
    assert ast.get_docstring(tree) and "SHA-256:" in (ast.get_docstring(tree) or "")
    assert 'if __name__ == "__main__":' in exported.text
    for stage in plan.stages:
        assert repr(stage.name) in exported.text


@pytest.mark.parametrize("target", ["prefect", "dagster"])
def test_the_flow_body_names_a_stage_after_its_dependencies(target: str) -> None:
    """release.json declares `publish` before the template stages it runs after: the
    flow/job body must still make `auth.test`'s result before `publish` uses it (a Python
    name used before assignment fails when the engine loads the module)."""
    plan, diags = compile_path(str(REPO / "examples" / "release.json"), None, {})
    assert plan is not None, diags
    assert [s.name for s in plan.stages].index("publish") < [s.name for s in plan.stages].index("auth.test")
    text = export_plan(plan, target).text
    body = next(node for node in ast.parse(text).body
                if isinstance(node, ast.FunctionDef) and node.name == "release_train")
    assigned: set[str] = set()
    for statement in body.body:
        if isinstance(statement, ast.Assign):
            names = (n.id for n in ast.walk(statement.value) if isinstance(n, ast.Name))
            used = {name for name in names if name.endswith(("_run", "_out"))}
            assert used <= assigned, ast.unparse(statement)
            assigned.update(t.id for t in statement.targets if isinstance(t, ast.Name))
    assert {"publish_run", "publish_out"} & assigned


@pytest.mark.parametrize("target", TARGETS)
def test_every_feature_maps_or_warns(tmp_path: Path, target: str) -> None:
    source = tmp_path / "all.alfred"
    source.write_text(EVERY_FEATURE)
    plan, diags = compile_path(str(source), None, {})
    assert plan is not None, diags
    exported = export_plan(plan, target)
    text = exported.text
    codes = {d.code for d in exported.diagnostics}
    assert all(d.primary is not None and d.primary.span.file == str(source) for d in exported.diagnostics)
    assert "A606" in codes  # the hook
    assert "A604" in codes  # `requires` matching two agents
    assert "A607" in codes  # max_log
    assert "A601" in codes  # backoff, cap, jitter
    assert "0 9 * * 1-5" in text  # schedule
    assert "'TOKEN'" in text  # secrets come from the environment
    assert "'n': 1" in text or "n=1" in text  # params
    if target == "airflow":
        for feature in ("retries=3", "retry_exponential_backoff=2.0", "max_retry_delay=",
                        "execution_timeout=",
                        "priority_weight=2", "pool='alfred-a'", "one_task >> two_task", "fail_fast=False"):
            assert feature in text, feature
        assert "A605" in codes  # stop and continue mixed
    if target == "prefect":
        for feature in ("retries=3", "retry_delay_seconds=[1.0, 2.0, 3.0]", "retry_jitter_factor=0.1",
                        "timeout_seconds=60", "tags=['alfred-a']", "wait_for=[one_run]",
                        "cron='0 9 * * 1-5'"):
            assert feature in text, feature
        assert {"A603", "A605"} <= codes
    if target == "dagster":
        for feature in ("RetryPolicy(max_retries=3, delay=1, backoff=Backoff.EXPONENTIAL)",
                        '"dagster/priority": "2"', "pool='alfred-a'", "two(one=one_out)",
                        "ScheduleDefinition(", "Out(is_required=False)"):
            assert feature in text, feature
        assert {"A602", "A605"} <= codes


def test_strict_turns_losses_into_errors(tmp_path: Path) -> None:
    source = tmp_path / "all.alfred"
    source.write_text(EVERY_FEATURE)
    out = tmp_path / "dag.py"
    loose = alfredc("export", "all.alfred", "--to", "airflow", "-o", str(out), cwd=tmp_path)
    assert loose.returncode == 0, loose.stderr
    assert "warning[A606]" in loose.stderr and "all.alfred:" in loose.stderr
    assert out.read_text().startswith('"""alfred workflow `all`, exported for Airflow 3.')
    out.unlink()
    strict = alfredc("export", "all.alfred", "--to", "airflow", "-o", str(out), "--strict", cwd=tmp_path)
    assert strict.returncode == 1
    assert "error[A606]" in strict.stderr
    assert not out.exists()


def test_a_file_with_errors_exports_nothing(tmp_path: Path) -> None:
    (tmp_path / "bad.alfred").write_text("workflow w { stage s { agent = nobody } }\n")
    result = alfredc("export", "bad.alfred", "--to", "prefect", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "A201" in result.stderr


FLOWS_PY = '''\
from alfred_dsl import Agent, Workflow

sh = Agent("sh", kind="command", run=["true"], capabilities=["build"])
feature = Workflow("feature")
feature.add_stage("spec", sh, estimate="1m")
feature.add_stage("build", sh, depends_on=["spec"], estimate="2m")
'''


@pytest.mark.parametrize("target", TARGETS)
def test_a_workflow_built_in_python_exports_by_module_path(tmp_path: Path, target: str) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "flows.py").write_text(FLOWS_PY, encoding="utf-8")
    out = tmp_path / "exported.py"
    done = subprocess.run(
        [sys.executable, "-m", "alfred_dsl", "export", "flows.py:feature", "--to", target, "-o", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    ast.parse(text)
    assert "Source: flows.py" in text and "'spec'" in text and "'build'" in text


MCP_AND_LOGS = """
agent a { kind = command }
agent capped { kind = command; max_log = 1KB }
agent tools { kind = mcp; server = ["python", "server.py"]; headers = { X = "y" } }

workflow w {
  stage plain { agent = a; run = "echo hi" }
  stage small { agent = capped; run = "echo hi" }
  stage call { agent = tools; tool = "add"; arguments = { a = 1, b = "${params.n}" } }
  param n: int = 2
}
"""


@pytest.mark.parametrize("source", [EVERY_FEATURE, MCP_AND_LOGS], ids=["every-feature", "mcp-and-logs"])
def test_an_exported_task_runs_the_stage_alfredc_run_would(tmp_path: Path, source: str) -> None:
    # The data an exported module holds, read back by its run-time shim, is the plan's stage:
    # the same command, tool and arguments as `alfredc run` has; the engine keeps the whole
    # log (A607 says so at export).
    from alfred_dsl.export import runtime as shim
    from alfred_dsl.export._common import agent_of, stage_data, workflow_data

    (tmp_path / "wf.alfred").write_text(source)
    plan, diagnostics = compile_path(str(tmp_path / "wf.alfred"), None, {})
    assert plan is not None, diagnostics
    workflow = workflow_data(plan)
    for stage in plan.stages:
        exported, agent = shim._stage_of(workflow, stage_data(plan, stage))
        for field in ("run", "call", "inputs", "env", "cwd", "after", "when", "mcp"):
            assert getattr(exported, field) == getattr(stage, field), (stage.name, field)
        assert exported.max_log is None
        planned_agent = agent_of(plan, stage)
        for field in ("kind", "run", "call", "url", "env"):
            assert getattr(agent, field) == getattr(planned_agent, field), (stage.name, field)
        for option in ("headers", "server"):
            assert agent.options.get(option) == planned_agent.options.get(option), (stage.name, option)
