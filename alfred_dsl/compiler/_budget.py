"""Budgets at compile time: declared costs, the worst case of a plan, and its check (A506).

A stage (or its agent) declares what one attempt may spend: ``cost = { usd = 0.40,
tokens = 20000 }``, or ``tokens = 20000`` alone. A workflow's ``budget = { usd = 5,
tokens = 100000, time = 2h }`` bounds a run. The worst case assumes every stage runs and
every attempt is made: usd and tokens are the sum over the stages of cost x (1 + retries);
time is the longest dependency path where a stage lasts (timeout, else estimate) x
(1 + retries) plus its backoff waits (each capped by ``max_backoff``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._diagnostics import Diagnostic, Label, warning
from .._source import Span
from ._plan import FrozenMap, Plan, PlanStage

__all__ = [
    "SPEND_OUTPUTS", "UNITS", "WorstCase", "budget_of", "budget_warnings", "cost_of", "format_amount",
    "spent", "worst_case",
]

#: The units a budget bounds, in display order (``time`` is seconds of wall time).
UNITS = ("usd", "tokens", "time")
#: The outputs through which a stage reports what it spent -> the budget unit each counts in.
#: The runtime's stop, ``alfredc show``, the report and the metrics all read spend this way.
SPEND_OUTPUTS = {"cost_usd": "usd", "tokens": "tokens"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return value


def _spent_amount(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def spent(outputs: Mapping[str, Any]) -> dict[str, float]:
    """What one stage's outputs say it spent, by unit (``cost_usd=0.42`` -> ``{"usd": 0.42}``)."""
    found: dict[str, float] = {}
    for name, unit in SPEND_OUTPUTS.items():
        amount = _spent_amount(outputs.get(name))
        if amount is not None and amount >= 0:
            found[unit] = amount
    return found


def _cost_map(block: Mapping[str, Any]) -> dict[str, float]:
    found: dict[str, float] = {}
    cost = block.get("cost")
    if isinstance(cost, dict):
        for unit in ("usd", "tokens"):
            value = _number(cost.get(unit))
            if value is not None:
                found[unit] = value
    tokens = _number(block.get("tokens"))
    if tokens is not None:
        found["tokens"] = tokens
    return found


def cost_of(stage: Mapping[str, Any], agents: Iterable[Mapping[str, Any]]) -> FrozenMap:
    """What one attempt of ``stage`` may spend: its own ``cost``/``tokens``, else the most any
    of its agents declares, per unit."""
    own = _cost_map(stage)
    if own:
        return FrozenMap(own)
    found: dict[str, float] = {}
    for agent in agents:
        for unit, value in _cost_map(agent).items():
            found[unit] = max(found.get(unit, 0), value)
    return FrozenMap(found)


def budget_of(workflow: Mapping[str, Any], seconds: Callable[[Any], float | None]) -> FrozenMap:
    """The workflow's ``budget``: ``usd``, ``tokens`` and ``time`` (seconds), those it sets."""
    budget = workflow.get("budget")
    if not isinstance(budget, dict):
        return FrozenMap()
    found: dict[str, float] = {}
    for unit in ("usd", "tokens"):
        value = _number(budget.get(unit))
        if value is not None:
            found[unit] = value
    time_s = seconds(budget.get("time")) if "time" in budget else None
    if time_s is not None:
        found["time"] = time_s
    return FrozenMap(found)


def format_amount(unit: str, value: float) -> str:
    """``usd 5.20``, ``tokens 120000``, ``time 2h30m``: how budgets and spend read."""
    if unit == "usd":
        return f"usd {value:.2f}"
    if unit == "time":
        return f"time {_duration(value)}"
    return f"{unit} {value:g}" if value != int(value) else f"{unit} {int(value)}"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole != seconds or whole < 60:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n) or "0s"


def _limit(unit: str, value: float) -> str:
    return _duration(value) if unit == "time" else f"{value:g}"


def stage_time(stage: PlanStage) -> float:
    """The longest ``stage`` can take: every attempt to its timeout (else its estimate), and
    the backoff waits between them."""
    if stage.approve is not None:
        timeout = stage.approve.get("timeout_s")
        return float(timeout) if isinstance(timeout, int | float) else 0.0
    attempt = stage.timeout_s if stage.timeout_s else stage.estimate_s
    retries = max(stage.retries, 0)
    waits = 0.0
    for i in range(retries):
        wait = max(stage.backoff_s, 0) * 2**i
        waits += min(wait, stage.max_backoff_s) if stage.max_backoff_s is not None else wait
    return float(attempt) * (1 + retries) + waits


@dataclass(frozen=True, slots=True)
class WorstCase:
    """The most a run of a plan can spend, per unit, and what each stage contributes."""

    totals: dict[str, float]
    #: unit -> (stage, amount), largest first; for time, the stages of the longest path.
    contributors: dict[str, list[tuple[str, float]]]


def worst_case(plan: Plan) -> WorstCase:
    totals: dict[str, float] = {}
    contributors: dict[str, list[tuple[str, float]]] = {}
    for unit in ("usd", "tokens"):
        parts = [
            (s.name, float(s.cost[unit]) * (1 + max(s.retries, 0))) for s in plan.stages if unit in s.cost
        ]
        if parts:
            totals[unit] = sum(amount for _, amount in parts)
            contributors[unit] = sorted(parts, key=lambda p: -p[1])
    # The longest path; plan.stages are in declaration order, which may not be topological.
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    by_name = {s.name: s for s in plan.stages}

    def end(name: str) -> float:
        if name not in finish:
            finish[name] = 0.0  # a cycle cannot reach here (the plan has none), but never recurse forever
            deps = [d for d in by_name[name].after if d in by_name]
            best = max(deps, key=end, default=None)
            via[name] = best
            finish[name] = (end(best) if best is not None else 0.0) + stage_time(by_name[name])
        return finish[name]

    if plan.stages:
        last = max((s.name for s in plan.stages), key=end)
        totals["time"] = finish[last]
        path: list[tuple[str, float]] = []
        node: str | None = last
        while node is not None:
            path.append((node, stage_time(by_name[node])))
            node = via[node]
        contributors["time"] = sorted(path, key=lambda p: -p[1])
    return WorstCase(totals, contributors)


def budget_warnings(plan: Plan, span: Span | None) -> list[Diagnostic]:
    """A506: a unit of the budget that the worst case of ``plan`` exceeds, with the stages
    that contribute most."""
    if not plan.budget:
        return []
    worst = worst_case(plan)
    spans = {s.name: s.span for s in plan.stages}
    out: list[Diagnostic] = []
    for unit in UNITS:
        if unit not in plan.budget or worst.totals.get(unit, 0) <= plan.budget[unit]:
            continue
        top = [c for c in worst.contributors[unit] if c[1] > 0][:3]
        shown = ", ".join(f"`{name}` ({_limit(unit, amount)})" for name, amount in top)
        out.append(warning(
            "A506",
            f"workflow `{plan.workflow}` can exceed its budget: worst case "
            f"{format_amount(unit, worst.totals[unit])} > {_limit(unit, plan.budget[unit])}",
            span,
            "budget of this workflow",
            notes=[f"most from: {shown}", "the worst case counts every stage and every retry"],
            help="raise the budget, lower `cost` or `retries`, or accept that the run may stop on the budget",
            secondary=[Label(s, f"`{name}`") for name, _ in top if (s := spans.get(name)) is not None],
        ))
    return out
