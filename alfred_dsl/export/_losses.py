"""What does not translate exactly to an engine: one A6xx warning each, at its source position."""

from __future__ import annotations

from ._common import agent_of
from ._compiler import DEFAULT_MAX_LOG, Diagnostic, Plan, PlanStage, Span, warning

__all__ = ["ENGINES", "losses"]

#: target -> the engine's name in messages.
ENGINES = {"airflow": "Airflow", "prefect": "Prefect", "dagster": "Dagster"}


def _span(plan: Plan, stage: PlanStage | None = None) -> Span | None:
    if stage is not None and stage.span is not None:
        return stage.span
    return next((s.span for s in plan.stages if s.span is not None), None)


def _retry_loss(target: str, stage: PlanStage) -> str | None:
    if stage.retries <= 0 or stage.backoff_s <= 0:
        return None
    if target == "airflow":
        return (
            "Airflow doubles `retry_delay` (retry_exponential_backoff=2) but spreads each wait between "
            "1x and 2x that delay by a hash, waits at least 1s, and has no alfred jitter"
        )
    if target == "prefect":
        return (
            "Prefect waits exactly alfred's delays (retry_delay_seconds), but its jitter "
            "(retry_jitter_factor=0.1) lengthens a wait by up to 10% where alfred shortens it by up to 10%"
        )
    if stage.retries == 1 and stage.max_backoff_s is None:
        return "Dagster waits `backoff` before the retry, without alfred's jitter"
    return (
        "Dagster's exponential backoff waits (2^n - 1) x `backoff` (1x, 3x, 7x ...), without alfred's "
        "cap (`max_backoff`) or jitter"
    )


def losses(plan: Plan, target: str) -> list[Diagnostic]:
    """Every difference between ``alfredc run`` and the exported module on ``target``."""
    engine = ENGINES[target]
    found: list[Diagnostic] = []
    for stage in plan.stages:
        span = _span(plan, stage)
        retry = _retry_loss(target, stage)
        if retry is not None:
            found.append(warning(
                "A601", f"the retry delays of stage `{stage.name}` differ on {engine}", span,
                f"{stage.retries} retries from {stage.backoff_s:g}s",
                notes=(f"{engine}: {retry}",),
            ))
        if target == "dagster" and stage.timeout_s:
            found.append(warning(
                "A602", f"Dagster has no per-op timeout: the timeout of stage `{stage.name}` is kept by "
                "alfred's shim", span, f"timeout {stage.timeout_s:g}s",
                notes=("the op stops the attempt's process group itself, as `alfredc run` does; "
                       "Dagster's `dagster/max_runtime` run tag bounds whole runs only",),
            ))
        if target == "prefect" and stage.priority != 0:
            found.append(warning(
                "A603", f"Prefect has no task priority: the priority of stage `{stage.name}` is dropped",
                span, f"priority {stage.priority}",
                notes=("Prefect starts ready tasks in the order the flow submits them "
                       "(declaration order)",),
            ))
        if len(stage.agents) > 1:
            chosen = agent_of(plan, stage).name
            found.append(warning(
                "A604", f"stage `{stage.name}` may run on any of {len(stage.agents)} agents: "
                f"{engine} runs it on `{chosen}`", span, "agents: " + ", ".join(stage.agents),
                notes=(f"the task takes `{chosen}`'s command and concurrency limit; alfred would pick "
                       "the least busy agent and move a retry to another one",),
            ))
        if stage.for_each:
            found.append(warning(
                "A608",
                f"{engine} does not fan out `for_each` stage `{stage.name}`: it runs once and fails on "
                "`${each.item}`", span, f"for_each = stages.{stage.for_each[0]}.outputs.{stage.for_each[1]}",
                notes=("its instances are made at run time by `alfredc run` only",),
            ))
        if stage.max_log is not None and stage.max_log != DEFAULT_MAX_LOG:
            found.append(warning(
                "A607", f"{engine} keeps the whole log of stage `{stage.name}`: `max_log` is dropped",
                span, f"max_log {stage.max_log} bytes",
            ))
    stopping = [s for s in plan.stages if s.on_failure == "stop"]
    if stopping and plan.max_parallelism > 1:
        first = stopping[0]
        if target == "airflow":
            what = ("Airflow's `fail_fast` would mark the failed stage's dependents skipped and end "
                    "the DAG run `success`: it is off, so stages independent of a failed one still run")
        else:
            what = (f"{engine} lets the stages that do not depend on a failed one run to their end, "
                    "where `alfredc run` cancels them; dependents of the failed stage never run on both")
        found.append(warning(
            "A605", f"`on_failure = stop` does not cancel the other branches on {engine}",
            _span(plan, first), f"{len(stopping)} stages stop the run when they fail", notes=(what,),
        ))
    for hook in plan.hooks:
        found.append(warning(
            "A606", f"the `on {hook.event}` hook is not exported to {engine}", hook.span or _span(plan),
            "runs with `alfredc run` only",
            notes=(f"attach it with {engine}'s own callbacks if it must run there",),
        ))
    return found
