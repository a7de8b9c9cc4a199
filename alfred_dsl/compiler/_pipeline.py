"""The compiler pipeline: load -> check -> resolve -> graph analysis -> plan.

``alfredc check`` calls :func:`check_paths`; ``plan``, ``graph`` and ``run`` call
:func:`compile_path`. Only the modules the check path needs are imported (no trio, rich
or jinja2); the loader imports jsonschema only when the compiled validator finds a problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from .. import _fork
from .._diagnostics import Diagnostic, Label
from .._gcpause import collector_paused
from .._source import SourceFile, Span
from . import _bind, _check, _graph
from ._approvals import rejection_warnings
from ._budget import budget_warnings
from ._build import build_plan
from ._mcpcheck import has_mcp_agents
from ._model import ResolvedWorkflow
from ._plan import Plan
from .load import Workspace, load

__all__ = ["check_loaded", "check_paths", "compile_loaded", "compile_path", "finish", "merge"]

_NO_PARAMS: Mapping[str, str] = MappingProxyType({})


def finish(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics in source order, each reported once (several passes may meet one problem)."""
    seen: set[tuple[object, ...]] = set()
    unique: list[Diagnostic] = []
    for diagnostic in diagnostics:
        span = diagnostic.primary.span if diagnostic.primary is not None else None
        key = (
            diagnostic.code,
            diagnostic.message,
            diagnostic.filename,
            None if span is None else (span.start, span.end),
        )
        if key not in seen:
            seen.add(key)
            unique.append(diagnostic)
    return sorted(unique, key=Diagnostic.sort_key)


def merge(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics of several compilations of the same files, each problem once, in source
    order: one problem met through two workflows (a template's, under two prefixes) is one."""
    places: set[tuple[object, ...]] = set()
    unique: list[Diagnostic] = []
    for diagnostic in finish(diagnostics):
        place = _place(diagnostic)
        if place not in places:
            places.add(place)
            unique.append(diagnostic)
    return unique


def _check_one(path: str) -> list[Diagnostic]:
    workspace, diagnostics = load(path)
    return _check_loaded(workspace, diagnostics)


def check_loaded(workspace: Workspace | None, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """:func:`check_paths` for a workspace already loaded (a workflow built in Python)."""
    return finish(_check_loaded(workspace, diagnostics))


def _check_loaded(workspace: Workspace | None, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    if workspace is None:
        return diagnostics
    with collector_paused():
        return [*diagnostics, *_analyse(workspace), *_lock_diagnostics(workspace)]


def _lock_diagnostics(workspace: Workspace) -> list[Diagnostic]:
    """What alfred.lock says (compiler/_mcptools.py): only a file with mcp agents reads it."""
    if not has_mcp_agents(workspace):
        return []
    from ._mcptools import mcp_lock_diagnostics

    return mcp_lock_diagnostics(workspace)


def _analyse(workspace: Workspace) -> list[Diagnostic]:
    """What ``alfredc check`` finds in a loaded workspace: every check of every workflow,
    graph analysis included (required params without a value are not an error here)."""
    checks = _WorkspaceChecks(workspace)
    try:
        graph_diagnostics = _analyse_graphs(workspace)
        return [*checks.result(), *graph_diagnostics]
    finally:
        checks.close()


#: A workspace of this many stages or more is checked (:func:`_check.check_workspace`) by a
#: forked child while this process resolves (and, for ``check``, analyses the graphs): the
#: second core takes a quarter of the work after loading (at 100,000 stages, ~0.5 s).
CHECK_IN_CHILD_FROM = 20_000


class _WorkspaceChecks:
    """``check_workspace(workspace)``: in a child (:mod:`alfred_dsl._fork`) for a large
    workspace where forking can help, else (or when the child fails) in this process."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.child: _fork.Child | None = None
        workflows = workspace.data.get("workflows", {}).values()
        if sum(len(workflow.get("stages", ())) for workflow in workflows) >= CHECK_IN_CHILD_FROM:
            # The files' text is in both processes: sent by reference, not copied.
            self.sources = {id(document.source): document.source for document in workspace.documents}
            self.child = _fork.start(self._in_child)

    def _reference(self, value: object) -> int | None:
        return id(value) if type(value) is SourceFile and id(value) in self.sources else None

    def _in_child(self) -> bytes:
        return _fork.dumps(_check.check_workspace(self.workspace), self._reference)

    def result(self) -> list[Diagnostic]:
        if self.child is not None:
            data = self.child.result()
            if data is not None:
                found: list[Diagnostic] = _fork.loads(data, self.sources.__getitem__)
                return found
        return _check.check_workspace(self.workspace)

    def close(self) -> None:
        if self.child is not None:
            self.child.close()


def _analyse_graphs(workspace: Workspace) -> list[Diagnostic]:
    """The resolution and graph problems of every workflow to analyse, each place once."""
    diagnostics: list[Diagnostic] = []
    model_workflows = _bind.workflows_to_analyse(workspace)
    # A template used twice (or by two workflows) shows its graph problems once per use,
    # under different prefixes but at the same places: report each place once.
    places: set[tuple[object, ...]] = set()
    for name in model_workflows:
        # Only what the graph analysis reads, unless the plan may warn (then the whole of it).
        resolved, problems = _bind.resolve_for_check(workspace, name)
        diagnostics.extend(problems)
        if resolved is None:
            continue
        analysis, graph_problems = _graph.analyse(resolved)
        if (
            analysis is not None
            and isinstance(resolved, ResolvedWorkflow)
            and _plan_can_warn(resolved)  # A505, A506 (_approvals.py, _budget.py)
        ):
            span = resolved.span
            plan = build_plan(resolved, analysis, consume=True)
            del resolved, analysis
            graph_problems = [*graph_problems, *plan_warnings(plan, span)]
            del plan
        for problem in graph_problems:
            place = _place(problem)
            if place not in places:
                places.add(place)
                diagnostics.append(problem)
    return diagnostics


def plan_warnings(plan: Plan, span: Span | None) -> list[Diagnostic]:
    """A505 and A506: what only a whole plan shows (an unhandled rejection, a budget the
    worst case exceeds)."""
    return [*rejection_warnings(plan), *budget_warnings(plan, span)]


def _plan_can_warn(resolved: ResolvedWorkflow) -> bool:
    """Whether :func:`plan_warnings` can find anything: only approvals and a budget warn, so
    a workflow without them needs no plan to be checked (a tenth of a large file's check)."""
    return bool(resolved.budget) or any(stage.approve is not None for stage in resolved.stages)


def _place(diagnostic: Diagnostic) -> tuple[object, ...]:
    """What makes two diagnostics one problem: the code and the places it marks."""
    labels = _labels(diagnostic)
    if not labels:
        return (diagnostic.code, diagnostic.filename, diagnostic.message)
    return (diagnostic.code, *(_where(label.span) for label in labels))


def _labels(diagnostic: Diagnostic) -> tuple[Label, ...]:
    primary = () if diagnostic.primary is None else (diagnostic.primary,)
    return (*primary, *diagnostic.secondary)


def _where(span: Span) -> tuple[str, int, int]:
    return (span.file, span.start, span.end)


def check_paths(paths: Sequence[str]) -> list[Diagnostic]:
    """Everything ``alfredc check`` reports for these files: every workflow of each file,
    graph analysis included; required params without a value are not an error here."""
    diagnostics: list[Diagnostic] = []
    for path in paths:
        diagnostics.extend(_check_one(str(path)))
    return finish(diagnostics)


def _blocks_of_workflows(workspace: Workspace) -> list[tuple[str, Span]]:
    """The span of each workflow declaration in every file (a name declared twice: both)."""
    blocks: list[tuple[str, Span]] = []
    for document in workspace.documents:
        workflows = document.data.get("workflows") if isinstance(document.data, dict) else None
        if not isinstance(workflows, dict):
            continue
        for name in workflows:
            span = document.spans.values.get(("workflows", name))
            if span is not None:
                blocks.append((name, span))
    return blocks


def _concerns_only_others(diagnostic: Diagnostic, others: list[Span]) -> bool:
    """Whether a diagnostic lies inside the declaration of a workflow not being compiled.

    Input and syntax problems (A0xx, A1xx) concern the whole file wherever they are.
    """
    if diagnostic.primary is None or diagnostic.code[:2] in ("A0", "A1"):
        return False
    span = diagnostic.primary.span
    return any(
        block.source is span.source and block.start <= span.start and span.end <= block.end
        for block in others
    )


def compile_path(
    path: str,
    workflow: str | None = None,
    params: Mapping[str, str] = _NO_PARAMS,
) -> tuple[Plan | None, list[Diagnostic]]:
    """The plan of one workflow of a file (None when there are errors), and the diagnostics.

    Problems inside other workflows (that this one does not use as templates) neither
    block the plan nor are reported here: ``alfredc check`` reports them. Problems of the
    shared parts (input, syntax, agents, imports) are always fatal. When the workflow does
    not compile, the diagnostics are what ``alfredc check`` reports for it (graph analysis
    included, however many other errors there are) plus what only this call can find (a
    missing or ill-typed param, an unknown workflow name): ``plan``, ``run``, ``submit`` and
    ``docs`` show the same problems as ``check``.
    """
    workspace, diagnostics = load(str(path))
    return compile_loaded(workspace, diagnostics, workflow, params)


def compile_loaded(
    workspace: Workspace | None,
    diagnostics: list[Diagnostic],
    workflow: str | None = None,
    params: Mapping[str, str] = _NO_PARAMS,
) -> tuple[Plan | None, list[Diagnostic]]:
    """:func:`compile_path` for a workspace already loaded (a workflow built in Python)."""
    if workspace is None:
        return None, finish(diagnostics)
    with collector_paused():
        return _compile_loaded(workspace, diagnostics, workflow, params)


def _compile_loaded(
    workspace: Workspace,
    diagnostics: list[Diagnostic],
    workflow: str | None,
    params: Mapping[str, str],
) -> tuple[Plan | None, list[Diagnostic]]:
    checks = _WorkspaceChecks(workspace)  # in a child for a large workspace, while this resolves
    try:
        resolved, problems = _bind.resolve(workspace, workflow, params)
        found = checks.result()
    finally:
        checks.close()
    chosen = resolved.name if resolved is not None else workflow
    others: list[Span] = []
    if chosen is not None:
        wanted = _bind.templates_of(workspace, chosen)
        others = [span for name, span in _blocks_of_workflows(workspace) if name not in wanted]
    ours = [d for d in [*diagnostics, *found, *problems] if not _concerns_only_others(d, others)]
    analysis = None
    if resolved is not None and not any(d.is_error for d in ours):
        analysis, graph_problems = _graph.analyse(resolved)
        ours.extend(graph_problems)
    if resolved is None or analysis is None or any(d.is_error for d in ours):
        # Everything `check` says about this workflow, then what only this call found.
        checked = [d for d in [*diagnostics, *_analyse(workspace)] if not _concerns_only_others(d, others)]
        places = {_place(d) for d in checked}
        return None, finish([*checked, *(d for d in problems if _place(d) not in places)])
    span = resolved.span
    plan = build_plan(resolved, analysis, consume=True)  # resolved is not returned
    del resolved, analysis
    return plan, finish([*ours, *plan_warnings(plan, span)])
