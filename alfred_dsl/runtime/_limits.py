"""Agent concurrency shared by the runs of one process.

An agent's ``concurrency`` is "at most this many stages on this agent at once". A worker
executing several runs of the same workflow in one Trio loop must count the stages of all
of them: :class:`AgentSlots` is that count, keyed by the agent's declaring file and name.
Each run compares the shared count with its own agent's ``concurrency`` (a file edited
between two runs may declare another limit: each run applies the one it compiled).

All runs sharing one :class:`AgentSlots` must live in the same Trio loop (one thread):
the counts are plain integers. Separate processes do not share them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..compiler._plan import Plan, PlanAgent

__all__ = ["AgentKey", "AgentSlots", "agent_key"]

#: (absolute path of the file that declares the agent, agent name)
AgentKey = tuple[str, str]


def agent_key(plan: Plan, agent: PlanAgent) -> AgentKey:
    """The identity of ``agent`` across runs: its declaring file (the plan's entry file when
    the agent has no span, e.g. a plan built in code) and its name."""
    file = agent.span.file if agent.span is not None else plan.source
    return (os.path.abspath(file) if file else "", agent.name)


class AgentSlots:
    """How many stages run on each agent now, over every run that shares this object.

    ``running`` is read and written by the scheduler directly (hot path). A run joins with
    a ``wake`` callback; when one run frees a slot, the others are woken (they may have a
    stage waiting for that agent).
    """

    __slots__ = ("_listeners", "running")

    def __init__(self) -> None:
        self.running: dict[AgentKey, int] = {}
        self._listeners: dict[int, Callable[[], None]] = {}

    def join(self, token: int, wake: Callable[[], None]) -> None:
        """Register a run (``token``: any id unique among the joined runs)."""
        self._listeners[token] = wake

    def leave(self, token: int) -> None:
        self._listeners.pop(token, None)

    def released(self, token: int) -> None:
        """Run ``token`` freed a slot: wake the other runs (the releasing run refills itself)."""
        if len(self._listeners) > 1:
            for other, wake in list(self._listeners.items()):
                if other != token:
                    wake()

    def total(self) -> int:
        """Stages running now over all agents and runs (for tests and metrics)."""
        return sum(self.running.values())
