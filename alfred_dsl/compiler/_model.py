"""The resolved workflow: names bound, templates expanded, dependencies known.

This is the hand-off between the checks (``_check``) and the graph analysis and plan
compilation (``_graph``, ``_plan``). Stages here carry no analysis figures yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .._source import Span
from ._plan import FrozenMap, Hook, PlanAgent, PlanStage

__all__ = ["Edge", "EdgeKind", "ResolvedWorkflow", "new_edge"]

EdgeKind = Literal["after", "ref", "use"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Edge:
    """``before`` must finish before ``after`` starts."""

    before: str
    after: str
    #: Where the edge is declared: the name in `after X`, the `stages.X...` reference, the `use ... after`.
    span: Span | None = field(default=None, compare=False)
    kind: EdgeKind = "after"


_set_before, _set_after, _set_span, _set_kind = (
    getattr(Edge, name).__set__ for name in ("before", "after", "span", "kind")
)


def new_edge(before: str, after: str, span: Span | None, kind: EdgeKind) -> Edge:
    """``Edge(before=..., after=..., span=..., kind=...)`` at half the cost: the slots set
    directly rather than through the frozen dataclass's ``object.__setattr__`` (a plan of
    100,000 stages has 300,000 edges)."""
    edge = object.__new__(Edge)
    _set_before(edge, before)
    _set_after(edge, after)
    _set_span(edge, span)
    _set_kind(edge, kind)
    return edge


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedWorkflow:
    name: str
    source: str
    description: str = ""
    params: FrozenMap = field(default_factory=FrozenMap)   # values known so far (defaults, --param)
    secrets: tuple[str, ...] = ()
    agents: tuple[PlanAgent, ...] = ()
    stages: tuple[PlanStage, ...] = ()                      # declaration order, `use` stages in place
    edges: tuple[Edge, ...] = ()                            # every dependency, deduplicated
    hooks: tuple[Hook, ...] = ()
    schedule: str | None = None
    budget: FrozenMap = field(default_factory=FrozenMap)
    timeout_s: float | None = None
    concurrency_group: str | None = None
    cancel_in_progress: bool = False
    span: Span | None = field(default=None, compare=False)
