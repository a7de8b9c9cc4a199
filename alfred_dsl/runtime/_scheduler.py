"""The Trio scheduler: runs a plan's stages in dependency order."""

from __future__ import annotations

from .._plan import Plan
from ._events import EventBus
from ._results import RunOptions, RunResult
from ._store import StateStore

__all__ = ["execute"]


async def execute(
    plan: Plan,
    *,
    store: StateStore,
    options: RunOptions,
    bus: EventBus,
    resume: str | None = None,
) -> RunResult:
    """Execute ``plan``; every state change goes to ``bus`` and ``store``.

    ``resume``: the id of an earlier run of the same workflow to continue; its stages
    that succeeded are not run again and their outputs are reused. Delivery is
    at-least-once: a stage that was running when the earlier process died runs again.
    """
    raise NotImplementedError("in progress")
