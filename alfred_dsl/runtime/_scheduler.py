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

This module holds a run's state and answers "which stage runs next": readiness (settling
stages whose dependencies are final), dispatch over the global and per-agent slots,
bookkeeping (events, stage rows, the flusher) and the run's end. The other questions have
their own modules: one stage's attempts (:mod:`._attempts`), where a resumed run starts
from (:mod:`._recovery`), and what stops it from outside (:mod:`._control`). It is about
700 lines on purpose: the state and the per-stage hot path (settle, fill, finalize) are one
class, where an attribute is one lookup away (see bench/RUNTIME.md), and the features that
decide a settled stage's fate (approvals, budgets, cleanup stages, incremental gates) hook
into that path with a line or two each; their bodies live in their own modules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import json
import logging
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ..compiler._dispatch import pick_agent, ready_key
from ..compiler._plan import Plan, PlanAgent, PlanStage, thaw
from . import _budget, _events as ev, _foreach, _gates as gates
from ._attempts import stage_task
from ._contain import (
    SUBREAPER,
    Containment,
    containment,
    reap_adopted,
    remove_run_cgroups,
)
from ._control import SignalRelay, cleanup_deadline, close_cleanup, watch_control, workflow_deadline
from ._events import Event, EventBus
from ._journal import AttemptJournal
from ._limits import AgentKey, AgentSlots, agent_key
from ._mcp import close_run as close_mcp_servers
from ._private import make_private_dir, private_mkdir
from ._process import LEADERS, signal_name
from ._recovery import already_succeeded, load_resume
from ._resolve import ExprError, Masker, render_when
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
from ._store import StateStore, StoreError
from ._timeslice import short_time_slice
from ._toolenv import tool_environment

if TYPE_CHECKING:
    from ._incremental import Fingerprint

__all__ = ["execute"]

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
        relay = SignalRelay(run)
    try:
        with relay, short_time_slice():
            return await run.main(resume, run_id)
    finally:
        run.slots.leave(id(run))


#: id(plan) -> (plan, masked plan JSON): a service running the same plan again and again
#: encodes it once (the plan is kept alive here, so its id cannot be reused meanwhile).
_PLAN_TEXTS: dict[int, tuple[Plan, tuple[str, ...], str]] = {}


def _plan_text(plan: Plan, masker: Masker) -> str:
    """The JSON text of ``plan`` for the runs table, secret values masked."""
    key = masker.secrets
    cached = _PLAN_TEXTS.get(id(plan))
    if cached is not None and cached[0] is plan and cached[1] == key:
        return cached[2]
    text = json.dumps(masker.data(plan.to_json()), separators=(",", ":"), ensure_ascii=False, default=str)
    if len(_PLAN_TEXTS) >= 8:
        _PLAN_TEXTS.pop(next(iter(_PLAN_TEXTS)))
    _PLAN_TEXTS[id(plan)] = (plan, key, text)
    return text


@dataclasses.dataclass(slots=True, eq=False)
class _Stage:
    spec: PlanStage
    #: ``spec.name``, an attribute rather than a property: read a dozen times per stage.
    name: str
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
        #: Whether anything is masked at all (a Masker's truth is a call; emit asks per event).
        self.masking = bool(self.masker)
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
            self.stages[spec.name] = _Stage(spec=spec, name=spec.name, index=index, deps=deps, cwd=cwd)
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
        #: ``for_each`` stages expanded so far -> their instances (_foreach.py).
        self.expanded: dict[str, list[str]] = {}

    # -- events and persistence -------------------------------------------------------
    def emit(self, type_: str, stage: str | None = None, attempt: int | None = None, **data: Any) -> None:
        event = Event(
            type=type_,
            run_id=self.run_id,
            time=time.time(),
            stage=stage,
            attempt=attempt,
            data=self.masker.data(data) if data and self.masking else data,
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
            finished = already_succeeded(self, resume)
            if finished is not None:
                return finished
            reused = load_resume(self, resume)
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
                    nursery.start_soon(workflow_deadline, self, self.plan.timeout_s)
                if self.control is not None:
                    nursery.start_soon(watch_control, self)
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
        """SIGINT or SIGTERM (see :class:`~._control.SignalRelay`): stop the run; a second one skips
        the grace periods."""
        if self.ended:
            return
        if self.interrupted is None:
            self.interrupted = signal_name(signum)
            if self.nursery is not None:  # else main() stops the run as soon as it starts
                self.stop("interrupted")
        else:
            self.kill_now.set()
            close_cleanup(self, "a second signal")

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
            self.publish(st)
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

    def publish(self, st: _Stage) -> None:
        """A succeeded stage's outputs, for the templates of the stages after it; a fan-out
        member's also go in its group's map (``stages.GROUP.outputs``)."""
        stages_scope = self.scope_base["stages"]
        stages_scope[st.name] = {"outputs": st.outputs}
        if st.spec.fan_out:
            key = st.spec.name[len(st.spec.fan_out) + 1 : -1]
            from ..compiler._fanout import group_outputs  # only plans with fan-outs load it

            group_outputs(stages_scope, st.spec.fan_out, key, st.outputs)

    @staticmethod
    def _duration(st: _Stage) -> float | None:
        return None if st.started is None or st.finished is None else round(st.finished - st.started, 6)

    def _breaks(self, st: _Stage, dependency: str) -> bool:
        """Whether ``dependency``'s state stops ``st`` (a rejected approval it reads does not)."""
        upstream = self.stages[dependency]
        if upstream.state not in _BROKEN:
            return False
        from ._approval import tolerates  # only when a dependency broke

        return not tolerates(st.spec, upstream)

    def process_settle(self) -> None:
        """Decide what becomes of each stage whose dependencies are all final (no recursion)."""
        while self.settle:
            st = self.stages[self.settle.popleft()]
            if st.state != PENDING:
                continue
            if gates.decide_unselected(self, st):
                continue
            if st.spec.for_each and _foreach.settle_expanded(self, st):
                continue  # a for_each stage whose instances have all finished
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
            if st.spec.for_each:  # dynamic fan-out: each instance has its own `when`
                _foreach.expand(self, st)
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
            if self.bus.wants(ev.STAGE_READY):  # not stored: one row per stage that no reader needs
                self.bus.emit(Event(type=ev.STAGE_READY, run_id=self.run_id, time=time.time(), stage=st.name))
            if st.spec.approve is not None:  # alfred itself waits for the decision (_approval.py)
                if not _budget.refuse(self, st.spec):
                    from ._approval import start  # only plans with approvals load it

                    start(self, st)
                continue
            key = st.spec.agents
            entry = ready_key(st.spec, st.index)
            heapq.heappush(self.ready.setdefault(key, []), entry)

    def stop(self, reason: str) -> None:
        """Start no new stage and cancel the running ones."""
        if self.stopping:
            return
        self.stopping = True
        # Ready cleanup stages stay ready (dropping them left the run waiting forever); the
        # others end cancelled below.
        for key, heap in list(self.ready.items()):
            kept = [entry for entry in heap if self.stages[entry[-1]].cleanup]
            if kept:
                heapq.heapify(kept)
                self.ready[key] = kept
            else:
                del self.ready[key]
        if reason != "stage failed" and self.nursery is not None:
            # A cancel, a signal, the workflow timeout: cleanup stages get a limited time.
            self.nursery.start_soon(cleanup_deadline, self)
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
            free = (a for a in best_key if self._agent_free(a))
            agent = pick_agent(free, self._busy, self.agent_order.__getitem__)
            st = self.stages[name]
            st.state = RUNNING
            st.agent = agent
            self.running += 1
            self._take(agent)
            assert self.nursery is not None
            self.nursery.start_soon(stage_task, self, st, name=f"alfred stage {name}")
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
        spend = self.spend.final_data()  # the run's total spend, for the event stream (_budget.py)
        if self.interrupted is not None:
            state = "interrupted"
            self.emit(
                ev.RUN_INTERRUPTED, state=state, counts=counts, signal=self.interrupted, duration_s=duration,
                **spend,
            )
        elif self.cancelled:
            state = "cancelled"
            self.emit(ev.RUN_CANCELLED, state=state, counts=counts, duration_s=duration, **spend)
        elif self.spend.reason is not None or any(st.state in _BROKEN for st in self.stages.values()):
            state = FAILED
            failed = [st.name for st in self.stages.values() if st.state == FAILED]
            why: dict[str, Any] = {}
            if self.spend.reason is not None:
                why["reason"] = self.spend.reason
            elif self.timed_out:
                why["reason"] = f"the workflow timed out after {_seconds(self.plan.timeout_s or 0)}"
            self.emit(
                ev.RUN_FAILED, state=state, counts=counts, failed=failed, duration_s=duration, **why, **spend
            )
        else:
            state = SUCCEEDED
            self.emit(ev.RUN_COMPLETED, state=state, counts=counts, duration_s=duration, **spend)
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


def _seconds(value: float) -> str:
    return f"{value:g}s"
