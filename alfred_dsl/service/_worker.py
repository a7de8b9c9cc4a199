"""The worker: takes runs from the queue and executes up to N of them at once.

One Trio loop per worker process; its runs share the per-agent running counts, so an
agent's ``concurrency`` holds across them (per process only: two workers each allow it).
Each claimed run is compiled from its file again (so a worker always runs the file as it
is now) and executed by the runtime with its queue id as run id. While it holds runs, the
worker renews their leases; a run whose lease another worker found expired (this worker
stalled) is interrupted here.

Stopping (:meth:`Worker.stop`, the CLI's first Ctrl-C): no new claim; running runs are
interrupted (their stage processes are killed, their state is saved) and given back to
the queue, so the next worker resumes them. A worker that dies without stopping
(``kill -9``) leaves its runs claimed until their lease expires; then any worker
resumes them. Stages that succeeded are never run again (the runtime's resume).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._values import format_moment
from ._queue import QueueEntry, RunQueue, Schedule, new_worker_id

if TYPE_CHECKING:
    import trio

    from ..runtime import AgentSlots, Event, RunResult

__all__ = ["Worker", "WorkerOptions", "schedules_of"]

_log = logging.getLogger("alfred_dsl.service")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    """How a worker behaves.

    ``max_workflows``: runs executed at once. ``lease_s``: a claim is void this long
    after the last heartbeat (heartbeats every third of it). ``poll_s``: how often the
    queue and the schedules are looked at when idle. ``control_interval_s``: how often
    a running run reads its pause/cancel flag. ``until_empty``: stop once nothing is
    queued or running any more (batch use, tests). ``schedule_files``: files whose
    workflows with a ``schedule`` this worker enqueues on each cron tick. ``plan_cache``:
    read and write compiled plans in ``cache/`` of the state directory (docs/runtime.md).
    """

    max_workflows: int = 1
    lease_s: float = 30.0
    poll_s: float = 1.0
    control_interval_s: float = 0.5
    until_empty: bool = False
    schedule_files: tuple[str, ...] = ()
    max_concurrency: int | None = None
    kill_grace_s: float = 5.0
    #: A Dask scheduler's address: the runs' command and python stages go to its workers.
    cluster: str | None = None
    env: dict[str, str] | None = field(default=None)
    plan_cache: bool = True


def schedules_of(paths: Sequence[str]) -> tuple[list[Schedule], list[Any]]:
    """The scheduled workflows of ``paths`` and the diagnostics of files that have errors.

    A schedule is judged as ``alfredc check`` judges it (A310, the same ``_cron`` module):
    one it refuses is reported and left out, never run into later.
    """
    from .._cron import cron_problem
    from ..compiler._check import check_workspace
    from ..compiler.load import load

    found: list[Schedule] = []
    problems: list[Any] = []
    for path in paths:
        workspace, diagnostics = load(path)
        problems.extend(d for d in diagnostics if d.is_error)
        if workspace is None:
            continue
        for name, workflow in workspace.entry.data.get("workflows", {}).items():
            cron = workflow.get("schedule") if isinstance(workflow, dict) else None
            if isinstance(cron, str) and cron_problem(cron) is None:
                found.append(Schedule(entry=os.path.abspath(path), workflow=name, cron=cron))
        problems.extend(d for d in check_workspace(workspace) if d.code == "A310")
    return found, problems


class Worker:
    """Executes queued runs of one state directory. Create and run it in one thread."""

    def __init__(
        self,
        state_dir: str | os.PathLike[str] | None = None,
        options: WorkerOptions | None = None,
        *,
        on_event: Callable[[Event], object] | None = None,
        report: Callable[[str], object] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.options = options or WorkerOptions()
        self.on_event = on_event
        self.report = report or (lambda line: _log.info("%s", line))
        self.id = new_worker_id()
        self.queue = RunQueue(state_dir)
        self.active: dict[str, QueueEntry] = {}
        self.lost: set[str] = set()
        self.stopping = False
        self.executed = 0
        self.schedules: list[Schedule] = []
        self._wake: trio.Event | None = None
        #: Running stages per agent over all the runs of this worker: an agent's
        #: ``concurrency`` holds across them (not across worker processes).
        self.agent_slots: AgentSlots | None = None

    # -- control ------------------------------------------------------------------------
    def stop(self) -> None:
        """Claim nothing more; interrupt the running runs (they stay resumable)."""
        self.stopping = True
        if self._wake is not None:
            self._wake.set()

    def _control(self, run_id: str) -> str | None:
        if self.stopping or run_id in self.lost:
            return "interrupt"
        return self.queue.command(run_id)

    # -- the loop -----------------------------------------------------------------------
    async def run(self) -> int:
        """Work until stopped (or, with ``until_empty``, until the queue is drained).

        Returns the number of runs this worker finished.
        """
        import trio

        from ..runtime import AgentSlots

        if self.agent_slots is None:
            self.agent_slots = AgentSlots()
        if self.options.schedule_files:
            self.schedules, problems = schedules_of(self.options.schedule_files)
            for problem in problems:
                span = problem.primary.span if problem.primary is not None else None
                where = problem.filename if span is None else f"{span.file}:{span.line}:{span.column}"
                self.report(f"schedule file has errors: {where}: error[{problem.code}]: {problem.message}")
        self.queue.register_worker(self.id, max_runs=self.options.max_workflows)
        # A tick shortly before the worker started is still enqueued (once: the ticks table).
        last_tick_check = time.time() - max(60.0, 2 * self.options.poll_s)
        self._wake = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._heartbeat)
                while not self.stopping:
                    if self.schedules:
                        now = time.time()
                        due = self.queue.enqueue_due(self.schedules, since=last_tick_check, now=now)
                        for entry in due:
                            self.report(
                                f"scheduled {entry.workflow} (tick {_clock(entry.tick)}): run {entry.id}"
                            )
                        last_tick_check = now
                    self._fill(nursery)
                    if self.options.until_empty and not self.active and self.queue.pending() == 0:
                        break
                    with trio.move_on_after(self.options.poll_s):
                        await self._wake.wait()
                    self._wake = trio.Event()
                while self.active:  # stopping: the runs are being interrupted
                    await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
        finally:
            for run_id in list(self.active):  # cancelled hard (second Ctrl-C): give them back
                self._release(run_id)
            self.queue.stop_worker(self.id)
        return self.executed

    def _fill(self, nursery: trio.Nursery) -> None:
        while not self.stopping and len(self.active) < max(self.options.max_workflows, 1):
            entry = self.queue.claim(self.id, lease_s=self.options.lease_s)
            if entry is None:
                return
            self.active[entry.id] = entry
            nursery.start_soon(self._execute, entry, name=f"alfred run {entry.id}")

    async def _heartbeat(self) -> None:
        import trio

        while True:
            await trio.sleep(max(self.options.lease_s / 3, 0.05))
            try:
                lost = self.queue.renew(self.id, list(self.active), lease_s=self.options.lease_s)
            except Exception:  # a busy database must not kill the worker; the next beat retries
                _log.exception("cannot renew leases")
                continue
            for run_id in lost - self.lost:
                self.report(f"run {run_id}: lease lost to another worker; interrupting it here")
            self.lost |= lost

    def _release(self, run_id: str) -> None:
        try:
            self.queue.release(run_id, self.id)
        except Exception:
            _log.exception("cannot give run %s back to the queue", run_id)

    # -- one run ------------------------------------------------------------------------
    async def _execute(self, entry: QueueEntry) -> None:
        try:
            await self._execute_one(entry)
        except Exception as exc:  # a bug must not take the other runs down
            _log.exception("run %s failed in the worker", entry.id)
            self.report(f"run {entry.id}: internal error: {type(exc).__name__}: {exc}")
            self._finish(entry.id, "failed", error=f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self.active.pop(entry.id, None)
            self.lost.discard(entry.id)
            if self._wake is not None:
                self._wake.set()

    def _finish(self, run_id: str, result: str, *, error: str | None = None) -> None:
        self.queue.finish(run_id, self.id, result, error=error)
        self.executed += 1

    async def _execute_one(self, entry: QueueEntry) -> None:
        from ..compiler._plancache import compile_cached
        from ..runtime import RunOptions, StateStore, StoreError, start_run

        cache_dir = Path(self.queue.state_dir) / "cache" if self.options.plan_cache else None
        compiled = compile_cached(entry.entry, entry.workflow, dict(entry.params), cache_dir)
        plan, diagnostics = compiled.plan, compiled.diagnostics
        errors = [d for d in diagnostics if d.is_error]
        if plan is None or errors:
            first = errors[0].message if errors else "it does not compile"
            self.report(f"run {entry.id}: {entry.entry} has errors: {first}")
            self._finish(entry.id, "invalid", error=f"{len(errors)} error(s) in {entry.entry}: {first}")
            return
        store = StateStore(self.state_dir)
        try:
            resume: str | None = None
            record = store.run(entry.id)
            if record is not None:
                if record.state in ("succeeded", "failed", "cancelled"):
                    # It ended, but its worker died before leaving the queue.
                    self._finish(entry.id, record.state)
                    return
                resume = entry.id
            options = RunOptions(
                max_concurrency=self.options.max_concurrency,
                kill_grace_s=self.options.kill_grace_s,
                cli_params=dict(entry.params),
                entry=entry.entry,
                env=self.options.env,
                cluster=self.options.cluster,
            )
            self.report(f"run {entry.id}: {'resuming' if resume else 'starting'} {entry.workflow}")
            try:
                result: RunResult = await start_run(
                    plan, store, options, resume=resume, on_event=self.on_event, hooks=True,
                    report=self.report, run_id=entry.id, control=self._control,
                    control_interval_s=self.options.control_interval_s, agent_slots=self.agent_slots,
                )
            except StoreError as exc:
                self.report(f"run {entry.id}: cannot execute it now: {exc}")
                self._release(entry.id)
                return
        finally:
            store.close()
        if result.state == "interrupted":
            if entry.id not in self.lost:
                self._release(entry.id)
            self.report(f"run {entry.id}: interrupted; it will be resumed by the next worker")
            return
        self._finish(entry.id, result.state)
        self.report(f"run {entry.id}: {result.state} ({result.duration_s:.2f}s)")


def _clock(moment: float | None) -> str:
    return format_moment(moment, seconds=False)
