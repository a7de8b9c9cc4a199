"""The check and compile pipeline on real files, and `alfredc check` as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from alfred_dsl._diagnostics import Diagnostic
from alfred_dsl.compiler._pipeline import check_paths, compile_path
from alfred_dsl.compiler._plan import thaw

DATA = Path(__file__).parent / "data" / "check"


def summary(path: Path | str) -> list[tuple[str, str, int, int, str]]:
    return [
        (
            d.code,
            Path(d.filename).name,
            d.primary.span.line if d.primary else 0,
            d.primary.span.column if d.primary else 0,
            d.message,
        )
        for d in check_paths([str(path)])
    ]


def test_check_reports_every_problem_of_a_file_sorted_with_graph_analysis() -> None:
    assert summary(DATA / "broken.alfred") == [
        ("A501", "broken.alfred", 6, 7, "agent `spare` is never used"),
        (
            "A310",
            "broken.alfred",
            18,
            23,
            "invalid cron schedule `0 9 * * 1-9`: `1-9` is not a valid day of week (0-7 or sun-sat)",
        ),
        ("A201", "broken.alfred", 20, 21, "unknown agent `implementor`"),
        ("A203", "broken.alfred", 22, 44, "unknown param `lvl` in workflow `ci`"),
        ("A401", "broken.alfred", 23, 17, "dependency cycle: b -> c -> b"),
        ("A303", "broken.alfred", 24, 12, "`when` must be a boolean, but `params.level` is an int"),
    ]


def test_a_required_param_without_value_is_not_an_error_in_check() -> None:
    assert check_paths([str(DATA / "feature.alfred")]) == []
    assert check_paths([str(DATA / "feature.yaml")]) == []


def test_check_of_several_files_and_a_missing_one(tmp_path: Path) -> None:
    found = check_paths(
        [str(DATA / "broken.alfred"), str(tmp_path / "nope.alfred"), str(DATA / "feature.alfred")]
    )
    files = [d.filename for d in found]
    assert files == sorted(files)  # sorted by file, then position
    assert "A001" in {d.code for d in found}
    assert len(found) == len({(d.code, d.filename, d.message) for d in found})


def test_compile_the_spec_example_from_dsl_and_yaml_to_the_same_plan() -> None:
    plans = []
    for name in ("feature.alfred", "feature.yaml"):
        plan, diagnostics = compile_path(str(DATA / name), params={"feature_name": "login"})
        assert diagnostics == [] and plan is not None
        plans.append(plan)
        assert plan.workflow == "feature_development"
        assert plan.critical_path == ("specification", "implementation", "testing", "deployment")
        assert plan.duration_s == 10200
        spec, impl, test, deploy = plan.stages
        assert (spec.priority, spec.retries, spec.backoff_s, spec.timeout_s) == (2, 2, 2, 1800)
        assert impl.kind == "python" and impl.call == "myteam.agents:implement"
        assert test.agents == ("tester",) and test.run == "pytest -q --cov-fail-under=${params.coverage}"
        assert deploy.when is False  # auto_deploy defaults to false: folded now
        assert dict(plan.params) == {"feature_name": "login", "coverage": 80, "auto_deploy": False}
        assert spec.cwd == str(DATA.resolve()) or spec.cwd == str(DATA)
    dsl, yaml = (thaw({s.name: (s.after, s.inputs, s.estimate_s, s.when) for s in p.stages}) for p in plans)
    assert dsl == yaml


def test_compile_reports_param_problems_and_returns_no_plan() -> None:
    plan, diagnostics = compile_path(str(DATA / "feature.alfred"))
    assert plan is None
    assert [(d.code, d.message) for d in diagnostics] == [
        ("A213", "missing required param `feature_name` of workflow `feature_development`")
    ]
    plan, diagnostics = compile_path(
        str(DATA / "feature.alfred"), "feature_development", {"feature_name": "x", "coverage": "high"}
    )
    assert plan is None
    assert [d.code for d in diagnostics] == ["A308"]
    plan, diagnostics = compile_path(str(DATA / "feature.alfred"), "feature_developmnt", {})
    assert plan is None
    assert [(d.code, d.help) for d in diagnostics] == [("A209", "did you mean `feature_development`?")]


def test_check_does_not_import_the_runtime_or_renderers() -> None:
    code = (
        "import sys\n"
        "from alfred_dsl.compiler._pipeline import check_paths\n"
        f"assert check_paths([{str(DATA / 'feature.alfred')!r}]) == []\n"
        "print(sorted(m for m in ('trio', 'rich', 'jinja2', 'jsonschema') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_alfredc_check_exit_status_and_spec_format() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alfred_dsl", "check", str(DATA / "broken.alfred")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "broken.alfred:20:21: error[A201]: unknown agent `implementor`" in result.stdout
    assert "did you mean `implementer`?" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_compile_dsl_templates_prefixes_binds_and_orders() -> None:
    plan, diagnostics = compile_path(str(DATA / "templates.alfred"))
    assert diagnostics == [] and plan is not None
    assert plan.workflow == "release"  # the first workflow that is not only a template
    stages = {s.name: s for s in plan.stages}
    assert list(stages) == [
        "prepare",
        "auth.spec",
        "auth.impl",
        "auth.docs.write",
        "billing.spec",
        "billing.impl",
        "billing.docs.write",
        "ship",
    ]
    assert stages["auth.spec"].after == ("prepare",)
    assert stages["billing.spec"].after == ("auth.docs.write",)
    assert stages["ship"].after == ("billing.docs.write", "auth.docs.write")  # `after`, then the reference
    assert stages["auth.spec"].inputs["feature"] == "${params.feature}"
    assert stages["billing.spec"].inputs["feature"] == "billing"
    assert stages["auth.docs.write"].run == "write 'docs of ${params.feature}'"
    assert stages["billing.docs.write"].run == "write 'docs of billing'"
    assert (stages["auth.impl"].when, stages["billing.impl"].when) == (False, True)
    assert stages["billing.docs.write"].group == ("billing", "docs")
    assert plan.layers[0] == ("prepare",)


SHARED = """\
agent worker {
  kind = command
  run  = ["true"]
}
"""

GOOD_AND_BAD = """
workflow good {
  stage build {
    agent = worker
  }
  use base() as lib
}

workflow base {
  stage prepare {
    agent = worker
  }
}

workflow bad {
  param n: int = "many"
  stage one {
    agent   = wroker
    retires = 3
  }
  stage one {
    agent = worker
  }
  stage two after nothing {
    agent  = worker
    inputs = { x = params.missing }
  }
}
"""


def codes_of(diagnostics: list[Diagnostic]) -> list[str]:
    return [d.code for d in diagnostics]


def test_errors_local_to_another_workflow_do_not_block_compiling_this_one(tmp_path: Path) -> None:
    path = tmp_path / "flows.alfred"
    path.write_text(SHARED + GOOD_AND_BAD)
    everything = check_paths([str(path)])
    assert {"A201", "A202", "A203", "A208", "A214", "A302"} <= set(codes_of(everything))
    plan, diagnostics = compile_path(str(path), "good")
    assert diagnostics == [] and plan is not None
    assert [s.name for s in plan.stages] == ["build", "lib.prepare"]
    plan, diagnostics = compile_path(str(path))  # the default workflow is the first: good
    assert plan is not None and plan.workflow == "good"
    # The broken workflow itself still fails, with all of its own problems.
    plan, diagnostics = compile_path(str(path), "bad")
    assert plan is None
    assert sorted(set(codes_of(diagnostics))) == ["A201", "A202", "A203", "A208", "A214", "A302", "A502"]


def test_the_same_holds_for_a_yaml_document_and_across_imports(tmp_path: Path) -> None:
    (tmp_path / "alfred.toml").write_text("")
    (tmp_path / "other.yaml").write_text(
        "workflows:\n  elsewhere:\n    stages: {x: {agent: nobody, timeout: forever}}\n"
    )
    path = tmp_path / "main.yaml"
    path.write_text(
        "imports: [other.yaml]\n"
        "agents: {worker: {kind: command, run: 'true'}}\n"
        "workflows:\n"
        "  good:\n    stages: {build: {agent: worker}}\n"
        "  bad:\n    stages: {test: {agent: worker, after: [biuld], when: maybe}}\n"
    )
    assert {"A201", "A202", "A303", "A304"} <= set(codes_of(check_paths([str(path)])))
    plan, diagnostics = compile_path(str(path), "good")
    assert diagnostics == [] and plan is not None


def test_shared_parts_and_used_templates_stay_fatal(tmp_path: Path) -> None:
    path = tmp_path / "flows.alfred"
    # A broken template that `good` uses: its errors are this workflow's errors.
    tail = "  }\n}\n\nworkflow bad"
    broken_base = GOOD_AND_BAD.replace("agent = worker\n" + tail, "agent = wrker\n" + tail)
    assert broken_base != GOOD_AND_BAD
    path.write_text(SHARED + broken_base)
    plan, diagnostics = compile_path(str(path), "good")
    assert plan is None and "A201" in codes_of(diagnostics)
    assert all(d.primary is None or d.primary.span.line < 20 for d in diagnostics)  # not bad's
    # A broken agent, a missing import and a syntax error anywhere are fatal.
    for broken, code in (
        (SHARED.replace("run  =", "runs ="), "A214"),
        ('import "missing.alfred"\n' + SHARED, "A206"),
        (SHARED + "\nworkflow other {\n  stage s {\n    agent = = worker\n  }\n}\n", "A102"),
    ):
        path.write_text(broken + GOOD_AND_BAD)
        plan, diagnostics = compile_path(str(path), "good")
        assert plan is None and code in codes_of(diagnostics), codes_of(diagnostics)


def test_template_cycle_blocks_the_workflows_that_use_it_only(tmp_path: Path) -> None:
    path = tmp_path / "flows.alfred"
    path.write_text(
        SHARED
        + "workflow a {\n  stage s { agent = worker }\n  use b() as to_b\n}\n"
        + "workflow b {\n  stage s { agent = worker }\n  use a() as to_a\n}\n"
        + "workflow uses_a {\n  use a() as inner\n}\n"
        + "workflow alone {\n  stage s { agent = worker }\n}\n"
    )
    plan, diagnostics = compile_path(str(path), "uses_a")
    assert plan is None and codes_of(diagnostics) == ["A215"]
    plan, diagnostics = compile_path(str(path), "alone")
    assert plan is not None and diagnostics == []


def test_descriptions_read_as_written_for_users(tmp_path: Path) -> None:
    """`$${` is a literal `${` everywhere, and params known at compile time are filled in."""
    path = tmp_path / "d.alfred"
    path.write_text(
        SHARED
        + 'workflow d {\n  description = "release $${VERSION} of ${params.v}"\n'
        + '  param v: string = "1.0"\n'
        + '  stage s {\n    agent = worker\n    description = "costs $5, ${stages.t.outputs.x}"\n  }\n'
        + "  stage t {\n    agent = worker\n  }\n}\n"
    )
    plan, diagnostics = compile_path(str(path))
    assert diagnostics == [] and plan is not None
    assert plan.description == "release ${VERSION} of 1.0"
    # Known only at run time: kept as written.
    assert plan.stages[0].description == "costs $5, ${stages.t.outputs.x}"


def test_params_of_the_plan_are_in_declaration_order_whatever_the_command_line_order() -> None:
    plan, diagnostics = compile_path(
        str(DATA / "feature.alfred"), params={"auto_deploy": "true", "feature_name": "login"}
    )
    assert diagnostics == [] and plan is not None
    assert list(plan.params) == ["feature_name", "coverage", "auto_deploy"]
    assert plan.params["auto_deploy"] is True


def test_a_cycle_inside_a_template_used_twice_is_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "c.alfred"
    path.write_text(
        SHARED
        + "workflow t {\n  stage a after b { agent = worker }\n  stage b after a { agent = worker }\n}\n"
        + "workflow m {\n  use t() as one\n  use t() as two\n}\n"
        + "workflow n {\n  use t() as three\n}\n"
    )
    found = [(d.code, d.message) for d in check_paths([str(path)])]
    assert found == [("A401", "dependency cycle: one.a -> one.b -> one.a")]


def test_a_plan_built_from_consumed_stages_equals_the_copied_one() -> None:
    from alfred_dsl.compiler import _bind, _graph
    from alfred_dsl.compiler._build import build_plan
    from alfred_dsl.compiler.load import load

    workspace, _ = load(str(DATA / "feature.alfred"))
    assert workspace is not None
    plans = []
    for consume in (False, True):
        resolved, _ = _bind.resolve(workspace, None, {"feature_name": "login"})
        assert resolved is not None
        analysis, _ = _graph.analyse(resolved)
        assert analysis is not None
        plans.append(build_plan(resolved, analysis, consume=consume))
    assert plans[0] == plans[1]
    assert [s.estimate_s for s in plans[1].stages] == [s.estimate_s for s in plans[0].stages]


def test_check_and_compile_leave_the_cyclic_gc_as_they_found_it() -> None:
    import gc

    assert gc.isenabled()
    check_paths([str(DATA / "broken.alfred")])
    compile_path(str(DATA / "feature.alfred"), params={"feature_name": "login"})
    assert gc.isenabled()
    gc.disable()
    try:
        check_paths([str(DATA / "broken.alfred")])
        assert not gc.isenabled()
    finally:
        gc.enable()


GRAPH_SHAPES = SHARED + """
workflow t {
  param took: duration = 1m
  stage a { agent = worker
    estimate = params.took }
  stage b after a { agent = worker
    estimate = 2m }
}
workflow m {
  stage first { agent = worker
    estimate = 1m }
  use t(took = 5m) as one after first
  stage mid after one, first { agent = worker
    estimate = 1m
    inputs = { x = "${stages.one.a.outputs.path}" } }
  stage last after mid, first { agent = worker }
}
"""


def test_check_analyses_the_same_graph_without_building_the_stages(tmp_path: Path) -> None:
    """`check` resolves only what the graph analysis reads (no PlanStage) unless the plan may
    warn: the same stages, estimates, edges and places as the whole resolution, and the
    same analysis and diagnostics."""
    from alfred_dsl.compiler import _bind, _graph
    from alfred_dsl.compiler._model import Dependencies, ResolvedWorkflow
    from alfred_dsl.compiler.load import load

    shapes = tmp_path / "shapes.alfred"
    shapes.write_text(GRAPH_SHAPES)
    examples = Path(__file__).parent.parent / "examples"
    paths = [shapes, *sorted(DATA.glob("*.alfred")), *sorted(examples.glob("*.alfred")),
             *sorted((examples / "broken").glob("A[45]0*.alfred"))]
    kinds: set[type] = set()
    for path in paths:
        workspace, _ = load(str(path))
        assert workspace is not None
        for name in _bind.workflows_to_analyse(workspace):
            whole, problems = _bind.resolve(workspace, name, {}, require_all=False)
            checked, checked_problems = _bind.resolve_for_check(workspace, name)
            assert checked_problems == problems
            if whole is None:
                assert checked is None
                continue
            assert checked is not None
            kinds.add(type(checked))
            if isinstance(checked, ResolvedWorkflow):  # the plan may warn: resolved whole
                assert checked == whole and (checked.budget or any(s.approve for s in checked.stages))
                continue
            expected = Dependencies.of(whole)
            assert checked == expected, path
            assert [e.span for e in checked.edges] == [e.span for e in expected.edges]
            assert [checked.stage_span(s) for s in checked.stages] == [s.span for s in whole.stages]
            assert checked.span == expected.span
            assert _graph.analyse(checked) == _graph.analyse(whole), path
    assert kinds == {Dependencies, ResolvedWorkflow}
    workspace, _ = load(str(shapes))
    assert workspace is not None
    checked, _ = _bind.resolve_for_check(workspace, "m")
    assert isinstance(checked, Dependencies)
    assert dict(zip(checked.stages, checked.estimates, strict=True)) == {
        "first": 60, "one.a": 300, "one.b": 120, "mid": 60, "last": 0,
    }
    assert [(e.before, e.after, e.kind) for e in checked.edges] == [
        ("one.a", "one.b", "after"), ("one.b", "mid", "after"), ("first", "mid", "after"),
        ("one.a", "mid", "ref"), ("mid", "last", "after"), ("first", "last", "after"),
        ("first", "one.a", "use"),
    ]
    analysis, diagnostics = _graph.analyse(checked)
    assert analysis is not None and analysis.duration_s == 60 + 300 + 120 + 60
    # `mid after first` is implied through one.b, `last after first` through mid.
    assert [d.code for d in diagnostics] == ["A503", "A503"]


_CHECKED_IN_A_CHILD = r"""
import os, sys
from alfred_dsl.compiler import _pipeline
from alfred_dsl._render_diag import render_json
_pipeline.CHECK_IN_CHILD_FROM = int(sys.argv[2])
forks = []
os.register_at_fork(after_in_parent=lambda: forks.append(1))
checked = _pipeline.check_paths([sys.argv[1]])
plan, compiled = _pipeline.compile_path(sys.argv[1])
print(len(forks))
print(render_json(checked))
print("----")
print(render_json(compiled))
"""


def test_a_large_workspace_is_checked_in_a_child_with_the_same_diagnostics(tmp_path: Path) -> None:
    # Unknown agents, params and stages, a bad retry value and a cycle: the checks of
    # check_workspace (in the child) and of resolution and graph analysis (in the parent).
    lines = ["agent worker {", "  kind = command", '  run = ["true"]', "}", "workflow big {",
             "  param level: int = 1"]
    for number in range(120):
        after = f" after s{number - 1}" if number else " after s119"
        agent = "wroker" if number % 17 == 0 else "worker"
        lines += [f"  stage s{number}{after} {{", f"    agent = {agent}",
                  f'    when = "${{params.levle}} > {number}"' if number % 23 == 0 else "    estimate = 5m",
                  "  }"]
    lines.append("}")
    path = tmp_path / "big.alfred"
    path.write_text("\n".join(lines) + "\n")

    def check(threshold: int, **env: str) -> tuple[int, str]:
        done = subprocess.run([sys.executable, "-c", _CHECKED_IN_A_CHILD, str(path), str(threshold)],
                              capture_output=True, text=True, timeout=120, env={**os.environ, **env})
        assert done.returncode == 0, done.stderr
        forks, report = done.stdout.split("\n", 1)
        return int(forks), report

    forks, in_child = check(50)
    assert forks >= 2  # check, then compile (whose errors are check's: _analyse forks again)
    assert (0, in_child) == check(50, ALFRED_PARALLEL="0") == check(10_000)
    checked, compiled = in_child.split("\n----\n")
    codes = {entry["code"] for entry in json.loads(checked)["diagnostics"]}
    assert {"A201", "A401"} <= codes and len(codes) >= 3, codes
    assert {"A201", "A401"} <= {entry["code"] for entry in json.loads(compiled)["diagnostics"]}
