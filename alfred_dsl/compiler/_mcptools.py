"""Stages' MCP calls against their servers' tool lists: does the `tool` exist (A316), do its
`arguments` satisfy the tool's input JSON Schema (A317), does a docs agent serve the two
documentation tools (A316)?

The tool lists come from the servers themselves (``alfredc check --online``, which lists
them through runtime/_docs.py) or from the copy ``alfredc lock`` cached in ``alfred.lock``;
this module only compares. An argument whose value is a ``${...}`` string is checked for
presence, not for its type: its value is known only when the stage runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._diagnostics import Diagnostic, error, warning
from .._values import did_you_mean
from ._docslock import (
    LOCK_NAME,
    LockedTool,
    LockError,
    docs_tools_of,
    entry_file,
    lock_diagnostics,
    read_file_lock,
    stage_docs,
)
from ._document import Path as DocPath
from ._fixes import rename_fix
from ._mcpcheck import MCP_KIND, has_mcp_agents
from ._view import WorkspaceLike, _Model

__all__ = ["check_tool_calls", "mcp_lock_diagnostics"]


def mcp_lock_diagnostics(ws: WorkspaceLike) -> list[Diagnostic]:
    """What ``alfredc check`` says from ``alfred.lock`` alone: A508/A509 for the stages' docs,
    and A316/A317 against the tool lists the lock caches. Nothing (and no file read) for a
    workspace without mcp agents."""
    entry = entry_file(ws)
    if entry is None or not has_mcp_agents(ws):
        return []
    model = _Model.of(ws)
    out = lock_diagnostics(ws, model)
    try:
        lock = read_file_lock(entry)
    except LockError as exc:
        # The docs check already says so (A509) when stages read docs; else the first tool call.
        call = next(iter(_tool_calls(model)), None)
        if call is not None and not any(d.code == "A509" for d in out):
            out.append(warning("A509", f"{LOCK_NAME} cannot be used: {exc}", model.key_span(call),
                               "its cached tool lists are not checked against",
                               help=f"run `alfredc lock {entry.name}` to write it again"))
        return out
    if lock is not None and lock.tools:
        out.extend(check_tool_calls(model, lock.tools, LOCK_NAME))
    return out


def _tool_calls(model: _Model) -> list[DocPath]:
    """The `tool` of each stage on an mcp agent, in declaration order."""
    return [
        ("workflows", workflow, "stages", name, "tool")
        for workflow in model.workflows
        for name, stage in model.stages_of(workflow).items()
        if "tool" in stage and model.agents.get(str(stage.get("agent")), {}).get("kind") == MCP_KIND
    ]


def check_tool_calls(
    model: _Model, tools: Mapping[str, Sequence[LockedTool]], origin: str
) -> list[Diagnostic]:
    """A316 and A317 for the stages of every workflow on the agents of ``tools`` (agent name ->
    its server's tools); ``origin`` says where the list comes from (``its server``, ``alfred.lock``)."""
    out: list[Diagnostic] = []
    for workflow in model.workflows:
        for stage_name, stage in model.stages_of(workflow).items():
            path: DocPath = ("workflows", workflow, "stages", stage_name)
            agent = stage.get("agent")
            on_mcp = isinstance(agent, str) and model.agents.get(agent, {}).get("kind") == MCP_KIND
            if on_mcp and isinstance(agent, str) and agent in tools:
                out.extend(_check_call(model, stage, path, agent, tools[agent], origin))
    for item in stage_docs(model):
        agent = item.request.agent
        if agent not in tools:
            continue
        names = {t.name for t in tools[agent]}
        for role, tool in docs_tools_of(model.agents.get(agent)).items():
            if tool in names:
                continue
            hint = did_you_mean(tool, names)
            out.append(error(
                "A316", f"the docs agent `{agent}` has no tool `{tool}` ",
                model.value_span(item.path), f"its `{role}` tool (according to {origin})",
                help=(f"{hint} " if hint else "")
                + f'name the server\'s tool in the agent: `docs_tools = {{ {role} = "NAME" }}`'
                + _listed(names),
            ))
            break
    return out


def _listed(names: set[str]) -> str:
    return f" (it has {', '.join(f'`{n}`' for n in sorted(names))})" if names else " (it has no tools)"


def _check_call(
    model: _Model, stage: Mapping[str, Any], path: DocPath, agent: str, tools: Sequence[LockedTool],
    origin: str,
) -> list[Diagnostic]:
    tool = stage.get("tool")
    if not isinstance(tool, str) or "${" in tool:
        return []
    by_name = {t.name: t for t in tools}
    found = by_name.get(tool)
    if found is None:
        span = model.value_span((*path, "tool"))
        hint = did_you_mean(tool, by_name)
        return [error(
            "A316", f"the server of agent `{agent}` has no tool `{tool}`",
            span, f"according to {origin}",
            help=(hint or "name one of its tools") + _listed(set(by_name)),
            fix=rename_fix(span, tool, by_name),
        )]
    arguments = stage.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping) or not found.input_schema:
        return []
    return _check_arguments(model, dict(arguments), "arguments" in stage, path, tool, found.input_schema)


def _check_arguments(
    model: _Model, arguments: dict[str, Any], has_arguments: bool, path: DocPath, tool: str,
    schema: Mapping[str, Any],
) -> list[Diagnostic]:
    import jsonschema  # only when there is a schema to check against

    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.SchemaError:
        return []  # the server's schema is broken: nothing to check against
    validator = validator_class(schema)
    out: list[Diagnostic] = []
    found_properties = schema.get("properties")
    properties: Mapping[str, Any] | None = found_properties if isinstance(found_properties, Mapping) else None
    for problem in sorted(validator.iter_errors(arguments), key=lambda e: list(map(str, e.absolute_path))):
        at: tuple[str | int, ...] = tuple(problem.absolute_path)
        if _interpolated(arguments, at):
            continue
        where: DocPath = (*path, "arguments", *at)
        if problem.validator == "required":
            missing = _quoted_name(problem.message)
            span = model.key_span(where) if has_arguments else model.key_span((*path, "tool"))
            out.append(error(
                "A317", f"tool `{tool}` requires the argument `{missing}`", span,
                f"`{missing}` is missing", help=f"add `{missing} = ...` to the stage's `arguments`",
            ))
        elif problem.validator == "additionalProperties" and not at:
            continue  # reported below, with a did-you-mean, whatever the schema says about extras
        else:
            shown = ".".join(str(p) for p in at) or "arguments"
            out.append(error(
                "A317", f"argument `{shown}` of tool `{tool}`: {problem.message}",
                model.value_span(where) if at else model.key_span(where),
                help=_schema_help(problem.schema) if isinstance(problem.schema, Mapping) else None,
            ))
    # A name the schema does not list is a typo far more often than an extra the tool wants:
    # refused unless the schema says `additionalProperties: true` (or a schema) outright.
    extras_allowed = schema.get("additionalProperties", False) is not False
    if properties is not None and not extras_allowed:
        for name in sorted(set(arguments) - set(properties)):
            hint = did_you_mean(name, properties)
            listed = ", ".join(f"`{p}`" for p in properties)
            out.append(error(
                "A317", f"tool `{tool}` takes no argument `{name}`",
                model.key_span((*path, "arguments", name)),
                help=hint or (f"its arguments are {listed}" if listed else "it takes no arguments"),
            ))
    return out


def _interpolated(value: Any, at: tuple[str | int, ...]) -> bool:
    """Whether the value at ``at`` (or one around it) is a ``${...}`` string, known only at run time."""
    node = value
    for part in at:
        if isinstance(node, str):
            break
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(node, str) and "${" in node


def _quoted_name(message: str) -> str:
    # jsonschema: "'libraryName' is a required property"
    return message.split("'")[1] if message.count("'") >= 2 else message


def _schema_help(schema: Mapping[str, Any]) -> str | None:
    expected = schema.get("type")
    if isinstance(expected, str):
        return f"the tool's schema wants a value of type `{expected}` here"
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    return None

