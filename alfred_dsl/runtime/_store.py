"""Durable run state: one SQLite database per state directory (``.alfred/state.db``).

Layout of a state directory::

    .alfred/state.db                      runs, stages, attempts, events
    .alfred/runs/RUN_ID/STAGE.N.log       stdout+stderr of attempt N of STAGE
    .alfred/runs/RUN_ID/STAGE.N.inputs.json / STAGE.N.outputs   (command stages)

The database is opened in WAL mode with ``synchronous=NORMAL`` and a busy timeout, so
several ``alfredc`` processes can share a state directory without corrupting it (readers
never block the writer; writers queue). The tables are defined in :mod:`alfred_dsl._statedb`,
which also opens the database (it sets up a fresh one under a file lock: SQLite's switch to
WAL does not wait on the busy timeout). Each :class:`StateStore` has one connection.
Writes from the runtime are queued with the ``queue_*``/``add_event`` methods and
committed together by :meth:`StateStore.flush` (the scheduler flushes once per tick), so
thousands of stages do not cost thousands of transactions. Reads flush first.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._diagnostics import AlfredError
from .._statedb import (
    AttemptRecord,
    RunRecord,
    StageRecord,
    connect_read_only,
    open_run_tables,
    resolve_run_ref,
    table_columns,
)
from ._events import Event

__all__ = [
    "AttemptRecord",
    "RunRecord",
    "StageRecord",
    "StateStore",
    "StoreError",
    "default_state_dir",
]



_UPSERT_STAGE = (
    "INSERT INTO stages (run, name, state, agent, outputs, started, finished, attempts, error)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (run, name) DO UPDATE SET state = excluded.state, agent = excluded.agent,"
    " outputs = excluded.outputs, started = excluded.started,"
    " finished = excluded.finished, attempts = excluded.attempts, error = excluded.error"
)
_UPSERT_ATTEMPT = (
    "INSERT OR REPLACE INTO attempts"
    " (run, stage, n, started, finished, exit_code, error, log_path, pid, agent, log_dropped, cgroup, worker)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: Statements that write a whole row -> the length of the row's key (its first parameters).
_UPSERT_KEYS = {_UPSERT_STAGE: 2, _UPSERT_ATTEMPT: 3}

#: Run states in which the recorded process owns the run (it is executing it).
_LIVE_STATES = frozenset({"running", "paused"})


class StoreError(AlfredError):
    """The state directory cannot be used (unwritable, not a database, run busy or unknown)."""


def default_state_dir() -> Path:
    """``.alfred`` in the current working directory."""
    return Path.cwd() / ".alfred"


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


#: One encoder for every row: json.dumps with options builds a new encoder per call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def _c_encoder() -> Any:
    """The C encoder of ``_ENCODE``'s options, made once: ``JSONEncoder.encode`` builds one
    per call (half of its ~5 µs for an event's data). Without the check for circular
    references, which JSON-like rows never have (one would raise RecursionError instead
    of ValueError). None where the C accelerator is missing."""
    from json import encoder

    make = getattr(encoder, "c_make_encoder", None)
    if make is None:
        return None
    return make(None, str, encoder.encode_basestring, None, ":", ",", False, False, True)


_C_ENCODE = _c_encoder()


def _dumps(value: Any) -> str:
    if not value:  # most events and stage rows carry nothing: skip the encoder
        return "{}" if isinstance(value, dict) else json.dumps(value)
    if _C_ENCODE is not None and type(value) is dict:
        return "".join(_C_ENCODE(value, 0))
    return _ENCODE(value)


class StateStore:
    """The run database of one state directory. Not thread-safe: use it from one thread.

    ``StateStore(dir)`` creates the directory and the database when needed (``alfredc run``);
    :meth:`open_readonly` opens an existing one for reading and never creates anything
    (``alfredc runs``, ``show``, ``logs``, ``report``, ``status``).
    """

    def __init__(self, state_dir: str | os.PathLike[str] | None = None, *, readonly: bool = False) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.db_path = self.state_dir / "state.db"
        self.readonly = readonly
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._seq: dict[str, int] = {}
        self._attempt_columns: str | None = None
        try:
            if readonly:
                if not self.db_path.is_file():
                    raise StoreError(f"no state database in {self.state_dir}")
                self._db = connect_read_only(self.state_dir)
                return
            self._db = open_run_tables(self.state_dir)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot use state directory {self.state_dir}: {exc}") from exc

    @classmethod
    def open_readonly(cls, state_dir: str | os.PathLike[str] | None = None) -> StateStore | None:
        """The store of ``state_dir`` opened for reading, or None when it holds no database.

        Never creates the directory or the database. Raises :class:`StoreError` when the
        file is there but cannot be read as a state database.
        """
        directory = Path(state_dir) if state_dir is not None else default_state_dir()
        if not (directory / "state.db").is_file():
            return None
        return cls(directory, readonly=True)

    # -- plumbing -------------------------------------------------------------------
    def _columns(self, table: str) -> set[str]:
        return table_columns(self._db, table)

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> None:
            # IMMEDIATE takes the write lock up front: no deadlock when two writers upgrade.
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            if exc_type is None:
                self.db.execute("COMMIT")
            else:
                self.db.execute("ROLLBACK")

    def _transaction(self) -> StateStore._Tx:
        return StateStore._Tx(self._db)

    def flush(self) -> None:
        """Commit every queued write in one transaction."""
        if not self._pending:
            return
        if self.readonly:
            self._pending.clear()
            raise StoreError(f"{self.db_path} was opened read-only")
        pending, self._pending = self._pending, []
        # Each statement writes its own table and keeps its rows in order, so statements
        # can be batched per kind: a few executemany calls per transaction. A stage or an
        # attempt row is written whole each time: only its last version in the batch counts
        # (a quick stage is queued running, then succeeded, within one flush).
        batches: dict[str, list[tuple[Any, ...]]] = {}
        latest: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
        for sql, params in pending:
            key_length = _UPSERT_KEYS.get(sql)
            if key_length is None:
                batches.setdefault(sql, []).append(params)
            else:
                rows = latest.setdefault(sql, {})
                key = params[:key_length]
                rows.pop(key, None)  # re-inserted last: rows keep the order of their last write
                rows[key] = params
        for sql, by_key in latest.items():
            batches[sql] = list(by_key.values())
        try:
            with self._transaction():
                for sql, rows_of_kind in batches.items():
                    self._db.executemany(sql, rows_of_kind)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to {self.db_path}: {exc}") from exc

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- paths ----------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.state_dir / "runs" / run_id

    def log_path(self, run_id: str, stage: str, attempt: int) -> Path:
        """Where attempt ``attempt`` (1-based) of ``stage`` writes its stdout and stderr."""
        return self.run_dir(run_id) / f"{stage}.{attempt}.log"

    # -- runs -----------------------------------------------------------------------
    @staticmethod
    def new_run_id() -> str:
        """A sortable, unique id: ``YYYYMMDD-HHMMSS-xxxxxx``."""
        return time.strftime("%Y%m%d-%H%M%S", time.localtime()) + "-" + secrets.token_hex(3)

    def create_run(
        self,
        *,
        run_id: str,
        workflow: str,
        source: str,
        entry: str | None,
        params: Mapping[str, Any],
        cli_params: Mapping[str, str],
        plan: Mapping[str, Any] | str,
        stages: Sequence[str],
        started: float,
    ) -> None:
        """Record a new run (state ``running``, owned by this process) and its pending stages.

        ``plan``: the plan as JSON data, or already encoded as JSON text.
        """
        self.flush()
        try:
            with self._transaction():
                self._db.execute(
                    "INSERT INTO runs (id, workflow, source, entry, params, cli_params, state, started,"
                    " plan, pid, host) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                    (
                        run_id, workflow, source, entry, _dumps(dict(params)), _dumps(dict(cli_params)),
                        started, plan if isinstance(plan, str) else _dumps(plan), os.getpid(),
                        socket.gethostname(),
                    ),
                )
                self._db.executemany(
                    "INSERT INTO stages (run, name, state) VALUES (?, ?, 'pending')",
                    [(run_id, name) for name in stages],
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to {self.db_path}: {exc}") from exc
        self._seq[run_id] = 0

    def claim_run(self, run_id: str) -> RunRecord:
        """Take over an unfinished run for ``--resume``.

        Refused (:class:`StoreError`) when the run is unknown, or is still being executed
        by a live process on this host (state ``running``, or ``paused`` by the service: a
        paused run still belongs to its worker). A run left ``running`` or ``paused`` by a
        process that died (``kill -9``, a crash) can be claimed.
        """
        self.flush()
        try:
            with self._transaction():
                row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
                if row is None:
                    raise StoreError(f"no run `{run_id}` in {self.state_dir}")
                record = self._run_record(row)
                if (
                    record.state in _LIVE_STATES
                    and record.pid is not None
                    and record.pid != os.getpid()
                    and record.host == socket.gethostname()
                    and pid_alive(record.pid)
                ):
                    doing = "paused" if record.state == "paused" else "running"
                    raise StoreError(f"run `{run_id}` is still {doing} (process {record.pid})")
                self._db.execute(
                    "UPDATE runs SET state = 'running', finished = NULL, pid = ?, host = ? WHERE id = ?",
                    (os.getpid(), socket.gethostname(), run_id),
                )
                seq = self._db.execute("SELECT MAX(seq) FROM events WHERE run = ?", (run_id,)).fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot use {self.db_path}: {exc}") from exc
        self._seq[run_id] = int(seq or 0)
        return record

    def queue_statement(self, sql: str, params: tuple[Any, ...]) -> None:
        """Another module's write (its own table), committed with the next flush."""
        self._pending.append((sql, params))

    def queue_run_state(self, run_id: str, state: str, finished: float | None) -> None:
        self._pending.append(
            ("UPDATE runs SET state = ?, finished = ? WHERE id = ?", (state, finished, run_id))
        )

    def resolve_run_id(self, ref: str) -> str | None:
        """``last`` (the most recently started run), a full id, or a unique prefix of one."""
        self.flush()
        return resolve_run_ref(self._db, ref)

    def run(self, run_id: str) -> RunRecord | None:
        self.flush()
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else self._run_record(row)

    def runs(self, *, limit: int = 50, workflow: str | None = None) -> list[RunRecord]:
        """The most recent runs first."""
        self.flush()
        if workflow is None:
            rows = self._db.execute(
                "SELECT * FROM runs ORDER BY started DESC, id DESC LIMIT ?", (limit,)
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM runs WHERE workflow = ? ORDER BY started DESC, id DESC LIMIT ?",
                (workflow, limit),
            ).fetchall()
        return [self._run_record(row) for row in rows]

    _RUN_COLUMNS = (
        "id", "workflow", "source", "entry", "params", "cli_params", "state", "started", "finished",
        "plan", "pid", "host",
    )

    def _run_record(self, row: Sequence[Any]) -> RunRecord:
        values = dict(zip(self._RUN_COLUMNS, row, strict=False))
        return RunRecord(
            id=values["id"],
            workflow=values["workflow"],
            source=values["source"],
            entry=values["entry"],
            params=_loads(values["params"]),
            cli_params=_loads(values["cli_params"]),
            state=values["state"],
            started=values["started"],
            finished=values["finished"],
            plan=_loads(values["plan"]),
            pid=values["pid"],
            host=values["host"],
        )

    # -- stages ---------------------------------------------------------------------
    def queue_stage(
        self,
        run_id: str,
        name: str,
        *,
        state: str,
        agent: str | None = None,
        outputs: Mapping[str, Any] | None = None,
        started: float | None = None,
        finished: float | None = None,
        attempts: int = 0,
        error: str | None = None,
    ) -> None:
        """Queue the whole row of a stage (values must already be masked)."""
        self._pending.append((
            _UPSERT_STAGE,
            (
                run_id, name, state, agent, _dumps(dict(outputs) if outputs else {}), started, finished,
                attempts, error,
            ),
        ))

    def stages(self, run_id: str) -> list[StageRecord]:
        """The stages of a run, in the order they were recorded (declaration order)."""
        self.flush()
        rows = self._db.execute(
            "SELECT run, name, state, agent, outputs, started, finished, attempts, error FROM stages"
            " WHERE run = ? ORDER BY rowid",
            (run_id,),
        ).fetchall()
        return _instances_after_their_stage([
            StageRecord(
                run=r[0], name=r[1], state=r[2], agent=r[3], outputs=_loads(r[4]), started=r[5],
                finished=r[6], attempts=r[7], error=r[8],
            )
            for r in rows
        ])

    # -- attempts -------------------------------------------------------------------
    def queue_attempt(
        self,
        run_id: str,
        stage: str,
        n: int,
        *,
        started: float,
        finished: float | None = None,
        exit_code: int | None = None,
        error: str | None = None,
        log_path: str | None = None,
        pid: int | None = None,
        agent: str | None = None,
        log_dropped: int = 0,
        cgroup: str | None = None,
        worker: str | None = None,
    ) -> None:
        self._pending.append((
            _UPSERT_ATTEMPT,
            (run_id, stage, n, started, finished, exit_code, error, log_path, pid, agent,
             log_dropped or None, cgroup, worker),
        ))

    def attempts(self, run_id: str, stage: str | None = None) -> list[AttemptRecord]:
        self.flush()
        if self._attempt_columns is None:
            # A read-only store may look at a database older than these columns.
            columns = self._columns("attempts")
            agent = "agent" if "agent" in columns else "NULL"
            dropped = "log_dropped" if "log_dropped" in columns else "NULL"
            cgroup = "cgroup" if "cgroup" in columns else "NULL"
            worker = "worker" if "worker" in columns else "NULL"
            self._attempt_columns = (
                "run, stage, n, started, finished, exit_code, error, log_path, pid, "
                f"{agent}, {dropped}, {cgroup}, {worker}"
            )
        sql = f"SELECT {self._attempt_columns} FROM attempts WHERE run = ?"
        args: tuple[Any, ...] = (run_id,)
        if stage is not None:
            sql += " AND stage = ?"
            args += (stage,)
        rows = self._db.execute(sql + " ORDER BY started, rowid", args).fetchall()
        return [
            AttemptRecord(
                run=r[0], stage=r[1], n=r[2], started=r[3], finished=r[4], exit_code=r[5], error=r[6],
                log_path=r[7], pid=r[8], agent=r[9], log_dropped=r[10] or 0, cgroup=r[11],
                worker=r[12],
            )
            for r in rows
        ]

    # -- incremental runs (the fingerprints table) ----------------------------------------
    def queue_fingerprint(
        self, source: str, workflow: str, stage: str, *, fingerprint: str, config: str,
        sources: Mapping[str, str], products: Mapping[str, str], outputs: Mapping[str, Any], run_id: str,
    ) -> None:
        self._pending.append((
            "INSERT OR REPLACE INTO fingerprints (source, workflow, stage, fingerprint, config, sources,"
            " products, outputs, run, recorded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (source, workflow, stage, fingerprint, config, _dumps(dict(sources)), _dumps(dict(products)),
             _dumps(dict(outputs)), run_id, time.time()),
        ))

    def fingerprint_row(self, source: str, workflow: str, stage: str) -> tuple[Any, ...] | None:
        """(fingerprint, config, sources, products, outputs, run, recorded) of the stage's last
        success, or None (also for a database older than the table, opened read-only)."""
        self.flush()
        try:
            row = self._db.execute(
                "SELECT fingerprint, config, sources, products, outputs, run, recorded FROM fingerprints"
                " WHERE source = ? AND workflow = ? AND stage = ?", (source, workflow, stage),
            ).fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None else tuple(row)

    def last_success(self, workflow: str, stage: str) -> tuple[str, Mapping[str, Any]] | None:
        """(run id, outputs) of the latest run of ``workflow`` in which ``stage`` succeeded."""
        self.flush()
        row = self._db.execute(
            "SELECT s.run, s.outputs FROM stages s JOIN runs r ON r.id = s.run"
            " WHERE r.workflow = ? AND s.name = ? AND s.state IN ('succeeded', 'up_to_date')"
            " ORDER BY s.finished DESC LIMIT 1", (workflow, stage),
        ).fetchone()
        return None if row is None else (str(row[0]), _loads(row[1]) or {})

    # -- dynamic fan-out (the expansions table) -------------------------------------------
    def queue_expansion(self, run_id: str, stage: str, items: list[Any]) -> None:
        """Record the items a ``for_each`` stage expanded to (values already masked); a
        recorded expansion is never replaced."""
        self._pending.append((
            "INSERT OR IGNORE INTO expansions (run, stage, items, recorded) VALUES (?, ?, ?, ?)",
            (run_id, stage, _dumps(items), time.time()),
        ))

    def expansions(self, run_id: str) -> dict[str, list[Any]]:
        """``for_each`` stage -> the items it expanded to (none for a database older than the table)."""
        self.flush()
        try:
            rows = self._db.execute("SELECT stage, items FROM expansions WHERE run = ?", (run_id,)).fetchall()
        except sqlite3.OperationalError:
            return {}
        return {str(stage): list(_loads(items) or []) for stage, items in rows}

    # -- events ---------------------------------------------------------------------
    def add_event(self, event: Event) -> int:
        """Queue an event; returns its sequence number in its run (1-based).

        ``event.seq`` is used when set (from :meth:`next_seq`), else the next number.
        """
        seq = event.seq or self._seq.get(event.run_id, 0) + 1
        self._seq[event.run_id] = max(seq, self._seq.get(event.run_id, 0))
        self._pending.append((
            "INSERT OR REPLACE INTO events (run, seq, time, type, stage, attempt, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event.run_id, seq, event.time, event.type, event.stage, event.attempt, _dumps(dict(event.data))),
        ))
        return seq

    def next_seq(self, run_id: str) -> int:
        """The sequence number the next event of ``run_id`` will get."""
        return self._seq.get(run_id, 0) + 1

    def events(self, run_id: str, *, after: int = 0) -> list[Event]:
        """The events of a run with ``seq > after``, in order."""
        self.flush()
        rows = self._db.execute(
            "SELECT seq, time, type, stage, attempt, data FROM events WHERE run = ? AND seq > ? ORDER BY seq",
            (run_id, after),
        ).fetchall()
        return [
            Event(type=r[2], run_id=run_id, time=r[1], stage=r[3], attempt=r[4], data=_loads(r[5]), seq=r[0])
            for r in rows
        ]

    def iter_run_ids(self) -> Iterator[str]:
        self.flush()
        for (run_id,) in self._db.execute("SELECT id FROM runs ORDER BY started"):
            yield str(run_id)


_INSTANCE = re.compile(r"(.+)\[(\d+)\]")


def _instances_after_their_stage(records: list[StageRecord]) -> list[StageRecord]:
    """The instances of a ``for_each`` stage (``each[0]``, ``each[1]``, ... recorded as they were
    expanded) right after the stage, by index."""
    instances: dict[str, list[tuple[int, StageRecord]]] = {}
    names = {r.name for r in records}
    rest: list[StageRecord] = []
    for record in records:
        match = _INSTANCE.fullmatch(record.name)
        if match is not None and match[1] in names:
            instances.setdefault(match[1], []).append((int(match[2]), record))
        else:
            rest.append(record)
    if not instances:
        return records
    ordered: list[StageRecord] = []
    for record in rest:
        ordered.append(record)
        ordered.extend(r for _, r in sorted(instances.get(record.name, ()), key=lambda pair: pair[0]))
    return ordered


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a run's owner, for claims and stale-run checks)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
