"""Graph analysis of a resolved workflow: cycles, critical path (CPM), layers, redundant edges.

networkx is imported here and nowhere else in the compiler, and only when the graph has a
cycle (strongly connected components, Johnson's elementary cycles): importing it costs
0.2-0.3 s, the whole start-up budget of ``alfredc check`` on a small file. The acyclic path
(topological generations, CPM, redundant edges) works on integer indices in plain Python,
so 10,000 stages and 30,000 edges are analysed in a fraction of a second. Nothing from
networkx leaves this module (the plan stays free of networkx objects).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar, cast

from .._diagnostics import Diagnostic, Label, Severity, error, warning
from .._gcpause import collector_paused
from .._source import Span
from ._fixes import remove_list_entry_fix
from ._model import Dependencies, Edge, ResolvedWorkflow

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["MAX_CYCLES", "Analysis", "StageTiming", "analyse", "measured_critical_path"]

#: Cycles reported one by one; the rest are counted in one A402 note.
MAX_CYCLES = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class StageTiming:
    """The critical-path figures of one stage (seconds from the start of the run)."""

    estimate_s: float
    earliest_start_s: float
    earliest_finish_s: float
    latest_start_s: float
    latest_finish_s: float
    slack_s: float
    layer: int
    critical: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Analysis:
    """What :func:`analyse` found out about an acyclic workflow."""

    timings: Mapping[str, StageTiming] = field(default_factory=dict)  # by stage, declaration order
    predecessors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # direct deps, edge order
    critical_path: tuple[str, ...] = ()
    duration_s: float = 0
    layers: tuple[tuple[str, ...], ...] = ()
    #: The size of the widest layer: how many stages can be ready at the same moment
    #: when every stage of a layer starts together.
    max_parallelism: int = 0
    #: Declared ``after`` edges that other dependencies already imply (reported as A503).
    redundant: tuple[Edge, ...] = ()
    #: The figures of ``timings`` as columns: one sequence per StageTiming field (in its
    #: order), one value per stage (declaration order); empty when not known. The plan reads
    #: these rather than making a StageTiming per stage (a third of building a large plan).
    columns: tuple[Sequence[float | int | bool], ...] = field(default=(), compare=False, repr=False)
    #: ``predecessors`` by stage index (declaration order), as indices; empty when not known.
    predecessor_indices: Sequence[Sequence[int]] = field(default=(), compare=False, repr=False)


def analyse(resolved: ResolvedWorkflow | Dependencies) -> tuple[Analysis | None, list[Diagnostic]]:
    """Analyse the dependency graph of ``resolved`` (a whole resolved workflow, or only what
    this reads of one).

    Returns ``(None, diagnostics)`` when the graph has a cycle (A401 per elementary cycle,
    at most :data:`MAX_CYCLES`, then A402); otherwise the analysis and any A503 warnings.
    """
    with collector_paused():
        return _analyse(resolved if isinstance(resolved, Dependencies) else Dependencies.of(resolved))


def _analyse(resolved: Dependencies) -> tuple[Analysis | None, list[Diagnostic]]:
    names = resolved.stages
    index = {name: i for i, name in enumerate(names)}
    edges, pairs = _usable_edges(resolved.edges, index)

    preds: list[list[int]] = [[] for _ in names]
    succs: list[list[int]] = [[] for _ in names]
    for before, after in pairs:
        preds[after].append(before)
        succs[before].append(after)
    generations = _generations(preds, succs)
    if generations is None:
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from(range(len(names)))
        graph.add_edges_from(pairs)
        return None, _cycle_diagnostics(resolved, graph, names, edges)
    order = [node for layer in generations for node in layer]

    layer_of = [0] * len(names)
    for number, layer in enumerate(generations):
        for node in layer:
            layer_of[node] = number
    estimates = [max(float(estimate or 0), 0.0) for estimate in resolved.estimates]
    timings, columns, critical_path, duration = _critical_path(estimates, layer_of, preds, succs, order)
    redundant = _redundant_entries(edges, _redundant_edges(edges, pairs, preds, order, layer_of))
    name_of = names.__getitem__
    analysis = Analysis(
        timings=_ByStage(index, timings),
        predecessors=_ByStage(index, lambda i: tuple(map(name_of, preds[i]))),
        critical_path=tuple(names[i] for i in critical_path),
        duration_s=duration,
        layers=tuple(tuple(names[i] for i in layer) for layer in generations),
        max_parallelism=max((len(layer) for layer in generations), default=0),
        redundant=tuple(edge for group, _ in redundant for edge in group),
        columns=columns,
        predecessor_indices=preds,
    )
    if not redundant:
        return analysis, []
    diagnostics = [_redundant_diagnostic(group, names[via], resolved) for group, via in redundant]
    return analysis, diagnostics


_BEFORE = operator.attrgetter("before")
_AFTER = operator.attrgetter("after")

_Value = TypeVar("_Value")


class _ByStage(Mapping[str, _Value]):
    """A read-only mapping by stage name (declaration order) whose values are made from the
    stage's index at each read, and not kept: ``alfredc check`` of a large file reads none
    of them, the plan reads each once."""

    __slots__ = ("_index", "_make")

    def __init__(self, index: Mapping[str, int], make: Callable[[int], _Value]) -> None:
        self._index = index
        self._make = make

    def __getitem__(self, name: str) -> _Value:
        return self._make(self._index[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return repr(dict(self))


# -- edges ------------------------------------------------------------------------------


def _generations(preds: Sequence[Sequence[int]], succs: Sequence[Sequence[int]]) -> list[list[int]] | None:
    """Topological generations (Kahn, a layer at a time; each in declaration order), or None
    when a cycle leaves some stages unplaced. Same result as networkx's
    ``topological_generations`` with sorted layers."""
    waiting = [len(p) for p in preds]
    layer = [node for node, count in enumerate(waiting) if count == 0]
    generations = []
    placed = 0
    while layer:
        generations.append(layer)
        placed += len(layer)
        ready = []
        for node in layer:
            for successor in succs[node]:
                waiting[successor] -= 1
                if waiting[successor] == 0:
                    ready.append(successor)
        layer = sorted(ready)
    return generations if placed == len(preds) else None


def _usable_edges(
    edges: Sequence[Edge], index: Mapping[str, int]
) -> tuple[list[Edge], list[tuple[int, int]]]:
    """Edges between known stages, the first of each (before, after) pair kept, and the
    (before, after) indices of each.

    ``_check`` guarantees known names; an unknown one is dropped rather than crashing.
    A declared ``after`` edge wins over an implied one for the same pair, so that a
    redundant ``after`` is still reported when a reference also implies it.
    """
    # The common case, all in C: every name known and no pair twice.
    find = index.get
    befores, afters = list(map(find, map(_BEFORE, edges))), list(map(find, map(_AFTER, edges)))
    pairs = list(zip(befores, afters, strict=True))
    if None not in befores and None not in afters and len(set(pairs)) == len(pairs):
        return list(edges), cast(list[tuple[int, int]], pairs)
    count = len(index)
    kept: dict[int, int] = {}  # before * count + after -> position in `usable`
    usable: list[Edge] = []
    known: list[tuple[int, int]] = []
    for edge in edges:
        before, after = index.get(edge.before), index.get(edge.after)
        if before is None or after is None:
            continue
        key = before * count + after
        previous = kept.get(key)
        if previous is None:
            kept[key] = len(usable)
            usable.append(edge)
            known.append((before, after))
        elif usable[previous].kind != "after" and edge.kind == "after":
            usable[previous] = edge  # the pair keeps its first position
    return usable, known


def _edge_span(edge: Edge, resolved: Dependencies) -> Span | None:
    """Where the edge is declared; else the dependent stage, else the workflow."""
    if edge.span is not None:
        return edge.span
    return resolved.stage_span(edge.after) or resolved.span


# -- cycles -----------------------------------------------------------------------------


def _cycle_diagnostics(
    resolved: Dependencies, graph: nx.DiGraph, names: Sequence[str], edges: Sequence[Edge]
) -> list[Diagnostic]:
    by_pair = {(e.before, e.after): e for e in edges}
    components = _cyclic_components(graph)
    diagnostics: list[Diagnostic] = []
    reported = 0
    left = 0
    for number, component in enumerate(components):
        if reported >= MAX_CYCLES:
            left = len(components) - number
            break
        cycles = _cycles_in(graph.subgraph(component))
        for cycle in cycles:
            diagnostics.append(_cycle_diagnostic([names[i] for i in cycle], by_pair, resolved))
            reported += 1
            if reported >= MAX_CYCLES:
                break
        if reported >= MAX_CYCLES and next(cycles, None) is not None:
            left = len(components) - number  # this component is not exhausted either
            break
    if left:
        diagnostics.append(
            Diagnostic(
                code="A402",
                severity=Severity.NOTE,
                message=(
                    f"more dependency cycles exist: {left} group(s) of mutually dependent stages "
                    f"not fully reported (only the first {MAX_CYCLES} cycles are listed)"
                ),
                file=resolved.source,
                primary=None if resolved.span is None else Label(resolved.span, ""),
                notes=("fix the reported cycles and check again",),
            )
        )
    return diagnostics


def _cyclic_components(graph: nx.DiGraph) -> list[list[int]]:
    """Strongly connected components that hold a cycle, in declaration order of their first stage."""
    import networkx as nx

    components = []
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1 or any(graph.has_edge(node, node) for node in component):
            components.append(sorted(component))
    components.sort(key=lambda component: component[0])
    return components


def _cycles_in(component: nx.DiGraph) -> Iterator[list[int]]:
    """The elementary cycles of one component, each rotated to start at its first-declared stage.

    ``nx.simple_cycles`` (Johnson) spends time linear in the component's size between two
    cycles, so taking the first few is fast even for dense components.
    """
    import networkx as nx

    for cycle in nx.simple_cycles(component):
        start = cycle.index(min(cycle))
        yield cycle[start:] + cycle[:start]


def _cycle_diagnostic(
    cycle: Sequence[str],
    by_pair: Mapping[tuple[str, str], Edge],
    resolved: Dependencies,
) -> Diagnostic:
    closed = [*cycle, cycle[0]]
    pairs = list(itertools.pairwise(closed))
    labels = []
    for before, after in pairs:
        edge = by_pair.get((before, after), Edge(before=before, after=after))
        span = _edge_span(edge, resolved)
        if span is not None:
            labels.append(Label(span, f"`{after}` runs after `{before}` here"))
    path = " -> ".join(closed)
    # The first edge is the primary label; every other edge of the cycle is a secondary one.
    first, rest = (labels[0], labels[1:]) if labels else (None, [])
    return error(
        "A401",
        f"dependency cycle: {path}",
        None if first is None else first.span,
        "" if first is None else first.text,
        secondary=rest,
        help="remove one of these dependencies",
        file=resolved.source,
    )


# -- critical path ----------------------------------------------------------------------


def _critical_path(
    estimates: Sequence[float],
    layer_of: Sequence[int],
    preds: Sequence[Sequence[int]],
    succs: Sequence[Sequence[int]],
    order: Sequence[int],
) -> tuple[Callable[[int], StageTiming], tuple[Sequence[float | int | bool], ...], list[int], float]:
    """Forward and backward CPM passes over ``order`` (a topological order); the figures of
    stage ``i`` as ``timings(i)``, and as columns (see :attr:`Analysis.columns`)."""
    count = len(estimates)
    early_start = [0.0] * count
    early_finish = [0.0] * count
    # Plain loops rather than max()/min() over generators: half the time at 100,000 stages.
    for node in order:
        start = 0.0
        for p in preds[node]:
            finish = early_finish[p]
            if finish > start:
                start = finish
        early_start[node] = start
        early_finish[node] = start + estimates[node]
    duration = max(early_finish, default=0.0)

    late_start = [0.0] * count
    late_finish = [0.0] * count
    for node in reversed(order):
        finish = duration
        for s in succs[node]:
            begin = late_start[s]
            if begin < finish:
                finish = begin
        late_finish[node] = finish
        late_start[node] = finish - estimates[node]

    tolerance = 1e-9 * max(1.0, duration)
    # max(late - early, 0.0), then 0.0 within the tolerance (a negative value is within it).
    slack = [
        0.0 if (gap := late - early) <= tolerance else gap
        for late, early in zip(late_start, early_start, strict=True)
    ]
    critical = [s == 0.0 for s in slack]

    def timings(i: int) -> StageTiming:
        return StageTiming(
            estimate_s=estimates[i],
            earliest_start_s=early_start[i],
            earliest_finish_s=early_finish[i],
            latest_start_s=late_start[i],
            latest_finish_s=late_finish[i],
            slack_s=slack[i],
            layer=layer_of[i],
            critical=critical[i],
        )

    # One longest path: from the first-declared critical source, always to the
    # first-declared critical successor that starts when this stage finishes.
    path: list[int] = []
    sources = [i for i in range(count) if not preds[i]]
    current = min(sources, key=lambda s: (slack[s], s)) if sources else None
    while current is not None:
        path.append(current)
        finish = early_finish[current]
        following = sorted(succs[current])
        nxt = [s for s in following if critical[s] and abs(early_start[s] - finish) <= tolerance]
        if not nxt and following:  # float drift only: take the successor closest to critical
            nxt = [min(following, key=lambda s: (slack[s], s))]
        current = nxt[0] if nxt else None
    columns = (estimates, early_start, early_finish, late_start, late_finish, slack, layer_of, critical)
    return timings, columns, path, duration


# -- redundant edges ----------------------------------------------------------------------


#: The most memory the redundant-edge check spends on reachability sets, in bits (32 MB).
#: Candidates are processed in chunks of ``REACH_BUDGET_BITS // stages`` sources, so the
#: check stays exact at any size; only its time grows with the number of chunks.
REACH_BUDGET_BITS = 256 * 1024 * 1024


def _redundant_edges(
    edges: Sequence[Edge],
    pairs: Sequence[tuple[int, int]],
    preds: Sequence[Sequence[int]],
    order: Sequence[int],
    layer_of: Sequence[int],
) -> list[tuple[Edge, int]]:
    """Declared ``after`` edges implied by another path, each with the predecessor implying it.

    An edge u -> v is redundant exactly when u is a strict ancestor of another predecessor
    p of v. That needs ``layer(u) < layer(p)`` (an ancestor sits in an earlier generation),
    which already rules out most edges (all of them in a layered plan). The remaining
    (u, v) pairs are answered with reachability bitsets computed for a chunk of sources at
    a time: bit i of ``reach[x]`` says whether the chunk's i-th source is x or one of its
    ancestors. A chunk's pass only visits the stages from its first source to the last
    predecessor it asks about (topological order), and the chunk size keeps the sets under
    :data:`REACH_BUDGET_BITS` whatever the size of the plan.
    """
    count = len(order)
    queries: dict[int, list[tuple[int, list[int]]]] = {}  # source u -> (edge number, candidate vias)
    # The layers first: they rule out most edges without reading the edge itself.
    for number, (before, after) in enumerate(pairs):
        level = layer_of[before]
        if level >= layer_of[after] - 1:  # every predecessor of `after` is at most one layer up
            continue
        if edges[number].kind != "after":
            continue
        candidates = [p for p in preds[after] if p != before and layer_of[p] > level]
        if candidates:
            queries.setdefault(before, []).append((number, candidates))
    if not queries:
        return []

    position = [0] * count
    for at, node in enumerate(order):
        position[node] = at
    sources = sorted(queries, key=position.__getitem__)
    chunk = max(1, REACH_BUDGET_BITS // max(count, 1))
    reach = [0] * count
    found: dict[int, int] = {}  # edge number -> via
    for first in range(0, len(sources), chunk):
        members = sources[first : first + chunk]
        own = {source: 1 << bit for bit, source in enumerate(members)}
        start = position[members[0]]
        stop = max(position[p] for source in members for _, vias in queries[source] for p in vias)
        window = order[start : stop + 1]
        for node in window:
            bits = own.get(node, 0)
            for p in preds[node]:
                bits |= reach[p]
            reach[node] = bits
        for source in members:
            mask = own[source]
            for number, vias in queries[source]:
                via = next((p for p in vias if reach[p] & mask), None)
                if via is not None:
                    found[number] = via
        for node in window:
            reach[node] = 0
    # In the order of the edges, as the warnings are listed.
    return [(edges[number], found[number]) for number in sorted(found)]


def _redundant_entries(
    edges: Sequence[Edge], redundant: Sequence[tuple[Edge, int]]
) -> list[tuple[tuple[Edge, ...], int]]:
    """Group redundant edges by the ``after`` entry that declared them.

    ``after ALIAS`` declares one edge per sink of the alias, all with the entry's span;
    the entry can only go when every one of them is redundant.
    """
    if not redundant:
        return []
    via_of = {(edge.before, edge.after): via for edge, via in redundant}
    concerned = {edge.after for edge, _ in redundant}  # only their entries can be redundant
    entries: dict[tuple[object, ...], list[Edge]] = {}
    for edge in edges:
        if edge.kind == "after" and edge.after in concerned:
            key = (edge.after, edge.span) if edge.span is not None else (edge.after, edge.before)
            entries.setdefault(key, []).append(edge)
    found = []
    for group in entries.values():
        if all((edge.before, edge.after) in via_of for edge in group):
            found.append((tuple(group), via_of[(group[0].before, group[0].after)]))
    return found


def _written_name(group: Sequence[Edge]) -> str:
    """The name the user wrote: the stage itself, or the alias all the sinks share."""
    if len(group) == 1:
        return group[0].before
    parts = [edge.before.split(".") for edge in group]
    common = []
    for column in zip(*parts, strict=False):
        if len(set(column)) != 1:
            break
        common.append(column[0])
    return ".".join(common) or ", ".join(edge.before for edge in group)


def _redundant_diagnostic(group: Sequence[Edge], via_name: str, resolved: Dependencies) -> Diagnostic:
    edge = group[0]
    written = _written_name(group)
    span = _edge_span(edge, resolved)
    return warning(
        "A503",
        f"redundant `after`: `{written}` is already implied by `{via_name}`",
        span,
        f"`{edge.after}` already runs after `{written}` through `{via_name}`",
        help=f"remove `{written}` from the `after` list of `{edge.after}`",
        fix=remove_list_entry_fix(edge.span),
    )


def measured_critical_path(finished: Mapping[str, float], after: Mapping[str, Sequence[str]]) -> list[str]:
    """The critical path of a run as it happened: from the stage that finished last, step
    back through the dependency that finished last (``finished``: stage -> finish time,
    in declaration order; ``after``: stage -> its dependencies)."""
    if not finished:
        return []
    order = list(finished)
    current: str | None = max(order, key=lambda n: (finished[n], -order.index(n)))
    chain: list[str] = []
    seen: set[str] = set()
    while current is not None and current not in seen:
        chain.append(current)
        seen.add(current)
        deps = [d for d in after.get(current, ()) if d in finished]
        current = max(deps, key=lambda n: (finished[n], -order.index(n))) if deps else None
    chain.reverse()
    return chain
