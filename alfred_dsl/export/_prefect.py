"""The Prefect 3 back end: a flow that submits one task per stage, ``wait_for`` its dependencies."""

from __future__ import annotations

from ._common import (
    Names,
    agent_of,
    backoff_delays,
    header,
    in_dependency_order,
    literal,
    pool_name,
    stage_data,
    workflow_data,
)
from ._compiler import Plan, PlanStage

__all__ = ["to_prefect"]


def _task_options(plan: Plan, stage: PlanStage) -> list[str]:
    options = [f"name={stage.name!r}"]
    if stage.retries > 0:
        options.append(f"retries={stage.retries}")
        options.append(f"retry_delay_seconds={backoff_delays(stage)!r}")
        if stage.backoff_s > 0:
            options.append("retry_jitter_factor=0.1")
    if stage.timeout_s:
        options.append(f"timeout_seconds={stage.timeout_s:g} + alfred.TIMEOUT_GRACE_S")
    options.append(f"tags=[{pool_name(agent_of(plan, stage))!r}]")
    if stage.description:
        options.append(f"description={stage.description!r}")
    return options


def to_prefect(plan: Plan) -> str:
    names = Names({"alfred", "flow", "task", "sys", "params", "futures", "WORKFLOW", "STAGES", "LIMITS"})
    # First: they are the flow's arguments, the names Prefect shows.
    param_names = {param: names(param, "param") for param in plan.params}
    flow_name = names(plan.workflow, "workflow")
    limits = {pool_name(a): max(a.concurrency, 1) for a in (agent_of(plan, s) for s in plan.stages)}
    limit_lines = [f"    prefect concurrency-limit create {tag} {n}" for tag, n in limits.items()]
    extra = [
        "Serve it on its schedule: python THIS_FILE.py --serve" if plan.schedule else "",
        "",
        "Each agent is a task tag whose concurrency limit is the agent's concurrency:",
        *limit_lines,
    ]
    out = [header(plan, "Prefect 3", "prefect", "python THIS_FILE.py   (the flow in-process)", extra)]
    out.append(
        "from __future__ import annotations\n\n"
        "import sys\n\n"
        "from prefect import flow, task\n\n"
        "from alfred_dsl.export import runtime as alfred\n\n"
    )
    out.append(f"WORKFLOW = {literal(workflow_data(plan))}\n\n")
    stages = {stage.name: stage_data(plan, stage) for stage in plan.stages}
    out.append(f"STAGES = {literal(stages)}\n\n")
    out.append(f"LIMITS = {literal(limits)}\n")
    for stage in plan.stages:
        options = "".join(f"    {option},\n" for option in _task_options(plan, stage))
        out.append(
            f"\n\n@task(\n{options})\n"
            f"def {names(stage.name)}(params, upstream):\n"
            f"    return alfred.prefect_task(WORKFLOW, STAGES[{stage.name!r}], params, upstream)\n"
        )
    arguments = ", ".join(f"{ident}={plan.params[param]!r}" for param, ident in param_names.items())
    flow_options = f"name={plan.workflow!r}"
    if plan.description:
        flow_options += f", description={plan.description!r}"
    out.append(f"\n\n@flow({flow_options})\ndef {flow_name}({arguments}):\n")
    out.append("    params = {" + ", ".join(f"{p!r}: {i}" for p, i in param_names.items()) + "}\n")
    for stage in in_dependency_order(plan):
        upstream = "{" + ", ".join(f"{dep!r}: {names(dep)}_run" for dep in stage.after) + "}"
        wait = f", wait_for=[{', '.join(f'{names(dep)}_run' for dep in stage.after)}]" if stage.after else ""
        out.append(f"    {names(stage.name)}_run = {names(stage.name)}.submit(params, {upstream}{wait})\n")
    runs = ", ".join(f"{stage.name!r}: {names(stage.name)}_run" for stage in plan.stages)
    out.append(f"    return alfred.prefect_finish({{{runs}}})\n")
    out.append('\n\nif __name__ == "__main__":\n')
    if plan.schedule:
        out.append(
            '    if "--serve" in sys.argv[1:]:\n'
            f"        {flow_name}.serve(name={plan.workflow!r}, cron={plan.schedule!r})\n"
            "        sys.exit(0)\n"
        )
    out.append(f"    alfred.main_exit(alfred.prefect_run({flow_name}))\n")
    return "".join(out)
