"""Budgets at run time: what the stages report they spent, and the stop when it would pass.

A stage reports its spend in its outputs: ``cost_usd=0.42`` and ``tokens=1800`` (numbers, or
text holding one). The totals are sums over the run's succeeded stages, recorded with their
outputs, so a resumed run counts what it already spent. Before a stage starts, the run
compares the total plus that stage's declared ``cost`` (one attempt) with the workflow's
``budget``; when it would pass (or the total already has, or the run has lasted longer
than ``time``), no further stage starts, the running ones finish, and the run fails with
the reason ``budget exceeded: usd 5.20 > 5``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..compiler._budget import format_amount, spent
from . import _events as ev
from ._results import CANCELLED, FAILED, PENDING, UPSTREAM_FAILED

if TYPE_CHECKING:
    from ..compiler._plan import PlanStage
    from ._scheduler import _Run

__all__ = ["Spend", "spent"]


class Spend:
    """The running totals of one run against its plan's budget."""

    def __init__(self, budget: Mapping[str, float]) -> None:
        self.budget = dict(budget)
        self.totals: dict[str, float] = {}
        #: Why the run stopped on its budget, once it did.
        self.reason: str | None = None

    def add(self, outputs: Mapping[str, Any]) -> None:
        for unit, amount in spent(outputs).items():
            self.totals[unit] = self.totals.get(unit, 0.0) + amount

    def passed(self, extra: Mapping[str, Any] | None = None, elapsed_s: float = 0.0) -> str | None:
        """The reason the budget is (or, with ``extra`` spent, would be) passed, else None."""
        for unit, limit in self.budget.items():
            if unit == "time":
                if elapsed_s > limit:
                    limit_text = format_amount("time", limit).split(" ", 1)[1]
                    return f"budget exceeded: {format_amount('time', elapsed_s)} > {limit_text}"
                continue
            total = self.totals.get(unit, 0.0) + float((extra or {}).get(unit, 0.0))
            if total > limit:
                return f"budget exceeded: {format_amount(unit, total)} > {limit:g}"
        return None

    def as_json(self) -> dict[str, Any]:
        return {"spent": dict(self.totals), "budget": dict(self.budget)}

    def final_data(self) -> dict[str, Any]:
        """What the run's final event says of its spend: ``{"spend": {"spent", "budget"}}``
        when a stage reported any or the workflow has a budget, else nothing."""
        return {"spend": self.as_json()} if self.totals or self.budget else {}


def refuse(run: _Run, spec: PlanStage) -> bool:
    """Before ``spec`` starts: stop the run when starting it would pass the budget."""
    if not run.spend.budget or run.spend.reason is not None:
        return run.spend.reason is not None
    reason = run.spend.passed(spec.cost, time.time() - run.started)
    if reason is None:
        return False
    halt(run, reason, spec.name)
    return True


def after_success(run: _Run, outputs: Mapping[str, Any]) -> None:
    """A stage succeeded: count its spend; past the budget, nothing more starts."""
    if outputs:  # nothing to count in none (most stages)
        run.spend.add(outputs)
    if run.spend.budget and run.spend.reason is None and not run.stopping:
        reason = run.spend.passed()
        if reason is not None:
            halt(run, reason, None)


def halt(run: _Run, reason: str, stage: str | None) -> None:
    """No further stage starts; the running ones finish; the run will fail with ``reason``."""
    run.spend.reason = reason
    run.emit(ev.BUDGET_EXCEEDED, stage, reason=reason, refused=stage, **run.spend.as_json())
    run.stopping = True
    run.ready.clear()
    for st in run._topological():
        if st.state == PENDING:
            broken = next((d for d in st.deps if run.stages[d].state in (FAILED, UPSTREAM_FAILED)), None)
            if broken is not None:
                run.finalize(st, UPSTREAM_FAILED, upstream=broken)
            else:
                st.error = reason
                run.finalize(st, CANCELLED, reason=reason)
    run.settle.clear()
    run.check_done()
