"""The Trio runtime: executors, scheduler, durable state (SQLite) and run events.

Entry points: :func:`start_run` (async; what the CLI, the Python API and the service's
worker call) and the lower-level :func:`execute` run a compiled :class:`~alfred_dsl.compiler._plan.Plan`;
:class:`StateStore` is the run database; :class:`EventBus` carries :class:`Event` s to
the live view, the ``--events`` file, hooks and API callbacks.
"""

from __future__ import annotations

from .._codecache import cover_attrs

cover_attrs()  # before trio's attrs classes are made (a no-op outside the `alfredc` process)

from ._events import EVENT_TYPES, FINAL_RUN_EVENTS, Event, EventBus, EventHandler  # noqa: E402
from ._limits import AgentSlots  # noqa: E402
from ._results import FINAL_STAGE_STATES, RunOptions, RunResult, StageResult  # noqa: E402
from ._scheduler import execute  # noqa: E402
from ._start import find_run, start_run  # noqa: E402
from ._store import AttemptRecord, RunRecord, StageRecord, StateStore, StoreError, default_state_dir  # noqa: E402

__all__ = [
    "EVENT_TYPES",
    "FINAL_RUN_EVENTS",
    "FINAL_STAGE_STATES",
    "AgentSlots",
    "AttemptRecord",
    "Event",
    "EventBus",
    "EventHandler",
    "RunOptions",
    "RunRecord",
    "RunResult",
    "StageRecord",
    "StageResult",
    "StateStore",
    "StoreError",
    "default_state_dir",
    "execute",
    "find_run",
    "start_run",
]
