"""Everything the exporters take from the compiler, in one place.

The exporters are back ends: they read a :class:`Plan` and report losses as diagnostics.
When the compiler's modules move, only these imports change.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._diagnostics import Diagnostic, Severity, warning
from .._source import Span
from ..compiler._plan import DEFAULT_MAX_LOG, FrozenMap, Plan, PlanAgent, PlanStage, freeze, thaw

__all__ = [
    "DEFAULT_MAX_LOG", "Diagnostic", "FrozenMap", "Plan", "PlanAgent", "PlanStage", "Severity", "Span",
    "compile_path", "freeze", "thaw", "warning",
]


def compile_path(
    path: str, workflow: str | None, params: Mapping[str, str]
) -> tuple[Plan | None, list[Diagnostic]]:
    """The compiler's ``compile_path``, imported when called: the run-time shim, which
    engines import in every task, needs the plan's classes only, not the parser."""
    from ..compiler._pipeline import compile_path as compile_

    return compile_(path, workflow, params)
