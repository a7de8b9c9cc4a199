"""The attempts journal: one line per attempt, appended before its process is spawned.

``.alfred/runs/RUN_ID/attempts.started`` holds ``started<TAB>stage<TAB>attempt<TAB>cgroup``
lines. Appending a line is one ``write`` to a file opened with ``O_APPEND``: it survives the
runner being killed the instant after (the kernel has it), at a cost of about a microsecond,
where committing the state database before each spawn cost ~150 µs per stage on a loaded
machine (bench/RUNTIME.md). The database gets the attempt at the next flush as before; on
``--resume`` the journal tells which attempts were started, so that their processes are
killed and no attempt number is used twice, even for an attempt the database never saw.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JOURNAL_NAME", "AttemptJournal", "StartedAttempt", "read_journal"]

JOURNAL_NAME = "attempts.started"


@dataclass(frozen=True, slots=True)
class StartedAttempt:
    """An attempt the journal says was started: its stage, number, start time and cgroup."""

    stage: str
    n: int
    started: float
    cgroup: str | None


class AttemptJournal:
    """The journal of one run, open for appending while the run runs."""

    def __init__(self, run_dir: Path) -> None:
        self.path = str(run_dir / JOURNAL_NAME)
        self.fd = -1

    def started(self, stage: str, n: int, started: float, cgroup: str | None) -> None:
        """Record that attempt ``n`` of ``stage`` is about to be spawned (raises OSError)."""
        if self.fd < 0:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        os.write(self.fd, f"{started!r}\t{stage}\t{n}\t{cgroup or ''}\n".encode())

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def read_journal(run_dir: Path) -> list[StartedAttempt]:
    """The attempts recorded in a run's journal (a torn last line is skipped)."""
    try:
        text = (run_dir / JOURNAL_NAME).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    found: list[StartedAttempt] = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) != 4:
            continue
        try:
            found.append(StartedAttempt(fields[1], int(fields[2]), float(fields[0]), fields[3] or None))
        except ValueError:
            continue
    return found
