"""The compiled plan: immutable, hashable, and free of networkx objects.

A :class:`Plan` is what back ends consume: the runtime executes it, renderers draw it,
exporters (Airflow, Argo, Dask) translate it. Values that came from the document
(inputs, env, ``run``) keep their ``${...}`` text; the runtime resolves them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._source import Span

__all__ = ["FrozenMap", "Hook", "Plan", "PlanAgent", "PlanStage", "freeze", "thaw"]

OnFailure = Literal["stop", "continue"]
ExecutorKind = str  # "command" | "python" | "http"; more may come


class FrozenMap(Mapping[str, Any]):
    """A read-only, hashable mapping (values frozen with :func:`freeze`)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = {k: freeze(v) for k, v in (data or {}).items()}
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._data) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


def freeze(value: Any) -> Any:
    """Deep-convert JSON-like data: dicts to FrozenMap, lists to tuples."""
    if isinstance(value, FrozenMap):
        return value
    if isinstance(value, Mapping):
        return FrozenMap(value)
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The inverse of :func:`freeze`: plain dicts and lists, ready for JSON."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanAgent:
    name: str
    kind: ExecutorKind
    run: str | tuple[str, ...] | None = None
    call: str | None = None
    url: str | None = None
    capabilities: tuple[str, ...] = ()
    concurrency: int = 1
    env: FrozenMap = field(default_factory=FrozenMap)
    #: Everything else the agent block said (headers, method, ...), for executors that want it.
    options: FrozenMap = field(default_factory=FrozenMap)
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanStage:
    name: str                         # full name, e.g. "auth.specification"
    group: tuple[str, ...] = ()       # the `use` aliases it came through, outermost first
    agents: tuple[str, ...]           # the agent, or every agent matching `requires`
    kind: ExecutorKind
    run: str | tuple[str, ...] | None = None
    call: str | None = None
    inputs: FrozenMap = field(default_factory=FrozenMap)
    env: FrozenMap = field(default_factory=FrozenMap)
    cwd: str = "."                    # absolute directory the stage runs in
    after: tuple[str, ...] = ()       # direct dependencies (declared and implied), declaration order
    outputs: tuple[str, ...] = ()     # declared outputs, empty if undeclared
    estimate_s: float = 0
    priority: int = 0                 # low 0, medium 1, high 2, critical 3, or any integer
    timeout_s: float | None = None
    retries: int = 0
    backoff_s: float = 0
    max_backoff_s: float | None = None
    when: bool | str = True           # True, False or a "${...}" expression
    on_failure: OnFailure = "stop"
    description: str = ""
    # -- critical-path analysis -----------------------------------------------------
    earliest_start_s: float = 0
    earliest_finish_s: float = 0
    latest_start_s: float = 0
    latest_finish_s: float = 0
    slack_s: float = 0
    layer: int = 0
    critical: bool = False
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hook:
    """A workflow-level handler: ``on failure { run = "..." }``."""

    event: str                        # "success" | "failure" | "stage_failed" | ...
    run: str | tuple[str, ...]
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    workflow: str
    source: str                       # path of the file that declares the workflow
    description: str = ""
    params: FrozenMap = field(default_factory=FrozenMap)   # resolved param values
    secrets: tuple[str, ...] = ()     # names referenced as secrets.NAME
    agents: tuple[PlanAgent, ...] = ()
    stages: tuple[PlanStage, ...] = ()                      # declaration order
    hooks: tuple[Hook, ...] = ()
    schedule: str | None = None
    critical_path: tuple[str, ...] = ()
    duration_s: float = 0
    layers: tuple[tuple[str, ...], ...] = ()
    max_parallelism: int = 0

    def stage(self, name: str) -> PlanStage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def agent(self, name: str) -> PlanAgent:
        for agent in self.agents:
            if agent.name == name:
                return agent
        raise KeyError(name)
