"""alfred: a declarative workflow compiler for multi-agent pipelines.

Layout: ``_source`` -> ``_syntax``/``_ast``/``_lower`` -> ``_loader``/``_schema``/``_check``
-> ``_graph`` -> ``_plan`` -> ``runtime``/``render``. See docs/design.md.
"""

from __future__ import annotations

from ._diagnostics import (
    AlfredError as AlfredError,
    Diagnostic as Diagnostic,
    DiagnosticError as DiagnosticError,
    Severity as Severity,
)
from ._plan import Plan as Plan, PlanAgent as PlanAgent, PlanStage as PlanStage
from ._source import SourceFile as SourceFile, Span as Span

__version__ = "0.1.0"

__all__ = [
    "AlfredError",
    "Diagnostic",
    "DiagnosticError",
    "Plan",
    "PlanAgent",
    "PlanStage",
    "Severity",
    "SourceFile",
    "Span",
]
