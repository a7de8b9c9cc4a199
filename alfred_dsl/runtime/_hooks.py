"""Workflow hooks: ``on failure { run = "..." }``, ``on success``, ``on stage_failed``.

A hook is a command run when its event happens. It follows the command contract of
stages: a string runs under ``/bin/sh -c`` with interpolated values in ``ALFRED_VALUE_n``
environment variables, a list is an argv (no shell); the working directory is the folder of
the workflow file; the environment is the run's base environment plus

- ``ALFRED_RUN_ID``, ``ALFRED_EVENT`` (the hook's event: ``failure``, ``success``,
  ``stage_failed``, ...), ``ALFRED_EVENT_TYPE`` (the runtime event, e.g. ``run_failed``),
  ``ALFRED_STAGE`` (stage events only),
- ``ALFRED_EVENT_FILE``: a JSON file holding the event (``Event.to_json()``).

Hooks never change the result of a run: a hook that fails (exit status, timeout, cannot
start) is reported through ``report`` and recorded in :attr:`HookRunner.outcomes`.

Events map to hooks as follows: ``success`` <- ``run_completed``, ``failure`` <-
``run_failed``, ``interrupted`` <- ``run_interrupted``; any other hook name matches the
event type of the same name (``stage_failed``, ``stage_retrying``, ...). Hooks of stage
events start in the background so the run is not held up; the run's final event waits
for them, then runs its own hooks (each with a timeout) before ``execute`` returns.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._expr import ExprError, to_text
from ..compiler._plan import DEFAULT_MAX_LOG, Hook, Plan, thaw
from ._events import (
    FINAL_RUN_EVENTS,
    RUN_COMPLETED,
    RUN_FAILED,
    RUN_INTERRUPTED,
    RUN_RESUMED,
    RUN_STARTED,
    STAGE_SUCCEEDED,
    Event,
    EventBus,
)
from ._private import private_mkdir
from ._process import _LazyLog, child_bytes, child_env, signal_name
from ._resolve import Masker, check_process_text, render_shell, render_value
from ._toolenv import tool_environment

__all__ = ["HOOK_EVENTS", "HookOutcome", "HookRunner", "attach"]

#: Hook names that stand for a run event of another name.
HOOK_EVENTS: Mapping[str, str] = {
    "success": RUN_COMPLETED,
    "failure": RUN_FAILED,
    "interrupted": RUN_INTERRUPTED,
}

#: How long a hook may run before its process group is killed.
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class HookOutcome:
    """How one hook command ended."""

    event: str                    # the hook's name: "failure", "stage_failed", ...
    event_type: str               # the runtime event that fired it
    stage: str | None
    command: str                  # as run, secrets masked
    ok: bool
    exit_code: int | None = None
    error: str | None = None
    log_path: str | None = None
    duration_s: float = 0.0

    def describe(self) -> str:
        where = f" for stage {self.stage}" if self.stage else ""
        log = f" (log: {self.log_path})" if self.log_path else ""
        return f"hook `on {self.event}`{where} failed: {self.error}{log}"


@dataclass(slots=True)
class _Started:
    hook: Hook
    event: Event
    command: str
    process: subprocess.Popen[bytes] | None
    started: float
    log_path: Path | None
    error: str | None = None
    copier: threading.Thread | None = None


def _hook_matches(hook: Hook, event_type: str) -> bool:
    return HOOK_EVENTS.get(hook.event, hook.event) == event_type


class HookRunner:
    """Runs the hooks of one plan; :meth:`on_event` is the subscriber for the run's bus."""

    def __init__(
        self,
        plan: Plan,
        *,
        env: Mapping[str, str] | None = None,
        report: Callable[[str], object] | None = None,
        work_dir: str | os.PathLike[str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.plan = plan
        self.hooks = plan.hooks
        self.env = tool_environment(os.environ if env is None else env)
        secret_values = {name: self.env[name] for name in plan.secrets if name in self.env}
        self.masker = Masker(secret_values)
        self.scope: dict[str, Any] = {
            "params": thaw(plan.params),
            "stages": {},
            "env": self.env,
            "secrets": secret_values,
        }
        self.report = report
        self.timeout_s = timeout_s
        self.cwd = Path(plan.source).resolve().parent
        self._work_dir = Path(work_dir) if work_dir is not None else None
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        self._counter = 0
        self._running: list[_Started] = []
        #: Every hook that ran, in the order they finished.
        self.outcomes: list[HookOutcome] = []

    # -- the subscriber ---------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        if event.type in (RUN_STARTED, RUN_RESUMED) and self._work_dir is None:
            state_dir = event.data.get("state_dir")
            if state_dir:
                self._work_dir = Path(str(state_dir)) / "runs" / event.run_id / "hooks"
        elif event.type == STAGE_SUCCEEDED and event.stage is not None:
            outputs = event.data.get("outputs")
            known = dict(outputs) if isinstance(outputs, Mapping) else {}
            self.scope["stages"][event.stage] = {"outputs": known}
        matching = [hook for hook in self.hooks if _hook_matches(hook, event.type)]
        final = event.type in FINAL_RUN_EVENTS
        if final:
            self.wait()  # hooks of stage events first, so the final hooks see their effects
        for hook in matching:
            self._running.append(self._start(hook, event))
        if final:
            self.wait()

    # -- running ----------------------------------------------------------------------
    def _directory(self) -> Path:
        if self._work_dir is None:
            self._temp = tempfile.TemporaryDirectory(prefix="alfred-hooks-")
            self._work_dir = Path(self._temp.name)
        private_mkdir(self._work_dir)
        return self._work_dir

    def _start(self, hook: Hook, event: Event) -> _Started:
        self._counter += 1
        started = time.monotonic()
        scope = dict(self.scope)
        values: Mapping[str, str] = {}
        try:
            if isinstance(hook.run, str):
                line = render_shell(hook.run, scope)
                argv, values = ["/bin/sh", "-c", line.text], line.values
                shown = line.text
            else:
                argv = [
                    check_process_text(part, to_text(render_value(part, scope)), scope) for part in hook.run
                ]
                shown = shlex.join(argv)
        except ExprError as exc:
            return _Started(hook, event, "", None, started, None, error=f"cannot resolve its command: {exc}")
        shown = self.masker.text(shown)
        if not argv or not argv[0]:
            return _Started(hook, event, shown, None, started, None, error="empty command")
        try:
            directory = self._directory()
            stem = f"{self._counter}.{hook.event}"
            event_file = directory / f"{stem}.event.json"
            log_path = directory / f"{stem}.log"
            fd = os.open(event_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with open(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(event.to_json(), default=str, indent=2))
            # A hook's log exists even when it printed nothing.
            os.close(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600))
        except OSError as exc:
            return _Started(hook, event, shown, None, started, None, error=f"cannot write its files: {exc}")
        env = dict(self.env)
        env.update(
            ALFRED_RUN_ID=event.run_id,
            ALFRED_EVENT=hook.event,
            ALFRED_EVENT_TYPE=event.type,
            ALFRED_EVENT_FILE=str(event_file),
        )
        if event.stage is not None:
            env["ALFRED_STAGE"] = event.stage
        env.update(values)
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        try:
            process = subprocess.Popen(
                [child_bytes(arg) for arg in argv],
                cwd=self.cwd,
                env=child_env(env),
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                close_fds=True,
                process_group=0,
            )
        except OSError as exc:
            os.close(read_fd)
            reason = "command not found" if isinstance(exc, FileNotFoundError) else exc.strerror or str(exc)
            return _Started(hook, event, shown, None, started, None, error=f"cannot start: {reason}")
        finally:
            os.close(write_fd)
        # The output is masked as it is read: no secret is ever written to the hook's log.
        log = _LazyLog(str(log_path), self.masker.stream() if self.masker else None, DEFAULT_MAX_LOG)
        copier = threading.Thread(target=_copy_output, args=(read_fd, log), daemon=True)
        copier.start()
        return _Started(hook, event, shown, process, started, log_path, copier=copier)

    def wait(self) -> None:
        """Wait for every started hook (killing those past their timeout) and record them."""
        running, self._running = self._running, []
        for item in running:
            self._finish(item)

    def _finish(self, item: _Started) -> None:
        exit_code: int | None = None
        error = item.error
        if item.process is not None:
            remaining = max(self.timeout_s - (time.monotonic() - item.started), 0.0)
            try:
                exit_code = item.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                _kill_group(item.process)
                error = f"timed out after {self.timeout_s:g}s"
            else:
                if exit_code < 0:
                    error = f"killed by {signal_name(-exit_code)}"
                elif exit_code != 0:
                    error = f"exit status {exit_code}"
        if item.copier is not None:
            # A background grandchild may hold the pipe open: its later output is not waited for.
            item.copier.join(timeout=1.0)
        outcome = HookOutcome(
            event=item.hook.event,
            event_type=item.event.type,
            stage=item.event.stage,
            command=item.command,
            ok=error is None,
            exit_code=exit_code,
            error=error,
            log_path=str(item.log_path) if item.log_path is not None and item.log_path.exists() else None,
            duration_s=round(time.monotonic() - item.started, 6),
        )
        self.outcomes.append(outcome)
        if not outcome.ok and self.report is not None:
            self.report(outcome.describe())

    def close(self) -> None:
        """Wait for hooks still running and remove temporary files."""
        self.wait()
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None


def _copy_output(read_fd: int, log: _LazyLog) -> None:
    """Copy a hook's output pipe to its log until every writer has closed it."""
    try:
        while data := os.read(read_fd, 65536):
            log.write(data)
    except OSError:
        pass
    finally:
        os.close(read_fd)
        log.close()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            process.wait(timeout=2.0)
            break
        except subprocess.TimeoutExpired:
            continue


def _stderr(message: str) -> None:
    sys.stderr.write(f"alfredc: warning: {message}\n")
    sys.stderr.flush()


def attach(
    bus: EventBus,
    plan: Plan,
    *,
    options: Any = None,
    report: Callable[[str], object] | None = _stderr,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> HookRunner | None:
    """Subscribe the hooks of ``plan`` to ``bus`` (what ``alfredc run`` calls); None without hooks.

    ``options`` (a :class:`RunOptions`) gives the base environment. Failed hooks are
    reported with ``report`` (default: a warning line on stderr).
    """
    if not plan.hooks:
        return None
    env = getattr(options, "env", None)
    runner = HookRunner(plan, env=env, report=report, timeout_s=timeout_s)
    bus.subscribe(runner.on_event)
    return runner
