"""Approval stages at run time: the ``approvals`` table, the wait, and the decisions.

A run that reaches an approval stage records a request (its deadline included) in the
``approvals`` table of the state database and polls it. ``alfredc approve``/``reject`` (or
:func:`decide`) fill in the decision from any process; the run picks it up within
:data:`POLL_S`. The request stays open until the stage's final state is committed (the
closing is written in the same transaction), so a run killed while waiting resumes the
same request: its deadline, and any decision taken while no process ran.
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from .._diagnostics import AlfredError
from .._statedb import DB_NAME, connect_read_only, open_approval_tables
from . import _events as ev
from ._attempts import cancelled
from ._results import FAILED, FINAL_STAGE_STATES, RUNNING, SUCCEEDED

if TYPE_CHECKING:
    from ..compiler._plan import PlanStage
    from ._scheduler import _Run, _Stage

__all__ = ["POLL_S", "ApprovalError", "Decision", "decide", "pending_approvals"]

#: How often a waiting run looks for a decision, in seconds.
POLL_S = 0.2
APPROVED, REJECTED = "approved", "rejected"

_CLOSE = "UPDATE approvals SET closed = 1 WHERE run = ? AND stage = ?"


class ApprovalError(AlfredError):
    """A decision that cannot be recorded: unknown run or stage, a stage that is not waiting,
    a user who may not decide. ``alfredc approve``/``reject`` exit with status 2."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A recorded decision on an approval stage."""

    run_id: str
    stage: str
    decision: str            # "approved" | "rejected"
    by: str                  # the user, or "timeout"
    comment: str
    decided_at: float

    def outputs(self) -> dict[str, Any]:
        return {
            "decision": self.decision, "by": self.by, "comment": self.comment, "decided_at": self.decided_at,
        }


@dataclass(frozen=True, slots=True)
class _Request:
    requested: float
    deadline: float | None
    by: list[str]
    users: list[str]
    on_timeout: str
    decision: Decision | None
    closed: bool


def _open(state_dir: Path) -> sqlite3.Connection:
    return open_approval_tables(state_dir)


def _request(db: sqlite3.Connection, run_id: str, stage: str) -> _Request | None:
    row = db.execute(
        "SELECT requested, deadline, by_spec, users, on_timeout, decision, decided_by, comment, decided_at,"
        " closed FROM approvals WHERE run = ? AND stage = ?",
        (run_id, stage),
    ).fetchone()
    if row is None:
        return None
    decision = None
    if row[5] is not None:
        decision = Decision(run_id, stage, str(row[5]), str(row[6]), str(row[7] or ""), float(row[8]))
    return _Request(
        requested=float(row[0]), deadline=None if row[1] is None else float(row[1]),
        by=list(json.loads(row[2])), users=list(json.loads(row[3])), on_timeout=str(row[4]),
        decision=decision, closed=bool(row[9]),
    )


def _record(
    db: sqlite3.Connection, run_id: str, stage: str, decision: str, by: str, comment: str
) -> Decision | None:
    """Record a decision if the request is open and undecided; None when it is not."""
    now = time.time()
    cursor = db.execute(
        "UPDATE approvals SET decision = ?, decided_by = ?, comment = ?, decided_at = ?"
        " WHERE run = ? AND stage = ? AND decision IS NULL AND closed = 0",
        (decision, by, comment, now, run_id, stage),
    )
    return Decision(run_id, stage, decision, by, comment, now) if cursor.rowcount == 1 else None


# -- the waiting side (the scheduler) ------------------------------------------------------

def start(run: _Run, st: _Stage) -> None:
    """Start waiting on approval stage ``st``: it runs (no agent, no concurrency slot taken)."""
    st.state = RUNNING
    st.agent = None
    run.running += 1
    run.max_concurrency += 1  # a person's decision does not hold a slot of the run's concurrency
    assert run.nursery is not None
    run.nursery.start_soon(_task, run, st, name=f"alfred approval {st.name}")


def tolerates(spec: PlanStage, dep: _Stage) -> bool:
    """Whether stage ``spec`` still runs although ``dep`` failed: ``dep`` is a rejected approval
    and ``spec``'s ``when`` reads its outputs (it handles the rejection)."""
    from ..compiler._approvals import handles_rejection

    return (
        dep.spec.approve is not None and dep.state == FAILED and dep.outputs.get("decision") == REJECTED
        and handles_rejection(spec, dep.name)
    )


async def _task(run: _Run, st: _Stage) -> None:
    try:
        if run.stopping:
            cancelled(run, st)
            return
        with trio.CancelScope() as scope:
            st.scope = scope
            await _wait(run, st)
    except trio.Cancelled:
        cancelled(run, st)
        raise
    except (OSError, sqlite3.Error) as exc:  # the state database failed under us
        st.error = f"cannot record the approval: {exc}"
        run.finalize(st, FAILED)
    finally:
        run.max_concurrency -= 1
    st.scope = None
    if st.state not in FINAL_STAGE_STATES:
        cancelled(run, st)
    run.process_settle()
    run.fill()
    run.check_done()


async def _wait(run: _Run, st: _Stage) -> None:
    spec = st.spec.approve
    assert spec is not None
    attempt = st.attempt_base + 1
    st.attempts = attempt
    st.started = st.attempt_started = time.time()
    st.finished = None
    run.save(st)
    run.store.queue_attempt(run.run_id, st.name, attempt, started=st.attempt_started)
    db = _open(run.store.state_dir)
    try:
        request = _request(db, run.run_id, st.name)
        if request is None or request.closed:  # a new request (or a new one after a decided one)
            timeout = spec.get("timeout_s")
            deadline = st.started + float(timeout) if isinstance(timeout, int | float) else None
            db.execute(
                "INSERT OR REPLACE INTO approvals"
                " (run, stage, requested, deadline, by_spec, users, on_timeout) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run.run_id, st.name, st.started, deadline, json.dumps(list(spec["by"])),
                 json.dumps(list(spec["users"])), str(spec["on_timeout"])),
            )
            request = _request(db, run.run_id, st.name)
            assert request is not None
        by = ", ".join(request.by)
        run.emit(
            ev.APPROVAL_REQUESTED, st.name, attempt, by=request.by, users=request.users,
            deadline=request.deadline, command=f"alfredc approve {run.run_id} {st.name}",
            waiting=f"waiting for approval by {by} (alfredc approve {run.run_id} {st.name})",
        )
        decision = request.decision
        timed_out = False
        while decision is None:
            now = time.time()
            if request.deadline is not None and now >= request.deadline:
                verdict = APPROVED if request.on_timeout == "approve" else REJECTED
                decision = _record(
                    db, run.run_id, st.name, verdict, "timeout", "no decision before the timeout"
                )
                timed_out = decision is not None
                if decision is None:  # decided meanwhile
                    decision = _polled(db, run.run_id, st.name)
                break
            wait = POLL_S if request.deadline is None else min(POLL_S, max(request.deadline - now, 0.0))
            await trio.sleep(wait)
            decision = _polled(db, run.run_id, st.name)
    finally:
        db.close()
    assert decision is not None
    st.outputs = decision.outputs()
    run.store.queue_statement(_CLOSE, (run.run_id, st.name))
    ok = decision.decision == APPROVED
    st.error = None if ok else (
        f"rejected by {decision.by}" + (f": {decision.comment}" if decision.comment else "")
    )
    run.store.queue_attempt(
        run.run_id, st.name, attempt, started=st.attempt_started, finished=time.time(),
        exit_code=0 if ok else 1, error=st.error,
    )
    st.attempt_started = None
    run.emit(
        ev.APPROVAL_DECIDED, st.name, attempt, **decision.outputs(), timed_out=timed_out,
        waited_s=round(max(decision.decided_at - request.requested, 0.0), 3),
    )
    if not ok:  # handlers of the rejection read the decision (see `tolerates`)
        run.scope_base["stages"][st.name] = {"outputs": st.outputs}
    run.finalize(st, SUCCEEDED if ok else FAILED)


def _polled(db: sqlite3.Connection, run_id: str, stage: str) -> Decision | None:
    request = _request(db, run_id, stage)
    return None if request is None else request.decision


# -- the deciding side (alfredc approve/reject, the Python API) -----------------------------

def _suggest(word: str, choices: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def decide(
    run: str,
    stage: str,
    decision: str,
    *,
    user: str | None = None,
    comment: str = "",
    state_dir: str | os.PathLike[str] | None = None,
) -> Decision:
    """Record ``decision`` ("approved" or "rejected") on approval stage ``stage`` of ``run``
    (an id, a unique prefix of one, or ``last``) as ``user`` (default: the OS user).

    Raises :class:`ApprovalError` when the run or stage is unknown, the stage is not waiting
    for a decision, or ``user`` is not one of its approvers.
    """
    from ._store import StateStore, StoreError, default_state_dir

    if decision not in (APPROVED, REJECTED):
        raise ApprovalError(f"a decision is `{APPROVED}` or `{REJECTED}`, not `{decision}`")
    directory = Path(state_dir) if state_dir is not None else default_state_dir()
    who = user if user is not None else getpass.getuser()
    try:
        store = StateStore.open_readonly(directory)
    except StoreError as exc:
        raise ApprovalError(str(exc)) from exc
    if store is None:
        raise ApprovalError(f"no runs in {directory}")
    try:
        run_id = store.resolve_run_id(run)
        if run_id is None:
            raise ApprovalError(
                f"no run `{run}` in {directory} (give an id, a unique prefix of one, or `last`)"
            )
        stages = {s.name: s.state for s in store.stages(run_id)}
    finally:
        store.close()
    if stage not in stages:
        raise ApprovalError(f"run {run_id} has no stage `{stage}`{_suggest(stage, stages)}")
    try:
        db = _open(directory)
    except (OSError, sqlite3.Error) as exc:
        raise ApprovalError(f"cannot use state directory {directory}: {exc}") from exc
    try:
        request = _request(db, run_id, stage)
        if request is None or request.closed:
            waiting = sorted(name for name, in db.execute(
                "SELECT stage FROM approvals WHERE run = ? AND closed = 0 AND decision IS NULL", (run_id,)
            ))
            also = f"; waiting: {', '.join(f'`{w}`' for w in waiting)}" if waiting else ""
            raise ApprovalError(
                f"stage `{stage}` of run {run_id} is not waiting for an approval "
                f"(it is {stages[stage]}){also}"
            )
        if request.decision is not None:
            raise ApprovalError(
                f"stage `{stage}` of run {run_id} is already {request.decision.decision} "
                f"by {request.decision.by}"
            )
        if who not in request.users:
            allowed = ", ".join(request.users) or "nobody"
            raise ApprovalError(
                f"`{who}` may not decide stage `{stage}`: it needs {' or '.join(request.by)} ({allowed})"
                + ("" if user is not None else "; use --as NAME to decide as another approver")
            )
        recorded = _record(db, run_id, stage, decision, who, comment)
        if recorded is None:
            raise ApprovalError(f"stage `{stage}` of run {run_id} was decided or ended meanwhile")
        return recorded
    except sqlite3.Error as exc:
        raise ApprovalError(f"cannot record the decision in {directory}: {exc}") from exc
    finally:
        db.close()


def pending_approvals(state_dir: Path, run_id: str) -> dict[str, dict[str, Any]]:
    """The approval requests of ``run_id`` by stage, oldest first (for ``show`` and the report),
    read-only: by, users, requested, deadline, on_timeout, and decision/decided_by/comment/
    decided_at once decided (decided_by ``timeout`` when the deadline decided)."""
    if not (state_dir / DB_NAME).is_file():
        return {}
    try:
        db = connect_read_only(state_dir)
        try:
            rows = db.execute(
                "SELECT stage, by_spec, users, deadline, decision, decided_by, comment, decided_at,"
                " requested, on_timeout FROM approvals WHERE run = ? ORDER BY requested, stage",
                (run_id,),
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error:  # no approvals table: no approval stage ever ran here
        return {}
    return {
        str(r[0]): {
            "by": json.loads(r[1]), "users": json.loads(r[2]), "deadline": r[3], "decision": r[4],
            "decided_by": r[5], "comment": r[6], "decided_at": r[7], "requested": r[8], "on_timeout": r[9],
        }
        for r in rows
    }
