"""``run_if`` of a stage (cleanup and notification stages) and the check that a
``run_if = failure`` stage can run at all (A507).

A ``failure`` stage is decided when its dependencies have finished: it runs when a stage of
the run has failed by then (or the run was stopped: cancel, signal, workflow timeout), else
it is skipped. A ``failure`` stage that depends on nothing is decided as the run starts,
before any stage can fail, and one whose ``when`` is ``false`` never runs: both are A507.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._diagnostics import Diagnostic, warning
from .._source import Span
from ._plan import RunIf

__all__ = ["RUN_IF_VALUES", "run_if_of", "unreachable_failure_stages"]

RUN_IF_VALUES: tuple[RunIf, ...] = ("success", "always", "failure")


def run_if_of(value: Any) -> RunIf:
    """The stage's ``run_if`` (``success`` when absent; the schema refuses other values)."""
    return value if value in ("always", "failure") else "success"


def _mentions_stages(value: Any) -> bool:
    """Whether a value refers to another stage (``${stages.X...}``): that is a dependency."""
    if isinstance(value, str):
        return "stages." in value and "${" in value
    if isinstance(value, Mapping):
        return any(_mentions_stages(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_mentions_stages(v) for v in value)
    return False


def unreachable_failure_stages(
    workflow: str,
    stages: Mapping[str, Mapping[str, Any]],
    is_template: bool,
    key_span: Callable[[tuple[str, ...]], Span],
) -> list[Diagnostic]:
    """A507 for each ``run_if = failure`` stage of ``workflow`` that can never run.

    A template's stages are left alone: a ``use ... after X`` gives them dependencies.
    """
    out: list[Diagnostic] = []
    for name, stage in stages.items():
        if stage.get("run_if") != "failure":
            continue
        path = ("workflows", workflow, "stages", name, "run_if")
        if stage.get("when") is False:
            out.append(warning(
                "A507", f"stage `{name}` has `run_if = failure` but `when = false`: it never runs",
                key_span(path), "never runs", help="remove `when = false`, or remove the stage",
            ))
            continue
        if is_template or stage.get("after") or any(_mentions_stages(v) for v in stage.values()):
            continue
        out.append(warning(
            "A507",
            f"stage `{name}` has `run_if = failure` but depends on no stage: it is decided as the"
            " run starts, before anything can fail, so it never runs",
            key_span(path), "never runs",
            help=f"add `after` the stages whose failure `{name}` reports on",
        ))
    return out
