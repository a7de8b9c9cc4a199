"""The run queue, control flags, worker leases and schedule ticks, in the state database.

These tables live in the same SQLite file as the runtime's ``runs``/``stages`` tables
(``.alfred/state.db``); :mod:`alfred_dsl._statedb` defines and creates them all::

    queue           one row per submitted run: queued -> claimed -> done | cancelled
    control         the latest command for a run (pause | resume | cancel) that its
                    scheduler polls
    schedule_ticks  one row per (workflow, cron tick) enqueued: the primary key makes
                    several workers enqueue a tick exactly once
    workers         one row per worker process (heartbeat), for `alfredc status`

Claiming is one ``BEGIN IMMEDIATE`` transaction (select the best row, mark it claimed
with a lease), so two workers never take the same run. A worker renews the lease of its
runs while it holds them; a run whose lease expired (its worker died) can be claimed
again, and is then *resumed* (stages that succeeded are not run again).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .._diagnostics import AlfredError
from .._statedb import open_service_tables, open_service_tables_read_only, resolve_run_ref
from .._values import PRIORITIES, parse_priority

__all__ = [
    "PRIORITIES",
    "QueueEntry",
    "QueueError",
    "RunQueue",
    "Schedule",
    "WorkerRecord",
    "parse_priority",
]

PRIORITY_NAMES: Final[Mapping[int, str]] = {value: name for name, value in PRIORITIES.items()}

QUEUED: Final = "queued"
CLAIMED: Final = "claimed"
DONE: Final = "done"
CANCELLED: Final = "cancelled"

#: Commands a run's scheduler polls (the `control` table).
CONTROL_COMMANDS: Final = frozenset({"pause", "resume", "cancel"})



class QueueError(AlfredError):
    """The queue cannot do what was asked (unknown run, finished run, unusable database)."""


def priority_name(value: int) -> str:
    return PRIORITY_NAMES.get(value, str(value))


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEntry:
    """One submitted run."""

    id: str
    workflow: str
    entry: str
    params: Mapping[str, str] = field(default_factory=dict)
    priority: int = 1
    submitted: float
    not_before: float
    state: str
    worker: str | None = None
    lease_until: float | None = None
    claimed: float | None = None
    finished: float | None = None
    result: str | None = None
    claims: int = 0
    tick: float | None = None
    error: str | None = None

    @property
    def wait_s(self) -> float | None:
        """Seconds between the time it could start and its first claim."""
        if self.claimed is None:
            return None
        return max(self.claimed - self.not_before, 0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRecord:
    id: str
    pid: int
    host: str
    started: float
    heartbeat: float
    stopped: float | None
    max_runs: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """A workflow with a ``schedule``: enqueue it on each tick of ``cron``."""

    entry: str
    workflow: str
    cron: str
    priority: int = 1


_ENTRY_COLUMNS = (
    "id, workflow, entry, params, priority, submitted, not_before, state, worker, lease_until, claimed,"
    " finished, result, claims, tick, error"
)


def _entry(row: Sequence[Any]) -> QueueEntry:
    return QueueEntry(
        id=row[0], workflow=row[1], entry=row[2], params=json.loads(row[3] or "{}"), priority=row[4],
        submitted=row[5], not_before=row[6], state=row[7], worker=row[8], lease_until=row[9],
        claimed=row[10], finished=row[11], result=row[12], claims=row[13], tick=row[14],
        error=row[15],
    )


def new_run_id(now: float | None = None) -> str:
    """The runtime's id format: ``YYYYMMDD-HHMMSS-xxxxxx`` (sortable, unique)."""
    stamp = time.localtime(time.time() if now is None else now)
    return time.strftime("%Y%m%d-%H%M%S", stamp) + "-" + secrets.token_hex(3)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


def latest_tick(cron: str, now: float) -> float:
    """The latest tick of ``cron`` at or before ``now``, in local time (see ``_cron``)."""
    from .._cron import latest_tick as tick_of

    try:
        return tick_of(cron, now)
    except ValueError as exc:  # refused by `alfredc check` (A310) and by the worker already
        raise QueueError(f"invalid schedule `{cron}`: {exc}") from exc


class RunQueue:
    """The queue of one state directory. One connection; use it from one thread."""

    def __init__(self, state_dir: str | os.PathLike[str] | None = None, *, read_only: bool = False) -> None:
        """Open (and create, unless ``read_only``) the queue of ``state_dir``.

        ``read_only``: for commands that only look (``alfredc status``): nothing is created
        or written, not even the directory; a missing database reads as an empty queue.
        """
        self.state_dir = Path(state_dir) if state_dir is not None else Path.cwd() / ".alfred"
        self.db_path = self.state_dir / "state.db"
        self.read_only = read_only
        if read_only:
            try:
                self._db = open_service_tables_read_only(self.state_dir)
            except sqlite3.Error as exc:
                raise QueueError(f"cannot read state directory {self.state_dir}: {exc}") from exc
            return
        try:
            self._db = open_service_tables(self.state_dir)
        except (OSError, sqlite3.Error) as exc:
            raise QueueError(f"cannot use state directory {self.state_dir}: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: the select-then-update of a claim is atomic.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The raw connection (read-only use: metrics)."""
        return self._db

    # -- submitting ---------------------------------------------------------------------
    def submit(
        self,
        *,
        entry: str | os.PathLike[str],
        workflow: str,
        params: Mapping[str, str] | None = None,
        priority: int = PRIORITIES["medium"],
        at: float | None = None,
        now: float | None = None,
    ) -> QueueEntry:
        """Put a run in the queue; it may start at ``at`` (epoch seconds) or now."""
        submitted = time.time() if now is None else now
        run_id = new_run_id(submitted)
        not_before = max(at, submitted) if at is not None else submitted
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO queue (id, workflow, entry, params, priority, submitted, not_before, state)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'queued')",
                    (run_id, workflow, os.fspath(Path(entry).resolve()), json.dumps(dict(params or {})),
                     priority, submitted, not_before),
                )
        except sqlite3.Error as exc:
            raise QueueError(f"cannot write to {self.db_path}: {exc}") from exc
        found = self.entry(run_id)
        assert found is not None
        return found

    def enqueue_due(self, schedules: Iterable[Schedule], *, since: float, now: float) -> list[QueueEntry]:
        """Enqueue every schedule whose latest cron tick is in ``(since, now]``, once per tick.

        Several workers may call this at once: the (entry, workflow, tick) primary key of
        ``schedule_ticks`` lets exactly one of them enqueue a given tick. Only the latest
        tick is enqueued (a worker that was down does not replay every missed tick).
        """
        added: list[QueueEntry] = []
        for schedule in schedules:
            tick = latest_tick(schedule.cron, now)
            if not since < tick <= now:
                continue
            run_id = new_run_id(now)
            entry = os.fspath(Path(schedule.entry).resolve())
            try:
                with self._transaction() as db:
                    inserted = db.execute(
                        "INSERT OR IGNORE INTO schedule_ticks (entry, workflow, tick, run)"
                        " VALUES (?, ?, ?, ?)",
                        (entry, schedule.workflow, tick, run_id),
                    ).rowcount
                    if inserted:
                        db.execute(
                            "INSERT INTO queue (id, workflow, entry, params, priority, submitted, not_before,"
                            " state, tick) VALUES (?, ?, ?, '{}', ?, ?, ?, 'queued', ?)",
                            (run_id, schedule.workflow, entry, schedule.priority, now, tick, tick),
                        )
            except sqlite3.Error as exc:
                raise QueueError(f"cannot write to {self.db_path}: {exc}") from exc
            if inserted:
                found = self.entry(run_id)
                assert found is not None
                added.append(found)
        return added

    # -- claiming -----------------------------------------------------------------------
    def claim(self, worker: str, *, lease_s: float, now: float | None = None) -> QueueEntry | None:
        """Take the best runnable run, or None: highest priority, then oldest.

        Runnable: queued and due (not before its ``--at``) and not paused, or claimed by
        a worker whose lease expired (that run is resumed).
        """
        moment = time.time() if now is None else now
        try:
            with self._transaction() as db:
                # A run cancelled while its worker died is not resumed: it ends here.
                db.execute(
                    "UPDATE queue SET state = 'cancelled', result = 'cancelled', finished = ?,"
                    " lease_until = NULL WHERE state = 'claimed' AND lease_until < ?"
                    " AND id IN (SELECT run FROM control WHERE command = 'cancel')",
                    (moment, moment),
                )
                row = db.execute(
                    "SELECT id FROM queue WHERE"
                    " ((state = 'queued' AND not_before <= ?) OR (state = 'claimed' AND lease_until < ?))"
                    " AND id NOT IN (SELECT run FROM control WHERE command IN ('pause', 'cancel'))"
                    " ORDER BY priority DESC, submitted, id LIMIT 1",
                    (moment, moment),
                ).fetchone()
                if row is None:
                    return None
                db.execute(
                    "UPDATE queue SET state = 'claimed', worker = ?, lease_until = ?,"
                    " claimed = COALESCE(claimed, ?), claims = claims + 1 WHERE id = ?",
                    (worker, moment + lease_s, moment, row[0]),
                )
        except sqlite3.Error as exc:
            raise QueueError(f"cannot use {self.db_path}: {exc}") from exc
        return self.entry(str(row[0]))

    def renew(self, worker: str, run_ids: Iterable[str], *, lease_s: float) -> set[str]:
        """Extend the lease of the runs ``worker`` holds, and its heartbeat.

        Returns the ids it no longer holds (its lease expired and another worker took them).
        """
        now = time.time()
        lost: set[str] = set()
        with self._transaction() as db:
            for run_id in run_ids:
                updated = db.execute(
                    "UPDATE queue SET lease_until = ? WHERE id = ? AND worker = ? AND state = 'claimed'",
                    (now + lease_s, run_id, worker),
                ).rowcount
                if not updated:
                    lost.add(run_id)
            db.execute("UPDATE workers SET heartbeat = ? WHERE id = ?", (now, worker))
        return lost

    def pending(self) -> int:
        """Runs queued or being executed (paused queued runs excluded): work not yet done."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM queue WHERE state IN ('queued', 'claimed')"
            " AND NOT (state = 'queued' AND id IN (SELECT run FROM control WHERE command = 'pause'))"
        ).fetchone()
        return int(row[0])

    def finish(self, run_id: str, worker: str, result: str, *, error: str | None = None) -> None:
        """The run ended (succeeded, failed, cancelled, or could not start): it leaves the queue."""
        state = CANCELLED if result == "cancelled" else DONE
        with self._transaction() as db:
            db.execute(
                "UPDATE queue SET state = ?, result = ?, finished = ?, lease_until = NULL, error = ?"
                " WHERE id = ? AND worker = ?",
                (state, result, time.time(), error, run_id, worker),
            )
            db.execute("DELETE FROM control WHERE run = ? AND command != 'cancel'", (run_id,))

    def release(self, run_id: str, worker: str) -> None:
        """Give a claimed run back (its worker stops): the next worker resumes it."""
        with self._transaction() as db:
            db.execute(
                "UPDATE queue SET state = 'queued', worker = NULL, lease_until = NULL"
                " WHERE id = ? AND worker = ? AND state = 'claimed'",
                (run_id, worker),
            )

    # -- control ------------------------------------------------------------------------
    def send(self, run_id: str, command: str) -> QueueEntry:
        """Record ``pause``, ``resume`` or ``cancel`` for a queued or running run.

        A queued run that is cancelled leaves the queue at once; a paused queued run is
        not claimed until it is resumed. A running run's scheduler polls the command.
        """
        if command not in CONTROL_COMMANDS:
            raise QueueError(f"unknown command `{command}`")
        with self._transaction() as db:
            row = db.execute(f"SELECT {_ENTRY_COLUMNS} FROM queue WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise QueueError(f"no queued run `{run_id}` in {self.state_dir}")
            current = _entry(row)
            if current.state in (DONE, CANCELLED):
                raise QueueError(f"run `{run_id}` has already finished ({current.result or current.state})")
            previous = db.execute("SELECT command FROM control WHERE run = ?", (run_id,)).fetchone()
            if previous is not None and previous[0] == "cancel":
                raise QueueError(f"run `{run_id}` is being cancelled")
            db.execute(
                "INSERT INTO control (run, command, time) VALUES (?, ?, ?)"
                " ON CONFLICT (run) DO UPDATE SET command = excluded.command, time = excluded.time",
                (run_id, command, time.time()),
            )
            if command == "cancel" and current.state == QUEUED:
                db.execute(
                    "UPDATE queue SET state = 'cancelled', result = 'cancelled', finished = ? WHERE id = ?",
                    (time.time(), run_id),
                )
        found = self.entry(run_id)
        assert found is not None
        return found

    def command(self, run_id: str) -> str | None:
        """The latest control command of a run (None: none, or resumed)."""
        row = self._db.execute("SELECT command FROM control WHERE run = ?", (run_id,)).fetchone()
        if row is None or row[0] == "resume":
            return None
        return str(row[0])

    # -- reading ------------------------------------------------------------------------
    def entry(self, run_id: str) -> QueueEntry | None:
        row = self._db.execute(f"SELECT {_ENTRY_COLUMNS} FROM queue WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else _entry(row)

    def resolve(self, ref: str) -> str | None:
        """``last`` (the latest run, submitted or started by `alfredc run`), a full id, or a
        unique prefix of one."""
        return resolve_run_ref(self._db, ref, with_queue=True)

    def entries(self, *, states: Sequence[str] | None = None, limit: int = 100) -> list[QueueEntry]:
        """Queue rows, best first among the waiting ones, then the most recent."""
        sql = f"SELECT {_ENTRY_COLUMNS} FROM queue"
        args: list[Any] = []
        if states:
            sql += f" WHERE state IN ({', '.join('?' for _ in states)})"
            args.extend(states)
        sql += " ORDER BY state = 'claimed' DESC, state = 'queued' DESC, priority DESC, submitted LIMIT ?"
        args.append(limit)
        return [_entry(row) for row in self._db.execute(sql, args).fetchall()]

    def all_ids(self) -> list[str]:
        return [str(r[0]) for r in self._db.execute("SELECT id FROM queue UNION SELECT id FROM runs")]

    # -- workers ------------------------------------------------------------------------
    def register_worker(self, worker: str, *, max_runs: int) -> None:
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO workers (id, pid, host, started, heartbeat, stopped, max_runs)"
                " VALUES (?, ?, ?, ?, ?, NULL, ?)",
                (worker, os.getpid(), socket.gethostname(), now, now, max_runs),
            )

    def stop_worker(self, worker: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE workers SET stopped = ? WHERE id = ?", (time.time(), worker))

    def workers(self, *, alive_within_s: float = 60.0) -> list[WorkerRecord]:
        """Workers that are not stopped and sent a heartbeat recently."""
        rows = self._db.execute(
            "SELECT id, pid, host, started, heartbeat, stopped, max_runs FROM workers"
            " WHERE stopped IS NULL AND heartbeat >= ? ORDER BY started",
            (time.time() - alive_within_s,),
        ).fetchall()
        return [
            WorkerRecord(
                id=r[0], pid=r[1], host=r[2], started=r[3], heartbeat=r[4], stopped=r[5], max_runs=r[6]
            )
            for r in rows
        ]

