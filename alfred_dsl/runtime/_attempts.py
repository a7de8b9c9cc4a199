"""One stage's life on the runtime: its attempts, their retries and their records.

:func:`stage_task` is the Trio task of a stage the scheduler (:mod:`._scheduler`) started;
it runs the attempts (resolving each one's values, executing it with a timeout, recording
it in the store and the attempts journal), retries with backoff, possibly on another agent,
and hands the stage's final state back to the run (``finalize``). With ``--cluster`` the
attempts of command and python stages run on a Dask worker (:mod:`._cluster`); an
incremental stage's fingerprint is recorded with its success, once its ``produces`` exist.
"""

from __future__ import annotations

import math
import os
import random
import time
from typing import TYPE_CHECKING, Any

import trio

from ..compiler._dispatch import retry_agent, retry_delay
from ..compiler._plan import PlanAgent, PlanStage
from . import _events as ev
from ._executors import EXECUTORS, AttemptContext, AttemptOutcome
from ._resolve import ExprError, resolve_attempt
from ._results import CANCELLED, FAILED, FINAL_STAGE_STATES, SUCCEEDED

if TYPE_CHECKING:
    from ._incremental import Fingerprint
    from ._scheduler import _Run, _Stage

__all__ = ["cancelled", "stage_task"]


async def stage_task(run: _Run, st: _Stage) -> None:
    if run.stopping and not (st.cleanup and run.cleanup_open):
        # Stopped between fill() and this task's first step: stop() saw no scope to cancel.
        cancelled(run, st)
        run.check_done()
        return
    try:
        with trio.CancelScope() as scope:
            st.scope = scope
            await run_attempts(run, st)
    except trio.Cancelled:
        cancelled(run, st)
        raise
    except Exception as exc:  # a bug in an executor must not end the run with a traceback
        st.error = f"internal error: {type(exc).__name__}: {exc}"
        run.finalize(st, FAILED)
    st.scope = None
    if st.state not in FINAL_STAGE_STATES:
        cancelled(run, st)
    run.process_settle()
    run.fill()
    run.check_done()


def cancelled(run: _Run, st: _Stage) -> None:
    if st.attempt_started is not None:
        run.store.queue_attempt(
            run.run_id, st.name, st.attempts, started=st.attempt_started, finished=time.time(),
            error="cancelled", agent=st.agent, cgroup=st.attempt_cgroup,
        )
        st.attempt_started = None
    st.error = st.error or "cancelled"
    reason = f"interrupted by {run.interrupted}" if run.interrupted else "the run was stopped"
    if run.timed_out:
        reason = f"the workflow timed out after {_seconds(run.plan.timeout_s or 0)}"
    run.finalize(st, CANCELLED, reason=reason)


def _context(
    run: _Run, st: _Stage, agent: PlanAgent, attempt: int, log: str, docs_path: str | None = None
) -> AttemptContext:
    spec = st.spec
    values = resolve_attempt(spec, agent, run.scope_base, run.base_env, static_argv=st.static_argv)
    raw = spec.run if spec.run is not None else agent.run
    if isinstance(values.run, tuple) and values.run is raw:  # an argv without ${...}: kept as is
        st.static_argv = values.run
    return AttemptContext(
        run_id=run.run_id,
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
        # The same path as `log` (the run folder is never `/`); a join parses less than Path(log).
        log_path=run.work_dir / f"{st.name}.{attempt}.log",
        work_dir=run.work_dir,
        fresh_work_dir=run.fresh_work_dir,
        timeout_s=spec.timeout_s,
        kill_grace_s=run.options.kill_grace_s,
        kill_now=run.kill_now,
        on_spawn=lambda pid: _spawned(run, st, pid, log),
        masker=run.masker,
        private_dir=run.private_dir,
        on_log_truncated=st.log_truncated,
        cgroup=st.attempt_cgroup,
        mcp=values.mcp,
        docs_path=docs_path,
    )


def _spawned(run: _Run, st: _Stage, pid: int, log: str) -> None:
    assert st.attempt_started is not None
    run.store.queue_attempt(
        run.run_id, st.name, st.attempts, started=st.attempt_started, log_path=log, pid=pid,
        agent=st.agent, cgroup=st.attempt_cgroup,
    )
    run.dirty.set()


def _move_for_retry(run: _Run, st: _Stage) -> None:
    """Before a retry: the least busy of the stage's agents with a free slot, preferring
    another agent than the one that just failed when they are equally busy."""
    candidates = [a for a in st.spec.agents if a in run.agents]
    if len(candidates) < 2 or st.agent is None:
        return
    failed = st.agent
    run.agent_running[run.agent_slot[failed][0]] -= 1  # its own slot counts as free
    # The failed agent is free again, unless another run's file gave it a lower limit.
    free = [a for a in candidates if run._agent_free(a)] or [failed]
    chosen = retry_agent(free, failed, run._busy, run.agent_order.__getitem__)
    run._take(chosen)
    st.agent = chosen
    if chosen != failed:
        run.slots.released(id(run))
        run.fill()  # the slot left on the failed agent may start a waiting stage


async def run_attempts(run: _Run, st: _Stage) -> None:
    spec = st.spec
    total = 1 + max(spec.retries, 0)
    st.started = time.time()
    st.finished = None
    for i in range(total):
        agent = run.agents[st.agent or ""]
        # RunOptions.executor (a virtual run, _virtual.py) takes every attempt; --cluster:
        # command and python stages go to a Dask worker (runtime/_cluster.py).
        remote = run.options.executor or (
            _cluster_executor(run.options.cluster, agent) if run.options.cluster else None
        )
        executor = remote or EXECUTORS.get(agent.kind)
        attempt = st.attempt_base + i + 1
        st.attempts = attempt
        st.attempt_started = time.time()
        st.log_dropped = 0
        log = f"{run.work_dir_str}{os.sep}{st.name}.{attempt}.log"
        run.save(st)
        run.emit(ev.STAGE_STARTED, st.name, attempt, agent=agent.name, log=log, retries=spec.retries)
        st.attempt_cgroup = None
        if agent.kind != "python":
            if agent.kind == "command" and remote is None:
                st.attempt_cgroup = run.contain().attempt_cgroup(run.run_id, st.name, attempt)
            # Durable before anything starts: a runner killed from here on leaves a trace
            # of the attempt (its number, its cgroup, the ALFRED_* variables its processes
            # carry), so --resume kills what it started and counts on from it. (A python
            # stage starts no process and cannot see its attempt number.)
            run.journal.started(st.name, attempt, st.attempt_started, st.attempt_cgroup)
        run.store.queue_attempt(
            run.run_id, st.name, attempt, started=st.attempt_started, agent=agent.name,
            cgroup=st.attempt_cgroup,
        )
        outcome: AttemptOutcome
        docs_path, docs_error = None, None
        if executor is not None and spec.mcp is not None and spec.mcp.get("docs"):
            docs_path, docs_error = await _stage_docs(run, st, log)
        if executor is None:
            outcome = AttemptOutcome(ok=False, error=f"no executor for agents of kind `{agent.kind}`")
        elif docs_error is not None:
            outcome = AttemptOutcome(ok=False, error=docs_error, log_path=log)
        else:
            try:
                context = _context(run, st, agent, attempt, log, docs_path)
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
            from ._incremental import missing_products

            missing = missing_products(st.cwd, spec.produces)
            if missing:
                outcome = AttemptOutcome(
                    ok=False, log_path=outcome.log_path, exit_code=outcome.exit_code,
                    error="it exited successfully but produced no file matching "
                    + ", ".join(f"`{m}`" for m in missing) + f" (its `produces`, in {st.cwd})",
                )
        error = run.masker.text(outcome.error) if outcome.error else None
        run.store.queue_attempt(
            run.run_id, st.name, attempt, started=st.attempt_started, finished=time.time(),
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
                _record_fingerprint(run, st, st.fingerprint)
            run.finalize(st, SUCCEEDED)
            return
        st.error = error
        if outcome.permanent is not None and i + 1 < total:
            st.error = f"{error} (not retried: {outcome.permanent})"
            break
        if i + 1 < total:
            delay = _backoff(run, spec, i + 1)
            run.emit(ev.STAGE_RETRYING, st.name, attempt, error=error, delay_s=round(delay, 3))
            await trio.sleep(delay)
            _move_for_retry(run, st)
    run.finalize(st, FAILED)


async def _stage_docs(run: _Run, st: _Stage, log: str) -> tuple[str | None, str | None]:
    """The docs file of the stage (runtime/_docs.py): its path, or why there is none. The
    attempt's log says where each text came from."""
    from ._docs import DocsError, prepare_stage_docs
    from ._resolve import render_value

    spec = st.spec
    assert spec.mcp is not None
    entries = list(spec.mcp.get("docs") or ())
    target = f"{run.work_dir_str}{os.sep}{st.name}.docs.md"
    # The lock is beside the file `alfredc lock` was given: the one run was given.
    entry = run.options.entry
    source = entry if entry and os.path.isfile(entry) else run.plan.source

    def prepare() -> tuple[str | None, str | None, list[str]]:
        try:
            prepared = prepare_stage_docs(
                source, entries, run.agents, lambda value: render_value(value, run.scope_base),
                run.base_env, str(run.store.state_dir), target, run.work_dir_str,
            )
        except DocsError as exc:
            problem = f"cannot give the stage its docs: {exc}"
            return None, problem, [f"alfred: {problem}"]
        return prepared.path, None, list(prepared.notes)

    path, problem, notes = await trio.to_thread.run_sync(prepare, abandon_on_cancel=True)
    try:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(run.masker.text("".join(f"{note}\n" for note in notes)))
    except OSError:
        pass
    return path, problem


def _record_fingerprint(run: _Run, st: _Stage, fp: Fingerprint) -> None:
    from ._incremental import hash_files

    run.store.queue_fingerprint(
        run.plan.source, run.plan.workflow, st.name, fingerprint=fp.value, config=fp.config,
        sources=fp.sources, products=hash_files(st.cwd, st.spec.produces),
        outputs=run.masker.data(st.outputs), run_id=run.run_id,
    )


def _cluster_executor(address: str, agent: PlanAgent) -> Any:
    from ._cluster import cluster_executor  # Dask only when a cluster is asked for

    return cluster_executor(address, agent)


def _backoff(run: _Run, spec: PlanStage, failed_attempt: int) -> float:
    jitter = run.options.jitter
    return retry_delay(spec.backoff_s, spec.max_backoff_s, failed_attempt, jitter, random.random())


def _seconds(value: float) -> str:
    return f"{value:g}s"
