"""The compiled plan: immutable, hashable, and free of networkx objects.

A :class:`Plan` is what back ends consume: the runtime executes it, renderers draw it,
exporters (Airflow, Argo, Dask) translate it. Values that came from the document
(inputs, env, ``run``) keep their ``${...}`` text; the runtime resolves them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from ._source import Span

if TYPE_CHECKING:  # the plan module itself stays free of the analysis and its networkx
    from ._graph import Analysis
    from ._model import ResolvedWorkflow

__all__ = [
    "DEFAULT_MAX_LOG", "FrozenMap", "Hook", "Plan", "PlanAgent", "PlanStage", "build_plan", "freeze", "thaw",
]

OnFailure = Literal["stop", "continue"]
RunIf = Literal["success", "always", "failure"]
#: ``max_log`` when neither the stage, its agent nor ``defaults`` set one: 100MB.
DEFAULT_MAX_LOG = 100_000_000
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
    """An executor that stages run on: its kind, what it runs, its capabilities and concurrency limit."""

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
    """One stage of a plan: what to run, on which agents, after which stages, and its CPM figures."""

    name: str                         # full name, e.g. "auth.specification"
    group: tuple[str, ...] = ()       # the `use` aliases it came through (outermost first), its fan-out group
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
    max_log: int | None = DEFAULT_MAX_LOG   # bytes of output kept in the attempt's log
    #: What an attempt holds on a cluster worker (`resources = {...}` of the stage; the agent's
    #: are in its options): name -> amount, memory as written ("4GiB").
    resources: FrozenMap = field(default_factory=FrozenMap)
    when: bool | str = True           # True, False or a "${...}" expression
    on_failure: OnFailure = "stop"
    description: str = ""
    fan_out: str = ""                 # the `matrix` stage it is a member of ("auth.test"), else ""
    matrix: FrozenMap = field(default_factory=FrozenMap)   # its combination: {"python": "3.11", ...}
    #: An approval stage (kind "approval"): by, users, timeout_s, on_timeout (see _approvals.py).
    approve: FrozenMap | None = None
    #: What one attempt may spend: usd, tokens (see _budget.py).
    cost: FrozenMap = field(default_factory=FrozenMap)
    #: An mcp stage's call: tool, arguments (``${...}`` kept), docs (see _mcpcheck.py).
    mcp: FrozenMap | None = None
    sources: tuple[str, ...] = ()     # globs of the files its fingerprint covers (incremental runs)
    produces: tuple[str, ...] = ()    # globs of the files it must write
    run_if: RunIf = "success"
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
    """The compiled, immutable form of one workflow: stages in declaration order and their analysis."""

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
    #: The most a run may spend: usd, tokens, time (seconds) (see _budget.py).
    budget: FrozenMap = field(default_factory=FrozenMap)
    timeout_s: float | None = None               # the whole run's time limit
    concurrency_group: str | None = None         # runs in one group never overlap
    cancel_in_progress: bool = False             # a new run cancels the group's running one

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


def build_plan(resolved: ResolvedWorkflow, analysis: Analysis) -> Plan:
    """The plan of ``resolved``: its stages with their direct dependencies and CPM figures.

    ``after`` lists every direct dependency (declared ``after``, implied by a reference or
    by a ``use ... after``): first those the stage names itself, in its own order, then
    the implied ones in the order their edges were found.
    """
    stages = []
    for stage in resolved.stages:
        preds = analysis.predecessors.get(stage.name, ())
        pred_set = set(preds)
        named = [name for name in dict.fromkeys(stage.after) if name in pred_set]
        named_set = set(named)
        after = (*named, *(name for name in preds if name not in named_set))
        timing = analysis.timings.get(stage.name)
        if timing is None:  # not analysed (cannot happen for a plan built from analyse())
            stages.append(replace(stage, after=after))
            continue
        stages.append(
            replace(
                stage,
                after=after,
                estimate_s=timing.estimate_s,
                earliest_start_s=timing.earliest_start_s,
                earliest_finish_s=timing.earliest_finish_s,
                latest_start_s=timing.latest_start_s,
                latest_finish_s=timing.latest_finish_s,
                slack_s=timing.slack_s,
                layer=timing.layer,
                critical=timing.critical,
            )
        )
    return Plan(
        workflow=resolved.name,
        source=resolved.source,
        description=resolved.description,
        params=resolved.params,
        secrets=resolved.secrets,
        agents=resolved.agents,
        stages=tuple(stages),
        hooks=resolved.hooks,
        schedule=resolved.schedule,
        critical_path=tuple(analysis.critical_path),
        duration_s=analysis.duration_s,
        layers=tuple(tuple(layer) for layer in analysis.layers),
        max_parallelism=analysis.max_parallelism,
        budget=resolved.budget,
        timeout_s=resolved.timeout_s,
        concurrency_group=resolved.concurrency_group,
        cancel_in_progress=resolved.cancel_in_progress,
    )
