"""The Dagster back end: a job of ops, one per stage, each output feeding its dependents."""

from __future__ import annotations

from ._common import (
    Names,
    agent_of,
    header,
    in_dependency_order,
    literal,
    pool_name,
    stage_data,
    workflow_data,
)
from ._compiler import Plan, PlanStage

__all__ = ["to_dagster"]

_CONFIG_TYPES = {bool: "bool", int: "int", float: "float", str: "str"}


def _op_options(plan: Plan, stage: PlanStage, names: Names) -> list[str]:
    options = [f"name={names(stage.name)!r}"]
    if stage.after:
        options.append("ins={" + ", ".join(f"{names(dep)!r}: In()" for dep in stage.after) + "}")
    options.append("out=Out(is_required=False)")  # no output when skipped: Dagster skips dependents
    if stage.retries > 0:
        if stage.backoff_s > 0 and (stage.retries > 1 or stage.max_backoff_s is not None):
            backoff = ", backoff=Backoff.EXPONENTIAL"
        else:
            backoff = ""
        policy = f"max_retries={stage.retries}, delay={stage.backoff_s:g}{backoff}"
        options.append(f"retry_policy=RetryPolicy({policy})")
    options.append(f'tags={{"dagster/priority": "{stage.priority}", "alfred/stage": {stage.name!r}}}')
    options.append(f"pool={pool_name(agent_of(plan, stage))!r}")
    options.append('required_resource_keys={"params"}')
    if stage.description:
        options.append(f"description={stage.description!r}")
    return options


def to_dagster(plan: Plan) -> str:
    names = Names({
        "alfred", "op", "job", "In", "Out", "Field", "Backoff", "RetryPolicy", "Definitions",
        "ScheduleDefinition", "make_values_resource", "defs", "context", "WORKFLOW", "STAGES", "POOLS",
    })
    job_name = names(plan.workflow, 'workflow')
    pools = {pool_name(a): max(a.concurrency, 1) for a in (agent_of(plan, s) for s in plan.stages)}
    pool_lines = [f"    dagster instance concurrency set {pool} {n}" for pool, n in pools.items()]
    out = [header(
        plan, "Dagster", "dagster", "python THIS_FILE.py   (execute_in_process, exit status 0 or 1)",
        ["", "Each agent is a pool whose limit is the agent's concurrency:", *pool_lines],
    )]
    imports = [
        "Backoff", "Definitions", "Field", "In", "Out", "RetryPolicy", "job", "make_values_resource", "op",
    ]
    if plan.schedule:
        imports.append("ScheduleDefinition")
    out.append(
        "from __future__ import annotations\n\n"
        "from dagster import Any as AnyConfig, " + ", ".join(sorted(imports)) + "\n\n"
        "from alfred_dsl.export import runtime as alfred\n\n"
    )
    out.append(f"WORKFLOW = {literal(workflow_data(plan))}\n\n")
    stages = {stage.name: stage_data(plan, stage) for stage in plan.stages}
    out.append(f"STAGES = {literal(stages)}\n")
    for stage in plan.stages:
        options = "".join(f"    {option},\n" for option in _op_options(plan, stage, names))
        arguments = "".join(f", {names(dep)}" for dep in stage.after)
        upstream = "{" + ", ".join(f"{dep!r}: {names(dep)}" for dep in stage.after) + "}"
        out.append(
            f"\n\n@op(\n{options})\n"
            f"def {names(stage.name)}(context{arguments}):\n"
            f"    yield from alfred.dagster_op(WORKFLOW, STAGES[{stage.name!r}], context, {upstream})\n"
        )
    fields = []
    for param, value in plan.params.items():
        config = _CONFIG_TYPES.get(type(value), "AnyConfig")
        fields.append(f"        {param!r}: Field({config}, default_value={value!r}, is_required=False),\n")
    params_resource = "make_values_resource()"
    if fields:
        params_resource = "make_values_resource(**{\n" + "".join(fields) + "    })"
    out.append(
        f"\n\n@job(\n    name={plan.workflow!r},\n"
        f"    resource_defs={{\"params\": {params_resource}}},\n"
        + (f"    description={plan.description!r},\n" if plan.description else "")
        + f")\ndef {job_name}():\n"
    )
    for stage in in_dependency_order(plan):
        arguments = ", ".join(f"{names(dep)}={names(dep)}_out" for dep in stage.after)
        out.append(f"    {names(stage.name)}_out = {names(stage.name)}({arguments})\n")
    if not plan.stages:
        out.append("    pass\n")
    schedules = (
        f"[ScheduleDefinition(job={job_name}, cron_schedule={plan.schedule!r})]" if plan.schedule else "[]"
    )
    out.append(f"\n\ndefs = Definitions(jobs=[{job_name}], schedules={schedules})\n")
    out.append(
        '\n\nif __name__ == "__main__":\n'
        f"    alfred.main_exit({job_name}.execute_in_process(raise_on_error=False).success)\n"
    )
    return "".join(out)
