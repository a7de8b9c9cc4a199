"""Run events: what happened during a run, in order, as data.

The runtime emits an :class:`Event` for every state change of the run and of each stage.
Events go to the :class:`EventBus` (live view, ``--events`` file, hooks, API callbacks) and
to the state store's ``events`` table. Secret values are masked (``***``) before emission.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "APPROVAL_DECIDED",
    "APPROVAL_REQUESTED",
    "BUDGET_EXCEEDED",
    "EVENT_TYPES",
    "FINAL_RUN_EVENTS",
    "RUN_CANCELLED",
    "RUN_COMPLETED",
    "RUN_FAILED",
    "RUN_INTERRUPTED",
    "RUN_PAUSED",
    "RUN_RESUMED",
    "RUN_STARTED",
    "STAGE_CANCELLED",
    "STAGE_EXPANDED",
    "STAGE_FAILED",
    "STAGE_OUTPUT",
    "STAGE_READY",
    "STAGE_RETRYING",
    "STAGE_SKIPPED",
    "STAGE_STARTED",
    "STAGE_SUCCEEDED",
    "STAGE_UPSTREAM_FAILED",
    "STAGE_UP_TO_DATE",
    "Event",
    "EventBus",
    "EventHandler",
]

_log = logging.getLogger("alfred_dsl.runtime")

RUN_STARTED: Final = "run_started"          # data: workflow, source, params, stages (names), state_dir
RUN_RESUMED: Final = "run_resumed"          # data: as run_started + reused (succeeded stages)
STAGE_READY: Final = "stage_ready"          # data: {}; bus only (not stored), seq 0
STAGE_STARTED: Final = "stage_started"      # attempt; data: agent, log (path or None), pid (command stages)
STAGE_OUTPUT: Final = "stage_output"        # optional; data: line
STAGE_RETRYING: Final = "stage_retrying"    # attempt (the failed one); data: error, delay_s
STAGE_SUCCEEDED: Final = "stage_succeeded"  # attempt; data: outputs, duration_s
STAGE_FAILED: Final = "stage_failed"        # attempt; data: error, exit_code, duration_s
STAGE_UP_TO_DATE: Final = "stage_up_to_date"  # data: reason, fingerprint, from_run, outputs
STAGE_SKIPPED: Final = "stage_skipped"      # data: reason ("when is false" or "upstream X was skipped")
STAGE_UPSTREAM_FAILED: Final = "stage_upstream_failed"  # data: upstream (name of the failed dependency)
STAGE_CANCELLED: Final = "stage_cancelled"  # attempt (or None if it never started); data: reason
# A `for_each` stage's list became its instances; data: source, count, instances, items (the first 100).
STAGE_EXPANDED: Final = "stage_expanded"
# Approval stages (kind "approval"): the request, then the decision (or the timeout's).
APPROVAL_REQUESTED: Final = "approval_requested"  # attempt; data: by, users, deadline, command, waiting
APPROVAL_DECIDED: Final = "approval_decided"  # attempt; data: decision, by, comment, decided_at, timed_out
# A budget stops the run: no further stage starts; data: reason, spent, budget, refused (a stage or None).
BUDGET_EXCEEDED: Final = "budget_exceeded"
RUN_COMPLETED: Final = "run_completed"      # data: state "succeeded", counts, duration_s
# data: state "failed", counts, failed (stage names), duration_s, reason (a budget stop, or the
# workflow's timeout)
RUN_FAILED: Final = "run_failed"
RUN_INTERRUPTED: Final = "run_interrupted"  # data: state "interrupted", counts, signal, duration_s
# Service control (`alfredc pause/resume/cancel`): RUN_RESUMED then has data {"reason": "unpaused"}.
RUN_PAUSED: Final = "run_paused"            # data: {}
RUN_CANCELLED: Final = "run_cancelled"      # data: state "cancelled", counts, duration_s

#: Every event type, in the order a run usually goes through them.
EVENT_TYPES: Final[tuple[str, ...]] = (
    RUN_STARTED,
    RUN_RESUMED,
    STAGE_READY,
    STAGE_EXPANDED,
    STAGE_STARTED,
    STAGE_OUTPUT,
    STAGE_RETRYING,
    STAGE_SUCCEEDED,
    STAGE_FAILED,
    STAGE_SKIPPED,
    STAGE_UP_TO_DATE,
    STAGE_UPSTREAM_FAILED,
    STAGE_CANCELLED,
    APPROVAL_REQUESTED,
    APPROVAL_DECIDED,
    BUDGET_EXCEEDED,
    RUN_COMPLETED,
    RUN_FAILED,
    RUN_INTERRUPTED,
    RUN_PAUSED,
    RUN_CANCELLED,
)

#: The event types that end a run: exactly one of them is the last event of each execution.
FINAL_RUN_EVENTS: Final = frozenset({RUN_COMPLETED, RUN_FAILED, RUN_INTERRUPTED, RUN_CANCELLED})


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One thing that happened in a run.

    ``time`` is wall-clock seconds since the epoch (``time.time()``); ``attempt`` is
    1-based; ``seq`` is the event's position in its run (1, 2, ...; continues across
    resumes) and is filled in by the runtime. ``stage_ready`` events are not stored (one
    per stage, only a live view shows them): they reach the bus only while it has a
    subscriber, with ``seq`` 0, so the stored events keep contiguous numbers.
    """

    type: str
    run_id: str
    time: float
    stage: str | None = None
    attempt: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (one line of an ``--events`` file)."""
        return {
            "seq": self.seq,
            "type": self.type,
            "run_id": self.run_id,
            "time": self.time,
            "stage": self.stage,
            "attempt": self.attempt,
            "data": dict(self.data),
        }


EventHandler = Callable[[Event], object]


class EventBus:
    """A tiny synchronous publish/subscribe hub.

    Handlers run in subscription order on the runtime's thread, so they must be quick.
    A handler that raises is logged (logger ``alfred_dsl.runtime``) and kept; it never
    stops the run or the other handlers.
    """

    __slots__ = ("_routes", "_subscriptions", "errors")

    def __init__(self) -> None:
        self._subscriptions: list[tuple[EventHandler, frozenset[str]]] = []
        #: Event type -> the handlers that get it, in subscription order (built at first use).
        self._routes: dict[str, tuple[EventHandler, ...]] = {}
        #: How many times a handler raised (for tests and the final summary).
        self.errors = 0

    def subscribe(self, handler: EventHandler, *, ignore: Collection[str] = ()) -> Callable[[], None]:
        """Call ``handler(event)`` for every event from now on, except those of the types in
        ``ignore`` (a view that shows no ``stage_ready`` spares the run building them);
        returns an unsubscribe function."""
        subscription = (handler, frozenset(ignore))
        self._subscriptions.append(subscription)
        self._routes = {}

        def unsubscribe() -> None:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)
                self._routes = {}

        return unsubscribe

    @property
    def wanted(self) -> bool:
        """Whether anyone listens."""
        return bool(self._subscriptions)

    def wants(self, type_: str) -> bool:
        """Whether a handler gets events of ``type_`` (events that are not stored are built only then)."""
        return bool(self._route(type_))

    def _route(self, type_: str) -> tuple[EventHandler, ...]:
        handlers = self._routes.get(type_)
        if handlers is None:
            handlers = tuple(h for h, ignore in self._subscriptions if type_ not in ignore)
            self._routes[type_] = handlers
        return handlers

    def emit(self, event: Event) -> None:
        for handler in self._route(event.type):
            try:
                handler(event)
            except Exception:  # a broken handler must not stop the run
                self.errors += 1
                _log.exception("event handler %r failed on %s", handler, event.type)
