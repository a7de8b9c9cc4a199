"""Hand-made plans for the docs, SVG and report tests (no compiler needed)."""

from __future__ import annotations

from collections.abc import Sequence

from alfred_dsl.compiler._plan import FrozenMap, Plan, PlanAgent, PlanStage


def make_plan(
    workflow: str,
    stages: Sequence[tuple[str, Sequence[str], float]],
    *,
    groups: dict[str, tuple[str, ...]] | None = None,
    agent: str = "worker",
    description: str = "",
    params: dict[str, object] | None = None,
) -> Plan:
    """A plan from ``(name, after, estimate_s)`` rows, with layers and CPM figures filled in."""
    groups = groups or {}
    order = [name for name, _, _ in stages]
    after = {name: tuple(deps) for name, deps, _ in stages}
    est = {name: float(e) for name, _, e in stages}
    layer: dict[str, int] = {}
    es: dict[str, float] = {}
    for name in order:  # rows are given in a topological order
        layer[name] = max((layer[d] + 1 for d in after[name]), default=0)
        es[name] = max((es[d] + est[d] for d in after[name]), default=0.0)
    duration = max((es[n] + est[n] for n in order), default=0.0)
    succs: dict[str, list[str]] = {n: [] for n in order}
    for n in order:
        for d in after[n]:
            succs[d].append(n)
    lf: dict[str, float] = {}
    for name in reversed(order):
        lf[name] = min((lf[s] - est[s] for s in succs[name]), default=duration)
    critical = {n for n in order if abs(lf[n] - est[n] - es[n]) < 1e-9}
    path: list[str] = []
    current = next((n for n in order if not after[n] and n in critical), None)
    while current is not None:
        path.append(current)
        current = next(
            (s for s in succs[current] if s in critical and abs(es[s] - es[current] - est[current]) < 1e-9),
            None,
        )
    plan_stages = tuple(
        PlanStage(
            name=n,
            group=groups.get(n, ()),
            agents=(agent,),
            kind="command",
            run=("true",),
            after=after[n],
            estimate_s=est[n],
            retries=1,
            timeout_s=1800.0,
            priority=2 if n == order[0] else 0,
            earliest_start_s=es[n],
            earliest_finish_s=es[n] + est[n],
            latest_start_s=lf[n] - est[n],
            latest_finish_s=lf[n],
            slack_s=lf[n] - est[n] - es[n],
            layer=layer[n],
            critical=n in critical,
        )
        for n in order
    )
    layers: dict[int, list[str]] = {}
    for n in order:
        layers.setdefault(layer[n], []).append(n)
    return Plan(
        workflow=workflow,
        source=f"{workflow}.alfred",
        description=description,
        params=FrozenMap(params or {}),
        agents=(
            PlanAgent(name=agent, kind="command", run=("true",), capabilities=("build",), concurrency=2),
        ),
        stages=plan_stages,
        critical_path=tuple(path),
        duration_s=duration,
        layers=tuple(tuple(layers[k]) for k in sorted(layers)),
        max_parallelism=max(len(v) for v in layers.values()) if layers else 0,
    )


def feature_plan() -> Plan:
    return make_plan(
        "feature_development",
        [
            ("specification", [], 1200),
            ("auth.design", ["specification"], 600),
            ("auth.build", ["auth.design"], 3600),
            ("implementation", ["specification"], 7200),
            ("docs", ["specification"], 900),
            ("testing", ["implementation", "auth.build"], 1800),
            ("deployment", ["testing", "docs"], 300),
        ],
        groups={"auth.design": ("auth",), "auth.build": ("auth",)},
        description="From specification to documentation",
    )
