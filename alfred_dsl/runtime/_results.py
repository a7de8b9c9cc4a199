"""The options and the results of a run (the runtime's public data types)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._executors import Executor

__all__ = [
    "FINAL_STAGE_STATES",
    "RunOptions",
    "RunResult",
    "StageResult",
]

#: Stage states. A stage is ``pending`` until its dependencies are done, ``running`` while
#: an attempt (or the backoff before a retry) is in progress, then ends in one of the
#: final states.
PENDING: Final = "pending"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"
UPSTREAM_FAILED: Final = "upstream_failed"
CANCELLED: Final = "cancelled"
#: Not run: its fingerprint and products match its last success (incremental runs), or it
#: was not selected (``--only``/``--from``) and its outputs come from an earlier run.
UP_TO_DATE: Final = "up_to_date"
FINAL_STAGE_STATES: Final = frozenset({SUCCEEDED, FAILED, SKIPPED, UPSTREAM_FAILED, CANCELLED, UP_TO_DATE})

#: Exit statuses of ``alfredc run`` (spec section 6).
EXIT_SUCCEEDED, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How to execute a plan.

    ``max_concurrency``: stages running at once over all agents (default: CPU count).
    ``kill_grace_s``: after SIGTERM to a stage's process group (timeout, cancellation),
    how long to wait before SIGKILL. ``jitter``: each retry delay is multiplied by a
    random factor in ``[1 - jitter, 1]``. ``handle_signals``: SIGINT/SIGTERM cancel the
    run cleanly (state ``interrupted``) instead of raising KeyboardInterrupt; only
    possible on the main thread. ``env``: the base environment of command stages
    (default ``os.environ``); ``secrets.NAME`` and ``env.NAME`` are read from it too.
    ``cli_params``: the raw ``--param`` strings, recorded so that ``--resume`` can
    compile the same plan again. ``entry``: the path given to ``alfredc run``.
    ``flush_interval_s``: how often queued state changes are committed at most.
    """

    max_concurrency: int | None = None
    kill_grace_s: float = 5.0
    jitter: float = 0.1
    handle_signals: bool = False
    env: Mapping[str, str] | None = None
    cli_params: Mapping[str, str] = field(default_factory=dict)
    entry: str | None = None
    #: Queued state changes are committed at most this often (one transaction each).
    flush_interval_s: float = 0.05
    #: Incremental runs: re-run every stage (True) or these stages even when up to date.
    force: bool = False
    force_stages: frozenset[str] = frozenset()
    #: The stages to run (``--only``/``--from``/``--until``); None: all. See ``_selection``.
    selected: frozenset[str] | None = None
    #: How long ``run_if = always | failure`` stages may still run after a cancel, a signal
    #: or the workflow's timeout stopped the run.
    cleanup_grace_s: float = 300.0
    #: ``tcp://HOST:PORT`` of a Dask scheduler: command and python stages run on its workers.
    cluster: str | None = None
    #: Runs every attempt instead of the agent kind's executor (and no cgroup is made): the
    #: virtual executor of a run on Trio's virtual clock (``_virtual.py``). None: the usual ones.
    executor: Executor | None = None

    @property
    def concurrency(self) -> int:
        if self.max_concurrency is not None and self.max_concurrency >= 1:
            return self.max_concurrency
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True, kw_only=True)
class StageResult:
    """How one stage ended. Times are ``time.time()`` seconds; ``None`` if it never started."""

    name: str
    state: str
    agent: str | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 0
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    exit_code: int | None = None
    #: True when the stage succeeded in an earlier execution of the run (``--resume``).
    reused: bool = False

    @property
    def duration_s(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """How a run ended: ``state`` is ``succeeded``, ``failed`` or ``interrupted``."""

    run_id: str
    workflow: str
    state: str
    stages: Mapping[str, StageResult]      # declaration order
    started: float
    finished: float
    state_dir: str = ""
    #: ``resume`` of a run that had already succeeded: nothing ran, nothing was recorded.
    already_succeeded: bool = False

    @property
    def ok(self) -> bool:
        return self.state == SUCCEEDED

    @property
    def exit_status(self) -> int:
        """0 all stages succeeded or were skipped by ``when``, 1 a stage failed, 130 interrupted."""
        if self.state == "interrupted":
            return EXIT_INTERRUPTED
        return EXIT_SUCCEEDED if self.state == SUCCEEDED else EXIT_FAILED

    @property
    def duration_s(self) -> float:
        return self.finished - self.started

    def outputs(self, stage: str) -> Mapping[str, Any]:
        return self.stages[stage].outputs
