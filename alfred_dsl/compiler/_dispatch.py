"""The scheduler's dispatch policy as pure functions, shared by the Trio runtime
(``runtime/_scheduler.py``) and ``alfredc simulate`` (``_simulate.py``), so that the
simulator orders, places and retries stages exactly as a run does.

Free of Trio and of any clock: each function takes what it decides on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from ._plan import PlanStage

__all__ = ["pick_agent", "ready_key", "retry_agent", "retry_delay"]

#: An agent: its name in the runtime, its index in the simulator.
A = TypeVar("A")


def ready_key(spec: PlanStage, index: int) -> tuple[int, float, int, str]:
    """The order of ready stages (smallest first): the highest ``priority``, then the least
    slack, then declaration order (``index`` in the plan)."""
    return (-spec.priority, spec.slack_s, index, spec.name)


def retry_delay(
    backoff_s: float, max_backoff_s: float | None, failed_attempt: int, jitter: float, u: float
) -> float:
    """The wait after attempt ``failed_attempt`` (1-based) failed: ``backoff * 2**(n-1)``,
    capped by ``max_backoff``, then multiplied by ``1 - jitter * u`` (``u`` uniform in [0, 1),
    ``jitter`` clamped to [0, 1])."""
    delay = float(max(backoff_s, 0.0)) * float(2 ** (failed_attempt - 1))
    if max_backoff_s is not None:
        delay = min(delay, max_backoff_s)
    return delay * (1 - min(max(jitter, 0.0), 1.0) * u)


def pick_agent(free: Iterable[A], busy: Callable[[A], int], order: Callable[[A], int]) -> A:
    """Among the agents with a free slot, the least busy, then the first declared."""
    return min(free, key=lambda a: (busy(a), order(a)))


def retry_agent(
    free: Iterable[A], failed: A, busy: Callable[[A], int], order: Callable[[A], int]
) -> A:
    """Where a retry goes: the least busy agent with a free slot, preferring another agent
    than the one that just failed when they are equally busy, then the first declared."""
    return min(free, key=lambda a: (busy(a), a == failed, order(a)))
