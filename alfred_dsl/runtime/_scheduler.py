"""The Trio scheduler: runs a plan's stages in dependency order, durably.

A stage starts when all its dependencies succeeded. Among ready stages the highest
``priority`` goes first, then the least slack, then declaration order. The global
concurrency limit and each agent's ``concurrency`` are never exceeded; a stage that
``requires`` capabilities goes to the least busy matching agent with a free slot.

Failures: each attempt has the stage's ``timeout``; a failed attempt is retried
``retries`` times after ``backoff * 2**(attempt-1)`` seconds (jittered, capped by
``max_backoff``). When a stage fails for good, its dependents end ``upstream_failed``;
with ``on_failure = stop`` (the default) running stages are cancelled and no new stage
starts (those end ``cancelled``), with ``continue`` independent branches go on. A stage
whose ``when`` is false ends ``skipped``, and so do the stages that need it.

Durability: every state change is queued to the :class:`StateStore` and committed once
per scheduler tick. ``resume`` continues a recorded run: stages that succeeded keep their
outputs and are not run again. Delivery is **at-least-once**: a stage that was running
when the earlier process died (or whose success was not yet committed) runs again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import json
import logging
import math
import os
import random
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from .. import _fanout
from .._plan import Plan, PlanAgent, PlanStage, thaw
from . import _approval, _budget, _events as ev, _gates as gates
from ._contain import (
    SUBREAPER,
    Containment,
    cgroup_populated,
    containment,
    kill_cgroup,
    kill_dead_runner_cgroup,
    kill_marked,
    reap_adopted,
    remove_cgroup,
    remove_run_cgroups,
)
from ._events import Event, EventBus
from ._executors import EXECUTORS, AttemptContext, AttemptOutcome
from ._incremental import Fingerprint, hash_files, missing_products
from ._journal import AttemptJournal, read_journal
from ._limits import AgentKey, AgentSlots, agent_key
from ._mcp import close_run as close_mcp_servers
from ._private import make_private_dir, private_mkdir, scrub_private_dirs
from ._process import LEADERS, kill_orphans, signal_name
from ._resolve import ExprError, Masker, render_when, resolve_attempt
from ._results import (
    CANCELLED,
    FAILED,
    FINAL_STAGE_STATES,
    PENDING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    UP_TO_DATE,
    UPSTREAM_FAILED,
    RunOptions,
    RunResult,
    StageResult,
)
from ._store import AttemptRecord, StateStore, StoreError
from ._timeslice import short_time_slice
from ._toolenv import tool_environment

__all__ = ["execute", "plan_json"]

_log = logging.getLogger("alfred_dsl.runtime")

_BROKEN = frozenset({FAILED, UPSTREAM_FAILED, CANCELLED})


async def execute(
    plan: Plan,
    *,
    store: StateStore,
    options: RunOptions,
    bus: EventBus,
    resume: str | None = None,
    run_id: str | None = None,
    control: Callable[[str], str | None] | None = None,
    control_interval_s: float = 0.5,
    agent_slots: AgentSlots | None = None,
) -> RunResult:
    """Execute ``plan``; every state change goes to ``bus`` and ``store``.

    ``resume``: the id of an earlier run of the same workflow to continue; its stages
    that succeeded are not run again and their outputs are reused. Delivery is
    at-least-once: a stage that was running when the earlier process died runs again.
    Raises :class:`StoreError` when the run to resume is unknown, belongs to another
    workflow, or is still running in a live process. With ``options.handle_signals``,
    SIGINT/SIGTERM end the run as ``interrupted``; otherwise KeyboardInterrupt is
    re-raised after the state is saved.

    ``run_id``: the id of a new run (default: a fresh one), e.g. the id a queue gave it.
    ``control(run_id)`` is polled every ``control_interval_s`` (the service's control
    flags): ``"pause"`` starts no new stage (running ones finish) until it returns
    anything else; ``"cancel"`` stops the run (state ``cancelled``); ``"interrupt"``
    stops it as ``interrupted`` (a worker shutting down; it can be resumed).

    ``agent_slots``: the per-agent running counts shared with the other runs executed in
    this Trio loop (a worker passes the same object to every run), so that an agent's
    ``concurrency`` holds across them; by default the run counts its own stages only.
    """
    run = _Run(plan, store, options, bus, agent_slots or AgentSlots())
    run.control, run.control_interval_s = control, control_interval_s
    run.slots.join(id(run), run.wake)
    relay: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if options.handle_signals and threading.current_thread() is threading.main_thread():
        relay = _SignalRelay(run)
    try:
        with relay, short_time_slice():
            return await run.main(resume, run_id)
    finally:
        run.slots.leave(id(run))


class _SignalRelay:
    """SIGINT and SIGTERM, while a run runs, go to :meth:`_Run.on_signal` on the Trio loop.

    Not ``trio.open_signal_receiver``: on leaving it, that re-raises the signals still
    queued, so a second Ctrl-C shortly after the first ended the process with a traceback
    (or killed it, for SIGTERM) while the run was being saved. Here a signal is handed to
    the loop as it comes and dropped once the run has ended. After a run stopped by a
    signal, SIGINT and SIGTERM stay ignored: the process was asked to stop and is doing so;
    a later signal must not kill it while it exits (exit status 130).
    """

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.token = trio.lowlevel.current_trio_token()
        self.previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: object) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            self.token.run_sync_soon(self.run.on_signal, signum)

    def __enter__(self) -> None:
        for signum in self._SIGNALS:
            self.previous[signum] = signal.signal(signum, self._handler)

    def __exit__(self, *exc: object) -> None:
        stopped = self.run.interrupted in {signal_name(s) for s in self._SIGNALS}
        for signum, previous in self.previous.items():
            signal.signal(signum, signal.SIG_IGN if stopped else previous)


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as JSON for the runs table (the renderer's form when it is available)."""
    try:
        from ..render import plan_to_json

        result = plan_to_json(plan)
        if isinstance(result, dict):
            return result
    except Exception:  # the renderer is optional here: fall back to the dataclass fields
        pass

    def fields(obj: Any) -> dict[str, Any]:
        return {
            f.name: thaw(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name != "span"
        }

    data = fields(plan)
    data["agents"] = [fields(a) for a in plan.agents]
    data["stages"] = [fields(s) for s in plan.stages]
    data["hooks"] = [fields(h) for h in plan.hooks]
    return data


#: id(plan) -> (plan, masked plan JSON): a service running the same plan again and again
#: encodes it once (the plan is kept alive here, so its id cannot be reused meanwhile).
_PLAN_TEXTS: dict[int, tuple[Plan, tuple[str, ...], str]] = {}


def _plan_text(plan: Plan, masker: Masker) -> str:
    """The JSON text of ``plan`` for the runs table, secret values masked."""
    key = masker.secrets
    cached = _PLAN_TEXTS.get(id(plan))
    if cached is not None and cached[0] is plan and cached[1] == key:
        return cached[2]
    text = json.dumps(masker.data(plan_json(plan)), separators=(",", ":"), ensure_ascii=False, default=str)
    if len(_PLAN_TEXTS) >= 8:
        _PLAN_TEXTS.pop(next(iter(_PLAN_TEXTS)))
    _PLAN_TEXTS[id(plan)] = (plan, key, text)
    return text


@dataclasses.dataclass(slots=True, eq=False)

class _Stage:
    spec: PlanStage
    index: int
    deps: tuple[str, ...]
    dependents: list[str] = dataclasses.field(default_factory=list)
    state: str = PENDING
    waiting: int = 0
    agent: str | None = None
    outputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    attempts: int = 0
    attempt_base: int = 0
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    exit_code: int | None = None
    reused: bool = False
    scope: trio.CancelScope | None = None
    attempt_started: float | None = None
    #: The running attempt's cgroup (cgroup containment), recorded with each of its rows.
    attempt_cgroup: str | None = None
    cwd: Path = Path()
    #: Bytes of output the current attempt's log did not keep (its ``max_log`` was reached).
    log_dropped: int = 0
    #: The stage's argv when no part of it is a template (resolved once, not per attempt).
    static_argv: tuple[str, ...] | None = None
    #: Incremental stages: the fingerprint computed when it became ready (recorded on success).
    fingerprint: Fingerprint | None = None

    @property
    def cleanup(self) -> bool:
        """``run_if = always | failure``: it may run after a failure or while the run stops."""
        return self.spec.run_if != "success"

    @property
    def name(self) -> str:
        return self.spec.name

    def log_truncated(self, dropped: int) -> None:
        self.log_dropped = dropped


class _Run:
    def __init__(
        self, plan: Plan, store: StateStore, options: RunOptions, bus: EventBus, slots: AgentSlots
    ) -> None:
        self.plan = plan
        self.store = store
        self.options = options
        self.bus = bus
        self.run_id = ""
        self.base_env = tool_environment(options.env if options.env is not None else os.environ)
        secret_values = {n: self.base_env[n] for n in plan.secrets if n in self.base_env}
        self.secret_values = secret_values
        self.masker = Masker(secret_values)
        self.agents: dict[str, PlanAgent] = {a.name: a for a in plan.agents}
        self.agent_order = {a.name: i for i, a in enumerate(plan.agents)}
        # Running stages per agent, shared with the other runs of this loop (AgentSlots).
        self.slots = slots
        self.agent_running: dict[AgentKey, int] = slots.running
        self.agent_slot: dict[str, tuple[AgentKey, int]] = {}
        for a in plan.agents:
            key = agent_key(plan, a)
            self.agent_running.setdefault(key, 0)
            self.agent_slot[a.name] = (key, max(a.concurrency, 1))
        self.refill_pending = False
        names = {s.name for s in plan.stages}
        self.stages: dict[str, _Stage] = {}
        cwds: dict[str, Path] = {}
        for index, spec in enumerate(plan.stages):
            deps = tuple(dict.fromkeys(d for d in spec.after if d in names))
            cwd = cwds.get(spec.cwd) or cwds.setdefault(spec.cwd, Path(spec.cwd))
            self.stages[spec.name] = _Stage(spec=spec, index=index, deps=deps, cwd=cwd)
        for st in self.stages.values():
            for dep in st.deps:
                self.stages[dep].dependents.append(st.name)
        self.scope_base: dict[str, Any] = {
            "params": thaw(plan.params),
            "stages": {},
            "env": self.base_env,
            "secrets": secret_values,
        }
        self.max_concurrency = options.concurrency
        self.running = 0
        self.ready: dict[tuple[str, ...], list[tuple[int, float, int, str]]] = {}
        self.final_count = 0
        self.stopping = False
        self.interrupted: str | None = None
        self.done = trio.Event()
        self.kill_now = trio.Event()
        self.dirty = trio.Event()
        self.settle: deque[str] = deque()
        self.nursery: trio.Nursery | None = None
        self.started = time.time()
        self.work_dir = Path()
        self.work_dir_str = ""
        #: The run directory was created empty by this run: no stale outputs file to remove.
        self.fresh_work_dir = True
        #: Where commands get their inputs and outputs files when the run has secrets.
        self.private_dir: Path | None = None
        self.control: Callable[[str], str | None] | None = None
        self.control_interval_s = 0.5
        self.paused = False
        self.cancelled = False
        #: finish_run has decided the run's state: a late signal changes nothing.
        self.ended = False
        self.journal = AttemptJournal(Path())
        #: The containment of this process, once a command stage needed it.
        self.contained: Containment | None = None
        self.reaping = False
        #: What the stages reported they spent, against the plan's budget (_budget.py).
        self.spend = _budget.Spend(plan.budget)
        #: The workflow's ``timeout`` stopped the run.
        self.timed_out = False
        #: ``run_if = always | failure`` stages may still start (until the cleanup grace ends).
        self.cleanup_open = True
        self.needed_upstream = gates.upstream_of_selected(self)

    # -- events and persistence -------------------------------------------------------
    def emit(self, type_: str, stage: str | None = None, attempt: int | None = None, **data: Any) -> None:
        event = Event(
            type=type_,
            run_id=self.run_id,
            time=time.time(),
            stage=stage,
            attempt=attempt,
            data=self.masker.data(data) if self.masker and data else data,
            seq=self.store.next_seq(self.run_id),
        )
        self.store.add_event(event)
        self.dirty.set()
        self.bus.emit(event)

    def save(self, st: _Stage) -> None:
        self.store.queue_stage(
            self.run_id,
            st.name,
            state=st.state,
            agent=st.agent,
            outputs=self.masker.data(st.outputs),
            started=st.started,
            finished=st.finished,
            attempts=st.attempts,
            error=self.masker.text(st.error) if st.error else None,
        )
        self.dirty.set()

    async def flusher(self) -> None:
        while True:
            await self.dirty.wait()
            # Let every task that is runnable in this tick queue its writes first.
            await trio.sleep(0)
            self.dirty = trio.Event()
            self.store.flush()
            # At most one transaction per interval: thousands of quick stages share commits.
            await trio.sleep(self.options.flush_interval_s)

    # -- start ----------------------------------------------------------------------
    async def main(self, resume: str | None, run_id: str | None = None) -> RunResult:
        stage_names = [s.name for s in self.plan.stages]
        common = {
            "workflow": self.plan.workflow,
            "source": self.plan.source,
            "params": thaw(self.plan.params),
            "stages": stage_names,
            "state_dir": str(self.store.state_dir),
        }
        if resume is None:
            self.run_id = run_id or self.store.new_run_id()
            self.store.create_run(
                run_id=self.run_id,
                workflow=self.plan.workflow,
                source=self.plan.source,
                entry=self.options.entry,
                params=self.masker.data(thaw(self.plan.params)),
                cli_params=dict(self.options.cli_params),
                plan=_plan_text(self.plan, self.masker),
                stages=stage_names,
                started=self.started,
            )
            self.work_dir = self.store.run_dir(self.run_id)
            self._mkdir()
            self.emit(ev.RUN_STARTED, **common)
        else:
            finished = self._already_succeeded(resume)
            if finished is not None:
                return finished
            reused = self._load_resume(resume)
            self.emit(ev.RUN_RESUMED, **common, reused=reused)
        if self.masker:
            try:
                self.private_dir = make_private_dir(self.run_id)
            except OSError as exc:
                raise StoreError(f"cannot create a private temporary folder: {exc}") from exc
        try:
            return await self._execute()
        finally:
            close_mcp_servers(self.run_id)  # the run's MCP servers never outlive it
            if self.private_dir is not None:
                shutil.rmtree(self.private_dir, ignore_errors=True)

    async def _execute(self) -> RunResult:
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                if self.interrupted is not None:  # a signal came while the run was being set up
                    self.stop("interrupted")
                nursery.start_soon(self.flusher)
                if self.plan.timeout_s:
                    nursery.start_soon(self._workflow_deadline, self.plan.timeout_s)
                if self.control is not None:
                    nursery.start_soon(self.watch_control)
                for st in self.stages.values():
                    if st.state == PENDING:
                        st.waiting = sum(1 for d in st.deps if self.stages[d].state not in FINAL_STAGE_STATES)
                        if st.waiting == 0:
                            self.settle.append(st.name)
                self.process_settle()
                self.fill()
                self.check_done()
                await self.done.wait()
                nursery.cancel_scope.cancel()
        except KeyboardInterrupt:
            self.interrupted = "SIGINT"
            self.finish_run()
            raise
        return self.finish_run()

    def _mkdir(self) -> None:
        self.work_dir_str = str(self.work_dir)
        self.journal = AttemptJournal(self.work_dir)
        try:
            if not private_mkdir(self.work_dir):
                # A resumed run (or an id reused): outputs files of unrecorded attempts may be left.
                self.fresh_work_dir = False
        except FileExistsError as exc:
            raise StoreError(f"cannot create {self.work_dir}: {exc.strerror}") from exc
        except OSError as exc:
            raise StoreError(f"cannot create {self.work_dir}: {exc.strerror}") from exc

    def _already_succeeded(self, resume: str) -> RunResult | None:
        """The recorded result of a run that already succeeded with every stage of this plan:
        resuming it runs nothing and writes nothing (its times, events and metrics stay)."""
        record = self.store.run(resume)
        if record is None or record.state != SUCCEEDED or record.workflow != self.plan.workflow:
            return None
        recorded = {s.name: s for s in self.store.stages(resume)}
        if any(
            name not in recorded or recorded[name].state not in (SUCCEEDED, SKIPPED, UP_TO_DATE)
            for name in self.stages
        ):
            return None  # the file gained a stage since: run it
        exit_codes = {a.stage: a.exit_code for a in sorted(self.store.attempts(resume), key=lambda a: a.n)}
        self.run_id = resume
        return RunResult(
            run_id=resume,
            workflow=record.workflow,
            state=SUCCEEDED,
            stages={
                name: StageResult(
                    name=name, state=recorded[name].state, agent=recorded[name].agent,
                    outputs=dict(recorded[name].outputs), attempts=recorded[name].attempts,
                    started=recorded[name].started, finished=recorded[name].finished,
                    exit_code=exit_codes.get(name), reused=True,
                )
                for name in self.stages
            },
            started=record.started,
            finished=record.finished if record.finished is not None else record.started,
            state_dir=str(self.store.state_dir),
            already_succeeded=True,
        )

    def _load_resume(self, resume: str) -> list[str]:
        record = self.store.run(resume)
        if record is None:
            raise StoreError(f"no run `{resume}` in {self.store.state_dir}")
        if record.workflow != self.plan.workflow:
            raise StoreError(
                f"run `{resume}` is of workflow `{record.workflow}`, not `{self.plan.workflow}`"
            )
        self.store.claim_run(resume)
        self.run_id = resume
        self.work_dir = self.store.run_dir(resume)
        self._mkdir()
        attempts = self.store.attempts(resume)
        known = {(a.stage, a.n) for a in attempts}
        unfinished = [a for a in attempts if a.finished is None]
        last_attempt: dict[str, int] = {}
        for a in attempts:
            last_attempt[a.stage] = max(last_attempt.get(a.stage, 0), a.n)
        for j in read_journal(self.work_dir):  # started, but the database never heard of it
            last_attempt[j.stage] = max(last_attempt.get(j.stage, 0), j.n)
            if (j.stage, j.n) not in known:
                known.add((j.stage, j.n))
                unfinished.append(AttemptRecord(
                    run=resume, stage=j.stage, n=j.n, started=j.started, finished=None, exit_code=None,
                    error=None, log_path=None, pid=None, cgroup=j.cgroup,
                ))
        self._kill_leftovers(resume, unfinished)
        # Secret-bearing files of the attempts that were running then.
        scrub_private_dirs(resume)
        reused: list[str] = []
        for record_stage in self.store.stages(resume):
            st = self.stages.get(record_stage.name)
            if st is None:
                continue
            st.attempt_base = max(record_stage.attempts, last_attempt.get(record_stage.name, 0))
            if record_stage.state == SUCCEEDED:
                st.state = SUCCEEDED
                st.reused = True
                st.outputs = dict(record_stage.outputs)
                st.agent = record_stage.agent
                st.attempts = record_stage.attempts
                st.started, st.finished = record_stage.started, record_stage.finished
                self.scope_base["stages"][st.name] = {"outputs": st.outputs}
                _record_member(self.scope_base["stages"], st)
                self.final_count += 1
                self.spend.add(st.outputs)
                reused.append(st.name)
            else:
                self.save(st)  # back to pending
        return reused

    def _kill_leftovers(self, run_id: str, unfinished: list[AttemptRecord]) -> None:
        """Kill what the attempts that were running when the earlier process died left:
        their cgroups, the processes whose environment names them, their process groups;
        then record those attempts as ended."""
        if not unfinished:
            return
        for a in unfinished:
            if a.cgroup:
                kill_cgroup(a.cgroup)
                kill_dead_runner_cgroup(a.cgroup)
        kill_marked(run_id, [(a.stage, a.n) for a in unfinished])
        kill_orphans(run_id, [a.pid for a in unfinished if a.pid])
        deadline = time.monotonic() + 2.0
        for a in unfinished:
            if a.cgroup:  # cgroup.kill is asynchronous: the cgroup empties within milliseconds
                while cgroup_populated(a.cgroup) and time.monotonic() < deadline:
                    time.sleep(0.005)
                if remove_cgroup(a.cgroup):
                    with contextlib.suppress(OSError):
                        os.rmdir(os.path.dirname(a.cgroup))  # the dead run's folder, once empty
            self.store.queue_attempt(
                run_id, a.stage, a.n, started=a.started, finished=time.time(),
                error="the process running it ended (killed or crashed)", log_path=a.log_path, pid=a.pid,
                agent=a.agent, cgroup=a.cgroup,
            )

    def contain(self) -> Containment:
        """How this process contains attempts (detected at the first command stage)."""
        mode = self.contained = containment()
        if mode.mode == SUBREAPER and not self.reaping and self.nursery is not None:
            self.reaping = True
            self.nursery.start_soon(self._reap_adopted)
        return mode

    async def _reap_adopted(self) -> None:
        """As a subreaper, this process inherits the orphans of its attempts: reap them."""
        while True:
            await trio.sleep(1.0)
            reap_adopted(LEADERS)

    def on_signal(self, signum: int) -> None:
        """SIGINT or SIGTERM (see :class:`_SignalRelay`): stop the run; a second one skips
        the grace periods."""
        if self.ended:
            return
        if self.interrupted is None:
            self.interrupted = signal_name(signum)
            if self.nursery is not None:  # else main() stops the run as soon as it starts
                self.stop("interrupted")
        else:
            self.kill_now.set()
            self.close_cleanup("a second signal")

    async def _workflow_deadline(self, timeout_s: float) -> None:
        """The workflow's ``timeout``: past it the run stops and fails (cleanup stages may
        still run within the cleanup grace)."""
        await trio.sleep(timeout_s)
        if not self.stopping:
            self.timed_out = True
            _log.info("run %s: the workflow timed out after %s", self.run_id, _seconds(timeout_s))
            self.stop(f"the workflow timed out after {_seconds(timeout_s)}")

    async def _cleanup_deadline(self) -> None:
        await trio.sleep(self.options.cleanup_grace_s)
        self.close_cleanup(f"the cleanup grace period ({_seconds(self.options.cleanup_grace_s)}) ended")

    def close_cleanup(self, reason: str) -> None:
        """No more cleanup stage starts; running ones are cancelled, waiting ones end cancelled."""
        if not self.cleanup_open or not self.stopping:
            return
        self.cleanup_open = False
        self.ready.clear()
        for st in self._topological():
            if st.state == PENDING:
                self.finalize(st, CANCELLED, reason=reason)
            elif st.state == RUNNING and st.scope is not None:
                st.scope.cancel()
        self.settle.clear()
        self.check_done()

    async def watch_control(self) -> None:
        """Poll the service's control flag of this run (pause, resume, cancel)."""
        assert self.control is not None
        while True:
            await trio.sleep(self.control_interval_s)
            try:
                command = self.control(self.run_id)
            except Exception:  # a broken control source must not stop the run
                _log.exception("cannot read the control flag of run %s", self.run_id)
                continue
            if self.stopping:
                return
            if command == "cancel":
                self.cancelled = True
                self.stop("cancelled")
            elif command == "interrupt":
                self.interrupted = "worker shutdown"
                self.stop("interrupted")
            elif command == "pause" and not self.paused:
                self.paused = True
                self.store.queue_run_state(self.run_id, "paused", None)
                self.emit(ev.RUN_PAUSED)
            elif command != "pause" and self.paused:
                self.paused = False
                self.store.queue_run_state(self.run_id, "running", None)
                self.emit(ev.RUN_RESUMED, reason="unpaused")
                self.fill()
                self.check_done()

    # -- readiness ------------------------------------------------------------------
    def finalize(self, st: _Stage, state: str, *, reason: str | None = None, **data: Any) -> None:
        """Put a stage in a final state, record it, and wake its dependents."""
        if st.state in FINAL_STAGE_STATES:
            return
        if st.state == RUNNING:
            self.running -= 1
            if st.agent is not None:
                self._release(st.agent)
        st.state = state
        if st.finished is None or state != SKIPPED:
            st.finished = time.time()
        self.final_count += 1
        self.save(st)
        if state == SUCCEEDED:
            self.scope_base["stages"][st.name] = {"outputs": st.outputs}
            _record_member(self.scope_base["stages"], st)
            self.emit(
                ev.STAGE_SUCCEEDED, st.name, st.attempts or None,
                outputs=st.outputs, duration_s=self._duration(st), agent=st.agent,
            )
        elif state == FAILED:
            self.emit(
                ev.STAGE_FAILED, st.name, st.attempts or None,
                error=st.error, exit_code=st.exit_code, duration_s=self._duration(st), agent=st.agent,
            )
        elif state == SKIPPED:
            self.emit(ev.STAGE_SKIPPED, st.name, reason=reason)
        elif state == UP_TO_DATE:
            self.scope_base["stages"][st.name] = {"outputs": st.outputs}
            self.emit(ev.STAGE_UP_TO_DATE, st.name, reason=reason, outputs=st.outputs, **data)
        elif state == UPSTREAM_FAILED:
            self.emit(ev.STAGE_UPSTREAM_FAILED, st.name, **data)
        elif state == CANCELLED:
            self.emit(ev.STAGE_CANCELLED, st.name, st.attempts or None, reason=reason)
        for name in st.dependents:
            dependent = self.stages[name]
            if dependent.state == PENDING:
                dependent.waiting -= 1
                if dependent.waiting == 0:
                    self.settle.append(name)
        if state == FAILED and not self.stopping and st.spec.on_failure == "stop":
            self.stop("stage failed")
        if state == SUCCEEDED:
            _budget.after_success(self, st.outputs)

    @staticmethod
    def _duration(st: _Stage) -> float | None:
        return None if st.started is None or st.finished is None else round(st.finished - st.started, 6)

    def _breaks(self, st: _Stage, dependency: str) -> bool:
        """Whether ``dependency``'s state stops ``st`` (a rejected approval it reads does not)."""
        upstream = self.stages[dependency]
        return upstream.state in _BROKEN and not _approval.tolerates(st.spec, upstream)

    def process_settle(self) -> None:
        """Decide what becomes of each stage whose dependencies are all final (no recursion)."""
        while self.settle:
            st = self.stages[self.settle.popleft()]
            if st.state != PENDING:
                continue
            if gates.decide_unselected(self, st):
                continue
            if st.cleanup:  # run_if = always | failure: whatever became of its dependencies
                if self.stopping and not self.cleanup_open:
                    self.finalize(st, CANCELLED, reason="the run was stopped")
                    continue
                if st.spec.run_if == "failure" and not gates.failing(self):
                    self.finalize(st, SKIPPED, reason="nothing failed (`run_if = failure`)")
                    continue
            else:
                broken = next((d for d in st.deps if self._breaks(st, d)), None)
                if broken is not None:
                    self.finalize(st, UPSTREAM_FAILED, upstream=broken)
                    continue
                if self.stopping:
                    self.finalize(st, CANCELLED, reason="the run was stopped")
                    continue
                skipped = next((d for d in st.deps if self.stages[d].state == SKIPPED), None)
                if skipped is not None:
                    self.finalize(st, SKIPPED, reason=f"`{skipped}` was skipped")
                    continue
            try:
                run_it = render_when(st.spec.when, self.scope_base)
            except ExprError as exc:
                st.error = f"cannot evaluate `when`: {exc}"
                self.finalize(st, FAILED)
                continue
            if not run_it:
                self.finalize(st, SKIPPED, reason="`when` is false")
                continue
            if gates.incremental_gate(self, st):
                continue
            if self.bus.wanted:  # not stored: one row per stage that no reader needs
                self.bus.emit(Event(type=ev.STAGE_READY, run_id=self.run_id, time=time.time(), stage=st.name))
            if st.spec.approve is not None:  # alfred itself waits for the decision (_approval.py)
                if not _budget.refuse(self, st.spec):
                    _approval.start(self, st)
                continue
            key = st.spec.agents
            entry = (-st.spec.priority, st.spec.slack_s, st.index, st.name)
            heapq.heappush(self.ready.setdefault(key, []), entry)

    def stop(self, reason: str) -> None:
        """Start no new stage and cancel the running ones."""
        if self.stopping:
            return
        self.stopping = True
        self.ready.clear()
        if reason != "stage failed" and self.nursery is not None:
            # A cancel, a signal, the workflow timeout: cleanup stages get a limited time.
            self.nursery.start_soon(self._cleanup_deadline)
        for st in self._topological():
            if st.state == PENDING and st.cleanup:
                continue  # decided once its dependencies have finished
            if st.state == PENDING:
                broken = next((d for d in st.deps if self.stages[d].state in (FAILED, UPSTREAM_FAILED)), None)
                if broken is not None:
                    self.finalize(st, UPSTREAM_FAILED, upstream=broken)
                else:
                    self.finalize(st, CANCELLED, reason=reason)
        self.settle = deque(name for name in self.settle if self.stages[name].cleanup)
        for st in self.stages.values():
            if st.state == RUNNING and st.scope is not None and not st.cleanup:
                st.scope.cancel()
        self.process_settle()
        self.fill()
        self.check_done()

    def _topological(self) -> list[_Stage]:
        indegree = {name: len(st.deps) for name, st in self.stages.items()}
        queue = deque(name for name, n in indegree.items() if n == 0)
        order: list[_Stage] = []
        while queue:
            st = self.stages[queue.popleft()]
            order.append(st)
            for name in st.dependents:
                indegree[name] -= 1
                if indegree[name] == 0:
                    queue.append(name)
        return order

    # -- dispatch -------------------------------------------------------------------
    def _agent_free(self, name: str) -> bool:
        slot = self.agent_slot.get(name)
        return slot is not None and self.agent_running[slot[0]] < slot[1]

    def _busy(self, name: str) -> int:
        """Stages on agent ``name`` now, over every run sharing the slots."""
        return self.agent_running[self.agent_slot[name][0]]

    def _take(self, name: str) -> None:
        self.agent_running[self.agent_slot[name][0]] += 1

    def _release(self, name: str) -> None:
        self.agent_running[self.agent_slot[name][0]] -= 1
        self.slots.released(id(self))

    def wake(self) -> None:
        """Another run freed an agent slot: try to start a waiting stage (in a task of our own
        nursery, not inside the other run's bookkeeping)."""
        if self.refill_pending or not self.ready or self.stopping or self.nursery is None:
            return
        if self.done.is_set():
            return
        self.refill_pending = True
        self.nursery.start_soon(self._refill)

    async def _refill(self) -> None:
        self.refill_pending = False
        self.fill()
        self.check_done()

    def fill(self) -> None:
        """Start ready stages while there is capacity, best first."""
        # Once the run is stopping, only cleanup stages are left in `ready`.
        while (
            (not self.stopping or self.cleanup_open)
            and not self.paused and self.running < self.max_concurrency and self.ready
        ):
            best_key: tuple[str, ...] | None = None
            for key, heap in list(self.ready.items()):
                if not heap:
                    del self.ready[key]
                    continue
                if any(self._agent_free(a) for a in key) and (
                    best_key is None or heap[0] < self.ready[best_key][0]
                ):
                    best_key = key
            if best_key is None:
                break
            heap = self.ready[best_key]
            if _budget.refuse(self, self.stages[heap[0][-1]].spec):
                break
            *_, name = heapq.heappop(heap)
            if not heap:
                del self.ready[best_key]
            agent = min(
                (a for a in best_key if self._agent_free(a)),
                key=lambda a: (self._busy(a), self.agent_order[a]),
            )
            st = self.stages[name]
            st.state = RUNNING
            st.agent = agent
            self.running += 1
            self._take(agent)
            assert self.nursery is not None
            self.nursery.start_soon(self.stage_task, st, name=f"alfred stage {name}")
        # A ready stage with no declared agent can never run: fail it instead of waiting forever.
        for key in [k for k in self.ready if not any(a in self.agents for a in k)]:
            for *_, name in self.ready.pop(key):
                st = self.stages[name]
                st.error = "no agent to run it" if not key else f"unknown agent `{key[0]}`"
                self.finalize(st, FAILED)
            self.process_settle()

    def check_done(self) -> None:
        if self.final_count >= len(self.stages):
            self.done.set()

    # -- one stage ------------------------------------------------------------------
    async def stage_task(self, st: _Stage) -> None:
        if self.stopping and not (st.cleanup and self.cleanup_open):
            # Stopped between fill() and this task's first step: stop() saw no scope to cancel.
            self._cancelled(st)
            self.check_done()
            return
        try:
            with trio.CancelScope() as scope:
                st.scope = scope
                await self.attempts(st)
        except trio.Cancelled:
            self._cancelled(st)
            raise
        except Exception as exc:  # a bug in an executor must not end the run with a traceback
            st.error = f"internal error: {type(exc).__name__}: {exc}"
            self.finalize(st, FAILED)
        st.scope = None
        if st.state not in FINAL_STAGE_STATES:
            self._cancelled(st)
        self.process_settle()
        self.fill()
        self.check_done()

    def _cancelled(self, st: _Stage) -> None:
        if st.attempt_started is not None:
            self.store.queue_attempt(
                self.run_id, st.name, st.attempts, started=st.attempt_started, finished=time.time(),
                error="cancelled", agent=st.agent, cgroup=st.attempt_cgroup,
            )
            st.attempt_started = None
        st.error = st.error or "cancelled"
        reason = f"interrupted by {self.interrupted}" if self.interrupted else "the run was stopped"
        if self.timed_out:
            reason = f"the workflow timed out after {_seconds(self.plan.timeout_s or 0)}"
        self.finalize(st, CANCELLED, reason=reason)

    def _context(self, st: _Stage, agent: PlanAgent, attempt: int, log: str) -> AttemptContext:
        spec = st.spec
        values = resolve_attempt(spec, agent, self.scope_base, self.base_env, static_argv=st.static_argv)
        raw = spec.run if spec.run is not None else agent.run
        if isinstance(values.run, tuple) and values.run is raw:  # an argv without ${...}: kept as is
            st.static_argv = values.run
        return AttemptContext(
            run_id=self.run_id,
            stage=spec,
            agent=agent,
            attempt=attempt,
            inputs=values.inputs,
            run=values.run,
            shell_values=values.shell_values,
            call=values.call,
            url=values.url,
            env=values.env,
            cwd=st.cwd,
            log_path=Path(log),
            work_dir=self.work_dir,
            fresh_work_dir=self.fresh_work_dir,
            timeout_s=spec.timeout_s,
            kill_grace_s=self.options.kill_grace_s,
            kill_now=self.kill_now,
            on_spawn=lambda pid: self._spawned(st, pid, log),
            masker=self.masker,
            private_dir=self.private_dir,
            on_log_truncated=st.log_truncated,
            cgroup=st.attempt_cgroup,
            mcp=values.mcp,
        )

    def _spawned(self, st: _Stage, pid: int, log: str) -> None:
        assert st.attempt_started is not None
        self.store.queue_attempt(
            self.run_id, st.name, st.attempts, started=st.attempt_started, log_path=log, pid=pid,
            agent=st.agent, cgroup=st.attempt_cgroup,
        )
        self.dirty.set()

    def _move_for_retry(self, st: _Stage) -> None:
        """Before a retry: the least busy of the stage's agents with a free slot, preferring
        another agent than the one that just failed when they are equally busy."""
        candidates = [a for a in st.spec.agents if a in self.agents]
        if len(candidates) < 2 or st.agent is None:
            return
        failed = st.agent
        self.agent_running[self.agent_slot[failed][0]] -= 1  # its own slot counts as free
        # The failed agent is free again, unless another run's file gave it a lower limit.
        free = [a for a in candidates if self._agent_free(a)] or [failed]
        chosen = min(free, key=lambda a: (self._busy(a), a == failed, self.agent_order[a]))
        self._take(chosen)
        st.agent = chosen
        if chosen != failed:
            self.slots.released(id(self))
            self.fill()  # the slot left on the failed agent may start a waiting stage

    async def attempts(self, st: _Stage) -> None:
        spec = st.spec
        total = 1 + max(spec.retries, 0)
        st.started = time.time()
        st.finished = None
        for i in range(total):
            agent = self.agents[st.agent or ""]
            # --cluster: command and python stages go to a Dask worker (runtime/_cluster.py).
            remote = _cluster_executor(self.options.cluster, agent) if self.options.cluster else None
            executor = remote or EXECUTORS.get(agent.kind)
            attempt = st.attempt_base + i + 1
            st.attempts = attempt
            st.attempt_started = time.time()
            st.log_dropped = 0
            log = f"{self.work_dir_str}{os.sep}{st.name}.{attempt}.log"
            self.save(st)
            self.emit(ev.STAGE_STARTED, st.name, attempt, agent=agent.name, log=log, retries=spec.retries)
            st.attempt_cgroup = None
            if agent.kind != "python":
                if agent.kind == "command" and remote is None:
                    st.attempt_cgroup = self.contain().attempt_cgroup(self.run_id, st.name, attempt)
                # Durable before anything starts: a runner killed from here on leaves a trace
                # of the attempt (its number, its cgroup, the ALFRED_* variables its processes
                # carry), so --resume kills what it started and counts on from it. (A python
                # stage starts no process and cannot see its attempt number.)
                self.journal.started(st.name, attempt, st.attempt_started, st.attempt_cgroup)
            self.store.queue_attempt(
                self.run_id, st.name, attempt, started=st.attempt_started, agent=agent.name,
                cgroup=st.attempt_cgroup,
            )
            outcome: AttemptOutcome
            if executor is None:
                outcome = AttemptOutcome(ok=False, error=f"no executor for agents of kind `{agent.kind}`")
            else:
                try:
                    context = self._context(st, agent, attempt, log)
                except ExprError as exc:
                    outcome = AttemptOutcome(ok=False, error=str(exc))
                else:
                    timeout = spec.timeout_s if spec.timeout_s and spec.timeout_s > 0 else math.inf
                    if timeout == math.inf:
                        outcome = await executor.run(context)
                        timed_out = False
                    else:
                        with trio.move_on_after(timeout) as timer:
                            outcome = await executor.run(context)
                        timed_out = timer.cancelled_caught
                    if timed_out:
                        outcome = AttemptOutcome(
                            ok=False, error=f"timed out after {_seconds(timeout)}",
                            log_path=str(context.log_path) if context.log_path.exists() else None,
                        )
            if outcome.ok and spec.produces:
                missing = missing_products(st.cwd, spec.produces)
                if missing:
                    outcome = AttemptOutcome(
                        ok=False, log_path=outcome.log_path, exit_code=outcome.exit_code,
                        error="it exited successfully but produced no file matching "
                        + ", ".join(f"`{m}`" for m in missing) + f" (its `produces`, in {st.cwd})",
                    )
            error = self.masker.text(outcome.error) if outcome.error else None
            self.store.queue_attempt(
                self.run_id, st.name, attempt, started=st.attempt_started, finished=time.time(),
                exit_code=outcome.exit_code, error=error, log_path=outcome.log_path, agent=agent.name,
                log_dropped=st.log_dropped,
                cgroup=st.attempt_cgroup, worker=outcome.worker,
            )
            st.attempt_started = None
            st.exit_code = outcome.exit_code
            if outcome.ok:
                st.outputs = dict(outcome.outputs)
                st.error = None
                if st.fingerprint is not None:
                    self._record_fingerprint(st, st.fingerprint)
                self.finalize(st, SUCCEEDED)
                return
            st.error = error
            if outcome.permanent is not None and i + 1 < total:
                st.error = f"{error} (not retried: {outcome.permanent})"
                break
            if i + 1 < total:
                delay = self._backoff(spec, i + 1)
                self.emit(ev.STAGE_RETRYING, st.name, attempt, error=error, delay_s=round(delay, 3))
                await trio.sleep(delay)
                self._move_for_retry(st)
        self.finalize(st, FAILED)

    def _record_fingerprint(self, st: _Stage, fp: Fingerprint) -> None:
        self.store.queue_fingerprint(
            self.plan.source, self.plan.workflow, st.name, fingerprint=fp.value, config=fp.config,
            sources=fp.sources, products=hash_files(st.cwd, st.spec.produces),
            outputs=self.masker.data(st.outputs), run_id=self.run_id,
        )

    def _backoff(self, spec: PlanStage, failed_attempt: int) -> float:
        delay = float(max(spec.backoff_s, 0.0)) * float(2 ** (failed_attempt - 1))
        if spec.max_backoff_s is not None:
            delay = min(delay, spec.max_backoff_s)
        jitter = min(max(self.options.jitter, 0.0), 1.0)
        return delay * (1 - jitter * random.random())

    # -- end ------------------------------------------------------------------------
    def finish_run(self) -> RunResult:
        self.ended = True
        self.journal.close()
        if self.contained is not None:
            remove_run_cgroups(self.contained.cgroup_root, self.run_id)
        finished = time.time()
        for st in self.stages.values():  # only after KeyboardInterrupt can some be left open
            if st.state not in FINAL_STAGE_STATES:
                self.finalize(st, CANCELLED, reason="interrupted")
        counts: dict[str, int] = {}
        for st in self.stages.values():
            counts[st.state] = counts.get(st.state, 0) + 1
        duration = round(finished - self.started, 6)
        if self.interrupted is not None:
            state = "interrupted"
            self.emit(
                ev.RUN_INTERRUPTED, state=state, counts=counts, signal=self.interrupted, duration_s=duration
            )
        elif self.cancelled:
            state = "cancelled"
            self.emit(ev.RUN_CANCELLED, state=state, counts=counts, duration_s=duration)
        elif self.spend.reason is not None or any(st.state in _BROKEN for st in self.stages.values()):
            state = FAILED
            failed = [st.name for st in self.stages.values() if st.state == FAILED]
            why: dict[str, Any] = {}
            if self.spend.reason is not None:
                why["reason"] = self.spend.reason
            elif self.timed_out:
                why["reason"] = f"the workflow timed out after {_seconds(self.plan.timeout_s or 0)}"
            self.emit(ev.RUN_FAILED, state=state, counts=counts, failed=failed, duration_s=duration, **why)
        else:
            state = SUCCEEDED
            self.emit(ev.RUN_COMPLETED, state=state, counts=counts, duration_s=duration)
        self.store.queue_run_state(self.run_id, state, finished)
        self.store.flush()
        return RunResult(
            run_id=self.run_id,
            workflow=self.plan.workflow,
            state=state,
            stages={
                name: StageResult(
                    name=name, state=st.state, agent=st.agent, outputs=dict(st.outputs), attempts=st.attempts,
                    started=st.started, finished=st.finished, error=st.error, exit_code=st.exit_code,
                    reused=st.reused,
                )
                for name, st in self.stages.items()
            },
            started=self.started,
            finished=finished,
            state_dir=str(self.store.state_dir),
        )


def _cluster_executor(address: str, agent: PlanAgent) -> Any:
    from ._cluster import cluster_executor  # Dask only when a cluster is asked for

    return cluster_executor(address, agent)


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _record_member(stages_scope: dict[str, Any], st: _Stage) -> None:
    """A fan-out member's outputs also go in its group's map (``stages.GROUP.outputs``)."""
    if st.spec.fan_out:
        key = st.spec.name[len(st.spec.fan_out) + 1 : -1]
        _fanout.group_outputs(stages_scope, st.spec.fan_out, key, st.outputs)
