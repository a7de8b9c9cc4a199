"""What ``alfredc show`` adds for approval stages and budgets (JSON keys and text lines)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._values import format_elapsed, format_moment
from ..compiler._budget import format_amount, spent
from ..runtime._approval import pending_approvals
from ..runtime._store import RunRecord, StageRecord

__all__ = ["gates_json", "gates_text", "spend_json", "waiting_text"]


def spend_json(plan: Mapping[str, Any] | Any, stages: Sequence[StageRecord]) -> dict[str, Any] | None:
    """``{"spent", "budget", "stages"}``: the run's totals, its workflow's budget and what each
    stage reported (in stage order); None when no stage spent and there is no budget."""
    totals: dict[str, float] = {}
    by_stage: dict[str, dict[str, float]] = {}
    for stage in stages:
        amounts = spent(stage.outputs)
        if amounts:
            by_stage[stage.name] = amounts
        for unit, amount in amounts.items():
            totals[unit] = totals.get(unit, 0.0) + amount
    budget = plan.get("budget") if isinstance(plan, Mapping) else None
    if not totals and not budget:
        return None
    return {"spent": totals, "budget": dict(budget or {}), "stages": by_stage}


def gates_json(state_dir: Path, record: RunRecord, stages: Sequence[StageRecord]) -> dict[str, Any]:
    """``approvals`` (by stage, with ``waited_s`` once decided) and ``spend`` (spent, budget,
    stages), when the run has any."""
    data: dict[str, Any] = {}
    approvals = pending_approvals(state_dir, record.id)
    for approval in approvals.values():
        decided, requested = approval.get("decided_at"), approval.get("requested")
        approval["waited_s"] = (
            round(max(decided - requested, 0.0), 3) if decided is not None and requested is not None else None
        )
    if approvals:
        data["approvals"] = approvals
    spend = spend_json(record.plan, stages)
    if spend is not None:
        data["spend"] = spend
    return data


def waiting_text(run_id: str, stage: str, approval: Mapping[str, Any], now: float | None = None) -> str:
    """``waiting for approval by lead (alice, bob), 23h59m left: alfredc approve RUN gate``."""
    users = ", ".join(str(u) for u in approval.get("users") or ())
    text = f"waiting for approval by {' or '.join(str(b) for b in approval.get('by') or ())}"
    if users:
        text += f" ({users})"
    deadline = approval.get("deadline")
    if isinstance(deadline, int | float):
        left = math.floor(deadline - (time.time() if now is None else now))
        then = "approved" if approval.get("on_timeout") == "approve" else "rejected"
        text += f", {format_elapsed(max(left, 0))} left (then {then})"
    return f"{text}: alfredc approve {run_id} {stage}"


def _amounts(amounts: Mapping[str, float], budget: Mapping[str, float] | None = None) -> str:
    parts = []
    for unit in ("usd", "tokens"):
        if unit in amounts or (budget is not None and unit in budget):
            part = format_amount(unit, amounts.get(unit, 0.0))
            if budget is not None and unit in budget:
                part += f" of {budget[unit]:g}"
            parts.append(part)
    return ", ".join(parts)


def gates_text(data: dict[str, Any], run_id: str = "RUN") -> str:
    text = ""
    approvals = data.get("approvals") or {}
    if approvals:
        lines = []
        for stage, a in approvals.items():
            if a["decision"] is None:
                lines.append(f"  {stage}: {waiting_text(run_id, stage, a)}")
            else:
                when = format_moment(a["decided_at"])
                waited = f" after {format_elapsed(a['waited_s'])}" if a.get("waited_s") is not None else ""
                comment = f": {a['comment']}" if a.get("comment") else ""
                lines.append(f"  {stage}: {a['decision']} by {a['decided_by']} at {when}{waited}{comment}")
        text += "\n\napprovals:\n" + "\n".join(lines)
    spend = data.get("spend")
    if spend:
        total = _amounts(spend["spent"], spend["budget"])
        if total:
            text += "\n\nspend: " + total
            text += "".join(
                f"\n  {stage}: {_amounts(amounts)}" for stage, amounts in (spend.get("stages") or {}).items()
            )
    return text
