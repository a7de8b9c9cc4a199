"""Graph renderers: Mermaid, DOT and JSON (golden files, escaping, clusters, critical path)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from _workflows import CYCLE_DSL, FEATURE_DSL, GROUPED_DSL, Row, make_plan
from conftest import ALFREDC

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


# -- `alfredc graph` (real processes on real files) ---------------------------------------------


def _project(tmp_path: Path, text: str) -> Path:
    (tmp_path / "alfred.toml").write_text("", encoding="utf-8")
    path = tmp_path / "flow.alfred"
    path.write_text(text, encoding="utf-8")
    return path


def _alfredc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ALFREDC, *map(str, args)], capture_output=True, text=True, check=False, timeout=60
    )


def test_cli_graph_formats(tmp_path: Path) -> None:
    path = _project(tmp_path, GROUPED_DSL)
    mermaid = _alfredc("graph", path, "--workflow", "launch")
    assert mermaid.returncode == 0, mermaid.stderr
    assert mermaid.stdout.startswith("flowchart LR\n")
    assert 'subgraph g0["auth"]' in mermaid.stdout and 'subgraph g1["billing"]' in mermaid.stdout
    assert '["auth.sign-off<br/>5m"]' in mermaid.stdout
    dot = _alfredc("graph", path, "-w", "launch", "--format", "dot")
    assert dot.returncode == 0, dot.stderr
    assert '"auth.read" -> "auth.sign-off"' in dot.stdout
    assert dot.stdout.count('subgraph "cluster_') == 2
    data = json.loads(_alfredc("graph", path, "-w", "launch", "--format", "json").stdout)
    edges = {(edge["from"], edge["to"]) for edge in data["edges"]}
    assert {
        ("spec-draft", "auth.read"),
        ("auth.sign-off", "release"),
        ("billing.sign-off", "release"),
    } <= edges
    assert data["critical_path"][0] == "spec-draft" and data["critical_path"][-1] == "release"


def test_cli_graph_output_file(tmp_path: Path) -> None:
    path = _project(tmp_path, FEATURE_DSL)
    target = tmp_path / "graph.dot"
    result = _alfredc("graph", path, "--format", "dot", "-o", target)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert target.read_text(encoding="utf-8").startswith('digraph "feature_development" {')
    missing = _alfredc("graph", path, "-o", tmp_path / "no" / "such" / "dir.mmd")
    assert missing.returncode == 2
    assert "cannot write" in missing.stderr or "does not exist" in missing.stderr.lower()


def test_cli_graph_of_a_cycle_fails(tmp_path: Path) -> None:
    result = _alfredc("graph", _project(tmp_path, CYCLE_DSL))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "dependency cycle: a -> b -> c -> a" in result.stderr
