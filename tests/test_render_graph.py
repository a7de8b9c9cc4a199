"""Graph renderers: Mermaid, DOT and JSON (golden files, escaping, clusters, critical path)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from _h3_workflows import Row, make_plan

from alfred_dsl.render import graph_to_json, to_dot, to_mermaid

GOLDEN = Path(__file__).parent / "golden" / "render"

#: A workflow that includes a template twice (`use review(...) as auth`, `as billing`),
#: one of them nesting another alias, with names holding `.` and `-`.
GROUPED: list[Row] = [
    ("spec-draft", [], 600),
    ("auth.review", ["spec-draft"], 1800),
    ("auth.sign-off", ["auth.review"], 300),
    ("billing.review", ["spec-draft"], 900),
    ("billing.qa.smoke", ["billing.review"], 120),
    ("billing.sign-off", ["billing.qa.smoke"], 300),
    ("release", ["auth.sign-off", "billing.sign-off"], 60),
]
GROUPS = {
    "auth.review": ("auth",),
    "auth.sign-off": ("auth",),
    "billing.review": ("billing",),
    "billing.qa.smoke": ("billing", "qa"),
    "billing.sign-off": ("billing",),
}


@pytest.fixture
def plan():  # type: ignore[no-untyped-def]
    return make_plan(GROUPED, groups=GROUPS, name="launch")


def test_mermaid_golden(plan, golden: Callable[[Path, str], None]) -> None:  # type: ignore[no-untyped-def]
    text = to_mermaid(plan)
    golden(GOLDEN / "launch.mmd", text)
    assert text.startswith("flowchart LR\n")
    assert text.count("subgraph ") == 3 and text.count("\n  end\n") == 2  # auth, billing, billing.qa
    assert 's1["auth.review<br/>30m"]' in text
    assert "class s0,s1,s2,s6 critical" in text


def test_mermaid_highlights_exactly_the_critical_path_edges(plan) -> None:  # type: ignore[no-untyped-def]
    text = to_mermaid(plan)
    links = re.findall(r"^  (s\d+) --> (s\d+)$", text, re.M)
    styled = re.search(r"^  linkStyle ([\d,]+) ", text, re.M)
    assert styled is not None
    ids = {f"s{i}": name for i, (name, _, _) in enumerate(GROUPED)}
    chosen = [(ids[links[int(i)][0]], ids[links[int(i)][1]]) for i in styled.group(1).split(",")]
    assert chosen == [
        ("spec-draft", "auth.review"),
        ("auth.review", "auth.sign-off"),
        ("auth.sign-off", "release"),
    ]


def test_dot_golden(plan, golden: Callable[[Path, str], None]) -> None:  # type: ignore[no-untyped-def]
    text = to_dot(plan)
    golden(GOLDEN / "launch.dot", text)
    assert text.startswith('digraph "launch" {')
    assert text.count('subgraph "cluster_') == 3
    assert '"auth.review" -> "auth.sign-off" [color="#d62728", penwidth=2.5];' in text
    assert '"billing.review" -> "billing.qa.smoke";' in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_dot_is_accepted_by_graphviz(plan) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run(["dot", "-Tsvg"], input=to_dot(plan), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_json_golden(plan, golden: Callable[[Path, str], None]) -> None:  # type: ignore[no-untyped-def]
    data = graph_to_json(plan)
    golden(GOLDEN / "launch.json", json.dumps(data, indent=2) + "\n")
    assert [n["id"] for n in data["nodes"]] == [name for name, _, _ in GROUPED]
    assert {"from": "spec-draft", "to": "auth.review", "critical": True} in data["edges"]
    assert {"from": "spec-draft", "to": "billing.review", "critical": False} in data["edges"]
    assert len(data["edges"]) == 7
    assert data["duration_s"] == 2760


def test_names_that_need_escaping_are_quoted() -> None:
    # Names never hold quotes in the DSL, but a YAML document could: the output must stay valid.
    rows: list[Row] = [('say "hi"', [], 1), ("back\\slash", ['say "hi"'], 1), ("a<b>#c", [], 1)]
    plan = make_plan(rows)
    dot = to_dot(plan)
    assert '"say \\"hi\\"" -> "back\\\\slash"' in dot
    mermaid = to_mermaid(plan)
    assert 'say #quot;hi#quot;<br/>1s"]' in mermaid
    assert "a#lt;b#gt;#35;c" in mermaid
    assert all(line.count('"') % 2 == 0 for line in mermaid.splitlines())


def test_graph_of_an_empty_plan() -> None:
    plan = make_plan([])
    assert to_mermaid(plan).startswith("flowchart LR")
    assert "linkStyle" not in to_mermaid(plan)
    assert to_dot(plan).rstrip().endswith("}")
    assert graph_to_json(plan)["nodes"] == []
