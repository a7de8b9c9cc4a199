"""The Engine API: event handlers for every service event type, a raising handler, control from Python."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import pytest
from _service_setup import write

from alfred_dsl import DiagnosticError
from alfred_dsl.runtime import Event
from alfred_dsl.service import SERVICE_EVENT_TYPES, Engine

FLOWS = """
agent sh {
  kind = command
  run = ["true"]
  concurrency = 2
}

workflow flaky {
  stage once {
    agent = sh
    run = "test -e flaky.marker || { touch flaky.marker; exit 1; }"
    retries = 1
    backoff = 0s
  }
}

workflow broken {
  stage fails {
    agent = sh
    run = "exit 3"
  }
}

workflow pausable {
  stage first {
    agent = sh
    run = "sleep 0.3"
  }
  stage second after first {
    agent = sh
    run = "true"
  }
}

workflow endless {
  stage hang {
    agent = sh
    run = "sleep 30"
  }
}
"""


def test_handlers_see_every_event_type_and_a_raising_handler_stops_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "flows.alfred", FLOWS)
    engine = Engine(tmp_path / ".alfred", max_workflows=4, poll_s=0.05, control_interval_s=0.05,
                    kill_grace_s=0.5)
    seen: dict[str, list[Event]] = defaultdict(list)
    for event_type in SERVICE_EVENT_TYPES:
        engine.add_event_handler(event_type, lambda event: seen[event.type].append(event))

    def explode(event: Event) -> None:
        raise RuntimeError("a broken handler")

    engine.add_event_handler("run_started", explode)
    ids: dict[str, str] = {}

    def control(event: Event) -> None:
        # Act from inside the run, as another process would: through the queue's flags.
        if event.type == "stage_started" and event.run_id == ids["pausable"] and event.stage == "first":
            engine.pause(event.run_id)
        elif event.type == "run_paused":
            engine.resume(event.run_id)
        elif event.type == "stage_started" and event.run_id == ids["endless"]:
            engine.cancel(event.run_id)

    engine.add_event_handler("*", control)
    for workflow in ("flaky", "broken", "pausable", "endless"):
        ids[workflow] = engine.submit(tmp_path / "flows.alfred", workflow)
    with caplog.at_level(logging.ERROR, logger="alfred_dsl.service"):
        finished = engine.run_worker(until_empty=True)
    assert finished == 4
    assert {t for t in SERVICE_EVENT_TYPES if not seen[t]} == set()  # every type was delivered
    assert [e.run_id for e in seen["workflow_submitted"]] == list(ids.values())
    assert engine.handler_errors == 4 and "a broken handler" in caplog.text
    assert {engine.status(run_id) for run_id in ids.values()} == {"succeeded", "failed", "cancelled"}
    assert (engine.status(ids["flaky"]), engine.status(ids["broken"])) == ("succeeded", "failed")
    assert (engine.status(ids["pausable"]), engine.status(ids["endless"])) == ("succeeded", "cancelled")
    assert [e.run_id for e in seen["stage_retrying"]] == [ids["flaky"]]
    assert [e.run_id for e in seen["run_failed"]] == [ids["broken"]]
    assert [e.run_id for e in seen["run_paused"]] == [ids["pausable"]]
    assert [e.run_id for e in seen["run_resumed"]] == [ids["pausable"]]
    assert [e.run_id for e in seen["run_cancelled"]] == [ids["endless"]]
    figures = engine.metrics()
    assert (figures.completed, figures.failed, figures.cancelled) == (2, 1, 1)
    engine.close()


def test_unknown_event_type_and_bad_file(tmp_path: Path) -> None:
    write(tmp_path / "flows.alfred", FLOWS)
    with Engine(tmp_path / ".alfred") as engine:
        with pytest.raises(ValueError, match="did you mean `run_completed`"):
            engine.add_event_handler("run_complete", print)
        remove = engine.add_event_handler("workflow_submitted", print)
        remove()
        with pytest.raises(DiagnosticError):
            engine.submit(tmp_path / "flows.alfred", "no_such_workflow")
        with pytest.raises(ValueError, match="cannot read the time"):
            engine.submit(tmp_path / "flows.alfred", "flaky", at="whenever")
        run_id = engine.submit(tmp_path / "flows.alfred", "flaky", at="+1h", priority="critical")
        assert engine.status(run_id) == "scheduled"
        engine.cancel(run_id)
        assert engine.status(run_id) == "cancelled"
