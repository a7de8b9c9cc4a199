"""The state database (``.alfred/state.db``): every table, and the one path every process
takes to open it.

Its users: the runtime's :class:`~alfred_dsl.runtime.StateStore` (the run tables: runs,
stages, attempts, events) and the service's :class:`~alfred_dsl.service.RunQueue` (those
and the service tables: queue, control, schedule_ticks, workers). A directory only
``alfredc run`` used has no service tables; the first queue opened there adds them.

SQLite's switch to WAL does not wait on the busy handler: when two processes open a fresh
database at once, both read its header (rollback mode) and both try to upgrade to the write
lock; SQLite fails one of them at once with "database is locked" to avoid a deadlock,
whatever the busy timeout. So the database file is created, switched to WAL and given its
tables only under an exclusive ``flock`` on ``state.lock`` beside it (and the switch is retried
while a process that ignores the lock holds the file). An open that finds the file in WAL
mode with its tables takes no lock; read-only opens wait (shared) for a set-up in progress,
so they never see a database half set up. Ordinary writes keep the busy timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "APPROVAL_TABLES",
    "DB_NAME",
    "LOCK_NAME",
    "RUN_TABLES",
    "SCHEMA_VERSION",
    "SERVICE_TABLES",
    "WAIT_S",
    "AttemptRecord",
    "RunRecord",
    "StageRecord",
    "connect_for_writing",
    "connect_read_only",
    "create_run_tables",
    "has_objects",
    "open_approval_tables",
    "open_run_tables",
    "open_service_tables",
    "open_service_tables_read_only",
    "private_mkdir",
    "resolve_run_ref",
    "run_tables_current",
    "schema_objects",
    "table_columns",
    "wait_for_set_up",
]

DB_NAME = "state.db"
LOCK_NAME = "state.lock"
#: How long an open waits for another process's set-up, and a write for another writer.
WAIT_S = 30.0




# -- the records read back (the store's public interface) ----------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One row of ``runs``: a run as recorded."""

    id: str
    workflow: str
    source: str
    entry: str | None
    params: Mapping[str, Any]
    cli_params: Mapping[str, str]
    state: str
    started: float
    finished: float | None
    plan: Mapping[str, Any]
    pid: int | None
    host: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StageRecord:
    """One row of ``stages``: a stage of a run as recorded."""

    run: str
    name: str
    state: str
    agent: str | None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    """One row of ``attempts``: an attempt of a stage as recorded."""

    run: str
    stage: str
    n: int
    started: float
    finished: float | None
    exit_code: int | None
    error: str | None
    log_path: str | None
    pid: int | None
    agent: str | None = None
    #: Bytes of output the log did not keep (the stage's ``max_log`` was reached); 0 if none.
    log_dropped: int = 0
    cgroup: str | None = None
    #: The cluster worker that ran the attempt (``--cluster``), else None.
    worker: str | None = None


# -- the tables ------------------------------------------------------------------------------
SCHEMA_VERSION = 1

#: The runtime's tables: what ``alfredc run`` records.
RUN_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id          TEXT PRIMARY KEY,
    workflow    TEXT NOT NULL,
    source      TEXT NOT NULL,          -- path of the file that declares the workflow
    entry       TEXT,                   -- path given to `alfredc run` (for --resume)
    params      TEXT NOT NULL,          -- JSON: resolved param values
    cli_params  TEXT NOT NULL,          -- JSON: raw --param strings (for --resume)
    state       TEXT NOT NULL,          -- running | succeeded | failed | interrupted
    started     REAL NOT NULL,
    finished    REAL,
    plan        TEXT NOT NULL,          -- JSON of the compiled plan
    pid         INTEGER,                -- process executing the run
    host        TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
CREATE TABLE IF NOT EXISTS stages (
    run       TEXT NOT NULL,
    name      TEXT NOT NULL,
    state     TEXT NOT NULL,            -- pending | running | succeeded | failed | skipped
                                        -- | upstream_failed | cancelled
    agent     TEXT,
    outputs   TEXT NOT NULL DEFAULT '{}',
    started   REAL,
    finished  REAL,
    attempts  INTEGER NOT NULL DEFAULT 0,
    error     TEXT,
    PRIMARY KEY (run, name)
);
CREATE TABLE IF NOT EXISTS attempts (
    run        TEXT NOT NULL,
    stage      TEXT NOT NULL,
    n          INTEGER NOT NULL,
    started    REAL NOT NULL,
    finished   REAL,
    exit_code  INTEGER,
    error      TEXT,
    log_path   TEXT,
    pid        INTEGER,                 -- leader of the attempt's process group (command stages)
    agent      TEXT,                    -- the agent the attempt ran on (retries may move)
    log_dropped INTEGER,                -- bytes of output past max_log, not in the log
    cgroup     TEXT,                    -- the attempt's cgroup v2 directory (cgroup containment)
    worker     TEXT,                    -- the cluster worker's address (--cluster), shown as its lane
    PRIMARY KEY (run, stage, n)
);
CREATE TABLE IF NOT EXISTS events (
    run      TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    time     REAL NOT NULL,
    type     TEXT NOT NULL,
    stage    TEXT,
    attempt  INTEGER,
    data     TEXT NOT NULL,
    PRIMARY KEY (run, seq)
);
-- Incremental runs (runtime/_incremental.py): the last success of each stage of a workflow.
CREATE TABLE IF NOT EXISTS fingerprints (
    source      TEXT NOT NULL,          -- the file that declares the workflow
    workflow    TEXT NOT NULL,
    stage       TEXT NOT NULL,
    fingerprint TEXT NOT NULL,          -- sha256 of the config and the sources
    config      TEXT NOT NULL,          -- sha256 of command, call, inputs, params, env
    sources     TEXT NOT NULL,          -- JSON: relative path -> sha256
    products    TEXT NOT NULL,          -- JSON: relative path -> sha256
    outputs     TEXT NOT NULL,          -- JSON: the outputs (secrets masked)
    run         TEXT NOT NULL,
    recorded    REAL NOT NULL,
    PRIMARY KEY (source, workflow, stage)
);
-- Dynamic fan-out (runtime/_foreach.py): the items a `for_each` stage expanded to, recorded
-- before its first instance starts, so that a resumed run reuses them.
CREATE TABLE IF NOT EXISTS expansions (
    run       TEXT NOT NULL,
    stage     TEXT NOT NULL,            -- the `for_each` stage
    items     TEXT NOT NULL,            -- JSON array: instance i runs with item i (secrets masked)
    recorded  REAL NOT NULL,
    PRIMARY KEY (run, stage)
);
-- Concurrency groups (runtime/_concurrency.py): the runs in a group, oldest first.
CREATE TABLE IF NOT EXISTS concurrency (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,   -- arrival order in the group
    grp         TEXT NOT NULL,
    run         TEXT NOT NULL UNIQUE,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    entered     REAL NOT NULL,
    cancel      INTEGER NOT NULL DEFAULT 0           -- 1: a newer run asked it to stop
);
"""

#: Approval stages (runtime/_approval.py): one request per stage, decided from any process.
#: Created by the first run that reaches an approval stage (:func:`open_approval_tables`).
APPROVAL_TABLES = """
CREATE TABLE IF NOT EXISTS approvals (
    run TEXT NOT NULL,
    stage TEXT NOT NULL,
    requested REAL NOT NULL,
    deadline REAL,
    by_spec TEXT NOT NULL,
    users TEXT NOT NULL,
    on_timeout TEXT NOT NULL,
    decision TEXT,
    decided_by TEXT,
    comment TEXT,
    decided_at REAL,
    closed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run, stage)
)
"""

#: The service's tables (``alfredc submit``, workers, schedules); reads join them with ``runs``.
SERVICE_TABLES = """
CREATE TABLE IF NOT EXISTS queue (
    id          TEXT PRIMARY KEY,       -- the id the run gets in the runs table
    workflow    TEXT NOT NULL,
    entry       TEXT NOT NULL,          -- absolute path of the submitted file
    params      TEXT NOT NULL,          -- JSON: raw --param strings
    priority    INTEGER NOT NULL,
    submitted   REAL NOT NULL,
    not_before  REAL NOT NULL,          -- --at time (= submitted when not given)
    state       TEXT NOT NULL,          -- queued | claimed | done | cancelled
    worker      TEXT,                   -- id of the worker holding it
    lease_until REAL,                   -- the claim is void after this time
    claimed     REAL,                   -- first claim (wait time = claimed - not_before)
    finished    REAL,
    result      TEXT,                   -- the run's final state
    claims      INTEGER NOT NULL DEFAULT 0,
    tick        REAL,                   -- the cron tick it was enqueued for, if any
    error       TEXT                    -- why it could not run (e.g. the file has errors)
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue (state, priority, submitted);
CREATE TABLE IF NOT EXISTS control (
    run      TEXT PRIMARY KEY,
    command  TEXT NOT NULL,             -- pause | resume | cancel
    time     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS schedule_ticks (
    entry    TEXT NOT NULL,
    workflow TEXT NOT NULL,
    tick     REAL NOT NULL,
    run      TEXT NOT NULL,
    PRIMARY KEY (entry, workflow, tick)
);
CREATE TABLE IF NOT EXISTS workers (
    id         TEXT PRIMARY KEY,
    pid        INTEGER NOT NULL,
    host       TEXT NOT NULL,
    started    REAL NOT NULL,
    heartbeat  REAL NOT NULL,
    stopped    REAL,
    max_runs   INTEGER NOT NULL
);
"""


def create_run_tables(db: sqlite3.Connection) -> None:
    """Create the run tables (and bring older databases up to date); in a transaction."""
    _execute_script(db, RUN_TABLES)
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    # Databases written before attempts recorded their agent ...
    columns = table_columns(db, "attempts")
    if "agent" not in columns:
        db.execute("ALTER TABLE attempts ADD COLUMN agent TEXT")
    # ... and before logs had a cap.
    if "log_dropped" not in columns:
        db.execute("ALTER TABLE attempts ADD COLUMN log_dropped INTEGER")
    # ... and before they recorded their cgroup.
    if "cgroup" not in columns:
        db.execute("ALTER TABLE attempts ADD COLUMN cgroup TEXT")
    # ... and before they ran on cluster workers.
    if "worker" not in columns:
        db.execute("ALTER TABLE attempts ADD COLUMN worker TEXT")


def run_tables_current(db: sqlite3.Connection) -> bool:
    """Whether :func:`create_run_tables` would change nothing (a read: no lock needed)."""
    return has_objects(db, _RUN_OBJECTS) and {"agent", "log_dropped", "cgroup", "worker"} <= table_columns(
        db, "attempts"
    )


def _create_all_tables(db: sqlite3.Connection) -> None:
    create_run_tables(db)
    _execute_script(db, SERVICE_TABLES)


def _all_tables_current(db: sqlite3.Connection) -> bool:
    return has_objects(db, _SERVICE_OBJECTS) and run_tables_current(db)


def open_run_tables(state_dir: Path) -> sqlite3.Connection:
    """A connection for writing runs (the runtime's store): the run tables are set up."""
    return connect_for_writing(state_dir, is_set_up=run_tables_current, set_up=create_run_tables)


def open_approval_tables(state_dir: Path) -> sqlite3.Connection:
    """A connection for recording approval requests and decisions: the approvals table is set up."""
    return connect_for_writing(
        state_dir, is_set_up=lambda db: has_objects(db, _APPROVAL_OBJECTS),
        set_up=lambda db: _execute_script(db, APPROVAL_TABLES),
    )


def open_service_tables(state_dir: Path) -> sqlite3.Connection:
    """A connection for the service (usable from any thread): every table is set up, in one
    transaction, so a reader never sees the service tables without the run tables."""
    return connect_for_writing(
        state_dir, is_set_up=_all_tables_current, set_up=_create_all_tables, check_same_thread=False
    )


def connect_read_only(state_dir: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A read-only connection to an existing ``state_dir/state.db`` (waits for a set-up in
    progress; creates nothing). Raises sqlite3.Error when the file is not a database."""
    wait_for_set_up(state_dir)
    uri = (state_dir / DB_NAME).resolve().as_uri() + "?mode=ro"
    db = sqlite3.connect(
        uri, uri=True, timeout=WAIT_S, isolation_level=None, check_same_thread=check_same_thread
    )
    try:
        db.execute(f"PRAGMA busy_timeout = {int(WAIT_S * 1000)}")
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1")  # not a database: fail now
    except BaseException:
        db.close()
        raise
    return db


def open_service_tables_read_only(state_dir: Path) -> sqlite3.Connection:
    """A read-only connection in which every service table and ``runs`` can be read.

    Tables the file lacks (a directory only ``alfredc run`` used, or no file at all) are
    empty TEMP tables: every read works unchanged and nothing reaches the file.
    """
    exists = (state_dir / DB_NAME).is_file()
    if exists:
        db = connect_read_only(state_dir, check_same_thread=False)
    else:
        db = sqlite3.connect(":memory:", timeout=WAIT_S, isolation_level=None, check_same_thread=False)
    try:
        present = {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for statement in SERVICE_TABLES.split(";"):
            words = statement.split()
            if words[:5] == ["CREATE", "TABLE", "IF", "NOT", "EXISTS"] and words[5] not in present:
                db.execute(statement.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))
        if "runs" not in present:
            db.execute("CREATE TEMP TABLE runs (id TEXT PRIMARY KEY)")
    except BaseException:
        db.close()
        raise
    return db


def resolve_run_ref(db: sqlite3.Connection, ref: str, *, with_queue: bool = False) -> str | None:
    """The run id ``ref`` names: ``last``, a full id, or a unique prefix of one; None otherwise.

    Without ``with_queue`` only recorded runs count and ``last`` is the one started last;
    with it (the service) submitted runs count too and ``last`` is the latest of the run
    submitted last and the recorded run with the largest id (ids start with their creation
    time, YYYYMMDD-HHMMSS, so the larger id is the later run).
    """
    pattern = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if not with_queue:
        if ref == "last":
            row = db.execute("SELECT id FROM runs ORDER BY started DESC, id DESC LIMIT 1").fetchone()
            return None if row is None else str(row[0])
        rows = db.execute(
            "SELECT id FROM runs WHERE id = ? OR id LIKE ? ESCAPE '\\' LIMIT 2", (ref, pattern)
        ).fetchall()
        if any(r[0] == ref for r in rows):
            return ref
        return str(rows[0][0]) if len(rows) == 1 else None
    if ref == "last":
        row = db.execute("SELECT id FROM queue ORDER BY submitted DESC, id DESC LIMIT 1").fetchone()
        direct = db.execute("SELECT max(id) FROM runs").fetchone()
        found = [str(r[0]) for r in (row, direct) if r is not None and r[0] is not None]
        return max(found) if found else None
    ids = {
        str(r[0])
        for r in db.execute(
            "SELECT id FROM queue WHERE id LIKE ? ESCAPE '\\'"
            " UNION SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 3",
            (pattern, pattern),
        ).fetchall()
    }
    if ref in ids:
        return ref
    return ids.pop() if len(ids) == 1 else None


def table_columns(db: sqlite3.Connection, table: str) -> set[str]:
    """The column names of ``table`` (empty when there is no such table)."""
    return {str(row[1]) for row in db.execute(f"PRAGMA table_info({table})")}


def _execute_script(db: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def connect_for_writing(
    state_dir: Path,
    *,
    is_set_up: Callable[[sqlite3.Connection], bool],
    set_up: Callable[[sqlite3.Connection], None],
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """A connection to ``state_dir/state.db`` in WAL mode, creating the directory, the file
    and (with ``set_up``, in one transaction) whatever ``is_set_up`` finds missing.

    Safe when many processes open one fresh directory at once. Raises OSError or
    sqlite3.Error; the callers turn them into their own errors.
    """
    private_mkdir(state_dir)
    db_path = state_dir / DB_NAME
    db: sqlite3.Connection | None = None
    try:
        if db_path.is_file():
            _tighten_database(db_path)
            # mode=rw never creates the file: only a set-up under the lock does.
            db = _connect(f"{db_path.resolve().as_uri()}?mode=rw", check_same_thread)
            if _mode(db) == "wal" and is_set_up(db):
                return db
        with _set_up_lock(state_dir, fcntl.LOCK_EX, create=True):
            if db is None:
                _private_file(db_path)
                db = _connect(f"{db_path.resolve().as_uri()}?mode=rwc", check_same_thread)
            _switch_to_wal(db)
            db.execute("BEGIN IMMEDIATE")
            try:
                set_up(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return db
    except BaseException:
        if db is not None:
            db.close()
        raise


def wait_for_set_up(state_dir: Path) -> None:
    """Return once no process is setting up ``state_dir`` (for read-only opens: creates nothing)."""
    try:
        with _set_up_lock(state_dir, fcntl.LOCK_SH, create=False):
            pass
    except FileNotFoundError:  # written before the lock existed, or no database at all
        pass


def schema_objects(script: str) -> dict[str, str]:
    """The tables and indexes a ``CREATE ... IF NOT EXISTS`` script makes: name -> type."""
    made: dict[str, str] = {}
    for statement in script.split(";"):
        words = statement.split()
        if len(words) > 5 and words[0] == "CREATE" and words[2:5] == ["IF", "NOT", "EXISTS"]:
            made[words[5]] = words[1].lower()
    return made


def has_objects(db: sqlite3.Connection, objects: Mapping[str, str]) -> bool:
    """Whether the database has every table and index of ``objects`` (see :func:`schema_objects`)."""
    present = {(str(name), str(kind)) for name, kind in db.execute("SELECT name, type FROM sqlite_master")}
    return all((name, kind) in present for name, kind in objects.items())


def _switch_to_wal(db: sqlite3.Connection) -> None:
    # Under the lock no alfred process races this switch, but a process that does not take the
    # lock (an older alfred, another program) may hold the fresh file's write lock: the switch
    # fails at once then, whatever the busy timeout, so it is retried until WAIT_S has passed.
    deadline = time.monotonic() + WAIT_S
    pause = 0.001
    while _mode(db) != "wal":
        try:
            db.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def _connect(uri: str, check_same_thread: bool) -> sqlite3.Connection:
    db = sqlite3.connect(
        uri, uri=True, timeout=WAIT_S, isolation_level=None, check_same_thread=check_same_thread
    )
    db.execute(f"PRAGMA busy_timeout = {int(WAIT_S * 1000)}")
    # Per connection: WAL makes NORMAL safe against corruption (a power cut may lose the last commits).
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def _mode(db: sqlite3.Connection) -> str:
    return str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower()


@contextmanager
def _set_up_lock(state_dir: Path, operation: int, *, create: bool) -> Iterator[None]:
    path = state_dir / LOCK_NAME
    fd = os.open(path, (os.O_RDWR | os.O_CREAT) if create else os.O_RDONLY, 0o600)
    try:
        deadline = time.monotonic() + WAIT_S
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, operation | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # Polled rather than blocking: a stuck holder gives an error, never a hang.
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"another process has been setting up {state_dir} for {WAIT_S:g} s ({path} is locked)"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


def private_mkdir(path: Path) -> bool:
    """Create ``path`` (and missing parents) 0700; True if it was created, False if it existed.

    An existing folder of this user with group or other bits gets 0700 too.
    """
    if not path.parent.is_dir():
        private_mkdir(path.parent)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise
        _tighten(path, 0o700)
        return False
    return True


def _tighten(path: Path, mode: int) -> None:
    with contextlib.suppress(OSError):
        info = path.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o777 != mode:
            path.chmod(mode)


def _private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it: SQLite gives its -wal and -shm
    files the database's mode, whatever the umask."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def _tighten_database(path: Path) -> None:
    """An existing database of this user (and its -wal, -shm, -journal files) made 0600."""
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm", f"{path.name}-journal"):
        _tighten(path.parent / name, 0o600)


_RUN_OBJECTS = schema_objects(RUN_TABLES)
_SERVICE_OBJECTS = schema_objects(SERVICE_TABLES)
_APPROVAL_OBJECTS = schema_objects(APPROVAL_TABLES)
