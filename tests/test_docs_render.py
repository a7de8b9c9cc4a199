"""Workflow docs (Markdown and static HTML) and the inline-SVG graph."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from _report_plans import feature_plan, make_plan
from conftest import EXAMPLES, REPO_ROOT, run_alfredc
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


#: The example files documented under docs/examples/ (the broken ones are left out).
EXAMPLE_DOCS = REPO_ROOT / "docs" / "examples"
EXAMPLE_TITLE = "Example workflows"


def _example_sources() -> list[Path]:
    return [
        *sorted(EXAMPLES.glob("*.alfred")),
        *sorted(EXAMPLES.glob("*.yaml")),
        *sorted(EXAMPLES.glob("*.json")),
        EXAMPLES / "demo" / "pipeline.alfred",
    ]


def _render_example_docs(out: Path, fmt: str) -> None:
    # Absolute paths in, run from elsewhere: the pages must not depend on either.
    files = [str(p) for p in _example_sources()]
    args = ["docs", *files, "-o", str(out), "--format", fmt, "--title", EXAMPLE_TITLE]
    result = run_alfredc(*args, cwd=out.parent)
    assert result.status == 0, result.stderr


def test_committed_example_docs_are_fresh(tmp_path: Path, update_golden: bool) -> None:
    out = tmp_path / "examples"
    _render_example_docs(out, "md")
    fresh = {p.name: p.read_text(encoding="utf-8") for p in sorted(out.iterdir())}
    if update_golden:
        for stale in EXAMPLE_DOCS.glob("*.md"):
            stale.unlink()
        EXAMPLE_DOCS.mkdir(parents=True, exist_ok=True)
        for name, text in fresh.items():
            (EXAMPLE_DOCS / name).write_text(text, encoding="utf-8")
        return
    committed = {p.name: p.read_text(encoding="utf-8") for p in sorted(EXAMPLE_DOCS.glob("*.md"))}
    hint = "docs/examples/ is stale: `pytest tests/test_docs_render.py --update-golden` rewrites it"
    assert sorted(committed) == sorted(fresh), hint
    for name, text in fresh.items():
        assert committed[name] == text, f"{name}: {hint}"
    # Deterministic and relocatable: no build directory, checkout path or date in any page.
    for text in fresh.values():
        assert str(tmp_path) not in text and str(REPO_ROOT) not in text
        assert re.search(r"\b20\d\d-\d\d-\d\d", text) is None
    index = fresh["index.md"]
    assert index.startswith(f"# {EXAMPLE_TITLE}\n")
    linked = re.findall(r"\]\(([^)]+\.md)\)", index)
    assert sorted(linked) == sorted(n for n in fresh if n != "index.md")
    assert "| examples/release.yaml |" in index and "| examples/demo/pipeline.alfred |" in index


def test_example_docs_as_html_draw_every_stage_inline_without_script(tmp_path: Path) -> None:
    out = tmp_path / "site"
    _render_example_docs(out, "html")
    pages = sorted(p for p in out.iterdir() if p.name != "index.html")
    committed = sorted(p.stem for p in EXAMPLE_DOCS.glob("*.md") if p.name != "index.md")
    assert sorted(p.stem for p in pages) == committed
    index = (out / "index.html").read_text(encoding="utf-8")
    for page in pages:
        assert f'href="{page.name}"' in index
        html = page.read_text(encoding="utf-8")
        assert "<script" not in html.lower() and str(tmp_path) not in html
        assert "src=\"http" not in html and "href=\"http" not in html        # nothing loaded from the network
        root = ET.fromstring(html[html.index("<svg") : html.index("</svg>") + 6])  # inline, well-formed
        groups = root.iter(f"{SVG}g")
        drawn = [g.get("data-stage") for g in groups if "stage" in (g.get("class") or "").split()]
        listed = _table_rows((EXAMPLE_DOCS / f"{page.stem}.md").read_text(encoding="utf-8"), "Stage")
        assert drawn and sorted(drawn) == sorted(row[0].removeprefix("★ ") for row in listed), page.name


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
