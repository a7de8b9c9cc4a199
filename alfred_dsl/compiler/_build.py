"""The plan of a resolved and analysed workflow: the last step of the pipeline.

Kept apart from :mod:`._plan` (the plan's types, which :mod:`._model` uses too) so that no
module imports another that imports it back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import fields
from operator import attrgetter

from ._graph import Analysis, StageTiming
from ._model import ResolvedWorkflow
from ._plan import Plan, PlanStage

__all__ = ["build_plan"]

_STAGE_FIELDS = tuple(f.name for f in fields(PlanStage))
#: The slot setter and getter of each PlanStage field: a stage is copied, or given its
#: analysis figures, without ``dataclasses.replace`` running ``__init__`` and
#: ``__post_init__`` again (the other fields are the stage's, already checked).
_SLOTS = tuple((getattr(PlanStage, name).__set__, getattr(PlanStage, name).__get__) for name in _STAGE_FIELDS)
_name_of = attrgetter("name")
_set_after = getattr(PlanStage, "after").__set__  # noqa: B009 (mypy refuses the slot as a class attribute)
#: The fields that the analysis sets (StageTiming's, in its order: that of Analysis.columns).
_TIMING_FIELDS = tuple(f.name for f in fields(StageTiming))
_timing_values = attrgetter(*_TIMING_FIELDS)
_TIMING_SETTERS = tuple(getattr(PlanStage, name).__set__ for name in _TIMING_FIELDS)


def _copied(stage: PlanStage) -> PlanStage:
    copied = object.__new__(PlanStage)
    for set_slot, get_slot in _SLOTS:
        set_slot(copied, get_slot(stage))
    return copied


def _after(declared: tuple[str, ...], preds: tuple[str, ...]) -> tuple[str, ...]:
    """First the dependencies that the stage names itself, in its own order, then the
    implied ones in the order their edges were found."""
    if declared == preds:
        # The usual case: the resolver's `after` is every edge into the stage, in the order
        # found, as the analysis's predecessors are (both without repeats).
        return preds
    pred_set = set(preds)
    named = [name for name in dict.fromkeys(declared) if name in pred_set]
    named_set = set(named)
    return (*named, *(name for name in preds if name not in named_set))


def build_plan(resolved: ResolvedWorkflow, analysis: Analysis, *, consume: bool = False) -> Plan:
    """The plan of ``resolved``: its stages with their direct dependencies and CPM figures.

    ``after`` lists every direct dependency (declared ``after``, implied by a reference or
    by a ``use ... after``): first those the stage names itself, in its own order, then
    the implied ones in the order their edges were found.

    ``consume``: ``resolved`` is of no further use to the caller, so its stages become the
    plan's rather than being copied (``alfredc check``: a copy of every stage less at the
    peak).
    """
    predecessors = analysis.predecessors
    source = resolved.stages
    planned_stages = source if consume else tuple(map(_copied, source))
    columns = analysis.columns
    if len(columns) == len(_TIMING_SETTERS) and all(len(column) == len(source) for column in columns):
        # The analysis's figures as they are, a column at a time: neither a StageTiming per
        # stage nor a call per stage and field through it.
        for set_slot, column in zip(_TIMING_SETTERS, columns, strict=True):
            deque(map(set_slot, planned_stages, column), maxlen=0)
    else:
        timings = analysis.timings
        for planned in planned_stages:
            timing = timings.get(planned.name)
            if timing is not None:  # (always, for a plan built from analyse())
                for set_slot, value in zip(_TIMING_SETTERS, _timing_values(timing), strict=True):
                    set_slot(planned, value)
    indices = analysis.predecessor_indices
    if len(indices) == len(source):
        names = list(map(_name_of, source)).__getitem__
        for planned, before in zip(planned_stages, indices, strict=True):
            _set_after(planned, _after(planned.after, tuple(map(names, before))))
    else:
        get_predecessors = predecessors.get
        for planned in planned_stages:
            _set_after(planned, _after(planned.after, get_predecessors(planned.name, ())))
    return Plan(
        workflow=resolved.name,
        source=resolved.source,
        description=resolved.description,
        params=resolved.params,
        secrets=resolved.secrets,
        agents=resolved.agents,
        stages=tuple(planned_stages),
        hooks=resolved.hooks,
        schedule=resolved.schedule,
        critical_path=tuple(analysis.critical_path),
        duration_s=analysis.duration_s,
        layers=tuple(tuple(layer) for layer in analysis.layers),
        max_parallelism=analysis.max_parallelism,
        budget=resolved.budget,
        timeout_s=resolved.timeout_s,
        concurrency_group=resolved.concurrency_group,
        cancel_in_progress=resolved.cancel_in_progress,
    )
