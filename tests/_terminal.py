"""Run a program with its stdout on a real pseudo-terminal, as a user's shell would."""

from __future__ import annotations

import os
import pty
import select
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_on_terminal(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: Path | None = None,
    stderr_to: Path | None = None,
    timeout: float = 30.0,
) -> tuple[int, bytes]:
    """Exit status and everything written to the terminal (stdout, and stderr unless ``stderr_to``).

    ``argv[0]`` is a path to the executable. The terminal is the child's controlling terminal.
    """
    pid, fd = pty.fork()
    if pid == 0:  # the child
        try:
            if cwd is not None:
                os.chdir(cwd)
            if stderr_to is not None:
                err = os.open(stderr_to, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(err, 2)
            os.execve(argv[0], list(argv), dict(env))
        finally:
            os._exit(127)
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output
