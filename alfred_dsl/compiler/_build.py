"""The plan of a resolved and analysed workflow: the last step of the pipeline.

Kept apart from :mod:`._plan` (the plan's types, which :mod:`._model` uses too) so that no
module imports another that imports it back.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ._graph import Analysis
from ._model import ResolvedWorkflow
from ._plan import Plan, PlanStage

__all__ = ["build_plan"]

_STAGE_FIELDS = tuple(f.name for f in fields(PlanStage))
_set = object.__setattr__


def _copied(stage: PlanStage, changes: dict[str, Any]) -> PlanStage:
    """``dataclasses.replace`` for the fields that analysis sets, without running
    ``__init__`` and ``__post_init__`` again (the other fields are the stage's, already
    checked): half the time, per stage."""
    copied = object.__new__(PlanStage)
    for name in _STAGE_FIELDS:
        _set(copied, name, changes[name] if name in changes else getattr(stage, name))
    return copied


def _into(stage: PlanStage, changes: dict[str, Any]) -> PlanStage:
    """:func:`_copied` without the copy: ``stage`` itself gets the changes."""
    for name, value in changes.items():
        _set(stage, name, value)
    return stage


def build_plan(resolved: ResolvedWorkflow, analysis: Analysis, *, consume: bool = False) -> Plan:
    """The plan of ``resolved``: its stages with their direct dependencies and CPM figures.

    ``after`` lists every direct dependency (declared ``after``, implied by a reference or
    by a ``use ... after``): first those the stage names itself, in its own order, then
    the implied ones in the order their edges were found.

    ``consume``: ``resolved`` is of no further use to the caller, so its stages become the
    plan's rather than being copied (``alfredc check``: a copy of every stage less at the
    peak).
    """
    _with = _into if consume else _copied
    stages = []
    for stage in resolved.stages:
        preds = analysis.predecessors.get(stage.name, ())
        pred_set = set(preds)
        named = [name for name in dict.fromkeys(stage.after) if name in pred_set]
        named_set = set(named)
        after = (*named, *(name for name in preds if name not in named_set))
        timing = analysis.timings.get(stage.name)
        if timing is None:  # not analysed (cannot happen for a plan built from analyse())
            stages.append(_with(stage, {"after": after}))
            continue
        stages.append(
            _with(
                stage,
                {
                    "after": after,
                    "estimate_s": timing.estimate_s,
                    "earliest_start_s": timing.earliest_start_s,
                    "earliest_finish_s": timing.earliest_finish_s,
                    "latest_start_s": timing.latest_start_s,
                    "latest_finish_s": timing.latest_finish_s,
                    "slack_s": timing.slack_s,
                    "layer": timing.layer,
                    "critical": timing.critical,
                },
            )
        )
    return Plan(
        workflow=resolved.name,
        source=resolved.source,
        description=resolved.description,
        params=resolved.params,
        secrets=resolved.secrets,
        agents=resolved.agents,
        stages=tuple(stages),
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
