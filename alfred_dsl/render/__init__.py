"""Renderers of a compiled plan: the plan table and JSON, and the dependency graph.

Only light modules are imported here (no jinja2, no rich), so that ``alfredc plan`` and
``alfredc graph`` start fast; the docs and report renderers live in their own modules.
"""

from __future__ import annotations

from ._graph import graph_to_json, to_dot, to_mermaid
from ._plan import dumps, plan_to_json, plan_to_text

__all__ = ["dumps", "graph_to_json", "plan_to_json", "plan_to_text", "to_dot", "to_mermaid"]
