"""The normalized document as ``.alfred`` text: the inverse of ``_lower``.

Used by :meth:`alfred_dsl.Workflow.to_alfred`. The text lowers back to the same data
(strings stay strings: a value the DSL would write bare, such as an agent's name, a
duration or ``${expr}``, is written bare only where lowering gives the same string back),
and it is passed through the ``fmt`` printer, so it reads like ``alfredc fmt`` output.
Data the language cannot hold (``null``, a param's ``description``) is left out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ._diagnostics import DiagnosticError
from ._source import SourceFile
from ._values import DURATION_RE

__all__ = ["document_to_alfred"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_TARGET = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*")
_WHOLE_EXPRESSION = re.compile(r"\$\{([^{}\"]*)\}")
_KEYWORDS = frozenset(
    ("import", "agent", "workflow", "param", "defaults", "stage", "use", "as", "after", "on",
     "true", "false", "and", "or", "not")
)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}
#: Attributes whose value the DSL writes as a bare name, and those holding a duration.
_NAME_VALUED = frozenset(("agent", "kind", "priority", "on_failure", "type"))
_DURATION_VALUED = frozenset(("estimate", "timeout", "backoff", "max_backoff", "spread"))
#: Workflow keys written as blocks or members, not as attributes.
_WORKFLOW_PARTS = frozenset(("params", "defaults", "stages", "uses", "order", "on"))


def _is_name(text: str) -> bool:
    return _NAME.fullmatch(text) is not None and text not in _KEYWORDS


def _string(text: str) -> str:
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'


def _expression(text: str) -> str | None:
    """The bare form of a string that is exactly one canonical ``${expr}``, else None."""
    match = _WHOLE_EXPRESSION.fullmatch(text)
    if match is None:
        return None
    from ._expr import unparse
    from .compiler.syntax import parse_expression

    inner = match.group(1)
    node, problems = parse_expression(inner, SourceFile("<emit>", inner).whole())
    if node is None or problems or unparse(node) != inner:
        return None
    return inner


def _key(text: str) -> str:
    return text if _NAME.fullmatch(text) else _string(text)


def _value(value: Any, key: str = "") -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else _string(repr(value))
    if isinstance(value, str):
        if key in _NAME_VALUED and _is_name(value):
            return value
        if key in _DURATION_VALUED and DURATION_RE.fullmatch(value):
            return value
        bare = _expression(value)
        return bare if bare is not None else _string(value)
    if isinstance(value, list):
        items = [_value(item) for item in value]
        return "[" + ", ".join(item for item in items if item is not None) + "]"
    if isinstance(value, Mapping):
        entries = [(k, _value(v, str(k))) for k, v in value.items()]
        return "{ " + ", ".join(f"{_key(str(k))} = {v}" for k, v in entries if v is not None) + " }"
    return _string(str(value))


def _attributes(body: Mapping[str, Any], indent: str, skip: frozenset[str] = frozenset()) -> list[str]:
    lines: list[str] = []
    for key, value in body.items():
        text = _value(value, key) if key not in skip else None
        if text is not None:
            lines.append(f"{indent}{_key(key)} = {text}")
    return lines


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _after(body: Mapping[str, Any]) -> tuple[str, bool]:
    """`` after a, b`` for the header, and whether the list went there (else an attribute)."""
    after = body.get("after")
    if isinstance(after, list) and after and all(isinstance(t, str) and _TARGET.fullmatch(t) for t in after):
        return " after " + ", ".join(after), True
    return "", False


def _workflow(name: str, body: Mapping[str, Any]) -> list[str]:
    lines = [f"workflow {name} {{"]
    lines += _attributes({k: v for k, v in body.items() if k not in _WORKFLOW_PARTS}, "  ")
    params = body.get("params")
    for param, spec in (params.items() if isinstance(params, Mapping) else ()):
        if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str):
            continue
        description = spec.get("description")
        if isinstance(description, str) and description:
            lines += [f"  # {line}" for line in description.splitlines()]
        default = _value(spec.get("default"), "")
        lines.append(f"  param {param}: {spec['type']}" + (f" = {default}" if default is not None else ""))
    defaults = body.get("defaults")
    if isinstance(defaults, Mapping):
        lines += ["", "  defaults {", *_attributes(defaults, "    "), "  }"]
    stages: Mapping[str, Any] = _mapping(body.get("stages"))
    uses: Mapping[str, Any] = _mapping(body.get("uses"))
    order = [n for n in body.get("order") or () if isinstance(n, str)]
    members = [*dict.fromkeys([*order, *stages, *uses])]
    for member in members:
        if member in stages and isinstance(stages[member], Mapping):
            stage = stages[member]
            header, in_header = _after(stage)
            skip = frozenset({"after"}) if in_header else frozenset()
            lines += ["", f"  stage {member}{header} {{", *_attributes(stage, "    ", skip), "  }"]
        elif member in uses and isinstance(uses[member], Mapping):
            use = uses[member]
            bound = _mapping(use.get("params"))
            written = [(str(k), _value(v, str(k))) for k, v in bound.items()]
            arguments = [f"{_key(k)} = {v}" for k, v in written if v is not None]
            header, _ = _after(use)
            lines += ["", f"  use {use.get('template')}({', '.join(arguments)}) as {member}{header}"]
    hooks = body.get("on")
    for event, hook in (hooks.items() if isinstance(hooks, Mapping) else ()):
        if isinstance(hook, Mapping):
            lines += ["", f"  on {event} {{", *_attributes(hook, "    "), "  }"]
    lines.append("}")
    return lines


def document_to_alfred(data: Mapping[str, Any]) -> str:
    """Formatted ``.alfred`` text holding ``data`` (a normalized document).

    Raises :class:`~alfred_dsl.DiagnosticError` when a name cannot be written in the
    language (the diagnostics point into the generated text).
    """
    from .compiler._format import format_source

    blocks: list[list[str]] = []
    imports = data.get("imports")
    if isinstance(imports, list) and imports:
        blocks.append([f"import {_string(str(path))}" for path in imports])
    agents = data.get("agents")
    for name, body in (agents.items() if isinstance(agents, Mapping) else ()):
        if isinstance(body, Mapping):
            blocks.append([f"agent {name} {{", *_attributes(body, "  "), "}"])
    workflows = data.get("workflows")
    for name, body in (workflows.items() if isinstance(workflows, Mapping) else ()):
        if isinstance(body, Mapping):
            blocks.append(_workflow(str(name), body))
    text = "\n\n".join("\n".join(block) for block in blocks) + "\n"
    formatted, diagnostics = format_source(text, "<to_alfred>")
    if formatted is None:
        raise DiagnosticError(diagnostics)
    return formatted
