"""Checks and plan fields of ``kind = mcp`` agents and their stages (runtime: runtime/_mcp.py).

An mcp agent names exactly one server, ``server = [argv]`` (stdio) or ``url`` (streamable
HTTP); a stage on it says which ``tool`` to call and its ``arguments``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._diagnostics import Diagnostic, error
from .._source import Span
from .._values import did_you_mean
from ._plan import FrozenMap

__all__ = [
    "MCP_KIND", "MCP_STAGE_KEYS", "check_docs_agents", "check_mcp_agent", "check_mcp_stage", "docs_agents",
    "has_mcp_agents", "mcp_of",
]

MCP_KIND = "mcp"
#: The stage attributes of an mcp call.
MCP_STAGE_KEYS = ("tool", "arguments", "docs")
#: The agent that serves a stage's ``docs`` when an entry names none (see _docslock.py).
DEFAULT_DOCS_AGENT = "context7"

DocPath = tuple[str | int, ...]


def check_mcp_agent(
    name: str, agent: Mapping[str, Any], path: DocPath, key_span: Callable[[DocPath], Span]
) -> list[Diagnostic]:
    """A313: an mcp agent names no server, or two."""
    if agent.get("kind") != MCP_KIND:
        return []
    has_server, has_url = "server" in agent, "url" in agent
    if has_server != has_url:
        return []
    return [
        error(
            "A313",
            f"mcp agent `{name}` has both `server` and `url`"
            if has_server
            else f"mcp agent `{name}` names no server",
            key_span(path),
            help='keep exactly one: `server = ["cmd", "arg"]` (stdio) or `url = "https://host/mcp"` '
            "(streamable HTTP)",
        )
    ]


def check_mcp_stage(
    stage_name: str,
    stage: Mapping[str, Any],
    agents: Mapping[str, Mapping[str, Any]],
    path: DocPath,
    key_span: Callable[[DocPath], Span],
) -> list[Diagnostic]:
    """A314: a stage on an mcp agent names no `tool`, or a stage names a `tool` that no mcp
    agent of its would call."""
    if not agents:
        return []
    kinds = {name: agent.get("kind", "command") for name, agent in agents.items()}
    on_mcp = [name for name, kind in kinds.items() if kind == MCP_KIND]
    if on_mcp and "tool" not in stage:
        return [
            error(
                "A314",
                f"stage `{stage_name}` runs on mcp agent `{on_mcp[0]}` but names no `tool`",
                key_span(path),
                help='add `tool = "NAME"` (and `arguments = { ... }`) to the stage',
            )
        ]
    if not on_mcp and ("tool" in stage or "arguments" in stage):
        key = "tool" if "tool" in stage else "arguments"
        other = next(iter(kinds))
        return [
            error(
                "A314",
                f"stage `{stage_name}` has `{key}`, but its agent `{other}` is a {kinds[other]} agent",
                key_span((*path, key)),
                help="`tool` and `arguments` are for stages on `kind = mcp` agents",
            )
        ]
    return []


def mcp_of(kind: str, values: Mapping[str, Any]) -> FrozenMap | None:
    """The plan's ``mcp`` field of a stage of ``kind``: its tool, arguments and docs."""
    if kind != MCP_KIND and not values.get("docs"):
        return None
    arguments = values.get("arguments")
    docs = values.get("docs")
    return FrozenMap({
        "tool": values.get("tool") if isinstance(values.get("tool"), str) else None,
        "arguments": arguments if isinstance(arguments, Mapping) else {},
        "docs": list(docs) if isinstance(docs, list) else [],
    })


def has_mcp_agents(ws: Any) -> bool:
    """Whether a workspace declares an mcp agent (the lock and the tool lists matter only then)."""
    agents = ws.data.get("agents") if isinstance(ws.data, Mapping) else None
    return isinstance(agents, Mapping) and any(
        isinstance(a, Mapping) and a.get("kind") == MCP_KIND for a in agents.values()
    )


def docs_agents(docs_lists: Iterable[Any]) -> set[str]:
    """The agents that serve these ``docs`` lists (an entry's ``agent``, else ``context7``)."""
    names: set[str] = set()
    for entries in docs_lists:
        for entry in entries if isinstance(entries, list | tuple) else ():
            if isinstance(entry, Mapping):
                agent = entry.get("agent")
                names.add(agent if isinstance(agent, str) else DEFAULT_DOCS_AGENT)
    return names


def check_docs_agents(
    stage_name: str,
    stage: Mapping[str, Any],
    agents: Mapping[str, Mapping[str, Any]],
    path: DocPath,
    key_span: Callable[[DocPath], Span],
    value_span: Callable[[DocPath], Span],
) -> list[Diagnostic]:
    """A201 for a ``docs`` entry whose agent does not exist, A315 for one that is not an mcp agent."""
    entries = stage.get("docs")
    out: list[Diagnostic] = []
    for index, entry in enumerate(entries if isinstance(entries, list) else ()):
        if not isinstance(entry, Mapping):
            continue
        named = isinstance(entry.get("agent"), str)
        agent = entry["agent"] if named else DEFAULT_DOCS_AGENT
        span = value_span((*path, "docs", index, "agent")) if named else key_span((*path, "docs"))
        if agent not in agents:
            hint = did_you_mean(agent, [a for a, v in agents.items() if v.get("kind") == MCP_KIND])
            out.append(error(
                "A201", f"unknown agent `{agent}`, which serves the docs of stage `{stage_name}`", span,
                help=hint or (
                    f"declare it: `agent {agent} {{ kind = mcp  server = "
                    '["npx", "-y", "@upstash/context7-mcp"] }`'
                    if not named else "name an mcp agent that serves documentation"
                ),
            ))
        elif agents[agent].get("kind") != MCP_KIND:
            out.append(error(
                "A315", f"agent `{agent}` serves the docs of stage `{stage_name}` but is not an mcp agent",
                span, help="documentation comes from the tools of an MCP server: name a `kind = mcp` agent",
            ))
        if out:
            break
    return out
