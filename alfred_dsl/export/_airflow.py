"""The Airflow 3 back end: a DAG of TaskFlow tasks (``airflow.sdk``), one per stage."""

from __future__ import annotations

import re

from ._common import Names, agent_of, header, literal, pool_name, stage_data, workflow_data
from ._compiler import Plan, PlanStage

__all__ = ["task_ids", "to_airflow"]


def task_ids(plan: Plan) -> dict[str, str]:
    """Each stage's Airflow ``task_id``: Airflow allows only letters, digits, ``_``, ``-`` and
    ``.``, so a fan-out member ``test[python=3.11,shard=1]`` becomes ``test__python-3.11__shard-1``."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for stage in plan.stages:
        base = stage.name.replace("[", "__").replace("]", "").replace("=", "-").replace(",", "__")
        base = re.sub(r"[^\w.-]", "_", base)
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        taken.add(candidate)
        ids[stage.name] = candidate
    return ids


def _task_options(plan: Plan, stage: PlanStage, task_id: str) -> list[str]:
    options = [f"task_id={task_id!r}"]
    if stage.retries > 0:
        options.append(f"retries={stage.retries}")
        options.append(f"retry_delay=datetime.timedelta(seconds={stage.backoff_s:g})")
        if stage.backoff_s > 0:
            options.append("retry_exponential_backoff=2.0")
            if stage.max_backoff_s is not None:
                options.append(f"max_retry_delay=datetime.timedelta(seconds={stage.max_backoff_s:g})")
    if stage.timeout_s:
        # The shim stops the attempt at the timeout; Airflow's own stands behind it.
        seconds = f"{stage.timeout_s:g} + alfred.TIMEOUT_GRACE_S"
        options.append(f"execution_timeout=datetime.timedelta(seconds={seconds})")
    options.append(f"priority_weight={stage.priority}")
    options.append('weight_rule="absolute"')
    options.append(f"pool={pool_name(agent_of(plan, stage))!r}")
    if stage.description:
        options.append(f"doc_md={stage.description!r}")
    return options


def to_airflow(plan: Plan) -> str:
    names = Names({"alfred", "dag", "datetime", "task", "DAG", "WORKFLOW", "STAGES", "TASK_IDS", "POOLS"})
    pools = {
        pool_name(agent): {"slots": max(agent.concurrency, 1), "description": f"alfred agent `{agent.name}`"}
        for agent in (agent_of(plan, stage) for stage in plan.stages)
    }
    pool_lines = [f"    airflow pools set {name} {pool['slots']} 'alfred agent'"
                  for name, pool in pools.items()]
    out = [header(
        plan, "Airflow 3", "airflow", "python THIS_FILE.py   (dag.test(), exit status 0 or 1)",
        ["", "Each agent is a pool with its concurrency as slots; create them once:", *pool_lines],
    )]
    out.append(
        "from __future__ import annotations\n\n"
        "import datetime\n\n"
        "from airflow.sdk import DAG, task\n\n"
        "from alfred_dsl.export import runtime as alfred\n\n"
    )
    out.append(f"WORKFLOW = {literal(workflow_data(plan))}\n\n")
    stages = {stage.name: stage_data(plan, stage) for stage in plan.stages}
    out.append(f"STAGES = {literal(stages)}\n\n")
    ids = task_ids(plan)
    out.append(f"TASK_IDS = {literal(ids)}\n\n")
    out.append(f"POOLS = {literal(pools)}\n\n")
    # Never `fail_fast`: it marks the failed stage's dependents `skipped`, and a DAG run whose
    # last tasks are skipped ends `success` (a failed workflow would pass). A605 says so.
    fail_fast = False
    dag_options = [
        f"dag_id={plan.workflow!r}",
        f"schedule={plan.schedule!r}",
        "start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)",
        "catchup=False",
        'params=WORKFLOW["params"]',
        f"fail_fast={fail_fast}",
        'tags=["alfred"]',
    ]
    if plan.description:
        dag_options.append(f"description={plan.description!r}")
    out.append("with DAG(\n" + "".join(f"    {option},\n" for option in dag_options) + ") as dag:\n")
    for stage in plan.stages:
        name = names(stage.name)
        options = "".join(f"        {option},\n" for option in _task_options(plan, stage, ids[stage.name]))
        out.append(
            f"\n    @task(\n{options}    )\n"
            f"    def {name}(**context):\n"
            f"        return alfred.airflow_task(WORKFLOW, STAGES[{stage.name!r}], TASK_IDS, context)\n"
        )
    out.append("\n")
    for stage in plan.stages:
        out.append(f"    {names(stage.name)}_task = {names(stage.name)}()\n")
    edges = [(dep, stage.name) for stage in plan.stages for dep in stage.after]
    if edges:
        out.append("\n")
    for dep, stage_name in edges:
        out.append(f"    {names(dep)}_task >> {names(stage_name)}_task\n")
    out.append(
        '\n\nif __name__ == "__main__":\n'
        "    alfred.airflow_pools(POOLS)\n"
        "    alfred.main_exit(dag.test().state == \"success\")\n"
    )
    return "".join(out)
