"""The compiler pipeline: load -> check -> resolve -> graph analysis -> plan.

``alfredc check`` calls :func:`check_paths`; ``plan``, ``graph`` and ``run`` call
:func:`compile_path`. Only the modules the check path needs are imported (no trio, rich
or jinja2); the loader imports jsonschema only when the compiled validator finds a problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from . import _check, _graph, _loader
from ._diagnostics import Diagnostic
from ._plan import Plan, build_plan

__all__ = ["check_paths", "compile_path", "finish"]

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


def _check_one(path: str) -> list[Diagnostic]:
    workspace, diagnostics = _loader.load(path)
    if workspace is None:
        return diagnostics
    diagnostics.extend(_check.check_workspace(workspace))
    model_workflows = _check.workflows_to_analyse(workspace)
    for name in model_workflows:
        resolved, problems = _check.resolve(workspace, name, {}, require_all=False)
        diagnostics.extend(problems)
        if resolved is not None:
            diagnostics.extend(_graph.analyse(resolved)[1])
    return diagnostics


def check_paths(paths: Sequence[str]) -> list[Diagnostic]:
    """Everything ``alfredc check`` reports for these files: every workflow of each file,
    graph analysis included; required params without a value are not an error here."""
    diagnostics: list[Diagnostic] = []
    for path in paths:
        diagnostics.extend(_check_one(str(path)))
    return finish(diagnostics)


def compile_path(
    path: str,
    workflow: str | None = None,
    params: Mapping[str, str] = _NO_PARAMS,
) -> tuple[Plan | None, list[Diagnostic]]:
    """The plan of one workflow of a file (None when there are errors), and the diagnostics."""
    workspace, diagnostics = _loader.load(str(path))
    if workspace is None:
        return None, finish(diagnostics)
    diagnostics.extend(_check.check_workspace(workspace))
    resolved, problems = _check.resolve(workspace, workflow, params)
    diagnostics.extend(problems)
    if resolved is None or any(d.is_error for d in diagnostics):
        return None, finish(diagnostics)
    analysis, problems = _graph.analyse(resolved)
    diagnostics.extend(problems)
    if analysis is None or any(d.is_error for d in diagnostics):
        return None, finish(diagnostics)
    return build_plan(resolved, analysis), finish(diagnostics)
