"""The dependency graph of a plan as Mermaid, Graphviz DOT or JSON.

Stages that came from a ``use ALIAS`` are drawn inside a cluster per alias (nested for
nested uses); the critical path is highlighted. Stage names contain ``.`` and ``-``, so
Mermaid gets generated ids (``s0``, ``s1``...) with quoted labels, and DOT gets every id
quoted.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from ..compiler._plan import Plan, PlanStage
from ._plan import duration_text, number

__all__ = ["graph_edges", "graph_to_json", "to_dot", "to_mermaid"]

_CRITICAL_COLOUR = "#d62728"


def graph_edges(plan: Plan) -> list[tuple[str, str]]:
    """Every dependency as (before, after), in stage declaration order."""
    return [(before, stage.name) for stage in plan.stages for before in stage.after]


def _path_edges(plan: Plan) -> set[tuple[str, str]]:
    return set(itertools.pairwise(plan.critical_path))


def _groups(stages: Sequence[PlanStage], prefix: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """Walk ``stages`` (all under ``prefix``) in declaration order.

    Yields ("stage", PlanStage) for stages directly at this level and ("group", (path,
    stages)) for each nested group, once, at the position of its first stage.
    """
    seen: set[str] = set()
    depth = len(prefix)
    for stage in stages:
        if len(stage.group) == depth:
            yield "stage", stage
            continue
        alias = stage.group[depth]
        if alias in seen:
            continue
        seen.add(alias)
        members = [s for s in stages if len(s.group) > depth and s.group[depth] == alias]
        yield "group", ((*prefix, alias), members)


# -- Mermaid ----------------------------------------------------------------------------

_MERMAID_ESCAPES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;"}


def _mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(char, char) for char in text).replace("\n", " ")


def to_mermaid(plan: Plan) -> str:
    """A Mermaid ``flowchart``: one node per stage with its estimate, edges for dependencies."""
    ids = {stage.name: f"s{number_}" for number_, stage in enumerate(plan.stages)}
    lines = ["flowchart LR"]
    if plan.workflow:
        lines.append(f"  %% workflow {_mermaid_text(plan.workflow)}")
    counter = itertools.count()

    def emit(stages: Sequence[PlanStage], prefix: tuple[str, ...], indent: str) -> None:
        for kind, item in _groups(stages, prefix):
            if kind == "stage":
                label = f"{_mermaid_text(item.name)}<br/>{duration_text(item.estimate_s)}"
                lines.append(f'{indent}{ids[item.name]}["{label}"]')
            else:
                path, members = item
                lines.append(f'{indent}subgraph g{next(counter)}["{_mermaid_text(path[-1])}"]')
                emit(members, path, indent + "  ")
                lines.append(f"{indent}end")

    emit(plan.stages, (), "  ")
    critical = _path_edges(plan)
    highlighted = []
    for number_, (before, after) in enumerate(graph_edges(plan)):
        lines.append(f"  {ids[before]} --> {ids[after]}")
        if (before, after) in critical:
            highlighted.append(str(number_))
    lines.append(f"  classDef critical stroke:{_CRITICAL_COLOUR},stroke-width:3px")
    on_path = [ids[name] for name in plan.critical_path if name in ids]
    if on_path:
        lines.append(f"  class {','.join(on_path)} critical")
    if highlighted:
        lines.append(f"  linkStyle {','.join(highlighted)} stroke:{_CRITICAL_COLOUR},stroke-width:3px")
    return "\n".join(lines) + "\n"


# -- Graphviz DOT ---------------------------------------------------------------------------


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _dot_label(*lines: str) -> str:
    # "\n" inside a DOT string is a centred line break: join already-escaped lines with it.
    return '"' + "\\n".join(_dot_quote(line)[1:-1] for line in lines) + '"'


def to_dot(plan: Plan) -> str:
    """A Graphviz ``digraph``: clusters for ``use`` aliases, the critical path in red and bold."""
    on_path = set(plan.critical_path)
    lines = [
        f"digraph {_dot_quote(plan.workflow)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica"];',
    ]
    counter = itertools.count()

    def emit(stages: Sequence[PlanStage], prefix: tuple[str, ...], indent: str) -> None:
        for kind, item in _groups(stages, prefix):
            if kind == "stage":
                attributes = f"label={_dot_label(item.name, duration_text(item.estimate_s))}"
                if item.name in on_path:
                    attributes += f', color="{_CRITICAL_COLOUR}", penwidth=2.5'
                lines.append(f"{indent}{_dot_quote(item.name)} [{attributes}];")
            else:
                path, members = item
                lines.append(f"{indent}subgraph {_dot_quote(f'cluster_{next(counter)}')} {{")
                lines.append(f"{indent}  label={_dot_quote(path[-1])};")
                lines.append(f"{indent}  style=dashed;")
                emit(members, path, indent + "  ")
                lines.append(f"{indent}}}")

    emit(plan.stages, (), "  ")
    critical = _path_edges(plan)
    for before, after in graph_edges(plan):
        attributes = f' [color="{_CRITICAL_COLOUR}", penwidth=2.5]' if (before, after) in critical else ""
        lines.append(f"  {_dot_quote(before)} -> {_dot_quote(after)}{attributes};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- JSON -------------------------------------------------------------------------------------


def graph_to_json(plan: Plan) -> dict[str, Any]:
    """Nodes (stages with estimates and CPM flags) and edges (dependencies) as plain data."""
    on_path = set(plan.critical_path)
    critical = _path_edges(plan)
    return {
        "workflow": plan.workflow,
        "nodes": [
            {
                "id": stage.name,
                "agent": stage.agents[0] if stage.agents else None,
                "group": list(stage.group),
                "estimate_s": number(stage.estimate_s),
                "layer": stage.layer,
                "critical": stage.critical,
                "on_critical_path": stage.name in on_path,
            }
            for stage in plan.stages
        ],
        "edges": [
            {"from": before, "to": after, "critical": (before, after) in critical}
            for before, after in graph_edges(plan)
        ],
        "critical_path": list(plan.critical_path),
        "duration_s": number(plan.duration_s),
    }
