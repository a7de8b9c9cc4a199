"""Plan compilation (build_plan) and the plan renderers (JSON of spec section 5, text table)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from _h3_workflows import FEATURE_DEVELOPMENT, Row, make_plan, make_resolved

from alfred_dsl._graph import analyse
from alfred_dsl._plan import build_plan
from alfred_dsl.render import plan_to_json, plan_to_text

GOLDEN = Path(__file__).parent / "golden" / "render"

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
