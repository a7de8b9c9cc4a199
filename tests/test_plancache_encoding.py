"""The plan cache's encoding is exact: every plan the compiler makes comes back from an entry
as the same plan, field by field and type by type. An entry is not read back when it is
written (that cost 100 ms per 2,000 stages), so this is what guarantees it; and an entry
edited to hold something else is still ignored."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, REPO_ROOT

from alfred_dsl._diagnostics import Diagnostic, Edit, Label, Severity
from alfred_dsl._render_diag import render_text
from alfred_dsl._source import SourceFile, Span
from alfred_dsl.compiler import _plancache
from alfred_dsl.compiler._pipeline import compile_loaded
from alfred_dsl.compiler._plan import FrozenMap, Hook, Plan, PlanAgent, PlanStage
from alfred_dsl.compiler.load import load

EVERY_KIND = Path(__file__).parent / "data" / "plan" / "every_kind.alfred"
FENCE = re.compile(r"^```alfred([^\n]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def _examples() -> list[Path]:
    suffixes = (".alfred", ".yaml", ".json")
    found = [p for p in EXAMPLES.rglob("*") if p.suffix in suffixes and "broken" not in p.parts]
    return sorted([*found, EVERY_KIND])


def _doc_blocks() -> list[tuple[str, str]]:
    """(doc:line, text) of each ``alfred`` block of the docs and the README not marked broken."""
    found = []
    for doc in sorted([*(REPO_ROOT / "docs").glob("*.md"), REPO_ROOT / "README.md"]):
        text = doc.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if "broken" not in match.group(1).split():
                found.append((f"{doc.name}:{text.count(chr(10), 0, match.start()) + 1}", match.group(2)))
    return found


def _plans(path: Path) -> list[tuple[Plan, list[Any], list[SourceFile]]]:
    """Each workflow of ``path`` compiled, required params given a value."""
    workspace, loaded = load(str(path))
    if workspace is None:
        return []
    names = sorted({w for document in workspace.documents for w in _workflow_names(document.source.text)})
    made = []
    for workflow in names or [None]:
        params: dict[str, str] = {}
        for _ in range(10):
            workspace, loaded = load(str(path))
            plan, diagnostics = compile_loaded(workspace, loaded, workflow, params)
            missing = [d for d in diagnostics if d.code == "A213"]
            if plan is not None or not missing:
                break
            for diagnostic in missing:
                params[diagnostic.message.split("`")[1]] = "42"
        if plan is not None and workspace is not None:
            made.append((plan, diagnostics, [document.source for document in workspace.documents]))
    return made


def _workflow_names(text: str) -> list[str]:
    return re.findall(r"^\s*workflow\s+([A-Za-z_][\w-]*)", text, re.MULTILINE)


def _same(a: Any, b: Any, where: str = "plan") -> None:
    """``a`` and ``b`` are the same value: same types all the way down, spans included
    (which ``==`` on a plan does not compare), key order included."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if dataclasses.is_dataclass(a):
        for field in dataclasses.fields(a):
            _same(getattr(a, field.name), getattr(b, field.name), f"{where}.{field.name}")
    elif isinstance(a, FrozenMap | dict):
        assert list(a) == list(b), where
        for key in a:
            _same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), where
        for number, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{number}]")
    elif isinstance(a, Span):
        assert (a.source, a.start, a.end) == (b.source, b.start, b.end), where
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
        if hasattr(a, "template"):  # an interpolating string: parsed again, the same way
            assert (a.template, a.problem) == (b.template, b.problem), where


def _round_trip(plan: Plan, diagnostics: list[Any], sources: list[SourceFile]) -> None:
    body = _plancache._entry_body({"key": 1}, sources, plan, diagnostics)
    assert body is not None, "the plan could not be stored"
    content = json.loads(body)
    again = _plancache.decode(content["plan"], sources)
    _same(plan, again)
    assert again == plan and hash(again) == hash(plan)
    assert again.to_json() == plan.to_json()
    again_diagnostics = list(_plancache.decode(content["diagnostics"], sources))
    _same(diagnostics, again_diagnostics, "diagnostics")
    assert render_text(again_diagnostics) == render_text(diagnostics)


@pytest.mark.parametrize("path", _examples(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_example_comes_back_from_an_entry_as_it_was_compiled(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    plans = _plans(path)
    if path == EVERY_KIND or path.name == "pipeline.alfred":
        assert plans
    for plan, diagnostics, sources in plans:
        _round_trip(plan, diagnostics, sources)


def test_every_docs_example_comes_back_from_an_entry_as_it_was_compiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git").mkdir()
    shutil.copytree(EXAMPLES / "myteam", tmp_path / "myteam")
    monkeypatch.chdir(tmp_path)
    compiled = 0
    for number, (where, text) in enumerate(_doc_blocks()):
        path = tmp_path / f"example{number}.alfred"
        path.write_text(text, encoding="utf-8")
        for plan, diagnostics, sources in _plans(path):
            try:
                _round_trip(plan, diagnostics, sources)
            except AssertionError as error:
                raise AssertionError(f"{where}: {error}") from error
            compiled += 1
    assert compiled >= 20  # the docs hold dozens of workflows; most compile to a plan


def test_every_kind_of_stage_is_in_the_generated_plan() -> None:
    """The plan of tests/data/plan/every_kind.alfred sets each stage field somewhere (so the
    round trip above covers each), but the ones no syntax reaches."""
    stages = [stage for plan, _, _ in _plans(EVERY_KIND) for stage in plan.stages]
    defaults = {field.name: _plancache._field_default(field) for field in dataclasses.fields(stages[0])}
    set_somewhere = {name for name, default in defaults.items()
                     if any(getattr(stage, name) != default for stage in stages)}
    assert {"approve", "cost", "for_each", "fan_out", "matrix", "sources", "produces", "run_if",
            "when", "group", "spread_s", "fail_rate", "timeout_s", "retries",
            "priority"} <= set_somewhere, sorted(set(defaults) - set_somewhere)


def _every_field_set(source: SourceFile) -> tuple[Plan, list[Diagnostic]]:
    """A plan and diagnostics built by hand with every field of every class away from its
    default, values of each type an entry carries (the compiler never sets some of them)."""
    span = source.span(3, 9)
    M = FrozenMap
    nested = {"a": [1, 2.5, None, True, "${params.x}"], "b": {"c": "-0.0", "d": float("-inf")}}
    stage = PlanStage(
        name="g.s", group=("g",), agents=("sh", "model"), kind="mcp", run=("echo", "${params.x}"),
        call="pkg.mod:fn", inputs=M({"x": "${stages.a.outputs.y}", "n": 3, "deep": nested}),
        env=M({"E": "${secrets.TOKEN}", "F": "plain ${"}), cwd="/somewhere", after=("a", "b"),
        outputs=("y",), estimate_s=1.5, spread_s=0.25, fail_rate=0.125, priority=-2, timeout_s=60,
        retries=3, backoff_s=2, max_backoff_s=30.0, max_log=None, resources=M({"cpu": 2, "memory": "4GiB"}),
        when="${params.x == 'y'}", on_failure="continue", description="d \u00e9\u2603 \"q\"\n",
        fan_out="g.t", matrix=M({"python": "3.11"}), for_each=("a", "items"),
        approve=M({"by": "team", "users": ("ann",), "timeout_s": 5.0, "on_timeout": "reject"}),
        cost=M({"usd": 0.4, "tokens": 20000}), mcp=M({"tool": "t", "arguments": {"q": "${params.x}"}}),
        sources=("src/**",), produces=("out/*",), run_if="always", earliest_start_s=1,
        earliest_finish_s=2.5, latest_start_s=3, latest_finish_s=4.5, slack_s=1e-9, layer=7,
        critical=True, span=span,
    )
    bad = PlanStage(name="b", agents=(), kind="command", run="echo ${ not closed", when=False,
                    estimate_s=10**20, span=None)
    agent = PlanAgent(name="model", kind="http", run="${params.x}", call="c", url="https://h/${params.x}",
                      capabilities=("build",), concurrency=4, fail_rate=0.5, env=M({"K": "${params.x}"}),
                      options=M({"headers": {"A": "b"}, "method": "POST"}), span=span)
    plan = Plan(
        workflow="w", source="wf.alfred", description="all", params=M({"x": "y", "n": "1"}),
        secrets=("TOKEN",), agents=(agent,), stages=(stage, bad),
        hooks=(Hook(event="failure", run="echo ${run.id}", span=span),), schedule="0 * * * *",
        critical_path=("g.s",), duration_s=12.5, layers=(("g.s",), ("b",)), max_parallelism=1,
        budget=M({"usd": 5, "time": 3600.0}), timeout_s=7200, concurrency_group="deploy",
        cancel_in_progress=True,
    )
    diagnostic = Diagnostic(
        code="A503", severity=Severity.WARNING, message="m", primary=Label(span, "here"),
        secondary=(Label(source.span(0, 1)),), notes=("n",), help="h",
        fix=(Edit(source.span(1, 2), "x"),), file="wf.alfred",
    )
    return plan, [diagnostic, Diagnostic(code="A001", severity=Severity.NOTE, message="n")]


def test_a_plan_with_every_field_set_comes_back_from_an_entry(tmp_path: Path) -> None:
    path = tmp_path / "wf.alfred"
    path.write_text("workflow w {\n}\n" * 3, encoding="utf-8")
    source = SourceFile("wf.alfred", path.read_text(encoding="utf-8"), path)
    plan, diagnostics = _every_field_set(source)
    for value, kind in ((plan, Plan), (plan.stages[0], PlanStage), (plan.agents[0], PlanAgent),
                        (plan.hooks[0], Hook), (diagnostics[0], Diagnostic)):
        unset = [f.name for f in dataclasses.fields(kind)
                 if getattr(value, f.name) == _plancache._field_default(f)]
        assert not unset, f"{kind.__name__}: {unset}"
    _round_trip(plan, diagnostics, [source])


@pytest.mark.parametrize("edit", ["a stage's after as an object", "a span past the files",
                                  "a class the plan does not have", "a tag that is not one",
                                  "a required field dropped"])
def test_an_entry_edited_with_a_matching_checksum_is_ignored(
    edit: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the read-back at write time, decoding is what refuses an entry of another
    shape: the compile runs again and its plan is the right one."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(EVERY_KIND, project / "wf.alfred")
    monkeypatch.chdir(project)
    cache = project / ".alfred" / "cache"
    params = {"service": "api"}
    first = _plancache.compile_cached("wf.alfred", "service", params, cache)
    assert first.outcome == "stored" and first.plan is not None
    (entry,) = cache.glob("*.plan")
    header, _, body = entry.read_bytes().split(b"\n", 2)
    content = json.loads(body)
    stage = content["plan"][2]["stages"][2][2]
    if edit == "a stage's after as an object":
        stage["after"] = {"x": 1}
    elif edit == "a span past the files":
        stage["span"] = ["S", 7, 0, 1]
    elif edit == "a class the plan does not have":
        content["plan"][2]["stages"][2][1] = "Path"
    elif edit == "a tag that is not one":
        stage["after"] = ["X", "build"]
    else:
        del stage["name"]
    new_body = json.dumps(content).encode("utf-8")
    entry.write_bytes(header + b"\n" + hashlib.sha256(new_body).hexdigest().encode() + b"\n" + new_body)
    again = _plancache.compile_cached("wf.alfred", "service", params, cache)
    assert again.outcome == "stored"  # ignored, compiled, written anew
    assert again.plan is not None and again.plan.to_json() == first.plan.to_json()
    assert _plancache.compile_cached("wf.alfred", "service", params, cache).outcome == "hit"
