"""Names, types and templates: check_workspace and resolve on real files (YAML, JSON, .alfred)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from alfred_dsl._codes import CODES
from alfred_dsl._diagnostics import Diagnostic
from alfred_dsl._values import parse_duration, parse_param
from alfred_dsl.compiler import load as _loader
from alfred_dsl.compiler._bind import resolve
from alfred_dsl.compiler._check import check_workspace, cron_problem
from alfred_dsl.compiler._model import ResolvedWorkflow

DATA = Path(__file__).parent / "data" / "check"


def load(tmp_path: Path, text: str, name: str = "wf.yaml") -> _loader.Workspace:
    (tmp_path / "alfred.toml").write_text("")
    path = tmp_path / name
    path.write_text(text)
    workspace, diagnostics = _loader.load(path)
    assert workspace is not None, diagnostics
    assert [d for d in diagnostics if d.is_error] == [], [d.message for d in diagnostics]
    return workspace


def problems(tmp_path: Path, text: str, name: str = "wf.yaml") -> list[tuple[str, str, str]]:
    """(code, "line:column", message) of each check diagnostic, in source order."""
    diagnostics = check_workspace(load(tmp_path, text, name))
    return [(d.code, at(d), d.message) for d in sorted(diagnostics, key=Diagnostic.sort_key)]


def at(diagnostic: Diagnostic) -> str:
    assert diagnostic.primary is not None
    return f"{diagnostic.primary.span.line}:{diagnostic.primary.span.column}"


def only(tmp_path: Path, text: str, code: str) -> Diagnostic:
    found = [d for d in check_workspace(load(tmp_path, text)) if d.code == code]
    assert len(found) == 1, found
    return found[0]


AGENTS = """\
agents:
  builder:
    kind: command
    run: make
    capabilities: [build, linux]
    outputs: [artifact, report]
  tester:
    kind: command
    run: pytest
    capabilities: [test, linux]
"""


# -- A2xx: names ---------------------------------------------------------------------------------


def test_unknown_agent_a201_with_suggestion(tmp_path: Path) -> None:
    diag = only(
        tmp_path,
        AGENTS + "workflows:\n  ci:\n    stages:\n      build:\n        agent: bilder\n"
        "      test:\n        agent: tester\n",
        "A201",
    )
    assert diag.message == "unknown agent `bilder`"
    assert at(diag) == "15:16"
    assert diag.help == "did you mean `builder`?"


def test_unknown_stage_in_after_and_in_reference_a202(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n  ci:\n    stages:\n      build:\n        agent: builder\n"
        "      test:\n        agent: tester\n        after: [biuld]\n"
        "        inputs: {a: '${stages.buld.outputs.artifact}'}\n"
    )
    found = problems(tmp_path, text)
    assert found == [
        ("A202", "18:17", "unknown stage `biuld` in workflow `ci`"),
        ("A202", "19:24", "unknown stage `buld` in workflow `ci`"),
    ]
    diags = check_workspace(load(tmp_path, text))
    assert {d.help for d in diags} == {"did you mean `build`?"}


def test_unknown_param_a203_in_reference(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n  ci:\n    params:\n      coverage: {type: int, default: 80}\n"
        "    stages:\n      build:\n        agent: builder\n"
        '        run: "make COV=${params.coverag}"\n'
        "      test: {agent: tester}\n"
    )
    diag = only(tmp_path, text, "A203")
    assert diag.message == "unknown param `coverag` in workflow `ci`"
    assert at(diag) == "18:26"
    assert diag.help == "did you mean `coverage`?"
    # the misspelt reference does not count as a use of `coverage`
    assert [d.message for d in check_workspace(load(tmp_path, text)) if d.code == "A502"] == [
        "param `coverage` of workflow `ci` is never used"
    ]


def test_unknown_output_a204_when_outputs_are_declared(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n  ci:\n    stages:\n      build: {agent: builder}\n"
        "      test:\n        agent: tester\n        outputs: [junit]\n"
        "        inputs:\n          a: '${stages.build.outputs.artifcat}'\n"
        "          b: '${stages.build.outputs.report}'\n"
        "      doc:\n        agent: tester\n        inputs: {j: '${stages.test.outputs.junit}'}\n"
        "      any:\n        agent: tester\n        inputs: {x: '${stages.doc.outputs.whatever}'}\n"
    )
    diag = only(tmp_path, text, "A204")
    assert diag.message == "stage `build` has no output `artifcat`"
    assert at(diag) == "19:17"
    assert diag.help == "did you mean `artifact`?"


def test_unknown_template_a205_and_recursive_use(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n"
        "  a:\n    stages: {s: {agent: builder}}\n    uses: {inner: {template: b}}\n"
        "  b:\n    stages: {t: {agent: tester}}\n    uses: {back: {template: a}}\n"
        "  c:\n    stages: {u: {agent: tester}}\n    uses: {x: {template: bb}}\n"
    )
    found = problems(tmp_path, text)
    assert found == [
        ("A215", "14:30", "template cycle: a -> b -> a"),
        ("A205", "20:26", "unknown workflow `bb` in `use`"),
    ]


def test_template_cycle_a215_once_per_cycle_with_a_label_at_each_use(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n"
        "  main:\n    stages: {m: {agent: tester}}\n    uses: {top: {template: x}}\n"
        "  x:\n    stages: {s: {agent: tester}}\n    uses: {to_y: {template: y}}\n"
        "  y:\n    stages: {s: {agent: tester}}\n    uses: {to_z: {template: z}}\n"
        "  z:\n    stages: {s: {agent: tester}}\n    uses: {to_x: {template: x}}\n"
        "  self:\n    stages: {s: {agent: tester}}\n    uses: {again: {template: self}}\n"
    )
    found = [d for d in check_workspace(load(tmp_path, text)) if d.is_error]
    assert [(d.code, at(d), d.message) for d in found] == [
        ("A215", "17:29", "template cycle: x -> y -> z -> x"),
        ("A215", "26:30", "template cycle: self -> self"),
    ]
    cycle = found[0]
    assert cycle.primary is not None and cycle.primary.text == "`x` uses `y` here"
    assert [(f"{label.span.line}:{label.span.column}", label.text) for label in cycle.secondary] == [
        ("20:29", "`y` uses `z` here"),
        ("23:29", "`z` uses `x` here"),
    ]
    # The workflow that only uses the cycle compiles no plan, but is not blamed for it.
    resolved, diagnostics = resolve(load(tmp_path, text), "main", {})
    assert resolved is not None and [d.code for d in diagnostics] == []


def test_unknown_capability_a207(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n  ci:\n    stages:\n"
        "      a:\n        requires: [linux, tset]\n"
        "      b:\n        requires: [build, test]\n"
        "      c:\n        requires: [linux]\n"
    )
    found = problems(tmp_path, text)
    assert found == [
        ("A207", "15:27", "no agent has the capability `tset`"),
        ("A207", "17:19", "no agent has all of the capabilities `build`, `test`"),
    ]


def test_stage_and_alias_with_one_name_a208(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n  lib:\n    stages: {s: {agent: builder}}\n"
        "  ci:\n    stages:\n      auth: {agent: tester}\n    uses:\n      auth: {template: lib}\n"
    )
    diag = only(tmp_path, text, "A208")
    assert diag.message == "`auth` names both a stage and a `use` alias in workflow `ci`"
    assert at(diag) == "16:7"
    assert [label.span.line for label in diag.secondary] == [18]


def test_unknown_reference_root_a210(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n  ci:\n    stages:\n      build:\n        agent: builder\n"
        "        run: 'make ${param.x} ${env.HOME.x} ${stages.build.artifact}'\n"
    )
    found = problems(tmp_path, text)
    assert found[1:] == [
        (
            "A210",
            "16:22",
            "unknown reference `param.x`: references start with params, stages, inputs, env or secrets",
        ),
        ("A210", "16:33", "`env.HOME.x` has too many parts"),
        ("A210", "16:47", "`stages.build.artifact` is not a stage output reference"),
    ]


def test_use_bindings_unknown_missing_and_ill_typed(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n"
        "  lib:\n    params:\n      target: {type: string}\n      level: {type: int, default: 1}\n"
        "    stages:\n      s:\n        agent: builder\n"
        "        run: 'make ${params.target} ${params.level}'\n"
        "  ci:\n    params:\n      name: {type: string, default: x}\n"
        "    stages: {t: {agent: tester}}\n"
        "    uses:\n"
        "      one: {template: lib, params: {target: '${params.name}', levl: 2}}\n"
        "      two: {template: lib, params: {target: a, level: 'high'}}\n"
        "      three: {template: lib, params: {target: '${params.name == \"x\"}'}}\n"
    )
    found = problems(tmp_path, text)
    assert found == [
        ("A203", "25:63", "workflow `lib` has no param `levl`"),
        ("A302", "26:55", "param `level` is declared int, but the value given is a string"),
        ("A302", "27:47", "param `target` is declared string, but the value given is a bool"),
    ]


def test_missing_required_binding_a213(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n"
        "  lib:\n    params: {target: {type: string}}\n"
        "    stages: {s: {agent: builder, run: 'make ${params.target}'}}\n"
        "  ci:\n    stages: {t: {agent: tester}}\n    uses:\n      one: {template: lib}\n"
    )
    diag = only(tmp_path, text, "A213")
    assert diag.message == "`use lib(...) as one` does not set the required param `target`"
    assert at(diag) == "18:7"


# -- A3xx: types ---------------------------------------------------------------------------------


def test_param_default_of_the_wrong_type_a302(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n  ci:\n    params:\n      coverage: {type: int, default: high}\n"
        "    stages: {s: {agent: builder, run: 'make ${params.coverage}'}}\n"
    )
    diag = only(tmp_path, text, "A302")
    assert diag.message == "the default of param `coverage` is a string, but the param is declared int"
    assert at(diag) == "14:38"


def test_when_not_boolean_a303_and_ill_typed_a309(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n  ci:\n    params:\n"
        "      env: {type: string, default: dev}\n      n: {type: int, default: 1}\n"
        "    stages:\n"
        "      a: {agent: builder, when: '${params.env}'}\n"
        "      b: {agent: builder, when: '${params.n == \"one\"}'}\n"
        "      c: {agent: builder, when: 'run ${params.env}'}\n"
        "      d: {agent: builder, when: '${params.env == \"prod\" and not stages.a.outputs.report}'}\n"
    )
    found = problems(tmp_path, text)
    assert found == [
        ("A501", "7:3", "agent `tester` is never used"),
        ("A303", "17:36", "`when` must be a boolean, but `params.env` is a string"),
        ("A309", "18:36", 'cannot compare an int with a string in `params.n == "one"`'),
        ("A303", "19:33", "`when` must be a boolean, but this is a string"),
    ]


def test_expression_valued_durations_and_priorities_are_type_checked_a302(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n  ci:\n    params:\n      wait: {type: duration, default: 5m}\n"
        "      flag: {type: bool, default: true}\n"
        "    stages:\n      a:\n        agent: builder\n        timeout: '${params.wait}'\n"
        "        estimate: '${params.flag}'\n        when: '${params.flag}'\n"
    )
    diag = only(tmp_path, text, "A302")
    assert diag.message == "expected a duration, but `${params.flag}` is a bool"
    assert at(diag) == "20:19"


def test_parse_duration() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2d") == 172800
    assert parse_duration(90) == 90
    # A whole number of seconds is an int, so that plan JSON reads `90`, not `90.0`.
    assert type(parse_duration(90.0)) is int and parse_duration(1.5) == 1.5
    for bad in ("", "30", "1m1h", "5 m", "-1s", -3, True, "1.5h"):
        assert parse_duration(bad) is None, bad


def test_agent_and_requires_a306_and_nothing_to_run_a307(tmp_path: Path) -> None:
    text = (
        "agents:\n  worker: {kind: command, capabilities: [x]}\n"
        "  py: {kind: python, capabilities: [y]}\n  web: {kind: http}\n"
        "workflows:\n  ci:\n    stages:\n"
        "      both: {agent: worker, requires: [x], run: 'true'}\n"
        "      neither: {run: 'true'}\n"
        "      norun: {agent: worker}\n"
        "      nocall: {requires: [y]}\n"
        "      fine: {agent: worker, run: 'true'}\n"
        "      call: {agent: py, call: 'json:loads'}\n"
        "      web: {agent: web}\n"
    )
    found = problems(tmp_path, text)
    assert found == [
        ("A307", "4:3", "http agent `web` has no `url`"),
        ("A306", "8:7", "stage `both` has both `agent` and `requires`"),
        ("A306", "9:7", "stage `neither` has neither `agent` nor `requires`"),
        (
            "A307",
            "10:7",
            "stage `norun` has nothing to run: command agent `worker` has no `run` and neither has the stage",
        ),
        (
            "A307",
            "11:7",
            "stage `nocall` has nothing to run: python agent `py` has no `call` and neither has the stage",
        ),
    ]


def test_invalid_cron_schedule_a310_points_at_the_field(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n  ci:\n    schedule: '0 25 * * 1-5'\n"
        "    stages: {s: {agent: builder}, t: {agent: tester}}\n"
    )
    diag = only(tmp_path, text, "A310")
    assert diag.message == "invalid cron schedule `0 25 * * 1-5`: `25` is not a valid hour (0-23)"
    assert diag.primary is not None
    span = diag.primary.span
    assert (span.line, span.column, span.end_column) == (13, 18, 20)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 9 * * 1-5", None),
        ("*/15 0-6,22 * jan-mar MON#2", None),
        ("* * * 5-2 *", None),  # a range that runs backwards wraps around (croniter's meaning)
        ("@daily", None),
        (
            "0 9 * *",
            "a cron expression has 5 fields (minute hour day-of-month month day-of-week), this one has 4",
        ),
        ("60 * * * *", "`60` is not a valid minute (0-59)"),
        ("* * 0 * *", "`0` is not a valid day of month (1-31)"),
        ("*/0 * * * *", "the step in `*/0` of the minute field must be a positive integer"),
        ("0 0 1 * MON#2", "the schedule never fires: no date matches every field"),
        ("* * * * mon,,fri", "an empty item"),
    ],
)
def test_cron_problems(expression: str, problem: str | None) -> None:
    found = cron_problem(expression)
    assert (found[0] if found else None) == problem


# -- A5xx: warnings ----------------------------------------------------------------------------


def test_unused_agent_a501_and_unused_param_a502(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n  ci:\n    params:\n      coverage: {type: int, default: 80}\n"
        "      used: {type: string, default: x}\n"
        "    stages: {s: {agent: builder, run: 'make ${params.used}'}}\n"
    )
    found = problems(tmp_path, text)
    assert found == [
        ("A501", "7:3", "agent `tester` is never used"),
        ("A502", "14:7", "param `coverage` of workflow `ci` is never used"),
    ]
    assert all(d.severity.value == "warning" for d in check_workspace(load(tmp_path, text)))


def test_every_problem_is_reported_in_one_pass(tmp_path: Path) -> None:
    workspace, _ = _loader.load(DATA / "many_problems.yaml")
    assert workspace is not None
    codes = sorted(d.code for d in check_workspace(workspace))
    assert codes == ["A201", "A202", "A203", "A204", "A207", "A303", "A310", "A501", "A502"]


# -- params --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "type_name", "value"),
    [
        ("hello world", "string", "hello world"),
        ("80", "int", 80),
        ("-3", "int", -3),
        ("0.25", "float", 0.25),
        ("2", "float", 2.0),
        ("true", "bool", True),
        ("False", "bool", False),
        ("1h30m", "duration", 5400),
        ("45", "duration", 45),
        ("500ms", "duration", 0.5),
        ('["a", "b"]', "list", ["a", "b"]),
        ('{"k": 1}', "map", {"k": 1}),
    ],
)
def test_param_values_are_read_as_their_declared_type(raw: str, type_name: str, value: Any) -> None:
    assert parse_param(raw, type_name) == (value, None)


@pytest.mark.parametrize(
    ("raw", "type_name", "problem"),
    [
        ("eighty", "int", "expected an integer such as `80`"),
        ("1.5", "int", "expected an integer such as `80`"),
        ("nan", "float", "expected a number such as `0.5`"),
        ("yes", "bool", "expected `true` or `false`"),
        ("soon", "duration", "expected a duration such as `30s`, `5m` or `1h30m`"),
        ("a,b", "list", 'expected a JSON list such as `["a", "b"]`'),
        ("[1]", "map", 'expected a JSON map such as `{"key": "value"}`'),
    ],
)
def test_bad_param_values(raw: str, type_name: str, problem: str) -> None:
    assert parse_param(raw, type_name) == (None, problem)


PARAMS_WF = AGENTS + (
    "workflows:\n  ci:\n    params:\n"
    "      version: {type: string}\n      coverage: {type: int, default: 80}\n"
    "      dry: {type: bool, default: false}\n      wait: {type: duration, default: 2m}\n"
    "    stages:\n"
    "      build:\n        agent: builder\n        timeout: '${params.wait}'\n"
    "        run: 'make ${params.version} ${params.coverage}'\n"
    "      test:\n        agent: tester\n        when: '${not params.dry}'\n"
    "  other:\n    stages: {x: {agent: tester}}\n"
)


def test_resolve_reads_params_and_folds_when(tmp_path: Path) -> None:
    workspace = load(tmp_path, PARAMS_WF)
    resolved, diagnostics = resolve(workspace, None, {"version": "1.2", "coverage": "90"})
    assert diagnostics == []
    assert resolved is not None and resolved.name == "ci"
    assert dict(resolved.params) == {"version": "1.2", "coverage": 90, "dry": False, "wait": 120}
    assert resolved.stages[0].timeout_s == 120
    assert resolved.stages[0].run == "make ${params.version} ${params.coverage}"
    assert resolved.stages[1].when is True
    resolved, _ = resolve(workspace, "ci", {"version": "1", "dry": "true"})
    assert resolved is not None and resolved.stages[1].when is False


def test_resolve_param_errors_a203_a308_a213_a209(tmp_path: Path) -> None:
    workspace = load(tmp_path, PARAMS_WF)
    resolved, diagnostics = resolve(workspace, None, {"coverage": "lots", "verison": "1"})
    assert resolved is None
    assert [(d.code, d.message) for d in diagnostics] == [
        ("A308", "--param coverage=lots: `coverage` is declared int, expected an integer such as `80`"),
        ("A203", "workflow `ci` has no param `verison` (given with --param)"),
        ("A213", "missing required param `version` of workflow `ci`"),
    ]
    assert diagnostics[1].help == "did you mean `version`?"
    assert at(diagnostics[2]) == "14:7"
    resolved, diagnostics = resolve(workspace, "co", {})
    assert resolved is None
    assert [(d.code, d.message, d.help) for d in diagnostics] == [
        ("A209", "no workflow named `co` in " + str(tmp_path / "wf.yaml"), "known workflows: `ci`, `other`")
    ]
    # `check` does not require params
    resolved, diagnostics = resolve(workspace, None, {}, require_all=False)
    assert resolved is not None and diagnostics == []


# -- templates --------------------------------------------------------------------------------


def names_and_edges(resolved: ResolvedWorkflow) -> tuple[list[str], list[tuple[str, str, str]]]:
    return (
        [s.name for s in resolved.stages],
        [(e.before, e.after, e.kind) for e in resolved.edges],
    )


def test_use_prefixes_stages_binds_params_and_orders_after_alias() -> None:
    workspace, diagnostics = _loader.load(DATA / "templates.yaml")
    assert workspace is not None and [d for d in diagnostics if d.is_error] == []
    assert check_workspace(workspace) == []
    resolved, diagnostics = resolve(workspace, None, {"feature": "login"})
    assert diagnostics == [] and resolved is not None
    assert resolved.name == "release"
    names, edges = names_and_edges(resolved)
    assert names == ["prepare", "auth.spec", "auth.impl", "auth.docs.write", "ship"]
    assert edges == [
        ("auth.spec", "auth.impl", "after"),
        ("auth.impl", "auth.docs.write", "use"),
        ("auth.docs.write", "ship", "after"),
        ("auth.impl", "ship", "ref"),
        ("prepare", "auth.spec", "use"),
    ]
    by_name = {s.name: s for s in resolved.stages}
    spec = by_name["auth.spec"]
    assert spec.group == ("auth",)
    assert by_name["auth.docs.write"].group == ("auth", "docs")
    # params substituted by the binding (which refers to the outer workflow's params)
    assert dict(spec.inputs) == {
        "feature": "${params.feature}",
        "level": 3,
        "label": "feature-${params.feature}",
    }
    assert by_name["auth.impl"].inputs["spec"] == "${stages.auth.spec.outputs.doc}"
    assert by_name["auth.docs.write"].run == "write --title 'docs for ${params.feature}' --level=3"
    assert by_name["auth.docs.write"].when is True
    assert by_name["ship"].inputs["bin"] == "${stages.auth.impl.outputs.bin}"
    # the template's own defaults apply to its stages, the outer ones to the rest
    assert spec.retries == 5 and by_name["prepare"].retries == 1
    assert by_name["auth.docs.write"].timeout_s == 60


def test_resolve_output_fields(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    text = AGENTS + (
        "  remote:\n    kind: command\n    run: ['deploy', '--token', '${secrets.DEPLOY_TOKEN}']\n"
        "    cwd: sub\n    env: {LOG: info}\n    capabilities: [deploy]\n    concurrency: 3\n"
        "workflows:\n  ci:\n    description: all of it\n    schedule: '0 9 * * 1-5'\n"
        "    defaults: {retries: 2, backoff: 2s, timeout: 30m, priority: low}\n"
        "    stages:\n"
        "      build:\n        agent: builder\n        estimate: 1h30m\n        priority: critical\n"
        "        cwd: out\n        env: {K: '${secrets.API_KEY}'}\n"
        "      test:\n        requires: [linux]\n        after: [build]\n        priority: 7\n"
        "        on_failure: continue\n        max_backoff: 1m\n"
        "      deploy:\n        agent: remote\n        after: [test]\n"
        "        inputs: {a: '${stages.build.outputs.artifact}'}\n        when: '${env.DEPLOY == \"yes\"}'\n"
        "    on:\n      failure: {run: 'notify ${secrets.HOOK}'}\n"
    )
    workspace = load(tmp_path, text)
    resolved, diagnostics = resolve(workspace, None, {})
    assert diagnostics == [] and resolved is not None
    build, test, deploy = resolved.stages
    assert (build.estimate_s, build.priority, build.retries, build.backoff_s, build.timeout_s) == (
        5400,
        3,
        2,
        2,
        1800,
    )
    assert build.cwd == os.path.join(str(tmp_path), "out")
    assert build.outputs == ("artifact", "report")
    assert (build.agents, build.kind, build.run) == (("builder",), "command", "make")
    assert test.agents == ("builder", "tester") and test.run is None
    assert (test.priority, test.on_failure, test.max_backoff_s) == (7, "continue", 60)
    assert deploy.cwd == os.path.join(str(tmp_path), "sub")
    assert deploy.when == '${env.DEPLOY == "yes"}'
    assert deploy.after == ("test", "build")
    assert [(e.before, e.after, e.kind) for e in resolved.edges] == [
        ("build", "test", "after"),
        ("test", "deploy", "after"),
        ("build", "deploy", "ref"),
    ]
    ref_edge = resolved.edges[2]
    assert ref_edge.span is not None and (ref_edge.span.line, ref_edge.span.column) == (39, 24)
    assert resolved.secrets == ("API_KEY", "DEPLOY_TOKEN", "HOOK")
    assert [a.name for a in resolved.agents] == ["builder", "tester", "remote"]
    assert resolved.agents[2].concurrency == 3 and resolved.agents[2].run == (
        "deploy",
        "--token",
        "${secrets.DEPLOY_TOKEN}",
    )
    assert (resolved.schedule, resolved.description) == ("0 9 * * 1-5", "all of it")
    assert [(h.event, h.run) for h in resolved.hooks] == [("failure", "notify ${secrets.HOOK}")]


def test_resolve_of_10000_stages_is_fast(tmp_path: Path) -> None:
    stages: dict[str, Any] = {}
    for i in range(10_000):
        stage: dict[str, Any] = {
            "agent": "worker",
            "estimate": "1m",
            "after": [f"s{j}" for j in range(max(0, i - 3), i)],
        }
        if i % 10 == 5:
            stage["inputs"] = {"x": f"${{stages.s{i - 1}.outputs.out}}"}
        stages[f"s{i}"] = stage
    document = {
        "agents": {"worker": {"kind": "command", "run": "true"}},
        "workflows": {"big": {"stages": stages}},
    }
    (tmp_path / "big.json").write_text(json.dumps(document))
    (tmp_path / "alfred.toml").write_text("")
    workspace, _ = _loader.load(tmp_path / "big.json")
    assert workspace is not None
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        resolved, diagnostics = resolve(workspace, None, {})
        best = min(best, time.process_time() - start)
    assert resolved is not None and len(resolved.stages) == 10_000 and diagnostics == []
    assert len(resolved.edges) == 3 * 10_000 - 6
    print(f"resolve of 10,000 stages: {best * 1000:.0f} ms")
    assert best < 1.5  # about 0.3 s; the margin is for a loaded machine, a quadratic pass takes far longer


_text = st.text(alphabet="ab.${}\"' =<>!()and ornotparamsstagesoutputs", max_size=30)
_name = st.sampled_from(["a", "b", "c", "lib", "x"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    run=_text,
    when=st.one_of(st.booleans(), _text),
    inputs=st.dictionaries(_name, _text, max_size=3),
    after=st.lists(_name, max_size=3),
    agent=_name,
    binding=st.one_of(_text, st.integers(), st.booleans()),
)
def test_check_and_resolve_never_raise_on_odd_values(
    run: str, when: bool | str, inputs: dict[str, str], after: list[str], agent: str, binding: Any
) -> None:
    document = {
        "agents": {"a": {"kind": "command", "run": "true", "capabilities": ["x"]}},
        "workflows": {
            "lib": {
                "params": {"p": {"type": "int", "default": 1}},
                "stages": {"a": {"agent": "a", "run": run or "x", "when": when, "inputs": inputs}},
                "uses": {"c": {"template": "main", "params": {"p": binding}}},
            },
            "main": {
                "params": {"q": {"type": "string", "default": "v"}},
                "stages": {"b": {"agent": agent, "after": after, "inputs": inputs}},
                "uses": {"c": {"template": "lib", "params": {"p": binding}, "after": after}},
            },
        },
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wf.json"
        path.write_text(json.dumps(document))
        (Path(folder) / "alfred.toml").write_text("")
        workspace, _ = _loader.load(path)
        assert workspace is not None
        diagnostics = check_workspace(workspace)
        assert all(d.code in CODES for d in diagnostics)
        for name in ("main", "lib"):
            resolve(workspace, name, {"q": run}, require_all=False)


def test_duration_param_default_must_be_a_duration_a304(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n  ci:\n    params:\n      wait: {type: duration, default: soon}\n"
        "    stages: {s: {agent: builder, timeout: '${params.wait}'}, t: {agent: tester}}\n"
    )
    diag = only(tmp_path, text, "A304")
    assert diag.message == "invalid duration `soon`"
    assert at(diag) == "14:39"
    assert diag.help == "write a duration such as `500ms`, `30s`, `5m`, `2h`, `1d` or `1h30m`"


def test_a_string_that_does_not_parse_is_a108_without_follow_up_errors(tmp_path: Path) -> None:
    text = AGENTS + (
        "workflows:\n"
        "  lib:\n    params: {on: {type: bool}}\n    stages: {s: {agent: tester, when: '${params.on}'}}\n"
        "  ci:\n    params: {env: {type: string}}\n"
        "    stages: {s: {agent: tester, when: \"${params.env == 'prod'}\"}}\n"
        "    uses: {l: {template: lib, params: {on: \"${params.env == 'prod'}\"}}}\n"
    )
    # Only the parse error: no A303 (`when` is a string), A302 (binding type) or A502 (unused `env`).
    found = [code for code, _, _ in problems(tmp_path, text) if code != "A501"]  # builder is unused
    assert found == ["A108", "A108"]


DOTTED = """\
agent a { kind = command; run = "true" }
workflow inner {
  param p: int = 1
  stage i1 { agent = a; inputs = { p = params.p } }
  stage i2 after i1 { agent = a }
}
workflow mid {
  param q: int = 2
  use inner(p = params.q) as in
  stage m after in { agent = a }
}
workflow top {
  use mid(q = 5) as x
  use mid() as y after x.in
  stage early after x.in.i1, y.m { agent = a }
  stage last after x.m { agent = a }
  stage bad after x.nope, y.in.i3 { agent = a }
}
"""


def test_after_names_a_stage_or_alias_inside_a_use(tmp_path: Path) -> None:
    # `use` prefixes stages as `ALIAS.STAGE`; `after` may name them (and nested aliases) so.
    found = problems(tmp_path, DOTTED, "wf.alfred")
    assert [(code, where) for code, where, _ in found] == [("A202", "17:19"), ("A202", "17:27")]
    assert "unknown stage `x.nope`" in found[0][2] and "unknown stage `y.in.i3`" in found[1][2]
    ok = DOTTED.replace("  stage bad after x.nope, y.in.i3 { agent = a }\n", "")
    resolved, diagnostics = resolve(load(tmp_path, ok, "wf.alfred"), "top", {})
    assert diagnostics == [] and resolved is not None
    edges = {(e.before, e.after) for e in resolved.edges}
    assert ("x.in.i2", "y.in.i1") in edges  # use ... after x.in: after the sinks of x.in
    assert {("x.in.i1", "early"), ("y.m", "early"), ("x.m", "last")} <= edges
