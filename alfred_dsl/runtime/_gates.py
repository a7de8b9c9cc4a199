"""What the scheduler decides about a stage before it runs, beyond its dependencies:
stage selection (``--only``/``--from``/``--until``), ``run_if`` (cleanup and notification
stages) and incremental runs (``up_to_date``). Called from ``_scheduler._Run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..compiler._plan import PlanStage
from ._resolve import ExprError
from ._results import FAILED, SKIPPED, UP_TO_DATE

if TYPE_CHECKING:
    from ._incremental import FingerprintRecord
    from ._scheduler import _Run, _Stage

__all__ = ["decide_unselected", "failing", "incremental_gate", "lookup_record", "upstream_of_selected"]


def upstream_of_selected(run: _Run) -> set[str]:
    """The stages that some selected stage needs, directly or not (and are not selected)."""
    selected = run.options.selected
    if selected is None:
        return set()
    needed: set[str] = set()
    todo = [d for name in selected if name in run.stages for d in run.stages[name].deps]
    while todo:
        name = todo.pop()
        if name in needed or name in selected:
            continue
        needed.add(name)
        todo.extend(run.stages[name].deps)
    return needed


def decide_unselected(run: _Run, st: _Stage) -> bool:
    """A stage outside the selection: its outputs come from the last run in which it
    succeeded when a selected stage needs it, else it is skipped. False: it is selected."""
    selected = run.options.selected
    if selected is None or st.name in selected or (st.spec.fan_out and st.spec.fan_out in selected):
        return False
    if st.name not in run.needed_upstream:
        run.finalize(st, SKIPPED, reason="not selected")
        return True
    found = run.store.last_success(run.plan.workflow, st.name)
    if found is None:
        st.error = (
            f"no earlier successful run of `{st.name}` to take its outputs from: run it first"
            " (without --only/--from)"
        )
        run.finalize(st, FAILED)
        return True
    from_run, outputs = found
    st.outputs = dict(outputs)
    run.finalize(st, UP_TO_DATE, reason=f"not selected: outputs of run {from_run}", from_run=from_run)
    return True


def failing(run: _Run) -> bool:
    """Whether ``run_if = failure`` stages run: a stage failed, or the run was stopped."""
    return (
        run.interrupted is not None or run.cancelled or run.timed_out
        or any(s.state == FAILED for s in run.stages.values())
    )


def lookup_record(run: _Run, spec: PlanStage) -> FingerprintRecord | None:
    from ._incremental import record_from_row

    row = run.store.fingerprint_row(run.plan.source, run.plan.workflow, spec.name)
    return None if row is None else record_from_row(row)


def incremental_gate(run: _Run, st: _Stage) -> bool:
    """Compute the fingerprint of an incremental stage; finalize it ``up_to_date`` (and return
    True) when its last success matches and it is not forced."""
    spec = st.spec
    if not (spec.sources or spec.produces):  # _incremental.is_incremental, without its import
        return False
    from ._incremental import decide, fingerprint  # only plans with incremental stages load it

    agent = next((run.agents[a] for a in spec.agents if a in run.agents), None)
    if agent is None:
        return False
    try:
        st.fingerprint = fingerprint(spec, agent, run.scope_base, run.base_env, run.secret_values)
    except (ExprError, OSError):
        return False  # the attempt reports the same problem
    if run.options.force or spec.name in run.options.force_stages:
        return False
    record = lookup_record(run, spec)
    decision = decide(spec, st.fingerprint, record)
    if decision.run or record is None:
        return False
    st.outputs = dict(record.outputs)
    run.finalize(
        st, UP_TO_DATE, reason=decision.reason, fingerprint=st.fingerprint.value, from_run=record.run,
    )
    return True
