"""Names and types: the semantic checks of a loaded workspace.

:func:`check_workspace` walks every agent and workflow and reports every problem in one
pass (A2xx names and references, A3xx types, A5xx unused names). The checks of one
workflow are built up in parts, each answering one question: :mod:`._check_refs` (does every
reference name something?), :mod:`._check_types` (does every value have the right type?),
:mod:`._check_stages` (can every stage run, is every `use` well bound?); the class here
runs them and reports the params nothing uses.
"""

from __future__ import annotations

from typing import Any

from .._cron import cron_problem
from .._diagnostics import Diagnostic, Label, error, warning
from .._expr import references
from ._check_refs import _unknown_root
from ._check_stages import _StageChecks, _template_cycle
from ._document import Path as DocPath
from ._fixes import remove_param_line_fix
from ._mcpcheck import check_mcp_agent, docs_agents
from ._runif import unreachable_failure_stages
from ._view import (
    EXECUTOR_NEEDS,
    ROOTS,
    WorkspaceLike,
    _map,
    _Model,
    _names,
    _strings,
)

__all__ = [
    "check_workspace",
    "cron_problem",
]


class _WorkflowChecker(_StageChecks):
    """The checks of one workflow; appends to ``out``."""

    def run(self) -> None:
        self._check_schedule()
        self._check_params()
        self._check_defaults()
        for stage_name, stage in self.stages.items():
            self._check_stage(stage_name, stage)
        for alias, use in self.uses.items():
            self._check_use(alias, use)
        # Incremental runs, cleanup stages and run-level controls (compiler._runif).
        if "concurrency_group" in self.workflow:
            self._check_strings(self.workflow["concurrency_group"], (*self.path, "concurrency_group"))
        is_template = any(use.get("template") == self.name for w in self.model.workflows
                          for use in self.model.uses_of(w).values())
        self.out.extend(unreachable_failure_stages(self.name, self.stages, is_template, self.model.key_span))
        hooks = self.workflow.get("on")
        if hooks is not None:
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
                        fix=remove_param_line_fix(self.model.key_span((*self.path, "params", param))),
                    )
                )


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
    out.extend(check_mcp_agent(name, agent, path, model.key_span))
    for key, value in agent.items():
        if key in ("run", "call", "url", "env", "cwd", "server", "headers"):
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
            if "docs" in stage:
                used.update(docs_agents([stage["docs"]]))
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


