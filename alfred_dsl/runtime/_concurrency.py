"""Concurrency groups: runs of one group never overlap, across processes sharing a state
directory (table ``concurrency`` of ``state.db``).

A run enters its group as a row (arrival order = the row id). It starts when no older row of
the group is left; rows of processes that died (same host, pid gone) are removed on the way.
With ``cancel_in_progress = true`` a new run marks every older row of its group ``cancel``:
a running one sees the mark through the scheduler's control poll and stops as ``cancelled``
(its cleanup stages run); a waiting one gives up without starting. The row goes when the
run ends.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from .._statedb import open_run_tables
from ._store import StoreError, pid_alive

__all__ = ["GroupCancelled", "GroupSlot"]

#: How often a waiting run looks at its group again.
POLL_S = 0.2


class GroupCancelled(StoreError):
    """A newer run of the group cancelled this one while it waited."""


class GroupSlot:
    """This process's place in one concurrency group (see the module docstring)."""

    def __init__(self, state_dir: Path, group: str, run_id: str) -> None:
        self.group = group
        self.run_id = run_id
        self.row: int | None = None
        try:
            self._db = open_run_tables(state_dir)  # the concurrency table is one of them
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot use {state_dir}: {exc}") from exc

    def _prune(self) -> None:
        host = socket.gethostname()
        for row_id, pid in self._db.execute(
            "SELECT id, pid FROM concurrency WHERE grp = ? AND host = ?", (self.group, host)
        ).fetchall():
            if not pid_alive(int(pid)):
                self._db.execute("DELETE FROM concurrency WHERE id = ?", (row_id,))

    def enter(self, *, cancel_in_progress: bool, on_wait: Callable[[list[str]], None]) -> None:
        """Join the group and return once this run is the oldest in it; ``on_wait(runs)`` is
        called once with the runs ahead when it has to wait. Raises :class:`GroupCancelled`."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._prune()
                cursor = self._db.execute(
                    "INSERT INTO concurrency (grp, run, pid, host, entered) VALUES (?, ?, ?, ?, ?)",
                    (self.group, self.run_id, os.getpid(), socket.gethostname(), time.time()),
                )
                self.row = cursor.lastrowid
                if cancel_in_progress:
                    self._db.execute(
                        "UPDATE concurrency SET cancel = 1 WHERE grp = ? AND id < ?", (self.group, self.row)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            told = False
            while True:
                if self.cancelled():
                    raise GroupCancelled(
                        f"cancelled by a newer run of concurrency group `{self.group}` before it started"
                    )
                ahead = [str(r[0]) for r in self._db.execute(
                    "SELECT run FROM concurrency WHERE grp = ? AND id < ? ORDER BY id", (self.group, self.row)
                )]
                if not ahead:
                    return
                if not told:
                    on_wait(ahead)
                    told = True
                time.sleep(POLL_S)
                self._db.execute("BEGIN IMMEDIATE")
                self._prune()
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot use the concurrency group `{self.group}`: {exc}") from exc

    def cancelled(self) -> bool:
        """Whether a newer run of the group asked this one to stop."""
        if self.row is None:
            return False
        row = self._db.execute("SELECT cancel FROM concurrency WHERE id = ?", (self.row,)).fetchone()
        return row is not None and bool(row[0])

    def control(self, run_id: str) -> str | None:
        """The scheduler's control poll: ``cancel`` once a newer run asked for it."""
        return "cancel" if self.cancelled() else None

    def leave(self) -> None:
        try:
            if self.row is not None:
                self._db.execute("DELETE FROM concurrency WHERE id = ?", (self.row,))
        except sqlite3.Error:
            pass  # a dead process's row is pruned by the next run of the group
        finally:
            self._db.close()
