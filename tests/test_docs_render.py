"""Workflow docs (Markdown and static HTML) and the inline-SVG graph."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _h6_plans import feature_plan, make_plan
from hypothesis import given, settings, strategies as st

from alfred_dsl.render._docs import (
    ParamDoc,
    doc_from_plan,
    workflow_html,
    workflow_markdown,
    write_html,
    write_markdown,
)
from alfred_dsl.render._svg import count_crossings, layout_plan, plan_to_svg

SVG = "{http://www.w3.org/2000/svg}"


def _table_rows(markdown: str, header: str) -> list[list[str]]:
    """The cells of the Markdown table whose header row starts with ``| header |``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_markdown_page_has_every_section_and_figure() -> None:
    doc = doc_from_plan(feature_plan(), params=[ParamDoc(name="feature_name", type="string")])
    page = workflow_markdown(doc)
    assert page.startswith("# Workflow feature_development\n")
    assert "From specification to documentation" in page
    assert "- Planned duration: **2h55m**" in page
    assert "- Critical path: specification → implementation → testing → deployment" in page
    stages = _table_rows(page, "Stage")
    assert [row[0] for row in stages] == [
        "★ specification", "auth.design", "auth.build", "★ implementation", "docs", "★ testing",
        "★ deployment",
    ]
    testing = stages[5]
    assert testing == ["★ testing", "worker", "implementation, auth.build", "30m", "1", "30m", "low", "0s"]
    assert stages[4][-1] == "2h15m"      # docs: slack
    assert _table_rows(page, "Param") == [["feature_name", "string", "*required*", ""]]
    assert _table_rows(page, "Agent") == [["worker", "command", "build", "2"]]
    mermaid = page.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert mermaid.startswith("flowchart")
    assert "class " in mermaid and "critical" in mermaid      # the critical path is highlighted


def test_markdown_cells_escape_pipes_backticks_and_html() -> None:
    doc = doc_from_plan(
        make_plan("w", [("a", [], 1)]),
        params=[
            ParamDoc(name="p", type="string", default="a|b", description="use `x` | <script>y</script>\nnext")
        ],
    )
    rows = _table_rows(workflow_markdown(doc), "Param")
    assert rows == [["p", "string", "a\\|b", "use \\`x\\` \\| &lt;script&gt;y&lt;/script&gt; next"]]


def test_html_page_draws_the_graph_inline_without_script() -> None:
    html = workflow_html(doc_from_plan(feature_plan()))
    assert "<script" not in html.lower()
    assert html.count('<g class="stage') == 7
    svg = html[html.index("<svg") : html.index("</svg>") + 6]
    root = ET.fromstring(svg)                                    # well-formed SVG
    critical = root.findall(f".//{SVG}g[@class='stage critical']")
    on_path = ["specification", "implementation", "testing", "deployment"]
    assert [g.get("data-stage") for g in critical] == on_path
    assert len(root.findall(f".//{SVG}path[@class='edge critical']")) == 3
    group = root.find(f".//{SVG}g[@class='group']")
    assert group is not None and group.findtext(f"{SVG}text") == "auth"


def test_group_rectangle_holds_its_stages_and_no_other() -> None:
    plan = feature_plan()
    layout = layout_plan(plan)
    root = ET.fromstring(plan_to_svg(plan))
    rect = root.find(f".//{SVG}g[@class='group']/{SVG}rect")
    assert rect is not None
    x, y = float(rect.get("x", 0)), float(rect.get("y", 0))
    w, h = float(rect.get("width", 0)), float(rect.get("height", 0))
    for box in layout.boxes:
        inside = x <= box.x and box.x + box.width <= x + w and y <= box.y and box.y + box.height <= y + h
        assert inside == box.name.startswith("auth."), box.name


def test_svg_escapes_hostile_names() -> None:
    hostile = "a<script>alert(1)</script>"
    plan = make_plan("w<script>", [(hostile, [], 1), ("b&c", [hostile], 2)])
    svg = plan_to_svg(plan, id_prefix="x\"><script>")
    assert "<script" not in svg
    ET.fromstring(svg)


def test_barycenter_ordering_removes_avoidable_crossings() -> None:
    # Declared so that the naive order crosses: a->y, b->x.
    plan = make_plan("w", [("a", [], 1), ("b", [], 1), ("x", ["b"], 1), ("y", ["a"], 1)])
    layout = layout_plan(plan)
    assert count_crossings([["a", "b"], ["x", "y"]], [("a", "y"), ("b", "x")]) == 1
    assert count_crossings(layout.unit_columns, layout.unit_edges) == 0


@st.composite
def _dags(draw: st.DrawFn) -> list[tuple[str, list[str], float]]:
    count = draw(st.integers(1, 14))
    rows = []
    for i in range(count):
        deps = draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=3, unique=True)) if i else []
        rows.append((f"s{i}", [f"s{d}" for d in deps], float(draw(st.integers(0, 3600)))))
    return rows


@settings(max_examples=60, deadline=None)
@given(_dags())
def test_layout_never_overlaps_boxes_and_edges_point_right(rows: list[tuple[str, list[str], float]]) -> None:
    plan = make_plan("w", rows)
    layout = layout_plan(plan)
    boxes = {b.name: b for b in layout.boxes}
    assert set(boxes) == {s.name for s in plan.stages}
    for a in layout.boxes:
        assert a.x >= 0 and a.x + a.width <= layout.width and a.y >= 0 and a.y + a.height <= layout.height
        for b in layout.boxes:
            if a.name < b.name:
                side = a.x + a.width <= b.x or b.x + b.width <= a.x
                apart = side or a.y + a.height <= b.y or b.y + b.height <= a.y
                assert apart, (a, b)
    for stage in plan.stages:
        for dep in stage.after:
            assert boxes[dep].x + boxes[dep].width < boxes[stage.name].x   # edges point right
    ET.fromstring(plan_to_svg(plan))


def test_site_files_link_to_each_other(tmp_path: Path) -> None:
    docs = [doc_from_plan(feature_plan()), doc_from_plan(make_plan("other", [("a", [], 60)]))]
    md = write_markdown(docs, tmp_path / "md")
    assert [p.name for p in md] == ["index.md", "feature_development.md", "other.md"]
    index = (tmp_path / "md" / "index.md").read_text()
    assert "[feature_development](feature_development.md)" in index and "[other](other.md)" in index
    html = write_html(docs, tmp_path / "html")
    assert [p.name for p in html] == ["index.html", "feature_development.html", "other.html"]
    index_html = (tmp_path / "html" / "index.html").read_text()
    assert 'href="feature_development.html"' in index_html and 'href="other.html"' in index_html


def _examples(examples_dir: Path) -> list[Path]:
    found = sorted(p for p in examples_dir.rglob("*.alfred") if "broken" not in p.parts)
    if not found:
        pytest.skip("no examples yet")
    return found


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_docs_over_the_examples(fmt: str, examples_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("alfred_dsl._lower", reason="the .alfred parser (H1) has not landed")
    from click.testing import CliRunner

    from alfred_dsl.cli._docs import docs

    files = [str(p) for p in _examples(examples_dir)]
    args = [*files, "-o", str(tmp_path), "--format", fmt]
    result = CliRunner().invoke(docs, args, standalone_mode=False, catch_exceptions=False)
    assert result.return_value == 0, result.output
    index = (tmp_path / f"index.{fmt}").read_text(encoding="utf-8")
    pages = sorted(p for p in tmp_path.iterdir() if p.name != f"index.{fmt}")
    assert pages, "no workflow page written"
    for page in pages:
        assert page.name in index
        text = page.read_text(encoding="utf-8")
        if fmt == "md":
            assert "## Stages" in text and "```mermaid" in text and "Planned duration" in text
        else:
            assert "<svg" in text and "<script" not in text.lower()


_YAML = """\
agents:
  worker: {kind: command, run: ["true"], capabilities: [build], concurrency: 2}
workflows:
  release:
    description: Build and publish
    params: {version: {type: string}, dry: {type: bool, default: false}}
    stages:
      build: {agent: worker, estimate: 10m, run: "echo ${params.version}"}
      test: {agent: worker, after: [build], estimate: 5m}
      publish: {agent: worker, after: [test], when: "${params.dry == false}", estimate: 1m}
"""
_BROKEN_YAML = """\
agents:
  worker: {kind: command, run: ["true"]}
workflows:
  broken:
    stages:
      only: {agent: nobody}
"""


def test_docs_command_compiles_each_workflow_of_a_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from alfred_dsl.cli._docs import docs

    source = tmp_path / "wf.yaml"
    source.write_text(_YAML, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(_BROKEN_YAML, encoding="utf-8")
    out = tmp_path / "out"
    # standalone_mode=False: the command's return value is the exit status, as under `alfredc`.
    result = CliRunner().invoke(docs, [str(source), str(bad), "-o", str(out)], standalone_mode=False)
    assert result.return_value == 1, result.output      # `broken` has an unknown agent
    assert "A201" in result.output
    release = (out / "release.md").read_text(encoding="utf-8")
    assert "placeholder values for version" in release
    assert "- Planned duration: **16m**" in release
    assert _table_rows(release, "Param")[0] == ["version", "string", "*required*", ""]
    broken = (out / "broken.md").read_text(encoding="utf-8")
    assert "does not compile" in broken and "## Stages" not in broken
    absent = str(tmp_path / "absent.alfred")
    missing = CliRunner().invoke(docs, [absent, "-o", str(out)], standalone_mode=False)
    assert missing.return_value == 2 and "A001" in missing.output
