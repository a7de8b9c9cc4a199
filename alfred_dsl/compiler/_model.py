"""The resolved workflow: names bound, templates expanded, dependencies known.

This is the hand-off between the checks (``_check``) and the graph analysis and plan
compilation (``_graph``, ``_plan``). Stages here carry no analysis figures yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from .._make import maker
from .._source import Span
from ._plan import FrozenMap, Hook, PlanAgent, PlanStage

__all__ = ["Dependencies", "Edge", "EdgeKind", "ResolvedWorkflow", "new_edge"]

EdgeKind = Literal["after", "ref", "use"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Edge:
    """``before`` must finish before ``after`` starts."""

    before: str
    after: str
    #: Where the edge is declared: the name in `after X`, the `stages.X...` reference, the `use ... after`.
    span: Span | None = field(default=None, compare=False)
    kind: EdgeKind = "after"


class _NewEdge(Protocol):
    def __call__(self, *, before: str, after: str, span: Span | None, kind: EdgeKind) -> Edge: ...


#: ``Edge(before=..., after=..., span=..., kind=...)`` at half the cost, every field passed
#: by keyword: the slots set directly (:func:`.._make.maker`) rather than through the frozen
#: dataclass's ``object.__setattr__`` (a plan of 100,000 stages has 300,000 edges).
new_edge: _NewEdge = maker(Edge)


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependencies:
    """What the graph analysis (``_graph.analyse``) reads of a resolved workflow: the names
    and estimates of its stages, its edges, and where things are (read only for a
    diagnostic). ``alfredc check`` of a workflow without approvals or a budget needs nothing
    more, so the resolver then makes only this (``_bind.resolve_for_check``), not a
    :class:`PlanStage` per stage."""

    name: str
    source: str
    span: Span | None = None
    stages: tuple[str, ...] = ()       # declaration order, `use` stages in place
    estimates: tuple[float, ...] = ()  # each stage's ``estimate_s``
    edges: tuple[Edge, ...] = ()
    #: Where a stage is declared, by name (None when unknown).
    stage_span: Callable[[str], Span | None] = field(default=lambda name: None, compare=False)

    @classmethod
    def of(cls, resolved: ResolvedWorkflow) -> Dependencies:
        stages = resolved.stages
        spans: dict[str, Span | None] = {}

        def stage_span(name: str) -> Span | None:
            if not spans:  # made at the first diagnostic that asks
                spans.update((stage.name, stage.span) for stage in stages)
            return spans.get(name)

        return cls(
            name=resolved.name,
            source=resolved.source,
            span=resolved.span,
            stages=tuple(stage.name for stage in stages),
            estimates=tuple(stage.estimate_s for stage in stages),
            edges=resolved.edges,
            stage_span=stage_span,
        )
