"""The Python face of the service: an :class:`Engine` wraps the queue and a worker.

>>> engine = Engine(".alfred", max_workflows=2)                      # doctest: +SKIP
>>> engine.add_event_handler("run_completed", lambda e: print(e.run_id))  # doctest: +SKIP
>>> run_id = engine.submit("pipeline.alfred", params={"feature": "login"})  # doctest: +SKIP
>>> engine.run_worker(until_empty=True)                              # doctest: +SKIP

Handlers get a :class:`~alfred_dsl.runtime.Event` for the event types they registered
(``"*"``: all). A handler that raises is logged (logger ``alfred_dsl.service``) and
counted in :attr:`Engine.handler_errors`; it never stops the engine, the run or the
other handlers.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from .._diagnostics import DiagnosticError
from .._values import param_strings, parse_at, suggest
from ._metrics import Metrics, collect
from ._queue import QueueEntry, QueueError, RunQueue, parse_priority
from ._worker import Worker, WorkerOptions

if TYPE_CHECKING:
    from .._builder import Workflow
    from ..runtime import Event, RunResult

__all__ = ["SERVICE_EVENT_TYPES", "WORKFLOW_SUBMITTED", "Engine"]

_log = logging.getLogger("alfred_dsl.service")

WORKFLOW_SUBMITTED: Final = "workflow_submitted"

#: The event types of the service (the runtime emits a few more: see runtime.EVENT_TYPES).
SERVICE_EVENT_TYPES: Final[tuple[str, ...]] = (
    WORKFLOW_SUBMITTED,
    "run_started",
    "stage_started",
    "stage_retrying",
    "stage_succeeded",
    "stage_failed",
    "run_completed",
    "run_failed",
    "run_cancelled",
    "run_paused",
    "run_resumed",
)

Handler = Callable[["Event"], object]


class Engine:
    """Submit, control and execute queued runs of one state directory from Python."""

    def __init__(
        self,
        state_dir: str | os.PathLike[str] | None = None,
        *,
        max_workflows: int = 1,
        lease_s: float = 30.0,
        poll_s: float = 1.0,
        control_interval_s: float = 0.5,
        max_concurrency: int | None = None,
        kill_grace_s: float = 5.0,
    ) -> None:
        self.queue = RunQueue(state_dir)
        self.state_dir = self.queue.state_dir
        self.options = WorkerOptions(
            max_workflows=max_workflows, lease_s=lease_s, poll_s=poll_s,
            control_interval_s=control_interval_s, max_concurrency=max_concurrency,
            kill_grace_s=kill_grace_s,
        )
        self._handlers: dict[str, list[Handler]] = {}
        self._worker: Worker | None = None
        #: How many times a handler raised.
        self.handler_errors = 0

    # -- events -------------------------------------------------------------------------
    def add_event_handler(self, event_type: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler(event)`` for each event of ``event_type`` (``"*"``: every event).

        Returns a function that removes the handler. An unknown event type raises
        ValueError (with the closest known name).
        """
        from ..runtime import EVENT_TYPES

        known = (*SERVICE_EVENT_TYPES, *(t for t in EVENT_TYPES if t not in SERVICE_EVENT_TYPES))
        if event_type != "*" and event_type not in known:
            close = suggest(event_type, known)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise ValueError(f"unknown event type `{event_type}`{hint}")
        self._handlers.setdefault(event_type, []).append(handler)

        def remove() -> None:
            self.remove_event_handler(event_type, handler)

        return remove

    def remove_event_handler(self, event_type: str, handler: Handler) -> None:
        handlers = self._handlers.get(event_type, [])
        if handler in handlers:
            handlers.remove(handler)

    def _dispatch(self, event: Event) -> None:
        for handler in (*self._handlers.get(event.type, ()), *self._handlers.get("*", ())):
            try:
                handler(event)
            except Exception:  # a broken handler must not stop the engine
                self.handler_errors += 1
                _log.exception("event handler %r failed on %s", handler, event.type)

    # -- the queue ------------------------------------------------------------------------
    def submit(
        self,
        path: str | os.PathLike[str],
        workflow: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        priority: str | int = "medium",
        at: float | str | None = None,
    ) -> str:
        """Check ``path`` and queue a run of ``workflow``; returns the run id.

        ``at``: epoch seconds or the CLI's ``--at`` forms (``+10m``, ``09:00``, ISO).
        Compile errors raise :class:`~alfred_dsl.DiagnosticError`.
        """
        from ..compiler._pipeline import compile_path
        from ..runtime import Event

        raw = param_strings(params)
        plan, diagnostics = compile_path(os.fspath(path), workflow, raw)
        if plan is None or any(d.is_error for d in diagnostics):
            raise DiagnosticError(diagnostics)
        not_before = parse_at(at) if isinstance(at, str) else at
        if isinstance(at, str) and not_before is None:
            raise ValueError(f"cannot read the time {at!r} (+DURATION, HH:MM or ISO 8601)")
        entry = self.queue.submit(
            entry=path, workflow=plan.workflow, params=raw, priority=parse_priority(priority), at=not_before
        )
        self._dispatch(Event(
            type=WORKFLOW_SUBMITTED, run_id=entry.id, time=entry.submitted,
            data={"workflow": entry.workflow, "file": entry.entry, "params": dict(entry.params),
                  "priority": entry.priority, "not_before": entry.not_before},
        ))
        return entry.id

    def entry(self, run_id: str) -> QueueEntry | None:
        return self.queue.entry(run_id)

    def status(self, run_id: str) -> str:
        """``queued``, ``scheduled``, ``paused``, ``running``, ``succeeded``, ``failed``, ``cancelled``..."""
        from ..runtime import StateStore

        entry = self.queue.entry(run_id)
        with StateStore(self.state_dir) as store:
            record = store.run(run_id)
        if entry is None:
            if record is None:
                raise QueueError(f"no run `{run_id}` in {self.state_dir}")
            return record.state
        command = self.queue.command(run_id)
        if entry.state == "queued":
            if command == "pause":
                return "paused"
            return "scheduled" if entry.not_before > time.time() else "queued"
        if entry.state == "claimed":
            return record.state if record is not None else "starting"
        return str(entry.result or entry.state)

    def cancel(self, run_id: str) -> None:
        self.queue.send(run_id, "cancel")

    def pause(self, run_id: str) -> None:
        self.queue.send(run_id, "pause")

    def resume(self, run_id: str) -> None:
        self.queue.send(run_id, "resume")

    def metrics(self, since_s: float = 86400.0) -> Metrics:
        now = time.time()
        return collect(self.state_dir, since=now - since_s, until=now)

    # -- executing ------------------------------------------------------------------------
    def execute(
        self,
        workflow: Workflow | str | os.PathLike[str],
        input_data: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
    ) -> RunResult:
        """Compile and run a workflow now, in this thread, and return its result.

        ``workflow`` is a :class:`~alfred_dsl.Workflow` built in Python or a file path
        (``name`` picks one of its workflows); ``input_data`` are the params. The run is
        recorded in this engine's state directory and its events go to the registered
        handlers; it does not go through the queue (see :meth:`submit`). Compile errors
        raise :class:`~alfred_dsl.DiagnosticError`; a stage failing is in the result.
        """
        import trio

        from .._builder import Workflow
        from ..compiler._pipeline import compile_path
        from ..runtime import RunOptions, StateStore, start_run

        raw = param_strings(input_data)
        if isinstance(workflow, Workflow):
            plan, entry = workflow.compile(raw), None
        else:
            entry = os.fspath(workflow)
            compiled, diagnostics = compile_path(entry, name, raw)
            if compiled is None or any(d.is_error for d in diagnostics):
                raise DiagnosticError(diagnostics)
            plan = compiled
        options = RunOptions(
            max_concurrency=self.options.max_concurrency, kill_grace_s=self.options.kill_grace_s,
            cli_params=dict(raw), entry=entry,
        )

        async def main() -> RunResult:
            with StateStore(self.state_dir) as store:
                return await start_run(plan, store, options, on_event=self._dispatch)

        return trio.run(main)

    def worker(self, *, until_empty: bool = False, report: Callable[[str], object] | None = None) -> Worker:
        """A worker of this engine's queue whose events go to the registered handlers."""
        options = WorkerOptions(
            max_workflows=self.options.max_workflows, lease_s=self.options.lease_s,
            poll_s=self.options.poll_s, control_interval_s=self.options.control_interval_s,
            until_empty=until_empty, max_concurrency=self.options.max_concurrency,
            kill_grace_s=self.options.kill_grace_s,
        )
        self._worker = Worker(self.state_dir, options, on_event=self._dispatch, report=report)
        return self._worker

    async def serve(self, *, until_empty: bool = False) -> int:
        """Trio-native worker loop; returns the number of runs finished."""
        return await self.worker(until_empty=until_empty).run()

    def run_worker(self, *, until_empty: bool = True) -> int:
        """Execute queued runs in this thread (until the queue is empty by default)."""
        import trio

        return trio.run(lambda: self.serve(until_empty=until_empty))

    def stop(self) -> None:
        """Stop the running worker: its runs are interrupted and stay resumable."""
        if self._worker is not None:
            self._worker.stop()

    def close(self) -> None:
        self.queue.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
