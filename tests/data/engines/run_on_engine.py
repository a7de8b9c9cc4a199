"""Run exported modules on Prefect or Dagster in one process; print each run's stage states as JSON.

Started by tests/test_export_engines.py with the engine's venv python:
``python run_on_engine.py prefect|dagster OUT.json CASE=MODULE.py ...``. What it records is
what the engine reports: Prefect's task states and return values (the shim's skip marker is
a skipped stage), Dagster's step events and outputs (a step that succeeded without an output
was skipped by its `when`). Airflow is read from its database by the test itself.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any


def load(path: str) -> Any:
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_prefect(path: str) -> dict[str, Any]:
    from prefect import Flow

    from alfred_dsl.export import runtime

    stages: dict[str, dict[str, Any]] = {}
    finish = runtime.prefect_finish

    def recording_finish(futures: Any) -> dict[str, str]:
        from prefect.futures import wait

        wait(list(futures.values()))
        for name, future in futures.items():
            state = future.state
            if state.is_completed():
                result = future.result()
                skipped = runtime.is_skipped(result)
                stages[name] = {"state": "skipped" if skipped else "succeeded",
                                "outputs": None if skipped else result}
            elif state.is_failed() or state.is_crashed():
                stages[name] = {"state": "failed"}
            else:
                stages[name] = {"state": "upstream_failed"}
        return finish(futures)

    runtime.prefect_finish = recording_finish
    try:
        module = load(path)
        flow = next(value for value in vars(module).values() if isinstance(value, Flow))
        started = time.monotonic()
        ok = runtime.prefect_run(flow)
        seconds = time.monotonic() - started
    finally:
        runtime.prefect_finish = finish
    return {"ok": ok, "seconds": seconds, "stages": stages}


def run_dagster(path: str) -> dict[str, Any]:
    from dagster import JobDefinition

    module = load(path)
    job = next(value for value in vars(module).values() if isinstance(value, JobDefinition))
    stage_of = {node.name: node.definition.tags["alfred/stage"] for node in job.nodes}
    started = time.monotonic()
    result = job.execute_in_process(raise_on_error=False)
    seconds = time.monotonic() - started
    events: dict[str, list[str]] = {}
    for event in result.all_events:
        if event.step_key:
            events.setdefault(event.step_key, []).append(event.event_type_value)
    stages: dict[str, dict[str, Any]] = {}
    for node, stage in stage_of.items():
        seen = events.get(node, [])
        record: dict[str, Any] = {"attempts": seen.count("STEP_START") + seen.count("STEP_RESTARTED")}
        if "STEP_FAILURE" in seen:
            record["state"] = "failed"
        elif "STEP_SUCCESS" in seen and "STEP_OUTPUT" in seen:
            record["state"] = "succeeded"
            record["outputs"] = result.output_for_node(node)
        elif "STEP_SUCCESS" in seen or "STEP_SKIPPED" in seen:
            record["state"] = "not_run" if "STEP_SKIPPED" in seen else "skipped"
        else:
            record["state"] = "not_run"
        record["events"] = seen
        stages[stage] = record
    # A step Dagster did not run (STEP_SKIPPED, or no event at all) is alfred's `skipped` after a
    # skipped dependency and `upstream_failed` after a failed one: told apart by the dependencies.
    changed = True
    while changed:
        changed = False
        for stage, record in stages.items():
            if record["state"] != "not_run":
                continue
            deps = [stages[dep]["state"] for dep in module.STAGES[stage].get("after", ())]
            if any(dep in ("failed", "upstream_failed") for dep in deps):
                record["state"], changed = "upstream_failed", True
            elif "skipped" in deps and "not_run" not in deps:
                record["state"], changed = "skipped", True
    return {"ok": result.success, "seconds": seconds, "stages": stages}


def main() -> None:
    engine, out, *cases = sys.argv[1:]
    run = {"prefect": run_prefect, "dagster": run_dagster}[engine]
    results = {}
    for case in cases:
        name, path = case.split("=", 1)
        results[name] = run(path)
    Path(out).write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
