"""Everything the language server takes from the compiler, in one place.

The server never parses on its own: it loads files through the loader (with the editor's
unsaved texts overlaid), checks them with the pipeline ``alfredc check`` uses, formats with
the ``fmt`` printer and asks the planner for stage timings. Keeping the imports here keeps
the server's dependence on compiler module names to this file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from .._diagnostics import Diagnostic, Edit, Severity
from .._expr import Ref, references
from .._source import SourceFile, Span
from .._values import PARAM_TYPES, PRIORITIES as _PRIORITIES
from ..compiler import _ast as ast, _bind, _graph, _lower, _pipeline, _view, load as _loader
from ..compiler._build import build_plan
from ..compiler._document import Document, Path as DocPath, SpanIndex
from ..compiler._format import format_source
from ..compiler._plan import Plan
from ..compiler._schema import schema
from ..compiler.syntax import KEYWORDS, _run, parse_ast
from ..compiler.syntax._lexer import _Context

__all__ = [
    "KEYWORDS",
    "PARAM_TYPES",
    "PRIORITIES",
    "ROOTS",
    "Checked",
    "Diagnostic",
    "DocPath",
    "Document",
    "Edit",
    "Plan",
    "Ref",
    "Severity",
    "SourceFile",
    "Span",
    "SpanIndex",
    "ast",
    "check_text",
    "declared_outputs",
    "format_source",
    "parse_ast",
    "parse_part",
    "plan_of",
    "refs_in",
    "schema",
]

ROOTS = _view.ROOTS
PRIORITIES = tuple(_PRIORITIES)


@dataclass(frozen=True, slots=True)
class Checked:
    """One check of an entry file: its workspace (None when it does not parse) and diagnostics."""

    path: str
    workspace: _loader.Workspace | None
    diagnostics: tuple[Diagnostic, ...]


def check_text(
    path: str,
    texts: Mapping[str, str],
    parse: Callable[[SourceFile], tuple[ast.File | None, list[Diagnostic]]] | None = None,
) -> Checked:
    """What ``alfredc check PATH`` reports, reading ``texts`` (absolute path -> text) instead of disk.

    ``parse`` replaces the whole-file parser of ``.alfred`` files (one that gives the same trees).
    """
    path = os.path.abspath(path)
    token = _lower.PARSE_AST.set(parse or parse_ast)
    try:
        with _loader.overlay(texts):
            workspace, diagnostics = _loader.load(path)
            found = _pipeline.check_loaded(workspace, diagnostics)
    finally:
        _lower.PARSE_AST.reset(token)
    return Checked(path, workspace, tuple(found))


def parse_part(source: SourceFile, text: str, base: int) -> tuple[ast.File, tuple[ast.Comment, ...]] | None:
    """Parse ``text`` as a file whose ``text[i]`` is at ``source`` offset ``base + i``: its tree
    and comments; None when anything is reported (the caller parses the whole file instead)."""
    context = _Context(source=source, text=text, base=base)
    tree = _run(context, "file")
    if not isinstance(tree, ast.File) or context.diagnostics:
        return None
    return tree, tuple(context.comments)


def plan_of(workspace: _loader.Workspace, workflow: str) -> Plan | None:
    """The plan of one workflow with its params' defaults (required params may stay unset)."""
    resolved, problems = _bind.resolve(workspace, workflow, {}, require_all=False)
    if resolved is None or any(d.is_error for d in problems):
        return None
    analysis, graph_problems = _graph.analyse(resolved)
    if analysis is None or any(d.is_error for d in graph_problems):
        return None
    return build_plan(resolved, analysis)


def declared_outputs(workspace: _loader.Workspace, workflow: str, stage: str) -> list[str]:
    model = _view._Model.of(workspace)
    if workflow not in model.workflows:
        return []
    return model.declared_outputs(workflow, stage) or []


def refs_in(text: str, span: Span) -> Iterator[Ref]:
    """The references inside one document string (``${...}`` or a bare expression)."""
    template, _ = _view.parse_string(text, span)
    if template is not None:
        yield from references(template)
