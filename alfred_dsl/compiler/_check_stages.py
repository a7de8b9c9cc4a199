"""Checks of one workflow, third part: can every stage run, and is every `use` well bound?

A stage's agent or capabilities, what it runs (and whether a python `call`'s module can be
imported from its folder), its fields; a `use`'s template, bindings and `after`.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Mapping
from typing import Any

from .._diagnostics import Label, error, warning
from .._values import did_you_mean
from ._approvals import check_approval_stage
from ._check_types import _TypeChecks
from ._document import Path as DocPath
from ._fixes import rename_fix
from ._foreach import FOR_EACH_KEY, check_stage as check_for_each
from ._mcpcheck import MCP_KIND, check_docs_agents, check_mcp_stage
from ._view import (
    _NAME_KEYS,
    EXECUTOR_NEEDS,
    _known,
    _map,
    _Model,
    _names,
    _stage_folder,
)

#: Types of document values that hold no string (nothing in them to interpolate).
_NO_STRINGS = frozenset({int, float, bool, type(None)})


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


class _StageChecks(_TypeChecks):
    """Stages and uses: what runs, on which agent, from which template."""

    def _check_stage(self, stage_name: str, stage: dict[str, Any]) -> None:
        # Called once per stage (100,000 times in a large file): paths and spans are made only
        # for a value that needs them, and the checks that cannot find anything in this stage
        # (mcp, for_each, strings without `${`) are not called.
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
        if "approve" in stage:  # an approval stage has no agent (_approvals.py)
            self.out.extend(check_approval_stage(
                self.name, self.workflow, stage_name, stage, path, model.key_span, model.value_span,
                did_you_mean,
            ))
        elif has_agent == has_requires:
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
            agent = stage["agent"]
            if isinstance(agent, str) and agent in model.agents:
                agents = [agent]
            else:
                agents = self._check_agent_name(agent, (*path, "agent"))
        elif has_requires:
            agents = self._check_requires(stage["requires"], (*path, "requires"))
        if agents and not (has_agent and has_requires):
            if not self.runnable_agents.issuperset(agents):
                self._check_runnable(stage_name, stage, agents, path)
            if "tool" in stage or "arguments" in stage or not self.mcp_agents.isdisjoint(agents):
                on = {a: model.agents[a] for a in agents}
                self.out.extend(check_mcp_stage(stage_name, stage, on, path, model.key_span))
        if "docs" in stage:
            self.out.extend(
                check_docs_agents(stage_name, stage, model.agents, path, model.key_span, model.value_span)
            )
        after = stage.get("after")
        if isinstance(after, list):
            stages, uses = self.stages, self.uses
            index = 0  # among the names (non-strings are the schema's to report)
            for name in after:
                if isinstance(name, str):
                    if name not in stages and name not in uses:
                        self._check_target(name, (*path, "after", index))
                    index += 1
        self._check_typed_fields(stage, path)
        if "when" in stage:
            self._check_when(stage["when"], (*path, "when"))
        # Only strings holding `${` (and the lists and maps that may hold them) have anything
        # to check; `${each.*}` is such a string too.
        interpolates = False
        for key, value in stage.items():
            kind = type(value)
            if kind is str:
                if "${" not in value:
                    continue
            elif kind in _NO_STRINGS:
                continue
            if key in _NAME_KEYS:
                continue
            interpolates = True
            if key != "when":
                self._check_strings(value, (*path, key))
        if interpolates or FOR_EACH_KEY in stage:
            check_for_each(model, stage_name, stage, path, _NAME_KEYS, self.out)  # for_each, ${each.*}

    @functools.cached_property
    def mcp_agents(self) -> frozenset[str]:
        """The agents of ``kind = mcp`` (only a stage on one, or with a `tool`, is checked for it)."""
        return frozenset(
            name for name, agent in self.model.agents.items() if agent.get("kind", "command") == MCP_KIND
        )

    @functools.cached_property
    def runnable_agents(self) -> frozenset[str]:
        """The agents that :meth:`_check_runnable` has nothing to say about, whatever the stage:
        what they run is their own (``run``/``call``... on the agent; not python, whose module is
        looked for from the stage's folder), or they are checked once, on the agent (http)."""
        runnable: set[str] = set()
        for name, agent in self.model.agents.items():
            kind = agent.get("kind", "command")
            need = EXECUTOR_NEEDS.get(kind) if isinstance(kind, str) else None
            if need is None or need == "url" or (agent.get(need) and kind != "python"):
                runnable.add(name)
        return frozenset(runnable)

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
                fix=rename_fix(self.model.value_span(path), agent, self.model.agents),
            )
        )
        return []

    def _check_requires(self, requires: Any, path: DocPath) -> list[str]:
        capabilities = _names(requires)
        matching = self.model.matching_agents(capabilities)
        if matching or not isinstance(requires, list):
            return matching
        everywhere = {c for agent in self.model.agents.values() for c in _names(agent.get("capabilities"))}
        unknown = [(i, c) for i, c in enumerate(requires) if c not in everywhere]
        if unknown:
            index, capability = unknown[0]
            self.out.append(
                error(
                    "A207",
                    f"no agent has the capability `{capability}`",
                    self.model.value_span((*path, index)),
                    help=did_you_mean(capability, everywhere) or _known(everywhere, "capabilitie"),
                    fix=rename_fix(self.model.value_span((*path, index)), capability, everywhere),
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
                    fix=rename_fix(model.value_span((*path, "template")), template, model.workflows),
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
                        fix=rename_fix(model.key_span(binding_path), key, declared),
                    )
                )
                continue
            self._check_binding_type(key, value, types.get(key, "any"), binding_path)
        for param, spec in declared.items():
            if param not in bindings and "default" not in spec:
                self.out.append(
                    error(
                        "A213",
                        f"`use {template}(...) as {alias}` does not set the required param `{param}`",
                        model.key_span(path),
                        help=f"add `{param} = ...` to the `use`",
                    )
                )
