"""The Python API: compile a workflow file and run it on the Trio runtime.

>>> result = run("pipeline.alfred", params={"feature_name": "login"})   # doctest: +SKIP
>>> result.state, result.stages["build"].outputs                         # doctest: +SKIP

Compilation errors raise :class:`~alfred_dsl.DiagnosticError` (with every diagnostic);
the state of the run is recorded under ``state_dir`` (default ``.alfred`` in the current
directory) exactly as ``alfredc run`` does, so ``alfredc runs``/``show``/``logs`` see it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._diagnostics import Diagnostic, DiagnosticError
from ._values import param_strings

if TYPE_CHECKING:  # the runtime imports trio: only when a run is asked for
    from ._builder import Workflow
    from .compiler._document import Document
    from .compiler._plan import Plan
    from .runtime import Event, RunResult
    from .runtime._approval import Decision

__all__ = ["approve", "check", "compile", "parse", "reject", "run", "run_async"]

Params = Mapping[str, Any]


def parse(text: str, filename: str = "<input>") -> Document:
    """Parse and lower alfred source text to the normalized document.

    Raises :class:`~alfred_dsl.DiagnosticError` when the text has syntax errors.
    """
    from ._source import SourceFile
    from .compiler._lower import parse_document

    document, diagnostics = parse_document(SourceFile(filename, text))
    if document is None or any(d.is_error for d in diagnostics):
        raise DiagnosticError(diagnostics)
    return document


def check(*paths: str | os.PathLike[str]) -> list[Diagnostic]:
    """Everything ``alfredc check`` reports for these files, in source order (never raises for bad input)."""
    from .compiler._pipeline import check_paths

    return check_paths([os.fspath(p) for p in paths])


def compile(
    path: str | os.PathLike[str] | Workflow,
    workflow: str | None = None,
    params: Params | None = None,
) -> Plan:
    """Compile one workflow of a file (or a :class:`~alfred_dsl.Workflow` built in Python)
    to its immutable :class:`~alfred_dsl.Plan`.

    ``params`` are given as values or as ``--param`` strings. Raises
    :class:`~alfred_dsl.DiagnosticError` (holding every diagnostic) when there are errors.
    """
    from ._builder import Workflow

    if isinstance(path, Workflow):
        return path.compile(params)
    from .compiler._pipeline import compile_path

    plan, diagnostics = compile_path(os.fspath(path), workflow, param_strings(params))
    if plan is None or any(d.is_error for d in diagnostics):
        raise DiagnosticError(diagnostics)
    return plan


def _entry(path: str | os.PathLike[str] | Workflow) -> str | None:
    """The path recorded for ``--resume`` (None for a workflow built in this process)."""
    from ._builder import Workflow

    return None if isinstance(path, Workflow) else os.fspath(path)


async def execute_plan(
    plan: Plan,
    raw: Mapping[str, str],
    *,
    state_dir: str | os.PathLike[str] | None,
    max_concurrency: int | None = None,
    on_event: Callable[[Event], object] | None = None,
    resume: str | None = None,
    kill_grace_s: float = 5.0,
    entry: str | None = None,
) -> RunResult:
    """Run a compiled plan, recording it in ``state_dir`` (shared by run_async and Engine.execute)."""
    from .runtime import RunOptions, StateStore, start_run

    options = RunOptions(
        max_concurrency=max_concurrency, kill_grace_s=kill_grace_s, cli_params=dict(raw), entry=entry
    )
    with StateStore(state_dir) as store:
        return await start_run(plan, store, options, resume=resume, on_event=on_event)


async def run_async(
    path: str | os.PathLike[str] | Workflow,
    workflow: str | None = None,
    params: Params | None = None,
    *,
    state_dir: str | os.PathLike[str] | None = None,
    max_concurrency: int | None = None,
    on_event: Callable[[Event], object] | None = None,
    resume: str | None = None,
    kill_grace_s: float = 5.0,
) -> RunResult:
    """Trio-native :func:`run`: ``await run_async(...)`` inside ``trio.run``.

    Returns a :class:`~alfred_dsl.runtime.RunResult`. ``resume`` is a run id (or
    ``"last"``) to continue; stages that succeeded then are not run again
    (at-least-once: a stage that was running when that run died runs again).
    """
    raw = param_strings(params)
    plan = compile(path, workflow, raw)
    return await execute_plan(
        plan, raw, state_dir=state_dir, max_concurrency=max_concurrency, on_event=on_event,
        resume=resume, kill_grace_s=kill_grace_s, entry=_entry(path),
    )


def run(
    path: str | os.PathLike[str] | Workflow,
    workflow: str | None = None,
    params: Params | None = None,
    *,
    state_dir: str | os.PathLike[str] | None = None,
    max_concurrency: int | None = None,
    on_event: Callable[[Event], object] | None = None,
    resume: str | None = None,
    kill_grace_s: float = 5.0,
) -> RunResult:
    """Compile ``path`` and run ``workflow`` (default: the file's main workflow); ``path``
    may also be a :class:`~alfred_dsl.Workflow` built in Python.

    ``params`` map param names to values (strings are parsed to the declared type, as
    with ``--param``). ``on_event`` gets every :class:`~alfred_dsl.runtime.Event`.
    Returns a :class:`~alfred_dsl.runtime.RunResult`: the run's state (``succeeded``,
    ``failed``, ``interrupted``) and every stage's state, outputs, attempts and timings.
    A stage failing is not an exception; compile errors raise ``DiagnosticError``.
    Ctrl-C stops the run cleanly (children killed) and raises KeyboardInterrupt.
    """
    import trio

    async def main() -> RunResult:
        return await run_async(
            path, workflow, params, state_dir=state_dir, max_concurrency=max_concurrency,
            on_event=on_event, resume=resume, kill_grace_s=kill_grace_s,
        )

    return trio.run(main)


def approve(
    run_id: str,
    stage: str,
    *,
    comment: str = "",
    user: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
) -> Decision:
    """Approve approval stage ``stage`` of run ``run_id`` (an id, a unique prefix, or ``last``),
    as ``user`` (default: the OS user), as ``alfredc approve`` does.

    The waiting run continues; a run that is not running takes the decision when resumed.
    Raises :class:`~alfred_dsl.ApprovalError` when the run or stage is unknown, the stage
    is not waiting, or ``user`` is not one of its approvers.
    """
    from .runtime._approval import decide

    return decide(run_id, stage, "approved", user=user, comment=comment, state_dir=state_dir)


def reject(
    run_id: str,
    stage: str,
    *,
    comment: str = "",
    user: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
) -> Decision:
    """Reject approval stage ``stage`` of run ``run_id``: the stage fails (see :func:`approve`)."""
    from .runtime._approval import decide

    return decide(run_id, stage, "rejected", user=user, comment=comment, state_dir=state_dir)
