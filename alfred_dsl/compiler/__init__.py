"""The compiler: source text to an immutable :class:`Plan`, its modules in pipeline order.

``syntax`` (text -> AST) -> ``_ast`` -> ``_lower`` (AST -> ``_document``) -> ``load`` (files,
YAML/JSON, imports, the workspace) -> ``_schema`` -> ``_check`` (names and types, in the
parts ``_check_refs``, ``_check_types``, ``_check_stages``, over the ``_view`` of the
workspace) -> ``_bind`` (templates, params, resolution) -> ``_model`` -> ``_graph`` ->
``_build`` -> ``_plan``; ``_pipeline`` runs the steps and ``_format`` formats ``.alfred`` text.

The names below are the compiler's interface for the rest of the package (the CLI, the
back ends, the Python API). They load on first use, so that importing the plan's types
does not load the parser. (``load`` is the loading package itself: ``compiler.load.load``.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._document import Document as Document
    from ._format import format_source as format_source
    from ._pipeline import (
        check_loaded as check_loaded,
        check_paths as check_paths,
        compile_loaded as compile_loaded,
        compile_path as compile_path,
    )
    from ._plan import (
        FrozenMap as FrozenMap,
        Hook as Hook,
        Plan as Plan,
        PlanAgent as PlanAgent,
        PlanStage as PlanStage,
        freeze as freeze,
        thaw as thaw,
    )
    from ._schema import schema_text as schema_text
    from .load import Workspace as Workspace, find_root as find_root, read_source as read_source

_LAZY = {
    "Document": "._document",
    "format_source": "._format",
    "check_loaded": "._pipeline",
    "check_paths": "._pipeline",
    "compile_loaded": "._pipeline",
    "compile_path": "._pipeline",
    "FrozenMap": "._plan",
    "Hook": "._plan",
    "Plan": "._plan",
    "PlanAgent": "._plan",
    "PlanStage": "._plan",
    "freeze": "._plan",
    "thaw": "._plan",
    "schema_text": "._schema",
    "Workspace": ".load",
    "find_root": ".load",
    "read_source": ".load",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
