"""What ``check --online`` and ``plan --online`` ask the MCP servers, and what ``alfredc lock``
writes: each mcp agent a file's stages use (to call a tool or to read ``docs``) is started or
connected to once, its tools listed and the documentation its stages read fetched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._diagnostics import Diagnostic, error, warning

__all__ = ["AgentAnswer", "ask_servers", "online_diagnostics"]


@dataclass(frozen=True, slots=True)
class AgentAnswer:
    """What one agent's server said: its tools and fetched docs, or why it said nothing."""

    agent: str
    where: str
    tools: tuple[Any, ...] = ()        # LockedTool
    docs: tuple[Any, ...] = ()         # FetchedDoc
    problem: str | None = None


@dataclass(slots=True)
class Asked:
    workspace: Any
    model: Any
    answers: list[AgentAnswer] = field(default_factory=list)


def ask_servers(path: str) -> tuple[Asked | None, list[Diagnostic]]:
    """Load ``path`` and ask the server of each mcp agent its stages use; the load's
    diagnostics (the workspace is None when it could not be loaded)."""
    from ..compiler._docslock import docs_tools_of, requests_of, stage_docs
    from ..compiler._mcpcheck import MCP_KIND
    from ..compiler._view import _Model
    from ..compiler.load import load
    from ..runtime._docs import DocsError, query_server, server_spec
    from ..runtime._resolve import render_value
    from ..runtime._toolenv import tool_environment

    workspace, diagnostics = load(path)
    if workspace is None:
        return None, diagnostics
    model = _Model.of(workspace)
    items = list(stage_docs(model))
    used: dict[str, None] = {}
    for workflow in model.workflows:
        for stage in model.stages_of(workflow).values():
            agent = stage.get("agent")
            if isinstance(agent, str):
                used[agent] = None
    for item in items:
        used[item.request.agent] = None
    env = tool_environment(os.environ)
    scope = {"env": env, "secrets": env, "params": {}, "stages": {}}
    asked = Asked(workspace, model)
    folder = str(Path(path).absolute().parent)
    for name in used:
        agent = model.agents.get(name)
        if not isinstance(agent, dict) or agent.get("kind") != MCP_KIND:
            continue
        base = workspace.base_dirs.get(f"agents/{name}")
        spec = server_spec(name, agent, lambda value: render_value(value, scope), env,
                           str(base) if base is not None else folder)
        wanted = requests_of([item for item in items if item.request.agent == name])
        try:
            answer = query_server(spec, wanted, docs_tools_of(agent))
        except DocsError as exc:
            asked.answers.append(AgentAnswer(name, spec.describe(), problem=str(exc)))
            continue
        asked.answers.append(AgentAnswer(name, spec.describe(), answer.tools, answer.docs))
    return asked, diagnostics


def online_diagnostics(paths: Sequence[str]) -> list[Diagnostic]:
    """A316/A317 against the tools the servers list now, A318 for a server that does not
    answer, A509 for pinned documentation whose text changed on its server."""
    from ..compiler._docslock import LOCK_NAME, LockError, read_file_lock, stage_docs
    from ..compiler._mcptools import check_tool_calls

    out: list[Diagnostic] = []
    for path in paths:
        asked, _ = ask_servers(path)  # load problems are check's own diagnostics
        if asked is None:
            continue
        model = asked.model
        tools = {a.agent: a.tools for a in asked.answers if a.problem is None}
        for answer in asked.answers:
            if answer.problem is not None:
                out.append(error(
                    "A318", f"cannot list the tools of agent `{answer.agent}`'s MCP server: {answer.problem}",
                    model.key_span(("agents", answer.agent)), f"`{answer.where}`",
                    help="make the server reachable, or check without --online",
                ))
        out.extend(check_tool_calls(model, tools, "its server"))
        try:
            lock = read_file_lock(path)
        except LockError:
            lock = None  # check reports it (A509)
        if lock is None:
            continue
        fetched = {doc.request: doc for a in asked.answers for doc in a.docs}
        for item in stage_docs(model):
            locked, now = lock.doc(item.request), fetched.get(item.request)
            if locked is not None and now is not None and now.sha256 != locked.sha256:
                out.append(warning(
                    "A509", f"the documentation of {item.request.describe()} changed on its server since "
                    f"{LOCK_NAME} pinned it",
                    model.value_span(item.path),
                    f"pinned sha256 {locked.sha256[:12]}, now {now.sha256[:12]}",
                    help=f"run `alfredc lock {Path(path).name}` to pin the new text, and review the diff",
                ))
    return out
