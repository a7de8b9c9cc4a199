"""alfred as a service: a durable run queue, workers, cron schedules, run control, metrics.

:class:`Engine` is the Python entry point (submit runs, control them, run a worker,
register event handlers). The queue lives in the runtime's state database, so the
``alfredc submit/worker/status/cancel/pause/resume/metrics`` commands and Python code
share it.
"""

from __future__ import annotations

from ._engine import SERVICE_EVENT_TYPES, Engine
from ._metrics import Metrics, collect
from ._queue import PRIORITIES, QueueEntry, QueueError, RunQueue, Schedule
from ._worker import Worker, WorkerOptions

__all__ = [
    "PRIORITIES",
    "SERVICE_EVENT_TYPES",
    "Engine",
    "Metrics",
    "QueueEntry",
    "QueueError",
    "RunQueue",
    "Schedule",
    "Worker",
    "WorkerOptions",
    "collect",
]
