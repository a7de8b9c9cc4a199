"""What the three exporters share: the data of each stage, Python names, the module header."""

from __future__ import annotations

import builtins
import hashlib
import keyword
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._compiler import Plan, PlanAgent, PlanStage, thaw

__all__ = [
    "Names", "agent_of", "backoff_delays", "header", "in_dependency_order", "literal", "pool_name",
    "stage_data", "workflow_data",
]


def literal(value: Any, indent: int = 0) -> str:
    """``value`` (JSON-like data) as a Python literal: short values on one line, longer maps
    and lists one item a line, as a formatter would write them."""
    flat = repr(value)
    if len(flat) + indent <= 90 or not isinstance(value, dict | list) or not value:
        return flat
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        items = [f"{pad}{key!r}: {literal(item, indent + 4)},\n" for key, item in value.items()]
        return "{\n" + "".join(items) + " " * indent + "}"
    items = [f"{pad}{literal(item, indent + 4)},\n" for item in value]
    return "[\n" + "".join(items) + " " * indent + "]"


class Names:
    """Unique Python identifiers for names that may hold dots and dashes (``auth.spec-v2``)."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._taken = set(reserved) | set(dir(builtins))
        self._of: dict[tuple[str, str], str] = {}

    def __call__(self, name: str, kind: str = "stage") -> str:
        """The identifier of ``name``; a param and a stage of the same name get two."""
        found = self._of.get((kind, name))
        if found is not None:
            return found
        base = re.sub(r"\W", "_", name) or "_"
        if base[0].isdigit() or keyword.iskeyword(base):
            base = "_" + base
        candidate, n = base, 2
        while candidate in self._taken:
            candidate, n = f"{base}_{n}", n + 1
        self._taken.add(candidate)
        self._of[kind, name] = candidate
        return candidate


def agent_of(plan: Plan, stage: PlanStage) -> PlanAgent:
    """The agent the exported stage runs on: of its candidates, the first declared (the one
    ``alfredc run`` picks when all are free)."""
    order = {agent.name: index for index, agent in enumerate(plan.agents)}
    name = min(stage.agents, key=lambda a: order.get(a, len(order)))
    return plan.agent(name)


def in_dependency_order(plan: Plan) -> list[PlanStage]:
    """The stages, each after its dependencies, otherwise as declared: a flow or job body
    names a stage's result only after the line that made it (a template's stages come
    after the stages that use them in the plan)."""
    placed: set[str] = set()
    pending = list(plan.stages)
    ordered: list[PlanStage] = []
    while pending:
        ready = next((stage for stage in pending if placed.issuperset(stage.after)), pending[0])
        ordered.append(ready)
        placed.add(ready.name)
        pending.remove(ready)
    return ordered


def pool_name(agent: PlanAgent) -> str:
    return "alfred-" + re.sub(r"[^A-Za-z0-9_-]", "_", agent.name)


def backoff_delays(stage: PlanStage) -> list[float]:
    """alfred's wait before each retry, without jitter: ``backoff * 2**(n-1)``, capped."""
    delays = []
    for n in range(1, stage.retries + 1):
        delay = max(stage.backoff_s, 0.0) * 2.0 ** (n - 1)
        if stage.max_backoff_s is not None:
            delay = min(delay, float(stage.max_backoff_s))
        delays.append(round(delay, 3))
    return delays


def project_dir(plan: Plan) -> str:
    return os.path.dirname(os.path.abspath(plan.source))


def workflow_data(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.workflow,
        "source": plan.source,
        "project_dir": project_dir(plan),
        "params": thaw(plan.params),
        "secrets": list(plan.secrets),
    }


def stage_data(plan: Plan, stage: PlanStage) -> dict[str, Any]:
    """What the run-time shim needs to run one attempt of ``stage`` as ``alfredc run`` would."""
    agent = agent_of(plan, stage)
    data: dict[str, Any] = {"name": stage.name, "after": list(stage.after)}
    if stage.run is not None:
        data["run"] = thaw(stage.run)
    if stage.call is not None:
        data["call"] = stage.call
    if stage.inputs:
        data["inputs"] = thaw(stage.inputs)
    if stage.env:
        data["env"] = thaw(stage.env)
    cwd = os.path.relpath(stage.cwd, project_dir(plan)) if os.path.isabs(stage.cwd) else stage.cwd
    if cwd != ".":
        data["cwd"] = cwd
    if stage.when is not True:
        data["when"] = stage.when
    if stage.timeout_s:
        data["timeout_s"] = stage.timeout_s
    if stage.mcp is not None:  # tool and arguments (a stage with `docs` is not exported)
        data["mcp"] = thaw(stage.mcp)
    agent_data: dict[str, Any] = {"name": agent.name, "kind": agent.kind}
    for key in ("run", "call", "url"):
        value = getattr(agent, key)
        if value is not None:
            agent_data[key] = thaw(value)
    if agent.env:
        agent_data["env"] = thaw(agent.env)
    options = {key: thaw(agent.options[key]) for key in ("headers", "server") if key in agent.options}
    if options:
        agent_data["options"] = options
    data["agent"] = agent_data
    return data


@dataclass(frozen=True, slots=True)
class Source:
    path: str
    sha256: str


def source_of(plan: Plan) -> Source:
    try:
        with open(plan.source, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        digest = "unknown"
    return Source(plan.source, digest)


def header(plan: Plan, engine: str, target: str, run_line: str, extra: Iterable[str] = ()) -> str:
    """The module's docstring: what it is, where it comes from, how to run it."""
    source = source_of(plan)
    lines = [
        f"alfred workflow `{plan.workflow}`, exported for {engine}.",
        "",
        f"Source: {source.path}",
        f"SHA-256: {source.sha256}",
        f"Generated by `alfredc export --to {target}`: edit the source and export again.",
    ]
    if plan.description:
        lines += ["", plan.description]
    lines += ["", f"Run it once locally: {run_line}", *extra]
    lines += [
        "",
        "Stages run through alfred's run-time shim (alfred_dsl.export.runtime, installed with",
        "`pip install alfred-dsl` beside the engine): the same command contract as `alfredc run`.",
        "Set ALFRED_PROJECT_DIR to move the folder the stages run in.",
    ]
    body = "\n".join(lines).replace('"""', '\\"\\"\\"')
    return f'"""{body}\n"""\n'
