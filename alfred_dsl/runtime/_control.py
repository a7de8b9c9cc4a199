"""What stops or pauses a run from outside: SIGINT/SIGTERM, the service's control flags
and the clock.

:class:`SignalRelay` turns the signals into :meth:`_Run.on_signal` calls on the Trio loop;
:func:`watch_control` polls a run's pause/resume/cancel flag (``alfredc pause``, a worker
shutting down) and stops, pauses or resumes the run; :func:`workflow_deadline` stops it at
the workflow's ``timeout`` and :func:`cleanup_deadline` ends the cleanup grace of a stopped run.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from typing import TYPE_CHECKING, Any

import trio

from . import _events as ev
from ._process import signal_name
from ._results import CANCELLED, PENDING, RUNNING

if TYPE_CHECKING:
    from ._scheduler import _Run

__all__ = ["SignalRelay", "cleanup_deadline", "close_cleanup", "watch_control", "workflow_deadline"]

_log = logging.getLogger("alfred_dsl.runtime")


class SignalRelay:
    """SIGINT and SIGTERM, while a run runs, go to :meth:`_Run.on_signal` on the Trio loop.

    Not ``trio.open_signal_receiver``: on leaving it, that re-raises the signals still
    queued, so a second Ctrl-C shortly after the first ended the process with a traceback
    (or killed it, for SIGTERM) while the run was being saved. Here a signal is handed to
    the loop as it comes and dropped once the run has ended. After a run stopped by a
    signal, SIGINT and SIGTERM stay ignored: the process was asked to stop and is doing so;
    a later signal must not kill it while it exits (exit status 130).
    """

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.token = trio.lowlevel.current_trio_token()
        self.previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: object) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            self.token.run_sync_soon(self.run.on_signal, signum)

    def __enter__(self) -> None:
        for signum in self._SIGNALS:
            self.previous[signum] = signal.signal(signum, self._handler)

    def __exit__(self, *exc: object) -> None:
        stopped = self.run.interrupted in {signal_name(s) for s in self._SIGNALS}
        for signum, previous in self.previous.items():
            signal.signal(signum, signal.SIG_IGN if stopped else previous)


async def watch_control(run: _Run) -> None:
    """Poll the service's control flag of this run (pause, resume, cancel)."""
    assert run.control is not None
    while True:
        await trio.sleep(run.control_interval_s)
        try:
            command = run.control(run.run_id)
        except Exception:  # a broken control source must not stop the run
            _log.exception("cannot read the control flag of run %s", run.run_id)
            continue
        if run.stopping:
            return
        if command == "cancel":
            run.cancelled = True
            run.stop("cancelled")
        elif command == "interrupt":
            run.interrupted = "worker shutdown"
            run.stop("interrupted")
        elif command == "pause" and not run.paused:
            run.paused = True
            run.store.queue_run_state(run.run_id, "paused", None)
            run.emit(ev.RUN_PAUSED)
        elif command != "pause" and run.paused:
            run.paused = False
            run.store.queue_run_state(run.run_id, "running", None)
            run.emit(ev.RUN_RESUMED, reason="unpaused")
            run.fill()
            run.check_done()


async def workflow_deadline(run: _Run, timeout_s: float) -> None:
    """The workflow's ``timeout``: past it the run stops and fails (cleanup stages may
    still run within the cleanup grace)."""
    await trio.sleep(timeout_s)
    if not run.stopping:
        run.timed_out = True
        _log.info("run %s: the workflow timed out after %s", run.run_id, _seconds(timeout_s))
        run.stop(f"the workflow timed out after {_seconds(timeout_s)}")


async def cleanup_deadline(run: _Run) -> None:
    """A stopped run's ``run_if = always | failure`` stages get ``cleanup_grace_s`` to finish."""
    await trio.sleep(run.options.cleanup_grace_s)
    close_cleanup(run, f"the cleanup grace period ({_seconds(run.options.cleanup_grace_s)}) ended")


def close_cleanup(run: _Run, reason: str) -> None:
    """No more cleanup stage starts; running ones are cancelled, waiting ones end cancelled."""
    if not run.cleanup_open or not run.stopping:
        return
    run.cleanup_open = False
    run.ready.clear()
    for st in run._topological():
        if st.state == PENDING:
            run.finalize(st, CANCELLED, reason=reason)
        elif st.state == RUNNING and st.scope is not None:
            st.scope.cancel()
    run.settle.clear()
    run.check_done()


def _seconds(value: float) -> str:
    return f"{value:g}s"
