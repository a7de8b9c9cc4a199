"""The compiled plan: immutable, hashable, and free of networkx objects.

A :class:`Plan` is what back ends consume: the runtime executes it, renderers draw it,
exporters (Airflow, Argo, Dask) translate it. Values that came from the document
(inputs, env, ``run``, ``when``) that interpolate are :class:`~alfred_dsl._expr.Interpolated`:
their ``${...}`` text with the template parsed here, once, so that the runtime evaluates
them without the parser (a plan built by hand gets the same on construction).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from typing import Any, Literal

from .._expr import Interpolated, Ref, Template
from .._source import SourceFile, Span

__all__ = [
    "DEFAULT_MAX_LOG", "NO_STAGE_EXTRAS", "STAGE_EXTRA_FIELDS", "FrozenMap", "Hook", "Plan", "PlanAgent",
    "PlanStage", "freeze", "json_number", "new_stage", "plan_json", "spend_json", "stage_extras_json",
    "stage_json", "thaw",
]

OnFailure = Literal["stop", "continue"]
RunIf = Literal["success", "always", "failure"]
#: ``max_log`` when neither the stage, its agent nor ``defaults`` set one: 100MB.
DEFAULT_MAX_LOG = 100_000_000
ExecutorKind = str  # "command" | "python" | "http"; more may come


class FrozenMap(Mapping[str, Any]):
    """A read-only, hashable mapping (values frozen with :func:`freeze`)."""

    __slots__ = ("_data", "_hash", "_text_parsed")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = {k: freeze(v) for k, v in (data or {}).items()}
        self._hash: int | None = None
        self._text_parsed = False  # no plain string with ``${`` is left in it (see _interpolate)

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
        if type(other) is FrozenMap:  # without copies: the plan cache compares every field
            return self._data == other._data
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


#: Where a template parsed for the plan says it comes from (as the runtime's own parse did).
_NOWHERE = SourceFile("<runtime>", "")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@lru_cache(maxsize=4096)
def interpolated(text: str) -> Interpolated:
    """``text`` (which holds ``${``) with its template parsed."""
    from ._view import _fast_template

    # Plain references (the usual case) are split without the parser, when every part is a
    # name as the grammar spells one; anything else is the parser's.
    fast = _fast_template(text, _NOWHERE.whole(), None)
    if fast is not None and all(
        _NAME.fullmatch(part) for ref in fast.parts if isinstance(ref, Ref) for part in ref.parts
    ):
        return Interpolated(text, fast)
    from .syntax import parse_template  # the Lark parser is only loaded when needed

    template, diagnostics = parse_template(text, _NOWHERE.whole())
    if isinstance(template, Template):
        return Interpolated(text, template)
    return Interpolated(text, None, next((d.message for d in diagnostics), "invalid interpolation"))


def _parsed(value: Any) -> Any:
    """``value`` with every string holding ``${`` made :class:`Interpolated` (itself if none is)."""
    kind = type(value)
    if kind is str:
        return interpolated(value) if "${" in value else value
    if kind is FrozenMap:
        if not value:
            return value
        items = {key: _parsed(item) for key, item in value.items()}
        changed = any(items[key] is not item for key, item in value.items())
        return FrozenMap(items) if changed else value
    if kind is tuple:
        parts = tuple(_parsed(item) for item in value)
        return parts if any(a is not b for a, b in zip(parts, value, strict=True)) else value
    return value  # None, a bool, a number, an Interpolated already


def _interpolate(owner: Any, fields: tuple[str, ...]) -> None:
    # Per stage, and again for each ``replace``: the usual values are dispatched inline.
    for name in fields:
        value = getattr(owner, name)
        kind = type(value)
        if kind is str:
            if "${" not in value:
                continue
        elif kind is FrozenMap:
            if value._text_parsed:
                continue
            if not _holds_text(value):
                value._text_parsed = True
                continue
        elif kind is tuple:
            if not _holds_text(value):
                continue
        else:
            continue  # None, a bool, an Interpolated already
        parsed = _parsed(value)
        if type(parsed) is FrozenMap:
            parsed._text_parsed = True
        if parsed is not value:
            object.__setattr__(owner, name, parsed)


def _holds_text(value: Any) -> bool:
    """Whether a map or tuple holds a plain string with ``${`` (one to parse)."""
    for item in value.values() if type(value) is FrozenMap else value:
        kind = type(item)
        if kind is str:
            if "${" in item:
                return True
        elif (kind is FrozenMap or kind is tuple) and _holds_text(item):
            return True
    return False


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

    def __post_init__(self) -> None:
        _interpolate(self, ("run", "url", "env"))

    name: str
    kind: ExecutorKind
    run: str | tuple[str, ...] | None = None
    call: str | None = None
    url: str | None = None
    capabilities: tuple[str, ...] = ()
    concurrency: int = 1
    fail_rate: float = 0              # `alfredc simulate`: the chance that an attempt on it fails
    env: FrozenMap = field(default_factory=FrozenMap)
    #: Everything else the agent block said (headers, method, ...), for executors that want it.
    options: FrozenMap = field(default_factory=FrozenMap)
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanStage:
    """One stage of a plan: what to run, on which agents, after which stages, and its CPM figures."""

    def __post_init__(self) -> None:
        _interpolate(self, ("run", "inputs", "env", "when"))

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
    #: `alfredc simulate`: the standard deviation of the duration (None: a quarter of the estimate)
    #: and the chance that an attempt fails (None: its agent's ``fail_rate``).
    spread_s: float | None = None
    fail_rate: float | None = None
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
    #: ``for_each = stages.X.outputs.KEY``: (X, KEY), the list it fans out over at run time
    #: (see _foreach.py); () for an ordinary stage.
    for_each: tuple[str, ...] = ()
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


def _field_default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else MISSING


_REQUIRED = frozenset(f.name for f in fields(PlanStage) if _field_default(f) is MISSING)
_TEXT_FIELDS = ("run", "inputs", "env", "when")


def new_stage(values: Mapping[str, Any]) -> PlanStage:
    """``PlanStage(**values)`` at a fraction of the cost (the resolver makes one per stage:
    100,000 in a large plan). The frozen dataclass's ``__init__`` goes through
    ``object.__setattr__`` for each of its 40-odd fields; this sets the slots directly, by a
    function made once per set of given field names (a resolver gives a few): each given
    field from ``values``, each other one its default. The result is the same,
    ``__post_init__``'s parsing of ``${...}`` included (a default holds none). Defaults are
    shared as the dataclass shares them (a field with a factory gets one object made once
    here: each such default is an immutable empty map). Not :func:`alfred_dsl._make.maker`,
    which makes classes whose ``__init__`` only sets every field: a stage is given a few of
    its fields, the rest defaulted, and its ``__post_init__`` runs."""
    names = tuple(values)
    make = _stage_makers.get(names)
    if make is None:
        make = _stage_maker(names)
        if len(_stage_makers) < _MAX_STAGE_MAKERS:
            _stage_makers[names] = make
    return make(values)


#: :func:`new_stage`'s functions by the names of the fields given, in their order.
_stage_makers: dict[tuple[str, ...], Callable[[Mapping[str, Any]], PlanStage]] = {}
_MAX_STAGE_MAKERS = 1024


def _stage_maker(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], PlanStage]:
    if not _REQUIRED.issubset(names):
        raise TypeError(f"new_stage() missing required fields: {sorted(_REQUIRED.difference(names))}")
    known = {f.name for f in fields(PlanStage)}
    for name in names:
        if name not in known:
            raise TypeError(f"new_stage() got an unexpected field {name!r}")
    given = set(names)
    namespace: dict[str, Any] = {"new": object.__new__, "cls": PlanStage, "interpolate": _interpolate}
    lines = ["def make(values):", "    stage = new(cls)"]
    for number, f in enumerate(fields(PlanStage)):
        namespace[f"set{number}"] = getattr(PlanStage, f.name).__set__
        if f.name in given:
            lines.append(f"    set{number}(stage, values[{f.name!r}])")
        else:
            namespace[f"default{number}"] = _field_default(f)
            lines.append(f"    set{number}(stage, default{number})")
    texts = tuple(name for name in _TEXT_FIELDS if name in given)
    if texts:
        lines.append(f"    interpolate(stage, {texts!r})")
    lines.append("    return stage")
    exec(compile("\n".join(lines) + "\n", "<new_stage>", "exec"), namespace)  # made from the fields only
    make: Callable[[Mapping[str, Any]], PlanStage] = namespace["make"]
    return make


@dataclass(frozen=True, slots=True, kw_only=True)
class Hook:
    """A workflow-level handler: ``on failure { run = "..." }``."""

    def __post_init__(self) -> None:
        _interpolate(self, ("run",))

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

    def to_json(self) -> dict[str, Any]:
        """The plan in the JSON shape of spec section 5 (plus ``source`` and ``params``):
        what ``alfredc plan --format json`` prints and the runs table stores."""
        return plan_json(self, [stage_json(stage) for stage in self.stages])


def plan_json(plan: Plan, stages: Any) -> dict[str, Any]:
    """:meth:`Plan.to_json` with ``stages`` as its ``"stages"``: a renderer that writes the
    stages' JSON its own way (render/_plan.py) passes what stands for them."""
    data: dict[str, Any] = {
        "workflow": plan.workflow,
        "stages": stages,
        "critical_path": list(plan.critical_path),
        "duration_s": json_number(plan.duration_s),
        "layers": [list(layer) for layer in plan.layers],
        "max_parallelism": plan.max_parallelism,
        "source": plan.source,
        "params": thaw(plan.params),
        **spend_json(plan),
    }
    if plan.timeout_s is not None:
        data["timeout_s"] = json_number(plan.timeout_s)
    if plan.concurrency_group is not None:
        data["concurrency_group"] = plan.concurrency_group
        data["cancel_in_progress"] = plan.cancel_in_progress
    return data


def json_number(value: float) -> int | float:
    """Seconds as JSON wants them: ``1200`` rather than ``1200.0`` when whole."""
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else as_float


def spend_json(plan: Plan) -> dict[str, Any]:
    """``budget`` and ``worst_case`` (see _budget.py), when the plan has a budget or costs."""
    if not plan.budget and not any(stage.cost for stage in plan.stages):
        return {}
    from ._budget import worst_case  # _budget imports this module

    worst = worst_case(plan)
    return {"budget": thaw(plan.budget), "worst_case": {k: json_number(v) for k, v in worst.totals.items()}}


def stage_json(stage: PlanStage) -> dict[str, Any]:
    """One stage in the JSON shape of spec section 5 (an element of the plan's ``stages``).

    render/_plan.py writes the same text without this dict for large plans: a change of
    keys here is one there too (tests/test_plan.py compares the two).
    """
    # Keys and order of spec section 5 first; additions after them.
    data: dict[str, Any] = {
        "name": stage.name,
        "agent": stage.agents[0] if stage.agents else None,
        "after": list(stage.after),
        "estimate_s": json_number(stage.estimate_s),
        "earliest_start_s": json_number(stage.earliest_start_s),
        "earliest_finish_s": json_number(stage.earliest_finish_s),
        "latest_start_s": json_number(stage.latest_start_s),
        "latest_finish_s": json_number(stage.latest_finish_s),
        "slack_s": json_number(stage.slack_s),
        "layer": stage.layer,
        "critical": stage.critical,
        "agents": list(stage.agents),
        "group": list(stage.group),
        "priority": stage.priority,
        "when": stage.when,
    }
    data.update(stage_extras_json(stage))
    return data


#: The fields behind :func:`stage_extras_json`, and their values when it has nothing to say.
STAGE_EXTRA_FIELDS = (
    "approve", "cost", "spread_s", "fail_rate", "for_each", "fan_out", "sources", "produces", "run_if",
)
#: Their defaults: a stage with these has no extra keys.
NO_STAGE_EXTRAS = tuple(
    _field_default(f) for name in STAGE_EXTRA_FIELDS for f in fields(PlanStage) if f.name == name
)


def stage_extras_json(stage: PlanStage) -> dict[str, Any]:
    """The keys of :func:`stage_json` that only some stages have, after the others."""
    data: dict[str, Any] = {}
    # Only on stages that have them: approval stages, declared costs.
    if stage.approve is not None:
        data["approve"] = thaw(stage.approve)
    if stage.cost:
        data["cost"] = thaw(stage.cost)
    # `alfredc simulate`'s figures, when the stage sets them.
    if stage.spread_s is not None:
        data["spread_s"] = json_number(stage.spread_s)
    if stage.fail_rate is not None:
        data["fail_rate"] = json_number(stage.fail_rate)
    if stage.for_each:  # dynamic fan-out: how many instances is only known at run time
        data["for_each"] = {"stage": stage.for_each[0], "output": stage.for_each[1]}
    if stage.fan_out:  # a member of a `matrix` stage: its group and its combination
        data["fan_out"] = stage.fan_out
        data["matrix"] = thaw(stage.matrix)
    # Incremental runs and cleanup stages: only when set, so older plans read the same.
    if stage.sources:
        data["sources"] = list(stage.sources)
    if stage.produces:
        data["produces"] = list(stage.produces)
    if stage.run_if != "success":
        data["run_if"] = stage.run_if
    return data
