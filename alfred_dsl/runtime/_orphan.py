"""``python -m alfred_dsl.runtime._orphan ARGV...``: exec ``ARGV`` so that it dies with alfred.

An MCP server started over stdio normally exits when its stdin closes, but one busy in a
tool call does not notice. On Linux the kernel sends this process SIGKILL when the thread
that started it ends (alfred killed with ``kill -9``): the parent-death signal survives
the ``exec``. Elsewhere this only execs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m alfred_dsl.runtime._orphan COMMAND [ARG...]")
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:  # alfred died before the signal was set
            sys.exit(1)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.exit(f"cannot start {argv[0]}: {exc.strerror}")


if __name__ == "__main__":
    main(sys.argv[1:])
