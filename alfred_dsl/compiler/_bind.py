"""Binding one workflow: its ``--param`` values, ``use`` templates expanded, every value
resolved, as a :class:`~alfred_dsl.compiler._model.ResolvedWorkflow` for the graph analysis.

:func:`resolve` is defensive: a bad value is skipped (the schema or the checks report it)
rather than raising. (Over 600 lines: the resolver's steps - expansion, binding, values,
one stage - share its per-workflow caches; the params, the choice of workflow and the
entry points, ``resolve`` and ``resolve_for_check``, are at the end.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._diagnostics import Diagnostic, error
from .._expr import (
    Expr,
    ExprError,
    Literal,
    Ref,
    Template,
    evaluate,
    references,
    render,
    substitute,
    to_text,
    unparse_template,
)
from .._source import Span
from .._values import PRIORITIES, did_you_mean, parse_duration, parse_param, parse_size
from . import _fanout, _foreach
from ._approvals import APPROVAL_KIND, approval_of
from ._budget import budget_of, cost_of
from ._document import Path as DocPath
from ._mcpcheck import MCP_KIND, MCP_STAGE_KEYS, docs_agents, mcp_of
from ._model import Dependencies, Edge, EdgeKind, ResolvedWorkflow, new_edge
from ._plan import DEFAULT_MAX_LOG, FrozenMap, Hook, PlanAgent, PlanStage, _parsed, new_stage
from ._runif import run_if_of
from ._view import (
    _NAME_KEYS,
    WorkspaceLike,
    _convert_default,
    _known,
    _map,
    _Model,
    _names,
    _stage_folder,
    _strings,
    parse_string,
)

__all__ = ["resolve", "resolve_for_check", "templates_of", "workflows_to_analyse"]


# -- resolve ---------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class _Context:
    """Where a stage instance comes from: its workflow, its `use` prefix and param bindings."""

    workflow: str
    prefix: str = ""  # "auth." for the stages of `use ... as auth`
    group: tuple[str, ...] = ()
    #: template param -> value in the top workflow's terms; None in the top workflow itself.
    bindings: dict[str, Any] | None = None
    parent: _Context | None = None
    stack: tuple[str, ...] = ()

    @property
    def plain(self) -> bool:
        return self.bindings is None and not self.prefix


# _Unit and _Instance are not frozen: one instance per stage, and a frozen dataclass pays an
# ``object.__setattr__`` per field. Nothing changes them once made.
@dataclass(slots=True)
class _Unit:
    """The stages a `use` alias stands for: all of them, those that start it (wait for
    nothing inside it) and those that end it (nothing inside it waits for them). A stage
    stands for itself: it has none (see ``_Resolver._sinks``)."""

    members: tuple[str, ...]
    sources: tuple[str, ...]
    sinks: tuple[str, ...]


@dataclass(slots=True)
class _Instance:
    ctx: _Context
    stage: str  # the name in its declaring workflow
    name: str  # the full name, prefixed by the `use` aliases


@dataclass(frozen=True, slots=True, kw_only=True)
class _Agents:
    """What a stage's choice of agents (its `agent`, or the agents matching its `requires`)
    gives it, whatever the stage: worked out once per choice (see ``_Resolver._agents_of``)."""

    names: tuple[str, ...]
    kind: str  # the first agent's
    run: Any  # the only agent's `run` and `call` (None when there are several)
    call: Any
    outputs: tuple[str, ...]  # the outputs all of them declare, sorted; () if one declares none
    max_log: int | None  # the smallest of theirs
    cost: FrozenMap  # the most any of them may spend, per unit


def _spanless(text: str) -> Template | None:
    """The template of a string that has no place in a file (a binding after substitution)."""
    from .._source import SourceFile

    source = SourceFile("<expression>", text)
    return parse_string(text, source.span(0, len(text)))[0]


def _as_expr(value: Any) -> Expr | None:
    """A bound value as an expression node, when it can be one."""
    if isinstance(value, str):
        if "${" not in value:
            return Literal(value=value)
        template = _spanless(value)
        return None if template is None else template.single
    if isinstance(value, bool | int | float):
        return Literal(value=value)
    return None


class _Resolver:
    def __init__(self, model: _Model, params: Mapping[str, Any]) -> None:
        self.model = model
        self.params = params
        self.instances: list[_Instance] = []
        #: Every dependency once, in the order found (the first declaration of a pair wins).
        self.edges: list[Edge] = []
        #: The stages each stage waits for, in the order of its edges (its ``after``): a tuple
        #: per stage (100,000 small dicts kept until the end would leave holes in the heap),
        #: and a dict for those that `use ... after` edges lead into (see _add_edge).
        self.befores: dict[str, tuple[str, ...]] = {}
        self._more_befores: dict[str, dict[str, None]] = {}
        self.secrets: dict[str, None] = {}
        self._defaults: dict[int, dict[str, Any]] = {}
        #: Every `use` alias by its prefixed name (`auth`, `auth.docs`), for `after`.
        self._units: dict[str, _Unit] = {}
        #: The workflows expanded (the top one and every template included), each once.
        self._expanded: dict[str, None] = {}
        #: Every stage by its prefixed name: a stage stands for itself (no _Unit for it).
        self._stage_names: set[str] = set()
        self._cwds: dict[tuple[str, str | None, str | None], str] = {}
        self._chosen: dict[str | tuple[str, ...], _Agents] = {}
        #: The values a stage gets from its agents, by (context, choice of agents): see _agent_values.
        self._by_choice: dict[tuple[int, int], dict[str, Any]] = {}
        #: Seconds of each duration text met (`estimate = 82m` on thousands of stages).
        self._durations: dict[str, float | None] = {}

    # -- template expansion and edges ----------------------------------------------------

    def expand(self, ctx: _Context) -> list[str]:
        model = self.model
        workflow = model.workflows[ctx.workflow]
        self._expanded[ctx.workflow] = None
        stages, uses = model.stages_of(ctx.workflow), model.uses_of(ctx.workflow)
        order = [n for n in _names(workflow.get("order")) if n in stages or n in uses]
        listed = set(order)
        order += [n for n in (*stages, *uses) if n not in listed]
        units: dict[str, _Unit] = {}  # this workflow's aliases (its stages: `stages`)
        members: list[str] = []
        local: list[_Instance] = []
        for item in dict.fromkeys(order):
            if item in stages:
                instance = _Instance(ctx, item, ctx.prefix + item)
                local.append(instance)
                self.instances.append(instance)
                self._stage_names.add(instance.name)
                members.append(instance.name)
                continue
            use = uses[item]
            template = use.get("template")
            if not isinstance(template, str) or template not in model.workflows or template in ctx.stack:
                units[item] = _Unit((), (), ())
                continue
            inner = _Context(
                workflow=template,
                prefix=f"{ctx.prefix}{item}.",
                group=(*ctx.group, item),
                bindings=self._bind(ctx, template, use, ("workflows", ctx.workflow, "uses", item)),
                parent=ctx,
                stack=(*ctx.stack, template),
            )
            start = len(self.edges)
            inner_members = self.expand(inner)
            inside = set(inner_members)
            inner_edges = [e for e in self.edges[start:] if e.before in inside and e.after in inside]
            has_before = {e.after for e in inner_edges}
            has_after = {e.before for e in inner_edges}
            units[item] = _Unit(
                tuple(inner_members),
                tuple(m for m in inner_members if m not in has_before),
                tuple(m for m in inner_members if m not in has_after),
            )
            self._units[ctx.prefix + item] = units[item]
            members.extend(inner_members)
        known = set(members)
        base: DocPath = ("workflows", ctx.workflow)
        for instance in local:
            stage_path = (*base, "stages", instance.stage)
            self._stage_edges(instance, stages[instance.stage], stages, units, known, stage_path)
        for alias, use in uses.items():
            if alias in stages:  # (A208: the stage is what the name stands for)
                sources: tuple[str, ...] = (ctx.prefix + alias,)
            elif alias in units:
                sources = units[alias].sources
            else:
                continue
            for index, name in enumerate(_names(use.get("after"))):
                sinks = self._sinks(name, ctx.prefix, stages, units)
                if sinks is None:
                    continue
                span = model.value_span((*base, "uses", alias, "after", index))
                for before in sinks:
                    for source in sources:
                        self._add_edge(before, source, span, "use")
        return members

    def _stage_edges(
        self,
        instance: _Instance,
        stage: Mapping[str, Any],
        stages: Mapping[str, Any],
        units: Mapping[str, _Unit],
        known: set[str],
        path: DocPath,
    ) -> None:
        model = self.model
        edges = self.edges
        more = self._more_befores.get(instance.name)  # (nothing yet, as a rule: see after())
        befores = dict.fromkeys(self.befores.get(instance.name, ()) if more is None else more)
        after = stage.get("after")
        if after:
            prefix = instance.ctx.prefix
            names = _names(after)
            spans = model.item_spans((*path, "after"), len(names))
            name = instance.name
            for written, span in zip(names, spans, strict=True):
                if written in stages:  # the usual entry: a stage of the same workflow
                    before = prefix + written
                    if before not in befores:
                        befores[before] = None
                        edges.append(new_edge(before=before, after=name, span=span, kind="after"))
                    continue
                for before in self._sinks(written, prefix, stages, units) or ():
                    if before not in befores:
                        befores[before] = None
                        edges.append(new_edge(before=before, after=name, span=span, kind="after"))
        for key, value in stage.items():
            if key in _NAME_KEYS or (type(value) is str and "${" not in value):
                continue  # (most values: no reference to another stage in them)
            for text, at in _strings(value, (*path, key)):
                template = model.template(text, at)
                if template is None:
                    continue
                for ref in references(template):
                    parts = ref.parts
                    if parts[0] != "stages" or len(parts) < 3:
                        continue
                    if parts[-1] == "outputs":  # `stages.S.outputs`: a for_each stage's map
                        target = instance.ctx.prefix + ".".join(parts[1:-1])
                    elif len(parts) >= 4 and parts[-2] == "outputs":
                        target = instance.ctx.prefix + ".".join(parts[1:-2])
                    else:
                        continue
                    if target in known and target not in befores:
                        befores[target] = None
                        span = ref.span or model.value_span(at)
                        edges.append(new_edge(before=target, after=instance.name, span=span, kind="ref"))
        if instance.name in self._more_befores:
            self._more_befores[instance.name] = befores
        else:
            self.befores[instance.name] = tuple(befores)

    def _sinks(
        self, name: str, prefix: str, stages: Mapping[str, Any], units: Mapping[str, _Unit]
    ) -> tuple[str, ...] | None:
        """The stages that ``after NAME`` (written in a workflow whose stages and aliases are
        ``stages`` and ``units``, included under ``prefix``) waits for: the stage, or the last
        stages of the alias; None for a name that is neither."""
        if name in stages:
            return (prefix + name,)
        unit = units.get(name) or self._units.get(prefix + name)
        if unit is not None:
            return unit.sinks
        full = prefix + name
        return (full,) if full in self._stage_names else None

    def _add_edge(self, before: str, after: str, span: Span, kind: EdgeKind) -> None:
        befores = self._more_befores.get(after)
        if befores is None:
            befores = self._more_befores[after] = dict.fromkeys(self.befores.get(after, ()))
        if before not in befores:
            befores[before] = None
            self.edges.append(new_edge(before=before, after=after, span=span, kind=kind))

    def after(self, name: str) -> tuple[str, ...]:
        """The stages that ``name`` waits for, in the order of its edges."""
        more = self._more_befores.get(name)
        return self.befores.get(name, ()) if more is None else tuple(more)

    def _bind(self, ctx: _Context, template: str, use: Mapping[str, Any], path: DocPath) -> dict[str, Any]:
        """The values of a template's params for one `use`, in the top workflow's terms."""
        given = _map(use.get("params"))
        types = self.model.param_types(template)
        bindings: dict[str, Any] = {}
        for param, spec in _map(self.model.workflows[template].get("params")).items():
            if param in given:
                value = self.materialize(given[param], ctx, (*path, "params", param))
            elif isinstance(spec, dict) and "default" in spec:
                value = spec["default"]
            else:
                continue  # missing: check_workspace reports A213
            if not (isinstance(value, str) and "${" in value):
                value = _convert_default(value, types.get(param, "any"))
            bindings[param] = value
        return bindings

    # -- values ---------------------------------------------------------------------------

    def materialize(self, value: Any, ctx: _Context, path: DocPath) -> Any:
        """A document value as seen from the top workflow: template params replaced by their
        bindings, `stages.X` references prefixed by the `use` aliases."""
        if ctx.plain:
            return value
        if isinstance(value, dict):
            return {k: self.materialize(v, ctx, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.materialize(v, ctx, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        template = self.model.template(value, path)
        if template is None:
            return value
        return self._rewrite(template, ctx)

    def _rewrite(self, template: Template, ctx: _Context) -> Any:
        bindings = ctx.bindings or {}
        single = template.single
        if (
            isinstance(single, Ref)
            and single.root == "params"
            and len(single.parts) == 2
            and single.parts[1] in bindings
        ):
            return bindings[single.parts[1]]  # one interpolation keeps the bound value's type
        mapping: dict[str, Expr] = {}
        for name, bound in bindings.items():
            as_expr = _as_expr(bound)
            if as_expr is not None:
                mapping[f"params.{name}"] = as_expr
        if ctx.prefix:
            mapping["stages"] = Ref(parts=("stages", *ctx.prefix[:-1].split(".")))
        parts: list[str | Expr] = []
        for part in template.parts:
            if isinstance(part, str):
                parts.append(part)
                continue
            if isinstance(part, Ref) and part.root == "params" and len(part.parts) == 2:
                bound = bindings.get(part.parts[1], _MISSING)
                if isinstance(bound, str) and "${" in bound:
                    spliced = _spanless(bound)
                    if spliced is not None:
                        parts.extend(spliced.parts)
                        continue
                if bound is not _MISSING and not isinstance(bound, str):
                    parts.append(to_text(bound))
                    continue
            parts.append(substitute(part, mapping))
        merged: list[str | Expr] = []
        for part in parts:
            if isinstance(part, Literal) and not isinstance(part.value, type(None)):
                part = to_text(part.value) if len(parts) > 1 else part
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            else:
                merged.append(part)
        if len(merged) == 1 and isinstance(merged[0], Literal):
            return merged[0].value
        return unparse_template(Template(parts=tuple(merged)))

    def field(self, instance: _Instance, stage: Mapping[str, Any], key: str) -> Any:
        """A stage attribute, else the nearest enclosing workflow's `defaults`."""
        if key in stage:
            path: DocPath = ("workflows", instance.ctx.workflow, "stages", instance.stage, key)
            return self.materialize(stage[key], instance.ctx, path)
        return self.defaults(instance.ctx).get(key)

    def defaults(self, ctx: _Context) -> dict[str, Any]:
        """The `defaults` in force in a context: its workflow's over the enclosing ones'."""
        found = self._defaults.get(id(ctx))
        if found is None:
            found = dict(self.defaults(ctx.parent)) if ctx.parent is not None else {}
            own = _map(self.model.workflows[ctx.workflow].get("defaults"))
            for key, value in own.items():
                found[key] = self.materialize(value, ctx, ("workflows", ctx.workflow, "defaults", key))
            self._defaults[id(ctx)] = found
        return found

    def evaluate_now(self, value: Any) -> Any:
        """The value of a one-interpolation string over the params known now (else the value)."""
        if not isinstance(value, str) or "${" not in value:
            return value
        template = _spanless(value)
        single = None if template is None else template.single
        if single is None:
            return value
        if any(ref.root != "params" for ref in references(single)):
            return value
        try:
            return evaluate(single, {"params": self.params})
        except ExprError:
            return value

    def text(self, value: Any) -> str:
        """A description as users read it: params filled in, `$${` shown as `${`.

        Text that refers to anything only known at run time is kept as written.
        """
        if not isinstance(value, str):
            return ""
        template = _spanless(value) if "${" in value else None
        if template is None or any(ref.root != "params" for ref in references(template)):
            return value
        try:
            return to_text(render(template, {"params": self.params}))
        except ExprError:
            return value

    def seconds(self, value: Any) -> float | None:
        if value is None:
            return None
        if type(value) is str and "${" not in value:
            found = self._durations.get(value, _MISSING)
            if found is _MISSING:
                found = self._durations[value] = parse_duration(value)
            return found  # type: ignore[return-value]
        return parse_duration(self.evaluate_now(value))

    def max_log(
        self, ctx: _Context, instance: _Instance | None, stage: Mapping[str, Any], chosen: _Agents
    ) -> int:
        """The stage's ``max_log`` in bytes: its own, else its agents' (the smallest), else the
        workflow's ``defaults``, else 100MB. (``instance`` is only read when it sets its own.)"""
        if "max_log" in stage and instance is not None:
            found = parse_size(self.evaluate_now(self.field(instance, stage, "max_log")))
            return DEFAULT_MAX_LOG if found is None else found
        if chosen.max_log is not None:
            return chosen.max_log
        found = parse_size(self.evaluate_now(self.defaults(ctx).get("max_log")))
        return DEFAULT_MAX_LOG if found is None else found

    def priority(self, value: Any) -> int:
        value = self.evaluate_now(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            return PRIORITIES.get(value.strip().lower(), 0)
        return 0

    def when(self, value: Any) -> bool | str:
        if value is None:
            return True
        folded = self.evaluate_now(value)
        if isinstance(folded, bool):
            return folded
        if isinstance(folded, str) and folded.strip().lower() in ("true", "false") and folded != value:
            return folded.strip().lower() == "true"
        return value if isinstance(value, str) else True

    def collect_secrets(self, value: Any) -> None:
        if type(value) is str and "secrets." not in value:
            return  # the usual string: nothing to look at
        if isinstance(value, dict):
            for item in value.values():
                self.collect_secrets(item)
        elif isinstance(value, list | tuple):
            for item in value:
                self.collect_secrets(item)
        elif isinstance(value, str) and "secrets." in value and "${" in value:
            template = _spanless(value)
            for ref in references(template) if template is not None else ():
                if ref.root == "secrets" and len(ref.parts) >= 2:
                    self.secrets.setdefault(ref.parts[1], None)

    # -- stages ---------------------------------------------------------------------------

    def stage(self, instance: _Instance, after: tuple[str, ...]) -> PlanStage:
        model = self.model
        ctx = instance.ctx
        stage = model.stages_of(ctx.workflow)[instance.stage]
        path: DocPath = ("workflows", ctx.workflow, "stages", instance.stage)
        defaults = self.defaults(ctx)
        # What the stage sets, over the `defaults` in force. A key set by neither leaves its
        # PlanStage field at its default, so only the keys present are worked out: a stage
        # usually sets three or four of the thirty (and a plan may have 100,000 stages).
        present = {**defaults, **stage} if defaults else stage
        field: Callable[[str], Any]
        if ctx.plain:  # the common case, a stage of the top workflow: its values as written
            field = present.get
        else:

            def field(key: str) -> Any:
                if key in stage:
                    return self.materialize(stage[key], ctx, (*path, key))
                return defaults.get(key)

        chosen = self._agents_of(stage)
        values: dict[str, Any]
        if _OWN_KEYS.isdisjoint(stage):
            # The usual stage: what its agents give it, worked out once per choice and context.
            values = self._agent_values(ctx, stage, chosen).copy()
        else:
            values = self._own_values(ctx, instance, stage, chosen, field)
        values["name"] = instance.name
        values["after"] = after
        values["span"] = model.key_span(path)
        collect = self.collect_secrets
        if "inputs" in present:
            inputs = _map(field("inputs"))
            values["inputs"] = _frozen(inputs)
            collect(inputs)
        if "env" in present:
            env = _map(field("env"))
            values["env"] = _frozen(env)
            collect(env)
        if "when" in present:
            when = values["when"] = self.when(field("when"))
            if not isinstance(when, bool):
                collect(when)
        if "arguments" in stage:
            collect(stage["arguments"])
        fan_out = _map(stage.get(_fanout.FANOUT_KEY))
        if fan_out:
            values["group"] = (*ctx.group, fan_out["group"])
            values["fan_out"] = ctx.prefix + fan_out["group"]
            values["matrix"] = _frozen(_map(fan_out.get("values")))
        if "for_each" in stage:
            values["for_each"] = self.for_each(instance, stage)
        if "approve" in stage:
            approve = approval_of(model.workflows[ctx.workflow], stage, self.seconds)
            if approve is not None:
                values["approve"] = approve
                values["kind"] = APPROVAL_KIND
        if "resources" in stage:
            resources = stage["resources"]
            values["resources"] = _frozen(resources if isinstance(resources, dict) else {})
        if "cost" in stage or "tokens" in stage:
            own_cost = cost_of(stage, ())
            if own_cost:
                values["cost"] = own_cost
        docs = field("docs") if "docs" in present else None
        if values["kind"] == MCP_KIND or docs:
            values["mcp"] = mcp_of(values["kind"], {key: field(key) for key in MCP_STAGE_KEYS})
        if "estimate" in present:
            values["estimate_s"] = self.seconds(field("estimate")) or 0  # as estimate() reads it
        if "spread" in present:
            values["spread_s"] = self.seconds(field("spread"))
        if "fail_rate" in stage:
            values["fail_rate"] = _rate(stage["fail_rate"])
        if "priority" in present:
            values["priority"] = self.priority(field("priority"))
        if "timeout" in present:
            values["timeout_s"] = self.seconds(field("timeout"))
        if "retries" in present:
            retries = self.evaluate_now(field("retries"))
            values["retries"] = retries if isinstance(retries, int) and not isinstance(retries, bool) else 0
        if "backoff" in present:
            values["backoff_s"] = self.seconds(field("backoff")) or 0
        if "max_backoff" in present:
            values["max_backoff_s"] = self.seconds(field("max_backoff"))
        if "on_failure" in present:
            values["on_failure"] = "continue" if field("on_failure") == "continue" else "stop"
        if "description" in present:
            values["description"] = self.text(field("description"))
        if "sources" in present:
            values["sources"] = tuple(_names(field("sources")))
        if "produces" in present:
            values["produces"] = tuple(_names(field("produces")))
        if "run_if" in stage:
            values["run_if"] = run_if_of(stage["run_if"])
        return new_stage(values)

    def estimate(self, instance: _Instance, stage: Mapping[str, Any]) -> float:
        """The stage's ``estimate_s`` (its own ``estimate``, else its ``defaults``'; 0 if none)."""
        return self.seconds(self.field(instance, stage, "estimate")) or 0

    def may_warn(self, workflow: str) -> bool:
        """Whether the plan may have A505 or A506 to say (``_pipeline.plan_warnings``): a
        budget, or an approval stage (an ``approve`` key that ``approval_of`` may read)."""
        if budget_of(self.model.workflows[workflow], self.seconds):
            return True
        stages_of = self.model.stages_of
        # Each stage of each workflow expanded is an instance: asked once per workflow.
        return any("approve" in stage for name in self._expanded for stage in stages_of(name).values())

    def dependencies(self, workflow: str) -> Dependencies:
        """What the graph analysis reads of the workflow (see :func:`resolve_for_check`)."""
        model = self.model
        instances = self.instances
        stages_of = model.stages_of
        by_name = {i.name: i for i in instances}

        def stage_span(name: str) -> Span | None:
            instance = by_name.get(name)
            if instance is None:
                return None
            return model.key_span(("workflows", instance.ctx.workflow, "stages", instance.stage))

        span = model.key_span(("workflows", workflow))
        return Dependencies(
            name=workflow,
            source=span.file,
            span=span,
            stages=tuple(i.name for i in instances),
            estimates=tuple(self.estimate(i, stages_of(i.ctx.workflow)[i.stage]) for i in instances),
            edges=tuple(self.edges),
            stage_span=stage_span,
        )

    def _agent_values(self, ctx: _Context, stage: Mapping[str, Any], chosen: _Agents) -> dict[str, Any]:
        """The PlanStage values of a stage of ``ctx`` that sets none of :data:`_OWN_KEYS`:
        its agents' (and the context's ``defaults``' ``max_log``), the same for every such
        stage, so made once (secrets collected then: the first stage to meet them)."""
        key = (id(ctx), id(chosen))
        found = self._by_choice.get(key)
        if found is None:
            found = self._by_choice[key] = self._own_values(ctx, None, stage, chosen, None)
            if "run" in found:  # its ${...} parsed once here, not by each PlanStage
                found["run"] = _parsed(found["run"])
        return found

    def _own_values(
        self,
        ctx: _Context,
        instance: _Instance | None,
        stage: Mapping[str, Any],
        chosen: _Agents,
        field: Callable[[str], Any] | None,
    ) -> dict[str, Any]:
        """The PlanStage values that come from the stage's agents unless the stage sets its
        own (:data:`_OWN_KEYS`); ``instance`` and ``field`` are only read for a key it sets.
        Secrets are collected in the order that they are met: run, call (then inputs, env,
        when: see :meth:`stage`)."""
        values: dict[str, Any] = {
            "group": ctx.group,
            "agents": chosen.names,
            "kind": chosen.kind,
            "cwd": self._cwd(ctx.workflow, stage, chosen.names),
            "outputs": tuple(_names(stage["outputs"])) if isinstance(stage.get("outputs"), list)
            else chosen.outputs,
            "max_log": self.max_log(ctx, instance, stage, chosen),
            "cost": chosen.cost,  # the most its agents may spend, unless it says (see stage)
        }
        # The stage's own command, else its agent's when there is only one to choose from.
        collect = self.collect_secrets
        run = field("run") if "run" in stage and field is not None else chosen.run
        call = field("call") if "call" in stage and field is not None else chosen.call
        if run is not None:
            values["run"] = _command(run)
            collect(run)
        if call is not None:
            values["call"] = call if isinstance(call, str) else None
            collect(call)
        return values

    def _agents_of(self, stage: Mapping[str, Any]) -> _Agents:
        """What a stage's `agent` (or `requires`) gives it. Thousands of stages name the same
        agent, so this is worked out once per distinct choice."""
        agent = stage.get("agent")
        key: str | tuple[str, ...]
        if isinstance(agent, str):
            key = agent
        elif "requires" in stage:
            key = ("requires", *_names(stage.get("requires")))
        else:
            key = ()
        found = self._chosen.get(key)
        if found is None:
            found = self._chosen[key] = self._compute_agents(stage)
        return found

    def _compute_agents(self, stage: Mapping[str, Any]) -> _Agents:
        model = self.model
        agents = model.stage_agents(stage)
        first = model.agents[agents[0]] if agents else {}
        kind = first.get("kind", "command")
        only = first if len(agents) == 1 else {}
        declared = [model.agents[a].get("outputs") for a in agents]
        outputs = (
            tuple(sorted({name for d in declared for name in _names(d)}))
            if agents and all(isinstance(d, list) for d in declared)
            else ()
        )
        sizes = [parse_size(model.agents[a].get("max_log")) for a in agents if a in model.agents]
        known_sizes = [size for size in sizes if size is not None]
        cost = cost_of({}, [model.agents[a] for a in agents])
        return _Agents(
            names=tuple(agents),
            kind=kind if isinstance(kind, str) else "command",
            run=only.get("run"),
            call=only.get("call"),
            outputs=outputs,
            max_log=min(known_sizes) if known_sizes else None,
            cost=cost if cost else _EMPTY,
        )

    def for_each(self, instance: _Instance, stage: Mapping[str, Any]) -> tuple[str, ...]:
        """(stage, key) of ``for_each = stages.X.outputs.KEY``, X as seen from the top workflow."""
        if "for_each" not in stage:
            return ()
        value = self.field(instance, stage, "for_each")
        source = _foreach.source_of(_spanless(value) if isinstance(value, str) else None)
        return source or ()

    def _cwd(self, workflow: str, stage: Mapping[str, Any], agents: Sequence[str]) -> str:
        cwd = stage.get("cwd")
        key = (workflow, cwd if isinstance(cwd, str) else None, agents[0] if len(agents) == 1 else None)
        found = self._cwds.get(key)
        if found is None:
            found = self._cwds[key] = self._compute_cwd(workflow, stage, agents)
        return found

    def _compute_cwd(self, workflow: str, stage: Mapping[str, Any], agents: Sequence[str]) -> str:
        return _stage_folder(self.model, workflow, stage, agents)

    def agent(self, name: str) -> PlanAgent:
        agent = self.model.agents[name]
        known = {"kind", "run", "call", "url", "capabilities", "concurrency", "env", "max_log", "fail_rate"}
        concurrency = agent.get("concurrency", 1)
        for key in ("run", "call", "url", "env", "headers"):
            self.collect_secrets(agent.get(key))
        return PlanAgent(
            name=name,
            kind=agent.get("kind", "command") if isinstance(agent.get("kind", "command"), str) else "command",
            run=_command(agent.get("run")),
            call=agent.get("call") if isinstance(agent.get("call"), str) else None,
            url=agent.get("url") if isinstance(agent.get("url"), str) else None,
            capabilities=tuple(_names(agent.get("capabilities"))),
            concurrency=concurrency if isinstance(concurrency, int) and concurrency >= 1 else 1,
            fail_rate=_rate(agent.get("fail_rate")) or 0,
            env=FrozenMap(_map(agent.get("env"))),
            options=FrozenMap({k: v for k, v in agent.items() if k not in known}),
            span=self.model.key_span(("agents", name)),
        )


_MISSING = object()
#: The stage keys that override what its agents give it (see _Resolver._own_values).
_OWN_KEYS = frozenset({"cwd", "outputs", "max_log", "run", "call"})
#: One empty map shared by every stage without inputs, env, resources... (five per stage).
_EMPTY = FrozenMap()


def _frozen(value: Mapping[str, Any]) -> FrozenMap:
    return FrozenMap(value) if value else _EMPTY


def _rate(value: Any) -> float | None:
    """A ``fail_rate`` (the schema keeps it a number in [0, 1])."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _command(value: Any) -> str | tuple[str, ...] | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return tuple(to_text(v) for v in value)
    return None


def _choose_workflow(model: _Model, workflow: str | None) -> tuple[str | None, list[Diagnostic]]:
    entry = model.ws.entry
    file = entry.source.name
    if workflow is not None:
        if workflow in model.workflows:
            return workflow, []
        return None, [
            error(
                "A209",
                f"no workflow named `{workflow}` in {file}",
                None,
                help=did_you_mean(workflow, model.workflows) or _known(model.workflows, "workflow"),
                file=file,
            )
        ]
    declared = [name for name in _map(entry.data.get("workflows")) if name in model.workflows]
    if not declared:
        return None, [error("A209", f"{file} declares no workflow", None, file=file)]
    templates = model.used_as_template()
    return next((name for name in declared if name not in templates), declared[0]), []


def workflows_to_analyse(ws: WorkspaceLike) -> list[str]:
    """The entry file's workflows that are not only templates (used by no other workflow)."""
    model = _Model.of(ws)
    templates = model.used_as_template()
    return [
        name
        for name in _map(ws.entry.data.get("workflows"))
        if name in model.workflows and name not in templates
    ]


def templates_of(ws: WorkspaceLike, workflow: str) -> set[str]:
    """``workflow`` and every workflow it includes through `use`, directly or not."""
    model = _Model.of(ws)
    found: set[str] = set()
    pending = [workflow]
    while pending:
        name = pending.pop()
        if name in found or name not in model.workflows:
            continue
        found.add(name)
        for use in model.uses_of(name).values():
            template = use.get("template")
            if isinstance(template, str):
                pending.append(template)
    return found


def _read_params(
    model: _Model, workflow: str, given: Mapping[str, str], require_all: bool
) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Param values: `--param` strings read as their declared types, else the defaults."""
    file = model.ws.entry.source.name
    declared = _map(model.workflows[workflow].get("params"))
    types = model.param_types(workflow)
    values: dict[str, Any] = {}
    out: list[Diagnostic] = []
    for name, raw in given.items():
        if name not in declared:
            out.append(
                error(
                    "A203",
                    f"workflow `{workflow}` has no param `{name}` (given with --param)",
                    None,
                    help=did_you_mean(name, declared) or _known(declared, "param"),
                    file=file,
                )
            )
            continue
        value, problem = parse_param(str(raw), types.get(name, "string"))
        if problem is not None:
            out.append(
                error(
                    "A308",
                    f"--param {name}={raw}: `{name}` is declared {types.get(name)}, {problem}",
                    None,
                    file=file,
                )
            )
            continue
        values[name] = value
    for name, spec in declared.items():
        if name in values or name in given:
            continue
        if isinstance(spec, dict) and "default" in spec:
            values[name] = _convert_default(spec["default"], types.get(name, "any"))
        elif require_all:
            out.append(
                error(
                    "A213",
                    f"missing required param `{name}` of workflow `{workflow}`",
                    model.key_span(("workflows", workflow, "params", name)),
                    f"declared here without a default ({types.get(name)})",
                    help=f"pass `--param {name}=VALUE`",
                )
            )
    ordered = {name: values[name] for name in declared if name in values}  # declaration order
    return ordered, out


def _expanded(
    ws: WorkspaceLike, workflow: str | None, params: Mapping[str, str], require_all: bool
) -> tuple[_Resolver | None, str, list[Diagnostic]]:
    """The workflow chosen, its params read and its templates expanded (stages and edges
    known); no resolver when the workflow cannot be chosen or a param is wrong."""
    model = _Model.of(ws)
    name, diagnostics = _choose_workflow(model, workflow)
    if name is None:
        return None, "", diagnostics
    values, problems = _read_params(model, name, params, require_all)
    diagnostics.extend(problems)
    if any(d.is_error for d in diagnostics):
        return None, name, diagnostics
    resolver = _Resolver(model, values)
    resolver.expand(_Context(workflow=name, stack=(name,)))
    return resolver, name, diagnostics


def resolve(
    ws: WorkspaceLike,
    workflow: str | None,
    params: Mapping[str, str],
    *,
    require_all: bool = True,
) -> tuple[ResolvedWorkflow | None, list[Diagnostic]]:
    """Bind one workflow: params read, templates expanded, agents chosen, dependencies as edges.

    ``workflow=None`` picks the first workflow of the entry file that no other workflow
    uses as a template. ``require_all=False`` (``alfredc check``) leaves required params
    without a value unreported. Problems that :func:`check_workspace` reports (unknown
    names, bad durations) are skipped here, not reported twice. Returns None only when
    the workflow cannot be chosen or a param is wrong.
    """
    resolver, name, diagnostics = _expanded(ws, workflow, params, require_all)
    if resolver is None:
        return None, diagnostics
    return _resolved(resolver, name), diagnostics


def resolve_for_check(
    ws: WorkspaceLike, workflow: str
) -> tuple[ResolvedWorkflow | Dependencies | None, list[Diagnostic]]:
    """What ``alfredc check`` analyses of a workflow: ``resolve(ws, workflow, {},
    require_all=False)`` when the plan may warn (a budget, an approval stage: A505, A506),
    else only the dependencies that the graph analysis reads (the same stages, estimates
    and edges), without a :class:`PlanStage` per stage: most of the resolver's work, and
    of its memory, in a large plan."""
    resolver, name, diagnostics = _expanded(ws, workflow, {}, False)
    if resolver is None:
        return None, diagnostics
    if resolver.may_warn(name):
        return _resolved(resolver, name), diagnostics
    return resolver.dependencies(name), diagnostics


def _resolved(resolver: _Resolver, name: str) -> ResolvedWorkflow:
    model = resolver.model
    values = resolver.params
    stages = tuple(resolver.stage(i, resolver.after(i.name)) for i in resolver.instances)
    used = {agent for stage in stages for agent in stage.agents}
    used.update(docs_agents(stage.mcp.get("docs") for stage in stages if stage.mcp is not None))
    agents = tuple(resolver.agent(a) for a in model.agents if a in used)
    declaration = model.workflows[name]
    hooks: list[Hook] = []
    for event, hook in _map(declaration.get("on")).items():
        run = _command(_map(hook).get("run"))
        if run is not None:
            resolver.collect_secrets(run)
            hooks.append(Hook(event=event, run=run, span=model.key_span(("workflows", name, "on", event))))
    description = declaration.get("description")
    schedule = declaration.get("schedule")
    span = model.key_span(("workflows", name))
    return ResolvedWorkflow(
        name=name,
        source=span.file,
        description=resolver.text(description),
        params=FrozenMap(values),
        secrets=tuple(resolver.secrets),
        agents=agents,
        stages=stages,
        edges=tuple(resolver.edges),
        hooks=tuple(hooks),
        schedule=schedule if isinstance(schedule, str) else None,
        budget=budget_of(declaration, resolver.seconds),
        timeout_s=resolver.seconds(declaration.get("timeout")),
        concurrency_group=resolver.text(declaration.get("concurrency_group")) or None,
        cancel_in_progress=declaration.get("cancel_in_progress") is True,
        span=span,
    )
