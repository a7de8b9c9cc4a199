"""Writing workflows in Python: the builder, its diagnostics, the round trip, the CLI and templates."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ALFREDC, EXAMPLES, REPO_ROOT
from hypothesis import HealthCheck, given, settings, strategies as st

import alfred_dsl
from alfred_dsl import Agent, Diagnostic, DiagnosticError, Plan, Workflow, agent, templates
from alfred_dsl._render_diag import render

THIS_FILE = Path(__file__).resolve()
DOCS = REPO_ROOT / "docs" / "python.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def line_of(marker: str) -> int:
    """The line of this file that holds ``marker`` (once)."""
    text = THIS_FILE.read_text().splitlines()
    lines = [n for n, line in enumerate(text, 1) if marker in line and "line_of(" not in line]
    assert len(lines) == 1, f"marker {marker!r} must mark one line"
    return lines[0]


def errors_of(workflow: Workflow, params: dict[str, object] | None = None) -> list[Diagnostic]:
    with pytest.raises(DiagnosticError) as raised:
        workflow.compile(params)
    return [d for d in raised.value.diagnostics if d.is_error]


def at_this_file(diagnostic: Diagnostic) -> int:
    """The line the diagnostic points at, after checking that it is this test file."""
    assert diagnostic.primary is not None
    span = diagnostic.primary.span
    assert span.source.path is not None and span.source.path.resolve() == THIS_FILE
    return span.line


def comparable(plan: Plan) -> Plan:
    """A plan without what depends on where it was written (the file name, the working folder)."""
    stages = tuple(dataclasses.replace(stage, cwd=".") for stage in plan.stages)
    return dataclasses.replace(plan, source="", stages=stages)


# -- the quick start -------------------------------------------------------------------------


def doc_blocks() -> list[str]:
    return FENCE.findall(DOCS.read_text(encoding="utf-8"))


def test_the_seed_quick_start_runs_real_agents(tmp_path: Path) -> None:
    blocks = doc_blocks()
    quick_start = blocks[0]
    assert "Engine().execute(wf, input_data=" in quick_start and "from alfred_dsl import" in quick_start
    files = {block.splitlines()[0].removeprefix("# "): block for block in blocks[1:3]}
    assert set(files) == {"tools/spec.py", "team/agents.py"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "quickstart.py").write_text(quick_start)
    done = subprocess.run([sys.executable, "quickstart.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["succeeded", "spec.md", "{'summary': 'implemented'}"]
    assert (tmp_path / "spec.md").read_text() == "# Specification\n"  # the command ran in the project
    listed = subprocess.run([*ALFREDC, "runs"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "feature_development" in listed.stdout and "succeeded" in listed.stdout


def test_the_decorator_form_and_alfredc_run_of_a_module_object(tmp_path: Path) -> None:
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "__init__.py").write_text("")
    review = next(b for b in doc_blocks() if b.startswith("# team/review.py"))
    (tmp_path / "team" / "review.py").write_text(review)
    done = subprocess.run([*ALFREDC, "run", "team/review.py:flow", "--quiet"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    shown = subprocess.run([*ALFREDC, "show", "last", "--format", "json"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "approve" in shown.stdout, shown.stderr


def test_an_agent_decorator_keeps_the_function_and_names_it_as_the_call() -> None:
    @agent(capabilities=["review"], name="reviewer")
    def review(inputs: dict[str, object]) -> dict[str, object]:
        return {"seen": inputs}

    assert review({"a": 1}) == {"seen": {"a": 1}}
    made = review.agent  # type: ignore[attr-defined]
    assert made.name == "reviewer"
    call = f"{__name__}:{review.__qualname__}"
    assert made.data == {"kind": "python", "call": call, "capabilities": ["review"]}


# -- mistakes point at the caller's line ------------------------------------------------------


def test_an_unknown_dependency_is_a202_at_the_name_with_did_you_mean() -> None:
    spec = Agent("spec-builder", run=["python", "tools/spec.py"])
    wf = Workflow("feature_development")
    wf.add_stage("specification", spec)
    wf.add_stage("implementation", spec, depends_on=["specificaton"])  # mark:dep
    [problem] = errors_of(wf)
    assert problem.code == "A202" and at_this_file(problem) == line_of("# mark:dep")
    assert problem.help == "did you mean `specification`?"
    text = render([problem], "text", colour=False)
    assert f"test_builder.py:{line_of('# mark:dep')}:" in text and '^^^^^^^^^^^^^^' in text
    assert 'depends_on=["specificaton"]' in text  # the caller's own source line is shown


def test_an_agent_given_by_a_name_that_is_not_declared_is_a201() -> None:
    wf = Workflow("w")
    wf.add_stage("build", "builder")  # mark:unknown-agent
    [problem] = errors_of(wf)
    assert problem.code == "A201" and at_this_file(problem) == line_of("# mark:unknown-agent")


def test_a_stage_added_twice_is_a208_at_the_second_call() -> None:
    tool = Agent("tool", run="true")
    wf = Workflow("w")
    wf.add_stage("build", tool)  # mark:first
    wf.add_stage("build", tool)  # mark:second
    [problem] = errors_of(wf)
    assert problem.code == "A208" and at_this_file(problem) == line_of("# mark:second")
    assert [label.span.line for label in problem.secondary] == [line_of("# mark:first")]


def test_two_agents_of_one_name_are_a208() -> None:
    wf = Workflow("w")
    wf.add_stage("a", Agent("tool", run="true"))
    wf.add_stage("b", Agent("tool", run="false"))  # mark:agent-twice
    [problem] = errors_of(wf)
    assert problem.code == "A208" and at_this_file(problem) == line_of("# mark:agent-twice")


def test_a_bad_duration_and_a_bad_retries_point_at_their_arguments() -> None:
    tool = Agent("tool", run="true")
    wf = Workflow("w")
    wf.add_stage("a", tool,
                 estimate="3 mins",  # mark:duration
                 retries="two")  # mark:retries
    problems = {d.code: d for d in errors_of(wf)}
    assert set(problems) == {"A304", "A302"}
    assert at_this_file(problems["A304"]) == line_of("# mark:duration")
    assert at_this_file(problems["A302"]) == line_of("# mark:retries")
    assert problems["A302"].primary is not None and problems["A302"].primary.span.column > 10


def test_a_param_of_an_unknown_type_and_a_value_of_the_wrong_type() -> None:
    wf = Workflow("w", params={"n": set})  # mark:param-type
    wf.add_stage("a", Agent("tool", run="true"))
    [problem] = errors_of(wf)
    assert problem.code == "A301" and at_this_file(problem) == line_of("# mark:param-type")
    typed = Workflow("t", params={"count": int})
    typed.add_stage("a", Agent("tool", run="echo ${params.count}"))
    with pytest.raises(DiagnosticError) as raised:
        typed.compile({"count": "many"})
    [wrong] = [d for d in raised.value.diagnostics if d.is_error]
    assert wrong.code == "A308" and "count" in wrong.message


def test_a_cycle_is_a401_at_the_add_stage_calls() -> None:
    tool = Agent("tool", run="true")
    wf = Workflow("w")
    wf.add_stage("a", tool, depends_on=["b"])  # mark:cycle-a
    wf.add_stage("b", tool, depends_on=["a"])  # mark:cycle-b
    [problem] = errors_of(wf)
    assert problem.code == "A401"
    lines = {label.span.line for label in (problem.primary, *problem.secondary) if label is not None}
    assert {line_of("# mark:cycle-a"), line_of("# mark:cycle-b")} <= lines
    assert all(label.span.source.path == THIS_FILE for label in problem.secondary)


def test_check_returns_warnings_without_raising() -> None:
    wf = Workflow("w", params={"unused": str})  # mark:unused
    wf.add_stage("a", Agent("tool", run="true"))
    [warning] = wf.check()
    assert warning.code == "A502" and at_this_file(warning) == line_of("# mark:unused")


# -- one compiler --------------------------------------------------------------------------------


def test_the_builder_compiles_to_the_plan_of_the_same_alfred_file(tmp_path: Path) -> None:
    source = EXAMPLES / "feature_development.alfred"
    params = {"feature_name": "dark-mode"}
    from_dsl = alfred_dsl.compile(source, params=params)
    loaded = Workflow.from_file(source)
    assert comparable(loaded.compile(params)) == comparable(from_dsl)
    (tmp_path / "again.alfred").write_text(loaded.to_alfred())
    assert comparable(alfred_dsl.compile(tmp_path / "again.alfred", params=params)) == comparable(from_dsl)


def test_from_file_edits_keep_pointing_into_the_file_and_at_the_python_line() -> None:
    wf = Workflow.from_file(EXAMPLES / "templates.alfred")
    assert wf.name == "release_train"
    wf.add_stage("announce", "publisher", depends_on=["publsh"])  # mark:edit
    [problem] = errors_of(wf)
    assert problem.code == "A202" and at_this_file(problem) == line_of("# mark:edit")
    plan = Workflow.from_file(EXAMPLES / "templates.alfred").compile()
    assert plan.stage("publish").after == ("auth.test", "billing.test")
    assert Path(plan.stage("publish").cwd) == EXAMPLES  # a loaded file runs in its folder, as with alfredc


def test_from_file_of_a_missing_file_or_workflow_raises_diagnostics(tmp_path: Path) -> None:
    with pytest.raises(DiagnosticError) as raised:
        Workflow.from_file(tmp_path / "nope.alfred")
    assert [d.code for d in raised.value.diagnostics] == ["A001"]
    with pytest.raises(DiagnosticError) as raised:
        Workflow.from_file(EXAMPLES / "templates.alfred", "release")
    assert "service_pipeline" in render(raised.value.diagnostics, "text", colour=False)


# -- the round trip ---------------------------------------------------------------------------

_KEYWORDS = {"import", "agent", "workflow", "param", "defaults", "stage", "use", "as", "after", "on",
             "true", "false", "and", "or", "not"}
_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(lambda n: n not in _KEYWORDS)
_DURATIONS = st.one_of(
    st.sampled_from(["30s", "5m", "1h30m", "2h", "500ms", "1d"]), st.integers(0, 10_000),
)


@st.composite
def workflows(draw: st.DrawFn) -> tuple[Workflow, dict[str, object]]:
    names = draw(st.lists(_NAMES, min_size=1, max_size=8, unique=True))
    param_names = draw(st.lists(_NAMES, max_size=3, unique=True))
    param_types = {name: draw(st.sampled_from([str, int, bool, "duration"])) for name in param_names}
    params: dict[str, object] = {
        name: {str: "x y", int: 3, bool: True, "duration": "5m"}[kind] for name, kind in param_types.items()
    }
    tool = Agent("tool", run=["echo", "hi"], capabilities=["build"], concurrency=draw(st.integers(1, 4)))
    shell = Agent("shell-runner", run="echo hi", capabilities=["shell", "build"])
    wf = Workflow("generated", params=param_types,
                  description=draw(st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
                                           max_size=20)) or None)
    wf.add_agent(tool)
    wf.add_agent(shell)
    for index, name in enumerate(names):
        earlier = names[:index]
        after = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        inputs = {p: "${params." + p + "}" for p in param_names if draw(st.booleans())}
        wf.add_stage(
            name,
            draw(st.sampled_from([tool, shell, None])),
            depends_on=after,
            requires=None,
            estimate=draw(st.none() | _DURATIONS),
            retries=draw(st.none() | st.integers(0, 5)),
            timeout=draw(st.none() | _DURATIONS),
            priority=draw(st.none() | st.sampled_from(["low", "high", "critical"]) | st.integers(-3, 9)),
            inputs=inputs or None,
            on_failure=draw(st.none() | st.sampled_from(["stop", "continue"])),
            run=None,
        )
        if wf.document()["workflows"]["generated"]["stages"][name].get("agent") is None:
            # a stage without an agent needs `requires`: pick the capability both agents have
            wf._body["stages"][name]["requires"] = ["build"]
    return wf, params


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(workflows())
def test_workflow_to_alfred_to_workflow_keeps_the_plan(
    tmp_path: Path, case: tuple[Workflow, dict[str, object]]
) -> None:
    wf, params = case
    plan = wf.compile(params)
    text = wf.to_alfred()
    path = tmp_path / "round.alfred"
    path.write_text(text, encoding="utf-8")
    again = Workflow.from_file(path)
    assert comparable(again.compile(params)) == comparable(plan)
    assert again.to_alfred() == text  # the printer's output is its own fixed point
    assert alfred_dsl.format_source(text) == text


# -- alfredc with module.py:object ---------------------------------------------------------------

FLOWS = """\
from alfred_dsl import Agent, Workflow

writer = Agent("writer", run=["python", "-c", "open('out.txt', 'w').write('x')"])
feature = Workflow("feature", params={"name": str})
feature.add_stage("write", writer, inputs={"name": Workflow.param("name")}, estimate="2m")
feature.add_stage("check", "writer", depends_on=["write"], estimate="1m")
"""


def alfredc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ALFREDC, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "alfred.toml").write_text("")
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "flows.py").write_text(FLOWS)
    return tmp_path


def test_alfredc_plan_graph_and_check_take_a_module_object(project: Path) -> None:
    plan = alfredc(project, "plan", "team/flows.py:feature", "-p", "name=x", "--format", "json")
    assert plan.returncode == 0, plan.stderr
    data = json.loads(plan.stdout)
    assert [s["name"] for s in data["stages"]] == ["write", "check"] and data["duration_s"] == 180
    graph = alfredc(project, "graph", "team/flows.py", "-p", "name=x")
    assert graph.returncode == 0 and "write" in graph.stdout and "-->" in graph.stdout
    assert alfredc(project, "check", "team/flows.py:feature").returncode == 0


def test_alfredc_run_docs_and_submit_take_a_module_object(project: Path) -> None:
    run = alfredc(project, "run", "team/flows.py:feature", "-p", "name=x")
    assert run.returncode == 0, run.stderr
    assert (project / "out.txt").read_text() == "x"  # stages ran in the project root
    docs = alfredc(project, "docs", "team/flows.py:feature", "-o", "site")
    assert docs.returncode == 0, docs.stderr
    assert any("feature" in p.read_text() for p in (project / "site").rglob("*.md"))
    submit = alfredc(project, "submit", "team/flows.py:feature", "-p", "name=y")
    assert submit.returncode == 0, submit.stderr
    worker = alfredc(project, "worker", "--until-empty")
    assert worker.returncode == 0, worker.stderr


@pytest.mark.parametrize(
    ("module", "reference", "message"),
    [
        (FLOWS, "team/flows.py:featur", "has no attribute `featur`"),
        (FLOWS, "team/flows.py:Agent", "is a type, not an alfred_dsl.Workflow"),
        ("import nowhere_to_be_found\n", "team/flows.py:x", "ModuleNotFoundError"),
        ("x = 1\nraise RuntimeError('broken')\n", "team/flows.py", "RuntimeError: broken"),
        (FLOWS, "team/missing.py:feature", "no such file"),
        (FLOWS + "other = feature\n", "team/flows.py", "holds 2 workflow objects"),
    ],
)
def test_a_bad_module_reference_is_a_diagnostic_not_a_traceback(
    project: Path, module: str, reference: str, message: str
) -> None:
    (project / "team" / "flows.py").write_text(module)
    done = alfredc(project, "plan", reference)
    assert done.returncode != 0
    assert message in done.stderr and "error[A001]" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_exception_while_importing_points_at_the_line_that_raised(project: Path) -> None:
    (project / "team" / "flows.py").write_text("x = 1\n\nraise RuntimeError('broken')\n")
    done = alfredc(project, "check", "team/flows.py")
    assert "team/flows.py:3:1: error[A001]" in done.stdout + done.stderr


def test_a_builder_mistake_in_a_module_is_reported_at_its_line_by_the_cli(project: Path) -> None:
    (project / "team" / "flows.py").write_text(FLOWS.replace('depends_on=["write"]', 'depends_on=["wrte"]'))
    done = alfredc(project, "plan", "team/flows.py:feature", "-p", "name=x")
    assert done.returncode == 1
    assert "team/flows.py:6:" in done.stderr and "did you mean `write`" in done.stderr


# -- templates and the public API ---------------------------------------------------------------


@pytest.mark.parametrize("name", templates.NAMES)
def test_templates_are_the_bundled_alfred_files(name: str) -> None:
    params = {"feature_development": {"feature_name": "x"}, "bug_fix": {"issue": 7},
              "code_review": {"pull_request": 42}}[name]
    made = getattr(templates, name)(**params)
    from_file = alfred_dsl.compile(EXAMPLES / f"{name}.alfred", params=params)
    assert comparable(made.compile()) == comparable(from_file)
    assert templates.path(name).read_text() == (EXAMPLES / f"{name}.alfred").read_text()


def test_a_template_param_of_the_wrong_type_points_at_the_call() -> None:
    wf = templates.bug_fix(issue="soon")  # mark:template
    problems = errors_of(wf)
    assert problems and at_this_file(problems[0]) == line_of("# mark:template")


def test_an_unknown_template_name_suggests_one() -> None:
    with pytest.raises(ValueError, match="bug_fix"):
        templates.load("bugfix")


def test_the_templates_example_of_the_docs() -> None:
    block = next(b for b in doc_blocks() if "templates.bug_fix" in b)
    namespace: dict[str, object] = {}
    exec(compile(block, str(DOCS), "exec"), namespace)
    plan = namespace["plan"]
    assert isinstance(plan, Plan)
    expected = re.search(r"# (\[.*\])", block)
    assert expected is not None and str([s.name for s in plan.stages]) == expected.group(1)


def test_run_and_compile_take_a_workflow(tmp_path: Path) -> None:
    wf = Workflow("w", params={"word": str})
    argv = ["python", "-c", "import sys; print(sys.argv[1])", "${params.word}"]
    wf.add_stage("say", Agent("say", run=argv))
    assert alfred_dsl.compile(wf, params={"word": "hi"}).stage("say").run == tuple(argv)
    result = alfred_dsl.run(wf, params={"word": "hi"}, state_dir=tmp_path / "state")
    assert result.state == "succeeded"


def test_engine_execute_sends_events_to_its_handlers(tmp_path: Path) -> None:
    wf = Workflow("w")
    wf.add_stage("ok", Agent("ok", run="true"))
    engine = alfred_dsl.Engine(tmp_path / "state")
    seen: list[str] = []
    engine.add_event_handler("*", lambda event: seen.append(event.type))
    result = engine.execute(wf)
    assert result.state == "succeeded" and "stage_succeeded" in seen and seen[-1] == "run_completed"
    with pytest.raises(DiagnosticError):
        engine.execute(EXAMPLES / "feature_development.alfred")  # a required param is missing


def test_the_docs_import_only_public_names() -> None:
    for path in (REPO_ROOT / "docs").glob("*.md"):
        assert "alfred_dsl._" not in path.read_text(encoding="utf-8"), path


def test_python_file_example_in_docs_is_the_quick_start() -> None:
    first = doc_blocks()[0]
    expected = [  # the issue's quick start, line for line
        'spec = Agent("spec-builder", kind="command", run=["python", "tools/spec.py"], '
        'capabilities=["requirements"])',
        'impl = Agent("tdd-implementer", kind="python", call="team.agents:implement", '
        'capabilities=["development"])',
        'wf = Workflow("feature_development", params={"feature": str})',
        'wf.add_stage("specification", spec, estimate="30m")',
        'wf.add_stage("implementation", impl, depends_on=["specification"], retries=2, timeout="1h")',
        'result = Engine().execute(wf, input_data={"feature": "user authentication"})',
    ]
    lines = first.splitlines()
    start = lines.index(expected[0])
    assert lines[start : start + len(expected)] == expected
