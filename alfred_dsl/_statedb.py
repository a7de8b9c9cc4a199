"""Opening the state database (``.alfred/state.db``): the one path every process takes.

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
from pathlib import Path

__all__ = [
    "DB_NAME",
    "LOCK_NAME",
    "WAIT_S",
    "connect_for_writing",
    "has_objects",
    "private_mkdir",
    "schema_objects",
    "wait_for_set_up",
]

DB_NAME = "state.db"
LOCK_NAME = "state.lock"
#: How long an open waits for another process's set-up, and a write for another writer.
WAIT_S = 30.0


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
