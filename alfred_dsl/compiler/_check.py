"""Names and types: the semantic checks of a loaded workspace.

:func:`check_workspace` walks every agent and workflow and reports every problem in one
pass (A2xx names and references, A3xx types, A5xx unused names).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from .._cron import cron_problem
from .._diagnostics import Diagnostic, Label, error, warning
from .._expr import (
    Binary,
    Ref,
    Template,
    Unary,
    check_types,
    check_when,
    references,
)
from .._source import Span
from .._values import PRIORITIES, did_you_mean, parse_duration
from ._document import Path as DocPath
from ._view import (
    _DURATION_FIELDS,
    _NAME_KEYS,
    _PARAM_MENTION,
    EXECUTOR_NEEDS,
    ROOTS,
    WorkspaceLike,
    _content_offset,
    _fits,
    _known,
    _map,
    _Model,
    _names,
    _stage_folder,
    _strings,
    _value_type,
)

__all__ = [
    "check_workspace",
    "cron_problem",
]

# -- check_workspace -------------------------------------------------------------------------


def check_workspace(ws: WorkspaceLike) -> list[Diagnostic]:
    """Every name, type and template problem of every agent and workflow, in one pass."""
    model = _Model.of(ws)
    out: list[Diagnostic] = []
    for name, agent in model.agents.items():
        _check_agent(model, name, agent, out)
    for name in model.workflows:
        _WorkflowChecker(model, name, out).run()
    out.extend(_template_cycles(model))
    out.extend(_unused_agents(model))
    out.extend(model.parse_diagnostics)
    return out


def _check_ref_roots(model: _Model, value: Any, path: DocPath, out: list[Diagnostic]) -> None:
    for text, at in _strings(value, path):
        template = model.template(text, at)
        if template is None:
            continue
        for ref in references(template):
            if ref.root not in ROOTS:
                out.append(_unknown_root(ref, model.value_span(at)))


def _unknown_root(ref: Ref, where: Span) -> Diagnostic:
    return error(
        "A210",
        f"unknown reference `{ref}`: references start with params, stages, inputs, env or secrets",
        ref.span or where,
        help=did_you_mean(ref.root, ROOTS),
    )


def _check_agent(model: _Model, name: str, agent: dict[str, Any], out: list[Diagnostic]) -> None:
    path: DocPath = ("agents", name)
    kind = agent.get("kind", "command")
    need = EXECUTOR_NEEDS.get(kind) if isinstance(kind, str) else None
    if kind == "http" and need is not None and not agent.get(need):
        out.append(
            error(
                "A307",
                f"http agent `{name}` has no `url`",
                model.key_span(path),
                help='add `url = "https://..."` to the agent',
            )
        )
    for key, value in agent.items():
        if key in ("run", "call", "url", "env", "cwd"):
            _check_ref_roots(model, value, (*path, key), out)


def _unused_agents(model: _Model) -> list[Diagnostic]:
    used: set[str] = set()
    for workflow in model.workflows:
        for stage in model.stages_of(workflow).values():
            agent = stage.get("agent")
            if isinstance(agent, str):
                used.add(agent)
            elif "requires" in stage:
                used.update(model.matching_agents(_names(stage.get("requires"))))
    out: list[Diagnostic] = []
    entry_agents = _map(model.ws.entry.data.get("agents"))
    for name in entry_agents:
        if name not in used:
            out.append(
                warning(
                    "A501",
                    f"agent `{name}` is never used",
                    model.ws.entry.spans.key(("agents", name)),
                    "no stage names it and no `requires` selects it",
                )
            )
    return out

def _module_not_found(call: str, folder: str) -> str | None:
    """The top-level module of ``module:function`` when neither ``folder`` (first on
    ``sys.path`` at run time) nor Python's own path has it; None when it is there, or when
    the call is not a plain ``module:function`` (the runtime reports that). Nothing is
    imported: the module's code does not run at check time."""
    module, sep, _ = call.partition(":")
    top = module.partition(".")[0].strip()
    if not sep or not top.isidentifier():
        return None
    try:
        if importlib.machinery.PathFinder.find_spec(top, [folder]) is not None:
            return None
        if top in sys.modules or importlib.util.find_spec(top) is not None:
            return None
    except (ImportError, ValueError):  # a broken finder or package: not this check's business
        return None
    return top


def _shown_folder(folder: str) -> str:
    """``folder`` relative to the current directory when it is inside it (stable in goldens)."""
    try:
        relative = os.path.relpath(folder)
    except ValueError:
        return folder
    return folder if relative.startswith("..") else ("./" if relative == "." else "./" + relative + "/")


class _WorkflowChecker:
    """The checks of one workflow; appends to ``out``."""

    def __init__(self, model: _Model, name: str, out: list[Diagnostic]) -> None:
        self.model = model
        self.name = name
        self.out = out
        self.path: DocPath = ("workflows", name)
        self.workflow: dict[str, Any] = model.workflows[name]
        self.stages = model.stages_of(name)
        self.uses = model.uses_of(name)
        self.params = _map(self.workflow.get("params"))
        self.param_types = model.param_types(name)
        self.used_params: set[str] = set()

    # -- entry point ----------------------------------------------------------------------

    def run(self) -> None:
        self._check_schedule()
        self._check_params()
        self._check_defaults()
        for stage_name, stage in self.stages.items():
            self._check_stage(stage_name, stage)
        for alias, use in self.uses.items():
            self._check_use(alias, use)
        hooks = self.workflow.get("on")
        if isinstance(hooks, dict):
            self._check_strings(hooks, (*self.path, "on"))
        if "description" in self.workflow:
            self._check_strings(self.workflow["description"], (*self.path, "description"))
        for param in self.params:
            if param not in self.used_params:
                self.out.append(
                    warning(
                        "A502",
                        f"param `{param}` of workflow `{self.name}` is never used",
                        self.model.key_span((*self.path, "params", param)),
                        "no expression refers to it",
                        help=f"remove it, or refer to it as `params.{param}`",
                    )
                )

    # -- workflow level -------------------------------------------------------------------

    def _check_schedule(self) -> None:
        schedule = self.workflow.get("schedule")
        if not isinstance(schedule, str):
            return
        problem = cron_problem(schedule)
        if problem is None:
            return
        message, start, end = problem
        path = (*self.path, "schedule")
        span = self.model.value_span(path)
        offset = _content_offset(schedule, span)
        if offset is not None:
            span = span.source.span(offset + start, offset + end)
        self.out.append(
            error(
                "A310",
                f"invalid cron schedule `{schedule}`: {message}",
                span,
                help='five fields: minute hour day-of-month month day-of-week, e.g. "0 9 * * 1-5"',
            )
        )

    def _check_params(self) -> None:
        for param, spec in self.params.items():
            if not isinstance(spec, dict) or "default" not in spec:
                continue
            type_name = self.param_types.get(param, "any")
            default = spec["default"]
            path = (*self.path, "params", param, "default")
            if type_name == "duration" and isinstance(default, str) and parse_duration(default) is None:
                self.out.append(_invalid_duration(default, self.model.value_span(path)))
            elif not _fits(default, type_name):
                self.out.append(
                    error(
                        "A302",
                        f"the default of param `{param}` is {_a(_value_type(default))}, "
                        f"but the param is declared {type_name}",
                        self.model.value_span(path),
                        f"expected {_a(type_name)}",
                    )
                )

    def _check_defaults(self) -> None:
        defaults = self.workflow.get("defaults")
        if isinstance(defaults, dict):
            self._check_typed_fields(defaults, (*self.path, "defaults"))

    def _check_typed_fields(self, block: Mapping[str, Any], path: DocPath) -> None:
        for key in _DURATION_FIELDS:
            if key in block:
                self._check_duration(block[key], (*path, key))
        if "priority" in block:
            self._check_priority(block["priority"], (*path, "priority"))
        if isinstance(block.get("retries"), str):
            self._check_param_valued(block["retries"], (*path, "retries"), ("int",), "an integer")

    def _check_duration(self, value: Any, path: DocPath) -> None:
        if isinstance(value, str) and "${" in value:
            self._check_param_valued(value, path, ("duration", "int", "float"), "a duration")
        elif parse_duration(value) is None:
            self.out.append(_invalid_duration(value, self.model.value_span(path)))

    def _check_priority(self, value: Any, path: DocPath) -> None:
        if isinstance(value, str) and "${" in value:
            self._check_param_valued(value, path, ("int", "string"), "a priority")
            return
        if (isinstance(value, int) and not isinstance(value, bool)) or value in PRIORITIES:
            return
        shown = json.dumps(value) if not isinstance(value, str) else value
        self.out.append(
            error(
                "A305",
                f"invalid priority `{shown}`: expected low, medium, high, critical or an integer",
                self.model.value_span(path),
                help=did_you_mean(value, PRIORITIES) if isinstance(value, str) else None,
            )
        )

    def _check_param_valued(self, text: str, path: DocPath, types: tuple[str, ...], what: str) -> None:
        """A field written as an expression: it must be one interpolation of a suitable type."""
        template = self._check_strings(text, path)
        if template is None:
            return
        single = template.single
        kind = "string" if single is None else check_types(single, self.param_types)[0]
        if kind not in (*types, "any"):
            self.out.append(
                error(
                    "A302",
                    f"expected {what}, but `{text}` is {_a(kind)}",
                    self.model.value_span(path),
                )
            )

    # -- stages ---------------------------------------------------------------------------

    def _check_stage(self, stage_name: str, stage: dict[str, Any]) -> None:
        path: DocPath = (*self.path, "stages", stage_name)
        model = self.model
        if stage_name in self.uses:
            self.out.append(
                error(
                    "A208",
                    f"`{stage_name}` names both a stage and a `use` alias in workflow `{self.name}`",
                    model.key_span(path),
                    "stage declared here",
                    secondary=[Label(model.key_span((*self.path, "uses", stage_name)), "alias here")],
                )
            )
        has_agent, has_requires = "agent" in stage, "requires" in stage
        agents: list[str] = []
        if has_agent == has_requires:
            self.out.append(
                error(
                    "A306",
                    f"stage `{stage_name}` has both `agent` and `requires`"
                    if has_agent
                    else f"stage `{stage_name}` has neither `agent` nor `requires`",
                    model.key_span(path),
                    help="keep exactly one: `agent = NAME` or `requires = [capabilities]`",
                )
            )
        if has_agent:
            agents = self._check_agent_name(stage.get("agent"), (*path, "agent"))
        elif has_requires:
            agents = self._check_requires(stage.get("requires"), (*path, "requires"))
        if agents and not (has_agent and has_requires):
            self._check_runnable(stage_name, stage, agents, path)
        for index, name in enumerate(_names(stage.get("after"))):
            self._check_target(name, (*path, "after", index))
        self._check_typed_fields(stage, path)
        if "when" in stage:
            self._check_when(stage["when"], (*path, "when"))
        for key, value in stage.items():
            if key not in _NAME_KEYS and key != "when":
                self._check_strings(value, (*path, key))

    def _check_agent_name(self, agent: Any, path: DocPath) -> list[str]:
        if not isinstance(agent, str):
            return []
        if agent in self.model.agents:
            return [agent]
        self.out.append(
            error(
                "A201",
                f"unknown agent `{agent}`",
                self.model.value_span(path),
                help=did_you_mean(agent, self.model.agents) or _known(self.model.agents, "agent"),
            )
        )
        return []

    def _check_requires(self, requires: Any, path: DocPath) -> list[str]:
        capabilities = _names(requires)
        matching = self.model.matching_agents(capabilities)
        if matching or not isinstance(requires, list):
            return matching
        everywhere = {c for agent in self.model.agents.values() for c in _names(agent.get("capabilities"))}
        unknown = [(i, c) for i, c in enumerate(requires) if isinstance(c, str) and c not in everywhere]
        if unknown:
            index, capability = unknown[0]
            self.out.append(
                error(
                    "A207",
                    f"no agent has the capability `{capability}`",
                    self.model.value_span((*path, index)),
                    help=did_you_mean(capability, everywhere) or _known(everywhere, "capabilitie"),
                )
            )
        else:
            shown = ", ".join(f"`{c}`" for c in capabilities)
            self.out.append(
                error(
                    "A207",
                    f"no agent has all of the capabilities {shown}",
                    self.model.value_span(path),
                    "each is offered by some agent, but none offers them all",
                )
            )
        return []

    def _check_runnable(
        self, stage_name: str, stage: Mapping[str, Any], agents: list[str], path: DocPath
    ) -> None:
        for agent_name in agents:
            agent = self.model.agents[agent_name]
            kind = agent.get("kind", "command")
            need = EXECUTOR_NEEDS.get(kind) if isinstance(kind, str) else None
            if need is None or need == "url":  # http agents are checked once, on the agent
                continue
            if stage.get(need) or agent.get(need):
                if kind == "python":
                    self._check_importable(stage_name, stage, agent_name, agents, path)
                continue
            self.out.append(
                error(
                    "A307",
                    f"stage `{stage_name}` has nothing to run: {kind} agent `{agent_name}` "
                    f"has no `{need}` and neither has the stage",
                    self.model.key_span(path),
                    help=f"add `{need} = ...` to the stage or to agent `{agent_name}`",
                )
            )
            return

    def _check_importable(
        self, stage_name: str, stage: Mapping[str, Any], agent_name: str, agents: list[str], path: DocPath
    ) -> None:
        """A504: the module of a python `call` cannot be found from the stage's folder."""
        own = isinstance(stage.get("call"), str)
        call = stage.get("call") if own else self.model.agents[agent_name].get("call")
        if not isinstance(call, str) or "${" in call:
            return
        folder = _stage_folder(self.model, self.name, stage, agents)
        missing = _module_not_found(call, folder)
        if missing is None:
            return
        where: DocPath = (*path, "call") if own else ("agents", agent_name, "call")
        self.out.append(
            warning(
                "A504",
                f"python module `{missing}` cannot be imported from the folder of stage `{stage_name}`",
                self.model.value_span(where),
                f"no `{missing}.py` or `{missing}/` there, and not installed",
                notes=[f"the stage runs in {_shown_folder(folder)}"],
                help=f"put `{missing}.py` in that folder, set the stage's `cwd` to the folder that holds "
                f"it, or install `{missing}`",
            )
        )

    def _check_target(self, name: str, path: DocPath) -> None:
        """A name in `after`: a stage or a `use` alias of this workflow."""
        if name in self.stages or name in self.uses:
            return
        candidates = [*self.stages, *self.uses]
        if "." in name:  # `ALIAS.STAGE` or a nested alias, included by `use`
            flat = self.model.flat_stages(self.name)
            aliases = {
                stage.rsplit(".", depth)[0] for stage in flat for depth in range(1, stage.count(".") + 1)
            }
            if name in flat or name in aliases:
                return
            candidates = [*candidates, *flat, *sorted(aliases - set(candidates))]
        self.out.append(
            error(
                "A202",
                f"unknown stage `{name}` in workflow `{self.name}`",
                self.model.value_span(path),
                help=did_you_mean(name, candidates) or _known(candidates, "stage"),
            )
        )

    def _check_when(self, when: Any, path: DocPath) -> None:
        span = self.model.value_span(path)
        if isinstance(when, bool):
            return
        if not isinstance(when, str):
            kind = _a(_value_type(when))
            self.out.append(error("A303", f"`when` must be a boolean, not {kind}", span))
            return
        template = self._check_strings(when, path)
        if template is None and "${" in when:
            return  # it does not parse: A108 says why
        single = None if template is None else template.single
        if single is None:
            self.out.append(
                error(
                    "A303",
                    "`when` must be a boolean, but this is a string",
                    span,
                    help="write the condition without quotes, or as one `${...}`",
                )
            )
            return
        # check_types' A309s were reported with the references; only A303 is new here.
        self.out.extend(d for d in check_when(single, self.param_types, span) if d.code == "A303")

    # -- references -----------------------------------------------------------------------

    def _check_strings(self, value: Any, path: DocPath) -> Template | None:
        """Check every reference in the strings of ``value``; the template of ``value`` if a string."""
        last: Template | None = None
        for text, at in _strings(value, path):
            template = self.model.template(text, at)
            last = template
            if template is None:
                if "${" in text:  # it does not parse (A108): count the params it seems to name
                    self.used_params.update(_PARAM_MENTION.findall(text))
                continue
            where = self.model.value_span(at)
            for ref in references(template):
                self._check_ref(ref, where)
            for part in template.parts:
                if isinstance(part, Binary | Unary):
                    self.out.extend(check_types(part, self.param_types, where)[1])
        return last if isinstance(value, str) else None

    def _check_ref(self, ref: Ref, where: Span) -> None:
        span = ref.span or where
        parts = ref.parts
        root = parts[0]
        if root not in ROOTS:
            self.out.append(_unknown_root(ref, where))
            return
        if len(parts) < 2:
            self.out.append(error("A210", f"incomplete reference `{ref}`", span, help=f"write `{root}.NAME`"))
            return
        if root == "params":
            name = parts[1]
            self.used_params.add(name)
            if name not in self.params:
                self.out.append(
                    error(
                        "A203",
                        f"unknown param `{name}` in workflow `{self.name}`",
                        span,
                        help=did_you_mean(name, self.params) or _known(self.params, "param"),
                    )
                )
        elif root == "stages":
            self._check_stage_ref(ref, span)
        elif root in ("env", "secrets") and len(parts) != 2:
            self.out.append(
                error("A210", f"`{ref}` has too many parts", span, help=f"write `{root}.NAME`")
            )

    def _check_stage_ref(self, ref: Ref, span: Span) -> None:
        parts = ref.parts
        if "outputs" not in parts[2:] or parts.index("outputs", 2) != len(parts) - 2:
            self.out.append(
                error(
                    "A210",
                    f"`{ref}` is not a stage output reference",
                    span,
                    help="write `stages.NAME.outputs.KEY`",
                )
            )
            return
        stage = ".".join(parts[1:-2])
        key = parts[-1]
        flat = self.model.flat_stages(self.name)
        if stage not in flat:
            if stage in self.uses:
                inner = [n for n in flat if n.startswith(stage + ".")]
                self.out.append(
                    error(
                        "A202",
                        f"`{stage}` is a `use` alias, not a stage: name one of its stages",
                        span,
                        help=_known(inner, "stage"),
                    )
                )
                return
            self.out.append(
                error(
                    "A202",
                    f"unknown stage `{stage}` in workflow `{self.name}`",
                    span,
                    help=did_you_mean(stage, flat) or _known(flat, "stage"),
                )
            )
            return
        origin_workflow, origin_stage = flat[stage]
        declared = self.model.declared_outputs(origin_workflow, origin_stage)
        if declared is not None and key not in declared:
            self.out.append(
                error(
                    "A204",
                    f"stage `{stage}` has no output `{key}`",
                    span,
                    help=did_you_mean(key, declared) or _known(declared, "output"),
                )
            )

    # -- uses -----------------------------------------------------------------------------

    def _check_use(self, alias: str, use: dict[str, Any]) -> None:
        path: DocPath = (*self.path, "uses", alias)
        model = self.model
        template = use.get("template")
        for index, name in enumerate(_names(use.get("after"))):
            self._check_target(name, (*path, "after", index))
        bindings = _map(use.get("params"))
        for key, value in bindings.items():
            self._check_strings(value, (*path, "params", key))
        if not isinstance(template, str):
            return
        if template not in model.workflows:
            self.out.append(
                error(
                    "A205",
                    f"unknown workflow `{template}` in `use`",
                    model.value_span((*path, "template")),
                    help=did_you_mean(template, model.workflows) or _known(model.workflows, "workflow"),
                )
            )
            return
        if _template_cycle(model, self.name, alias) is not None:
            return  # reported once per cycle (A215) by _template_cycles
        declared = _map(model.workflows[template].get("params"))
        types = model.param_types(template)
        for key, value in bindings.items():
            binding_path = (*path, "params", key)
            if key not in declared:
                self.out.append(
                    error(
                        "A203",
                        f"workflow `{template}` has no param `{key}`",
                        model.key_span(binding_path),
                        help=did_you_mean(key, declared) or _known(declared, "param"),
                    )
                )
                continue
            self._check_binding_type(key, value, types.get(key, "any"), binding_path)
        for param, spec in declared.items():
            if param not in bindings and not (isinstance(spec, dict) and "default" in spec):
                self.out.append(
                    error(
                        "A213",
                        f"`use {template}(...) as {alias}` does not set the required param `{param}`",
                        model.key_span(path),
                        help=f"add `{param} = ...` to the `use`",
                    )
                )

    def _check_binding_type(self, key: str, value: Any, type_name: str, path: DocPath) -> None:
        if isinstance(value, str) and "${" in value:
            template = self.model.template(value, path)
            if template is None:
                return  # it does not parse: A108 says why
            single = template.single
            kind = "string" if single is None else check_types(single, self.param_types)[0]
            ok = kind == "any" or type_name == "any" or kind == type_name or (
                type_name in ("float", "duration") and kind in ("int", "float", "duration")
            )
        else:
            kind = _value_type(value)
            ok = _fits(value, type_name)
        if not ok:
            self.out.append(
                error(
                    "A302",
                    f"param `{key}` is declared {type_name}, but the value given is {_a(kind)}",
                    self.model.value_span(path),
                    f"expected {_a(type_name)}",
                )
            )


def _template_cycle(model: _Model, workflow: str, alias: str) -> list[tuple[str, str]] | None:
    """The `use` edges (workflow, alias) of a cycle through ``use ... as alias`` of ``workflow``.

    The first edge is that use; the last one uses ``workflow`` again. None when the use's
    template does not (transitively) include ``workflow``.
    """
    seen: set[str] = set()

    def walk(name: str, chain: list[tuple[str, str]]) -> list[tuple[str, str]] | None:
        if name == workflow:
            return chain
        if name in seen or name not in model.workflows:
            return None
        seen.add(name)
        for inner_alias, use in model.uses_of(name).items():
            inner = use.get("template")
            if isinstance(inner, str):
                found = walk(inner, [*chain, (name, inner_alias)])
                if found is not None:
                    return found
        return None

    template = model.uses_of(workflow).get(alias, {}).get("template")
    if not isinstance(template, str):
        return None
    return walk(template, [(workflow, alias)])


def _template_cycles(model: _Model) -> list[Diagnostic]:
    """A215 once per cycle of `use`s, found from the first workflow (in declaration order) on it."""
    out: list[Diagnostic] = []
    reported: set[frozenset[tuple[str, str]]] = set()
    for workflow in model.workflows:
        for alias in model.uses_of(workflow):
            cycle = _template_cycle(model, workflow, alias)
            if cycle is None or frozenset(cycle) in reported:
                continue
            reported.add(frozenset(cycle))
            names = [name for name, _ in cycle]
            labels = [
                Label(
                    model.value_span(("workflows", name, "uses", used_as, "template")),
                    f"`{name}` uses `{model.uses_of(name)[used_as]['template']}` here",
                )
                for name, used_as in cycle
            ]
            out.append(
                error(
                    "A215",
                    "template cycle: " + " -> ".join([*names, names[0]]),
                    labels[0].span,
                    labels[0].text,
                    secondary=labels[1:],
                    help="a template cannot include itself, directly or through another template",
                )
            )
    return out


def _invalid_duration(value: Any, span: Span) -> Diagnostic:
    shown = value if isinstance(value, str) else json.dumps(value)
    return error(
        "A304",
        f"invalid duration `{shown}`",
        span,
        help="write a duration such as `500ms`, `30s`, `5m`, `2h`, `1d` or `1h30m`",
    )


def _a(kind: str) -> str:
    return ("an " if kind[:1] in "aeiou" else "a ") + kind
