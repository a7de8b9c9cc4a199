"""alfred: a declarative workflow compiler for multi-agent pipelines.

Layout: the compiler is the package ``compiler`` (its modules in pipeline order: ``syntax``,
``_ast``, ``_lower``, ``load``, ``_schema``, ``_check``, ``_graph``, ``_plan``); the back ends
``runtime`` (Trio), ``render`` (Mermaid, DOT, Markdown, HTML) and ``service`` (queue, workers,
metrics) read its plans. The top level keeps the public API and what every layer shares.
See docs/design.md.

The names below are the public API. Each is loaded on first use, so that ``import
alfred_dsl`` (and every ``alfredc`` command) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import templates as templates
    from ._api import (
        approve as approve,
        check as check,
        compile as compile,
        parse as parse,
        reject as reject,
        run as run,
        run_async as run_async,
    )
    from ._builder import Agent as Agent, Stage as Stage, Workflow as Workflow, agent as agent
    from ._diagnostics import (
        AlfredError as AlfredError,
        Diagnostic as Diagnostic,
        DiagnosticError as DiagnosticError,
        Label as Label,
        Severity as Severity,
    )
    from ._source import SourceFile as SourceFile, Span as Span
    from .compiler._document import Document as Document
    from .compiler._plan import Plan as Plan, PlanAgent as PlanAgent, PlanStage as PlanStage
    from .runtime import (
        Event as Event,
        EventBus as EventBus,
        RunResult as RunResult,
        StageResult as StageResult,
        StateStore as StateStore,
    )
    from .runtime._approval import ApprovalError as ApprovalError, Decision as Decision
    from .service import Engine as Engine

from ._version import __version__ as __version__

_LAZY = {
    # Every name loads on first use: `alfredc --version` and `alfredc run` of a cached plan
    # import only what they use (the compiler's modules, the runtime's, trio...).
    "approve": "alfred_dsl._api",
    "check": "alfred_dsl._api",
    "compile": "alfred_dsl._api",
    "parse": "alfred_dsl._api",
    "reject": "alfred_dsl._api",
    "run": "alfred_dsl._api",
    "run_async": "alfred_dsl._api",
    "AlfredError": "alfred_dsl._diagnostics",
    "Diagnostic": "alfred_dsl._diagnostics",
    "DiagnosticError": "alfred_dsl._diagnostics",
    "Label": "alfred_dsl._diagnostics",
    "Severity": "alfred_dsl._diagnostics",
    "SourceFile": "alfred_dsl._source",
    "Span": "alfred_dsl._source",
    "Document": "alfred_dsl.compiler._document",
    "Plan": "alfred_dsl.compiler._plan",
    "PlanAgent": "alfred_dsl.compiler._plan",
    "PlanStage": "alfred_dsl.compiler._plan",
    # The Python builder: `alfredc check` of a .alfred or YAML file does not need it.
    "Agent": "alfred_dsl._builder",
    "Stage": "alfred_dsl._builder",
    "Workflow": "alfred_dsl._builder",
    "agent": "alfred_dsl._builder",
    "ApprovalError": "alfred_dsl.runtime._approval",
    "Decision": "alfred_dsl.runtime._approval",
    "Event": "alfred_dsl.runtime",
    "EventBus": "alfred_dsl.runtime",
    "RunResult": "alfred_dsl.runtime",
    "StageResult": "alfred_dsl.runtime",
    "StateStore": "alfred_dsl.runtime",
    "Engine": "alfred_dsl.service",
    "templates": "alfred_dsl.templates",
}

__all__ = [
    "Agent",
    "AlfredError",
    "ApprovalError",
    "Decision",
    "Diagnostic",
    "DiagnosticError",
    "Document",
    "Engine",
    "Event",
    "EventBus",
    "Label",
    "Plan",
    "PlanAgent",
    "PlanStage",
    "RunResult",
    "Severity",
    "SourceFile",
    "Span",
    "Stage",
    "StageResult",
    "StateStore",
    "Workflow",
    "agent",
    "approve",
    "check",
    "compile",
    "format_source",
    "parse",
    "reject",
    "run",
    "run_async",
    "templates",
]


def format_source(text: str, filename: str = "<input>") -> str:
    """The canonical layout of alfred source text (what ``alfredc fmt`` writes).

    Comments are kept. Raises :class:`DiagnosticError` when the text has syntax errors.
    """
    from ._diagnostics import DiagnosticError
    from .compiler._format import format_source as _format

    formatted, diagnostics = _format(text, filename)
    if formatted is None:
        raise DiagnosticError(diagnostics)
    return formatted


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'alfred_dsl' has no attribute {name!r}")
    import importlib

    imported = importlib.import_module(module)
    value = imported if module == f"{__name__}.{name}" else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
