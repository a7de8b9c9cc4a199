"""Hand-made resolved workflows for the graph, plan and renderer tests (no parser needed)."""

from __future__ import annotations

from collections.abc import Sequence

from alfred_dsl._source import SourceFile, Span
from alfred_dsl.compiler._build import build_plan
from alfred_dsl.compiler._graph import analyse
from alfred_dsl.compiler._model import Edge, ResolvedWorkflow
from alfred_dsl.compiler._plan import Plan, PlanStage

Row = tuple[str, Sequence[str], float]


def make_source(rows: Sequence[Row]) -> tuple[SourceFile, dict[str, Span], dict[tuple[str, str], Span]]:
    """A DSL-like text for ``rows`` with the span of each stage name and of each `after` name."""
    lines = ["workflow w {"]
    stage_at: dict[str, tuple[int, int]] = {}
    edge_at: dict[tuple[str, str], tuple[int, int]] = {}
    offset = len(lines[0]) + 1
    for name, after, _ in rows:
        line = f"  stage {name}"
        stage_at[name] = (offset + 8, offset + 8 + len(name))
        if after:
            line += " after "
            for number, before in enumerate(after):
                if number:
                    line += ", "
                edge_at[(before, name)] = (offset + len(line), offset + len(line) + len(before))
                line += before
        line += " {}"
        lines.append(line)
        offset += len(line) + 1
    lines.append("}")
    source = SourceFile("w.alfred", "\n".join(lines) + "\n")
    return (
        source,
        {n: Span(source, a, b) for n, (a, b) in stage_at.items()},
        {k: Span(source, a, b) for k, (a, b) in edge_at.items()},
    )


def make_resolved(
    rows: Sequence[Row],
    *,
    groups: dict[str, tuple[str, ...]] | None = None,
    kinds: dict[tuple[str, str], str] | None = None,
    name: str = "w",
    with_spans: bool = True,
) -> ResolvedWorkflow:
    """A resolved workflow from ``(name, after, estimate_s)`` rows in declaration order."""
    groups = groups or {}
    kinds = kinds or {}
    _, stage_spans, edge_spans = make_source(rows)
    stages = tuple(
        PlanStage(
            name=stage,
            group=groups.get(stage, ()),
            agents=("worker",),
            kind="command",
            run="true",
            after=tuple(b for b in after if kinds.get((b, stage), "after") == "after"),
            estimate_s=estimate,
            span=stage_spans[stage] if with_spans else None,
        )
        for stage, after, estimate in rows
    )
    edges = tuple(
        Edge(
            before=before,
            after=stage,
            span=edge_spans[(before, stage)] if with_spans else None,
            kind=kinds.get((before, stage), "after"),  # type: ignore[arg-type]
        )
        for stage, after, _ in rows
        for before in after
    )
    return ResolvedWorkflow(name=name, source="w.alfred", stages=stages, edges=edges)


def make_plan(rows: Sequence[Row], **options: object) -> Plan:
    resolved = make_resolved(rows, **options)  # type: ignore[arg-type]
    analysis, diagnostics = analyse(resolved)
    assert analysis is not None, diagnostics
    return build_plan(resolved, analysis)


#: The workflow of spec section 2 (estimates 20m, 2h, 30m, none).
FEATURE_DEVELOPMENT: list[Row] = [
    ("specification", [], 1200),
    ("implementation", ["specification"], 7200),
    ("testing", ["implementation"], 1800),
    ("deployment", ["testing"], 0),
]


#: The spec's feature_development workflow as a complete, valid file.
FEATURE_DSL = """\
agent spec-builder {
  kind         = command
  run          = ["true"]
  capabilities = ["requirements", "specification"]
}

agent implementer {
  kind         = command
  run          = ["true"]
  capabilities = ["development", "testing"]
  concurrency  = 2
}

agent deployer {
  kind = command
  run  = ["true"]
}

workflow feature_development {
  description = "From specification to documentation"

  param feature_name: string = "login"
  param auto_deploy: bool = false

  stage specification {
    agent    = spec-builder
    inputs   = { feature = params.feature_name }
    estimate = 20m
  }

  stage implementation after specification {
    agent    = implementer
    estimate = 2h
  }

  stage testing after implementation {
    agent    = implementer
    estimate = 30m
  }

  stage deployment after testing {
    agent = deployer
    when  = params.auto_deploy
  }
}
"""

#: A template included twice, and a redundant `after`.
GROUPED_DSL = """\
agent worker {
  kind = command
  run  = ["true"]
}

workflow review {
  param area: string
  stage read {
    agent    = worker
    inputs   = { area = params.area }
    estimate = 10m
  }
  stage sign-off after read {
    agent    = worker
    estimate = 5m
  }
}

workflow launch {
  stage spec-draft {
    agent    = worker
    estimate = 10m
  }
  use review(area = "auth") as auth after spec-draft
  use review(area = "billing") as billing after spec-draft
  stage release after auth, billing, spec-draft {
    agent    = worker
    estimate = 1m
  }
}
"""

CYCLE_DSL = """\
agent worker {
  kind = command
  run  = ["true"]
}

workflow loop {
  stage a after c {
    agent = worker
  }
  stage b after a {
    agent = worker
  }
  stage c after b {
    agent = worker
  }
}
"""
