"""Plan compilation (build_plan) and the plan renderers (JSON of spec section 5, text table)."""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Callable
from dataclasses import FrozenInstanceError, replace
from pathlib import Path
from typing import Any

import pytest
from _terminal import run_on_terminal
from _workflows import (
    CYCLE_DSL,
    FEATURE_DEVELOPMENT,
    FEATURE_DSL,
    GROUPED_DSL,
    Row,
    make_plan,
    make_resolved,
)
from conftest import ALFREDC
from hypothesis import given, settings, strategies as st

from alfred_dsl._expr import Interpolated
from alfred_dsl.compiler._build import build_plan
from alfred_dsl.compiler._graph import analyse
from alfred_dsl.compiler._model import Edge, new_edge
from alfred_dsl.compiler._pipeline import compile_path
from alfred_dsl.compiler._plan import FrozenMap, Plan, PlanStage, new_stage
from alfred_dsl.render import dumps, plan_to_json, plan_to_text
from alfred_dsl.render._plan import dump, dump_plan, duration_text

GOLDEN = Path(__file__).parent / "golden" / "render"
EVERY_KIND = Path(__file__).parent / "data" / "plan" / "every_kind.alfred"
EXAMPLES = Path(__file__).parent.parent / "examples"

BRANCHES: list[Row] = [
    ("fetch", [], 10),
    ("lint", [], 5),
    ("build", ["fetch"], 3600),
    ("docs", ["fetch"], 90.5),
    ("ship", ["build", "docs", "lint"], 1),
]


def test_plan_is_frozen_and_hashable() -> None:
    plan = make_plan(FEATURE_DEVELOPMENT)
    assert hash(plan) == hash(make_plan(FEATURE_DEVELOPMENT))
    assert plan == make_plan(FEATURE_DEVELOPMENT)
    with pytest.raises(FrozenInstanceError):
        plan.workflow = "other"  # type: ignore[misc]
    assert {plan: 1}[make_plan(FEATURE_DEVELOPMENT)] == 1


def test_plan_carries_the_analysis() -> None:
    plan = make_plan(BRANCHES)
    assert [s.name for s in plan.stages] == ["fetch", "lint", "build", "docs", "ship"]
    docs = plan.stage("docs")
    assert (docs.earliest_start_s, docs.earliest_finish_s, docs.slack_s, docs.layer) == (10, 100.5, 3509.5, 1)
    assert not docs.critical and plan.stage("build").critical
    assert plan.critical_path == ("fetch", "build", "ship")
    assert plan.duration_s == 3611
    assert plan.layers == (("fetch", "lint"), ("build", "docs"), ("ship",))
    assert plan.max_parallelism == 2


def test_after_holds_declared_then_implied_dependencies() -> None:
    rows: list[Row] = [("a", [], 1), ("b", [], 1), ("c", ["b", "a"], 1)]
    # `a -> c` comes from a reference (stages.a.outputs...), `b -> c` from `after b`.
    resolved = make_resolved(rows, kinds={("a", "c"): "ref"})
    assert resolved.stages[2].after == ("b",)
    analysis, _ = analyse(resolved)
    assert analysis is not None
    assert build_plan(resolved, analysis).stage("c").after == ("b", "a")


def test_build_plan_leaves_the_resolved_stages_alone_unless_consumed() -> None:
    resolved = make_resolved(BRANCHES)
    analysis, _ = analyse(resolved)
    assert analysis is not None
    plan = build_plan(resolved, analysis)
    ship = plan.stage("ship")
    assert ship.earliest_start_s == 3610 and ship.after == ("build", "docs", "lint")
    assert all(stage.earliest_start_s == 0 and stage.layer == 0 for stage in resolved.stages)
    assert [s.span for s in plan.stages] == [s.span for s in resolved.stages]
    consumed = build_plan(resolved, analysis, consume=True)
    assert consumed == plan and consumed.stages[4] is resolved.stages[4]


def test_build_plan_reads_the_analysis_by_index_or_by_name() -> None:
    """The analysis's columns and predecessor indices (what build_plan reads) give the same
    plan as its per-stage timings and predecessors by name (an analysis made otherwise)."""
    rows: list[Row] = [*BRANCHES, ("audit", ["lint", "fetch"], 2)]
    resolved = make_resolved(rows, kinds={("fetch", "audit"): "ref"})
    analysis, _ = analyse(resolved)
    assert analysis is not None and analysis.columns and analysis.predecessor_indices
    by_index = build_plan(resolved, analysis)
    for other in (
        replace(analysis, columns=()),
        replace(analysis, predecessor_indices=()),
        replace(analysis, columns=(), predecessor_indices=()),
    ):
        by_name = build_plan(resolved, other)
        assert by_name == by_index
        assert [(s.after, s.slack_s, s.layer) for s in by_name.stages] == [
            (s.after, s.slack_s, s.layer) for s in by_index.stages
        ]
    assert by_index.stage("docs").slack_s == 3509.5 and by_index.stage("build").critical
    assert by_index.stage("audit").after == ("lint", "fetch")


def test_new_stage_is_the_dataclass_constructor() -> None:
    """The resolver's fast constructor makes the same stage as ``PlanStage(**values)``:
    defaults filled in, ``${...}`` text parsed, frozen, and wrong fields refused."""
    values = {
        "name": "deploy",
        "agents": ("shell",),
        "kind": "command",
        "run": "make ${params.target}",
        "inputs": FrozenMap({"artifact": "${stages.build.outputs.path}", "level": 2}),
        "when": "${params.ship}",
        "estimate_s": 90,
    }
    fast, slow = new_stage(values), PlanStage(**values)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert isinstance(fast.run, Interpolated) and isinstance(fast.inputs["artifact"], Interpolated)
    assert fast.inputs["level"] == 2 and fast.env == FrozenMap() and fast.after == ()
    with pytest.raises(FrozenInstanceError):
        fast.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError, match="kind"):
        new_stage({"name": "x", "agents": ()})
    with pytest.raises(TypeError, match="bogus"):
        new_stage({"name": "x", "agents": (), "kind": "command", "bogus": 1})
    # Made by one function per set of names: the next stage of that shape gets its own values.
    again = new_stage({**values, "name": "ship", "run": "make ship", "estimate_s": 5})
    assert again == PlanStage(**{**values, "name": "ship", "run": "make ship", "estimate_s": 5})
    assert (again.name, again.estimate_s, str(again.run)) == ("ship", 5, "make ship")
    assert fast.name == "deploy" and fast.estimate_s == 90
    reordered = dict(reversed(values.items()))
    assert new_stage(reordered) == slow
    with pytest.raises(TypeError, match="bogus"):  # a refused shape is refused each time
        new_stage({"name": "x", "agents": (), "kind": "command", "bogus": 1})


def test_new_edge_is_the_dataclass_constructor() -> None:
    fast = new_edge(before="a", after="b", span=None, kind="ref")
    slow = Edge(before="a", after="b", kind="ref")
    assert fast == slow and hash(fast) == hash(slow)
    with pytest.raises(FrozenInstanceError):
        fast.kind = "after"  # type: ignore[misc]


def test_json_matches_spec_section_5() -> None:
    data = plan_to_json(make_plan(FEATURE_DEVELOPMENT, name="feature_development"))
    spec_keys = [
        "name",
        "agent",
        "after",
        "estimate_s",
        "earliest_start_s",
        "earliest_finish_s",
        "latest_start_s",
        "latest_finish_s",
        "slack_s",
        "layer",
        "critical",
    ]
    assert list(data)[:6] == [
        "workflow",
        "stages",
        "critical_path",
        "duration_s",
        "layers",
        "max_parallelism",
    ]
    first = data["stages"][0]
    assert list(first)[: len(spec_keys)] == spec_keys
    assert {k: first[k] for k in spec_keys} == {
        "name": "specification",
        "agent": "worker",
        "after": [],
        "estimate_s": 1200,
        "earliest_start_s": 0,
        "earliest_finish_s": 1200,
        "latest_start_s": 0,
        "latest_finish_s": 1200,
        "slack_s": 0,
        "layer": 0,
        "critical": True,
    }
    assert data["workflow"] == "feature_development"
    assert data["critical_path"] == ["specification", "implementation", "testing", "deployment"]
    assert data["layers"] == [["specification"], ["implementation"], ["testing"], ["deployment"]]
    assert data["max_parallelism"] == 1
    text = json.dumps(data)
    assert '"duration_s": 10200,' in text  # an int, not 10200.0
    assert ".0," not in text and ".0]" not in text


def test_json_keeps_fractional_seconds() -> None:
    data = plan_to_json(make_plan(BRANCHES))
    docs = next(s for s in data["stages"] if s["name"] == "docs")
    assert docs["estimate_s"] == 90.5 and docs["earliest_finish_s"] == 100.5
    assert isinstance(data["stages"][0]["estimate_s"], int)


def test_text_table(golden: Callable[[Path, str], None]) -> None:
    text = plan_to_text(make_plan(BRANCHES, name="release"), colour=False)
    assert "\x1b" not in text
    lines = text.splitlines()
    build = next(line for line in lines if " build " in line)
    docs = next(line for line in lines if " docs " in line)
    assert build.startswith("*") and not docs.startswith("*")
    assert "critical path: fetch -> build -> ship" in text
    assert "duration: 1h11s (3611 s)" in text
    golden(GOLDEN / "plan_branches.txt", text)


def test_text_colour_only_when_asked() -> None:
    plan = make_plan(BRANCHES)
    coloured = plan_to_text(plan, colour=True)
    assert "\x1b[1;31m" in coloured
    critical_rows = [line for line in coloured.splitlines() if line.startswith("\x1b[1;31m")]
    assert len(critical_rows) == 3  # fetch, build, ship
    assert "\x1b" not in plan_to_text(plan, colour=False)


def test_text_of_an_empty_plan() -> None:
    resolved = make_resolved([])
    analysis, _ = analyse(resolved)
    assert analysis is not None
    text = plan_to_text(build_plan(resolved, analysis), colour=False)
    assert "(no stages)" in text and "duration: 0s (0 s)" in text


def test_spec_example_json_golden(golden: Callable[[Path, str], None]) -> None:
    data = plan_to_json(make_plan(FEATURE_DEVELOPMENT, name="feature_development"))
    golden(GOLDEN / "plan_feature_development.json", json.dumps(data, indent=2) + "\n")


# -- `alfredc plan` (real processes on real files) ---------------------------------------------


def _project(tmp_path: Path, text: str, name: str = "flow.alfred") -> Path:
    (tmp_path / "alfred.toml").write_text("", encoding="utf-8")
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _alfredc(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | (env or {})
    return subprocess.run(
        [*ALFREDC, *map(str, args)], capture_output=True, text=True, env=environment, check=False, timeout=60
    )


def test_cli_plan_json_is_the_spec_shape(tmp_path: Path) -> None:
    result = _alfredc("plan", _project(tmp_path, FEATURE_DSL), "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["workflow"] == "feature_development"
    assert data["critical_path"] == ["specification", "implementation", "testing", "deployment"]
    assert data["duration_s"] == 10200
    assert data["layers"] == [["specification"], ["implementation"], ["testing"], ["deployment"]]
    first = data["stages"][0]
    assert (first["name"], first["agent"], first["estimate_s"], first["earliest_finish_s"]) == (
        "specification",
        "spec-builder",
        1200,
        1200,
    )
    assert data["stages"][3]["after"] == ["testing"]  # present although `when` is false


def test_cli_plan_text_without_a_terminal_has_no_colour(tmp_path: Path) -> None:
    result = _alfredc("plan", _project(tmp_path, FEATURE_DSL))
    assert result.returncode == 0, result.stderr
    assert "critical path: specification -> implementation -> testing -> deployment" in result.stdout
    assert "duration: 2h50m (10200 s)" in result.stdout
    assert "\x1b" not in result.stdout


@pytest.mark.parametrize(("no_colour", "expect_colour"), [(None, True), ("1", False)])
def test_cli_plan_colours_only_a_terminal_without_no_color(
    tmp_path: Path, no_colour: str | None, expect_colour: bool
) -> None:
    path = _project(tmp_path, FEATURE_DSL)
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"TERM": "xterm"}
    if no_colour is not None:
        environment["NO_COLOR"] = no_colour
    argv = [*ALFREDC, "plan", str(path)]
    status, raw = run_on_terminal(argv, environment, stderr_to=path.parent / "stderr.txt", timeout=60)
    output = raw.decode()
    assert status == 0
    assert "critical path" in output
    assert ("\x1b[" in output) == expect_colour


def test_cli_plan_cycle_exits_1_with_the_cycle_on_stderr(tmp_path: Path) -> None:
    result = _alfredc("plan", _project(tmp_path, CYCLE_DSL), "--format", "json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "A401" in result.stderr and "dependency cycle: a -> b -> c -> a" in result.stderr


def test_cli_plan_missing_file_exits_2(tmp_path: Path) -> None:
    result = _alfredc("plan", tmp_path / "nope.alfred")
    assert result.returncode == 2
    assert "A001" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_plan_params_and_bad_param_syntax(tmp_path: Path) -> None:
    path = _project(tmp_path, FEATURE_DSL)
    result = _alfredc(
        "plan", path, "--format", "json", "--param", "feature_name=signup", "-p", "auto_deploy=true"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["params"]["auto_deploy"] is True
    bad = _alfredc("plan", path, "--param", "auto_deploy")
    assert bad.returncode == 2
    assert "NAME=VALUE" in bad.stderr
    unknown = _alfredc("plan", path, "--workflow", "feature_developmnt")
    assert unknown.returncode == 1
    assert "A209" in unknown.stderr


def test_cli_plan_prints_warnings_but_succeeds(tmp_path: Path) -> None:
    result = _alfredc("plan", _project(tmp_path, GROUPED_DSL), "--workflow", "launch", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "A503" in result.stderr and "`spec-draft` is already implied by" in result.stderr
    data = json.loads(result.stdout)
    names = [stage["name"] for stage in data["stages"]]
    assert names == [
        "spec-draft",
        "auth.read",
        "auth.sign-off",
        "billing.read",
        "billing.sign-off",
        "release",
    ]
    assert data["stages"][1]["group"] == ["auth"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=5), json_values | st.lists(st.dictionaries(st.text(max_size=3), json_values))
    )
)
def test_dumps_round_trips(data: dict[str, object]) -> None:
    assert json.loads(dumps(data)) == data


def _dumps_reference(data: dict[str, Any]) -> str:
    """dumps' layout written with json.dumps for every piece."""
    lines = []
    for number, (key, value) in enumerate(data.items()):
        comma = "," if number < len(data) - 1 else ""
        name = json.dumps(key, ensure_ascii=False)
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            items = ",\n".join(f"    {json.dumps(item, ensure_ascii=False)}" for item in value)
            lines.append(f"  {name}: [\n{items}\n  ]{comma}")
        else:
            lines.append(f"  {name}: {json.dumps(value, ensure_ascii=False)}{comma}")
    return "{\n" + "\n".join(lines) + "\n}\n" if lines else "{}\n"


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=5),
        json_values | st.floats() | st.lists(st.dictionaries(st.text(max_size=3), json_values | st.floats())),
    )
)
def test_dumps_writes_what_json_dumps_writes(data: dict[str, Any]) -> None:
    """The same bytes as json.dumps for every piece (non-ASCII text, NaN and infinities
    included), whichever encoder dumps uses."""
    assert dumps(data) == _dumps_reference(data)


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=5), json_values | st.lists(st.dictionaries(st.text(max_size=3), json_values))
    ),
    st.integers(min_value=1, max_value=64),
)
def test_dump_writes_the_text_of_dumps_in_bounded_pieces(data: dict[str, Any], chunk: int) -> None:
    """`plan --format json` writes a large plan in pieces: the same text, never one piece
    much larger than a chunk plus one line."""
    pieces: list[str] = []
    dump(data, pieces.append, chunk=chunk)
    assert "".join(pieces) == dumps(data)
    longest_line = max(len(line) + 1 for line in dumps(data).split("\n"))
    # a piece is whole lines: a chunk's worth and the line that crossed it (the last
    # line of a list may come with the closing `}`)
    assert all(len(piece) < chunk + longest_line + len("}\n") for piece in pieces)


def test_dumps_refuses_a_circular_value_and_then_works_again() -> None:
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular"):
        dumps({"stages": [{"x": looped}]})
    again = {"stages": [{"x": [1]}, {"x": [1]}]}
    assert dumps(again) == '{\n  "stages": [\n    {"x": [1]},\n    {"x": [1]}\n  ]\n}\n'


def test_dumps_puts_each_stage_on_its_own_line() -> None:
    text = dumps(plan_to_json(make_plan(BRANCHES)))
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert lines[1] == '  "workflow": "w",'
    assert sum(line.startswith('    {"name": ') for line in lines) == len(BRANCHES)


def _plain_text(plan: Plan) -> str:
    """`plan --format json` as it was written before dump_plan: the JSON data, then dumps."""
    return dumps(plan_to_json(plan))


def _written(plan: Plan, chunk: int = 1 << 20) -> str:
    pieces: list[str] = []
    dump_plan(plan, pieces.append, chunk=chunk)
    return "".join(pieces)


def _compiled(path: Path, workflow: str | None = None, params: dict[str, str] | None = None) -> Plan:
    plan, diagnostics = compile_path(str(path), workflow, params or {})
    assert plan is not None, diagnostics
    return plan


def test_plan_json_writer_writes_what_dumps_writes_for_every_kind_of_stage() -> None:
    """dump_plan writes the stages' lines from the stages themselves: the same text as the
    JSON data through dumps, with approvals, costs and a budget, simulation figures,
    for_each and matrix fan-out, `use` groups, several agents, `when` expressions,
    incremental and cleanup stages, fractional and large numbers."""
    plans = [
        _compiled(EVERY_KIND, "release"),
        _compiled(EVERY_KIND, "service", {"service": "naïve \"quoted\""}),
        _compiled(EXAMPLES / "bug_fix.alfred", None, {"issue": "7"}),
        _compiled(EXAMPLES / "code_review.alfred", None, {"pull_request": "12"}),
        _compiled(EXAMPLES / "feature_development.alfred", None, {"feature_name": "login"}),
        _compiled(EXAMPLES / "templates.alfred", "release_train"),
    ]
    release = plans[0]
    kinds = {key for stage in plan_to_json(release)["stages"] for key in stage}
    assert kinds >= {"approve", "cost", "spread_s", "fail_rate", "for_each", "fan_out", "matrix",
                     "sources", "produces", "run_if"}
    assert any(stage.when is not True for stage in release.stages)
    for plan in plans:
        assert _written(plan) == _plain_text(plan), plan.workflow
    # Bounded pieces: a small chunk cuts the text where it likes; the text is the same.
    assert _written(release, chunk=100) == _plain_text(release)


def test_plan_json_writer_keeps_the_text_across_blocks_of_stages() -> None:
    """A plan of many stages (several of the writer's blocks, more distinct figures than it
    keeps from one block to the next), each line its stage's."""
    rows: list[Row] = [
        (f"s{i}", [f"s{i - 1}"] if i % 7 else [], (i % 13) * 0.25 + i / 1024) for i in range(5000)
    ]
    plan = make_plan(rows)
    text = _written(plan)
    assert text == _plain_text(plan)
    lines = text.splitlines()
    assert sum(line.startswith('    {"name": ') for line in lines) == 5000
    assert json.loads(text)["stages"][4999]["name"] == "s4999"


def test_plan_json_writer_writes_values_of_other_types_as_json_does() -> None:
    """Hand-made stages whose values are not the resolver's usual ones (no agent, NaN and
    infinite figures, a bool layer, an int `critical`, text needing escapes, an empty cost
    map of each stage's own) are written as the JSON data's encoder writes them."""
    base = make_plan(BRANCHES)
    odd = [
        replace(base.stages[0], agents=(), estimate_s=math.inf, slack_s=-0.0, layer=True),
        replace(base.stages[1], name='a "quoted" \\ name\nwith é', estimate_s=math.nan, priority=-7),
        replace(base.stages[2], critical=1, earliest_start_s=1e300, latest_start_s=-math.inf,  # type: ignore[arg-type]
                group=("g\u2028", "\x00")),
        replace(base.stages[3], when="${params.go} and ünïcode", cost=FrozenMap(), estimate_s=0.1 + 0.2),
        replace(base.stages[4], cost=FrozenMap({"usd": 0.5}), layer=2**70, estimate_s=2**53 + 1),
        *(replace(stage, cost=FrozenMap()) for stage in base.stages),  # an empty map of its own
    ]
    plan = replace(base, stages=tuple(odd))
    assert _written(plan) == _plain_text(plan)
    stages = json.loads(_written(plan))["stages"]
    assert stages[0]["agent"] is None and stages[0]["layer"] is True and stages[1]["priority"] == -7
    assert math.isnan(stages[1]["estimate_s"]) and stages[2]["critical"] == 1
    assert stages[4]["cost"] == {"usd": 0.5} and "cost" not in stages[5]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=6),
            st.lists(st.floats() | st.integers(min_value=-(2**60), max_value=2**60), min_size=6, max_size=6),
            st.integers(min_value=-5, max_value=10**6) | st.booleans(),
            st.booleans() | st.integers(min_value=0, max_value=2),
            st.booleans() | st.text(max_size=8),
            st.lists(st.text(max_size=4), max_size=3),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_plan_json_writer_agrees_with_dumps_on_any_figures(
    rows: list[tuple[str, list[float], int, int, bool | str, list[str]]],
) -> None:
    stages = tuple(
        PlanStage(
            name=name, agents=tuple(agents), kind="command", after=tuple(agents[:1]),
            estimate_s=numbers[0], earliest_start_s=numbers[1], earliest_finish_s=numbers[2],
            latest_start_s=numbers[3], latest_finish_s=numbers[4], slack_s=numbers[5],
            layer=layer, priority=layer, critical=critical, when=when,  # type: ignore[arg-type]
        )
        for name, numbers, layer, critical, when, agents in rows
    )
    plan = Plan(workflow="w", source="w.alfred", stages=stages)
    assert _written(plan) == _plain_text(plan)


def test_cli_plan_json_of_every_kind_of_stage(tmp_path: Path) -> None:
    """`alfredc plan --format json` prints the plan's JSON data, in dumps' layout."""
    result = subprocess.run(
        [*ALFREDC, "plan", "--format", "json", str(EVERY_KIND), "--workflow", "release"],
        capture_output=True, text=True, encoding="utf-8", cwd=tmp_path, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == _plain_text(_compiled(EVERY_KIND, "release"))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (4.5, "4.5s"),
        (90.5, "1m30.5s"),
        (5400, "1h30m"),
        (3611, "1h11s"),
        (60.25, "1m0.25s"),
    ],
)
def test_durations_in_the_table_keep_fractions(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text
