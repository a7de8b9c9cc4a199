"""What ``alfredc show`` adds for approval stages and budgets (JSON keys and text lines)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._values import format_moment
from ..compiler._budget import format_amount
from ..runtime._approval import pending_approvals
from ..runtime._budget import spent
from ..runtime._store import RunRecord, StageRecord

__all__ = ["gates_json", "gates_text"]


def gates_json(state_dir: Path, record: RunRecord, stages: Sequence[StageRecord]) -> dict[str, Any]:
    """``approvals`` (by stage) and ``spend`` (spent, budget), when the run has any."""
    data: dict[str, Any] = {}
    approvals = pending_approvals(state_dir, record.id)
    if approvals:
        data["approvals"] = approvals
    totals: dict[str, float] = {}
    for stage in stages:
        for unit, amount in spent(stage.outputs).items():
            totals[unit] = totals.get(unit, 0.0) + amount
    budget = record.plan.get("budget") if isinstance(record.plan, dict) else None
    if totals or budget:
        data["spend"] = {"spent": totals, "budget": budget or {}}
    return data


def gates_text(data: dict[str, Any]) -> str:
    text = ""
    approvals = data.get("approvals") or {}
    if approvals:
        lines = []
        for stage, a in approvals.items():
            if a["decision"] is None:
                lines.append(f"  {stage}: waiting for {' or '.join(a['by'])}")
            else:
                when = format_moment(a["decided_at"])
                comment = f": {a['comment']}" if a.get("comment") else ""
                lines.append(f"  {stage}: {a['decision']} by {a['decided_by']} at {when}{comment}")
        text += "\n\napprovals:\n" + "\n".join(lines)
    spend = data.get("spend")
    if spend:
        parts = []
        for unit in ("usd", "tokens"):
            if unit in spend["spent"] or unit in spend["budget"]:
                part = format_amount(unit, spend["spent"].get(unit, 0.0))
                if unit in spend["budget"]:
                    part += f" of {spend['budget'][unit]:g}"
                parts.append(part)
        text += "\n\nspend: " + ", ".join(parts) if parts else ""
    return text
