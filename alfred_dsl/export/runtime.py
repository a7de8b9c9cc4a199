"""The run-time shim of exported modules: one attempt of one stage, as ``alfredc run`` runs it.

An exported Airflow DAG, Prefect flow or Dagster job calls these functions from its tasks,
so the generated modules stay short and every engine keeps alfred's command contract
(docs/runtime.md): the values are resolved by the runtime's own
:func:`~alfred_dsl.runtime._resolve.resolve_attempt` and the attempt runs on the runtime's
own executors (argv or ``/bin/sh -c`` with ``ALFRED_VALUE_n``, ``cwd``, ``ALFRED_RUN_ID``,
``ALFRED_STAGE``, ``ALFRED_ATTEMPT``, ``ALFRED_INPUTS``, ``ALFRED_OUTPUTS``; python
``module:function`` with the inputs dict; http POST), with secrets masked in what is logged.

What the engines do themselves (dependencies, retries and their delays, priorities, pools,
skipping) stays with the engine: the shim runs exactly one attempt and reports it by
returning the outputs, raising :class:`Skipped` or raising :class:`StageFailed`.

The engines are imported only inside their adapter functions: this module imports with
alfred alone (the tests and ``alfredc`` never need an engine installed).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import trio

from ..runtime._executors import EXECUTORS, AttemptContext, AttemptOutcome
from ..runtime._mcp import close_run as close_mcp_servers
from ..runtime._resolve import ExprError, Masker, render_when, resolve_attempt
from ..runtime._toolenv import tool_environment
from ._compiler import PlanAgent, PlanStage, freeze

__all__ = [
    "SKIPPED_KEY",
    "TIMEOUT_GRACE_S",
    "Skipped",
    "StageFailed",
    "airflow_pools",
    "airflow_task",
    "dagster_op",
    "is_skipped",
    "main_exit",
    "prefect_finish",
    "prefect_run",
    "prefect_task",
    "run_stage",
]

#: A Prefect task of a skipped stage returns ``{SKIPPED_KEY: reason}`` (Prefect has no skipped state).
SKIPPED_KEY = "__alfred_skipped__"
#: How long the engine's own timeout waits past the stage's, so that the shim, which stops
#: the attempt's process group as ``alfredc run`` does, acts first (alfred's kill grace).
TIMEOUT_GRACE_S = 5.0


class Skipped(Exception):
    """The stage does not run: its ``when`` is false."""


class StageFailed(Exception):
    """The attempt failed (exit status, exception, HTTP error, timeout, unresolvable value)."""


def _stage_of(workflow: Mapping[str, Any], stage: Mapping[str, Any]) -> tuple[PlanStage, PlanAgent]:
    agent = stage["agent"]
    project = Path(os.environ.get("ALFRED_PROJECT_DIR") or workflow["project_dir"])
    run = stage.get("run")
    agent_run = agent.get("run")
    plan_agent = PlanAgent(
        name=agent["name"],
        kind=agent["kind"],
        run=tuple(agent_run) if isinstance(agent_run, list) else agent_run,
        call=agent.get("call"),
        url=agent.get("url"),
        env=freeze(agent.get("env", {})),
        options=freeze(agent.get("options", {})),
    )
    plan_stage = PlanStage(
        name=stage["name"],
        agents=(agent["name"],),
        kind=agent["kind"],
        run=tuple(run) if isinstance(run, list) else run,
        call=stage.get("call"),
        inputs=freeze(stage.get("inputs", {})),
        env=freeze(stage.get("env", {})),
        cwd=str((project / stage.get("cwd", ".")).resolve()),
        after=tuple(stage.get("after", ())),
        when=stage.get("when", True),
        max_log=None,  # the engine keeps the whole log (A607)
        mcp=freeze(stage["mcp"]) if "mcp" in stage else None,
    )
    return plan_stage, plan_agent


def run_stage(
    workflow: Mapping[str, Any],
    stage: Mapping[str, Any],
    *,
    params: Mapping[str, Any],
    upstream: Mapping[str, Mapping[str, Any] | None],
    run_id: str,
    attempt: int,
    timeout_s: float | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run one attempt of ``stage`` (the data an exported module holds) and return its outputs.

    ``upstream`` maps each direct dependency to its outputs (what ``${stages.NAME.outputs.x}``
    reads). Raises :class:`Skipped` when ``when`` is false, :class:`StageFailed` when the
    attempt fails. ``timeout_s`` stops the attempt as ``alfredc run`` does (the process group
    gets SIGTERM, then SIGKILL).
    """
    write = log or _print
    plan_stage, plan_agent = _stage_of(workflow, stage)
    base_env = tool_environment(os.environ)
    secret_values = {name: base_env[name] for name in workflow.get("secrets", ()) if name in base_env}
    masker = Masker(secret_values)
    scope_base = {
        "params": dict(params),
        "stages": {name: {"outputs": dict(outputs or {})} for name, outputs in upstream.items()},
        "env": base_env,
        "secrets": secret_values,
    }
    try:
        if not render_when(plan_stage.when, scope_base):
            raise Skipped("`when` is false")
        values = resolve_attempt(plan_stage, plan_agent, scope_base, base_env)
    except ExprError as exc:
        raise StageFailed(masker.text(str(exc))) from None
    executor = EXECUTORS.get(plan_agent.kind)
    if executor is None:
        raise StageFailed(f"no executor for agents of kind `{plan_agent.kind}`")
    with tempfile.TemporaryDirectory(prefix="alfred-attempt-") as work:
        work_dir = Path(work)  # mode 0700: the inputs and outputs files are this user's only
        context = AttemptContext(
            run_id=run_id,
            stage=plan_stage,
            agent=plan_agent,
            attempt=attempt,
            inputs=values.inputs,
            run=values.run,
            shell_values=values.shell_values,
            call=values.call,
            url=values.url,
            env=values.env,
            cwd=Path(plan_stage.cwd),
            log_path=work_dir / "attempt.log",
            work_dir=work_dir,
            fresh_work_dir=True,
            timeout_s=timeout_s,
            masker=masker,
            mcp=values.mcp,
        )
        try:
            outcome = trio.run(_attempt, executor, context, timeout_s)
        finally:
            if values.mcp is not None:  # the task's own server: stopped with it, as at a run's end
                close_mcp_servers(run_id, work)
        if context.log_path.exists():
            text = context.log_path.read_text(encoding="utf-8", errors="replace")
            if text:
                write(text.rstrip("\n"))
    if not outcome.ok:
        raise StageFailed(masker.text(outcome.error or "failed"))
    return dict(outcome.outputs)


async def _attempt(executor: Any, context: AttemptContext, timeout_s: float | None) -> AttemptOutcome:
    if not timeout_s or timeout_s <= 0:
        outcome: AttemptOutcome = await executor.run(context)
        return outcome
    with trio.move_on_after(timeout_s) as timer:
        outcome = await executor.run(context)
    if timer.cancelled_caught:
        return AttemptOutcome(ok=False, error=f"timed out after {timeout_s:g}s")
    return outcome


def _print(text: str) -> None:
    print(text, flush=True)


def is_skipped(result: Any) -> bool:
    """Whether a Prefect task's result says its stage was skipped."""
    return isinstance(result, Mapping) and SKIPPED_KEY in result


# -- Airflow ---------------------------------------------------------------------------


def airflow_task(
    workflow: Mapping[str, Any], stage: Mapping[str, Any], task_ids: Mapping[str, str], context: Any
) -> dict[str, Any]:
    """The body of an Airflow task: upstream outputs from XCom, params from the DAG's params,
    the attempt from the task instance's try number; a false ``when`` skips the task."""
    from airflow.sdk.exceptions import AirflowSkipException

    ti = context["ti"]
    upstream = {name: ti.xcom_pull(task_ids=task_ids[name]) for name in stage.get("after", ())}
    dag_params = context["params"]
    params = {name: dag_params[name] for name in workflow.get("params", {})}
    try:
        return run_stage(
            workflow, stage, params=params, upstream=upstream, run_id=str(context["run_id"]),
            attempt=int(ti.try_number), timeout_s=stage.get("timeout_s"),
        )
    except Skipped as exc:
        raise AirflowSkipException(str(exc)) from None


def airflow_pools(pools: Mapping[str, Mapping[str, Any]]) -> None:
    """Create the DAG's pools that do not exist yet (``python MODULE.py`` before ``dag.test()``)."""
    from airflow.models.pool import Pool

    for name, pool in pools.items():
        if Pool.get_pool(name) is None:
            Pool.create_or_update_pool(
                name, slots=int(pool["slots"]), description=str(pool["description"]), include_deferred=False
            )


# -- Prefect ---------------------------------------------------------------------------


def prefect_task(
    workflow: Mapping[str, Any],
    stage: Mapping[str, Any],
    params: Mapping[str, Any],
    upstream: Mapping[str, Any],
) -> dict[str, Any]:
    """The body of a Prefect task: ``upstream`` holds the return values of the dependencies
    (Prefect resolved their futures); a skipped dependency or a false ``when`` returns the
    skip marker, which the dependents pass on."""
    from prefect import get_run_logger
    from prefect.runtime import flow_run, task_run

    logger = get_run_logger()
    skipped = next((name for name, result in upstream.items() if is_skipped(result)), None)
    if skipped is not None:
        logger.info("skipped: `%s` was skipped", skipped)
        return {SKIPPED_KEY: f"`{skipped}` was skipped"}
    try:
        return run_stage(
            workflow, stage, params=params, upstream=upstream, run_id=str(flow_run.get_id()),
            attempt=int(task_run.get_run_count()), timeout_s=stage.get("timeout_s"), log=logger.info,
        )
    except Skipped as exc:
        logger.info("skipped: %s", exc)
        return {SKIPPED_KEY: str(exc)}


def prefect_finish(futures: Mapping[str, Any]) -> dict[str, str]:
    """Wait for every stage's future; the state of each (``succeeded``, ``skipped``, ``failed``,
    ``upstream_failed``). Raises :class:`StageFailed` (failing the flow) when a stage failed."""
    from prefect.futures import wait

    wait(list(futures.values()))
    states: dict[str, str] = {}
    for name, future in futures.items():
        state = future.state
        if state.is_completed():
            states[name] = "skipped" if is_skipped(future.result()) else "succeeded"
        elif state.is_failed() or state.is_crashed():
            states[name] = "failed"
        else:  # NotReady / Pending: a dependency failed, Prefect never ran it
            states[name] = "upstream_failed"
    failed = [name for name, state in states.items() if state == "failed"]
    if failed:
        raise StageFailed("stages failed: " + ", ".join(failed))
    return states


def prefect_run(flow: Callable[[], Any]) -> bool:
    """Run the flow in-process (Prefect's ephemeral server); whether every stage succeeded."""
    try:
        flow()
    except StageFailed as exc:
        print(f"alfred: {exc}", file=sys.stderr)
        return False
    return True


# -- Dagster ---------------------------------------------------------------------------


def dagster_op(
    workflow: Mapping[str, Any], stage: Mapping[str, Any], context: Any, upstream: Mapping[str, Any]
) -> Iterator[Any]:
    """The body of a Dagster op: params from the ``params`` resource (run config), upstream
    outputs from the op's inputs; a false ``when`` yields no output, so Dagster skips the
    dependents (its conditional outputs); a failure raises ``Failure`` for the RetryPolicy."""
    from dagster import Failure, Output

    params = dict(context.resources.params)
    try:
        outputs = run_stage(
            workflow, stage, params=params, upstream=upstream, run_id=str(context.run_id),
            attempt=int(context.retry_number) + 1, timeout_s=stage.get("timeout_s"), log=context.log.info,
        )
    except Skipped as exc:
        context.log.info(f"skipped: {exc}")
        return
    except StageFailed as exc:
        raise Failure(description=str(exc)) from None
    yield Output(outputs)


def main_exit(ok: bool) -> None:
    """End ``python MODULE.py``: status 0 when the run succeeded, 1 when it failed."""
    sys.exit(0 if ok else 1)
