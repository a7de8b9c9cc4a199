"""The workspace as the checks and the resolver see it: a :class:`_Model` over the merged
document and its spans, and the strings holding ``${...}`` read into templates.

The loader has pruned the document to what the schema allows; the checks still meet
values of the wrong kind where the schema allows several (a duration is text or a number).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .._diagnostics import Diagnostic
from .._expr import (
    Expr,
    Ref,
    Template,
)
from .._source import Span
from .._values import PARAM_TYPES, parse_duration, value_type
from ._document import Document, Path as DocPath, SpanIndex

__all__ = ["ROOTS", "WorkspaceLike", "parse_string"]

#: matrix: checked by _fanout; each: by _foreach.
ROOTS = ("params", "stages", "inputs", "env", "secrets", "matrix", "each")
EXECUTOR_NEEDS = {"command": "run", "python": "call", "http": "url"}
_DURATION_FIELDS = ("estimate", "timeout", "backoff", "max_backoff", "spread")
_DEFAULTABLE = (
    "retries", "backoff", "max_backoff", "timeout", "priority", "on_failure", "estimate", "max_log",
)
#: Stage keys whose values are names or lists of names, not text that may interpolate.
_NAME_KEYS = frozenset({"agent", "requires", "after", "outputs"})


class WorkspaceLike(Protocol):
    """What the checks need of ``load.Workspace``: the merged document and its spans."""

    @property
    def root(self) -> Path: ...
    @property
    def entry(self) -> Document: ...
    @property
    def documents(self) -> tuple[Document, ...]: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def spans(self) -> SpanIndex: ...
    @property
    def base_dirs(self) -> dict[str, Path]: ...


# -- small helpers ---------------------------------------------------------------------------


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _names(value: Any) -> list[str]:
    """The strings of a list (non-strings skipped: the schema reports them)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _known(candidates: Iterable[str], what: str) -> str:
    names = sorted(candidates)
    if not names:
        return f"no {what} is declared"
    shown = ", ".join(f"`{n}`" for n in names[:8])
    return f"known {what}s: {shown}" + (", ..." if len(names) > 8 else "")


def _fits(value: Any, type_name: str) -> bool:
    """Whether a literal document value can be a param of ``type_name``."""
    kind = value_type(value)
    if type_name == "float":
        return kind in ("int", "float")
    if type_name == "duration":
        return parse_duration(value) is not None
    if type_name not in PARAM_TYPES:
        return True
    return kind == type_name


def _convert_default(value: Any, type_name: str) -> Any:
    if type_name == "duration":
        seconds = parse_duration(value)
        return value if seconds is None else seconds
    if type_name == "float" and value_type(value) == "int":
        return float(value)
    return value


# -- strings holding ${...} ------------------------------------------------------------------

_PARAM_MENTION = re.compile(r"\bparams\.([A-Za-z_][A-Za-z0-9_-]*)")
_SIMPLE_REF = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)+)\s*")
_KEYWORDS = frozenset({"true", "false", "and", "or", "not", "null"})


def _content_offset(text: str, span: Span | None) -> int | None:
    """Where ``text[0]`` is in the source, when the source spells the string without escapes."""
    if span is None:
        return None
    written = span.source.text[span.start : span.end]
    if written == text:
        return span.start
    if len(written) >= 2 and written[0] == written[-1] and written[0] in "\"'" and written[1:-1] == text:
        return span.start + 1
    # A bare DSL expression (`when = params.x`) is lowered to "${params.x}".
    if text.startswith("${") and text.endswith("}") and text[2:-1] == written:
        return span.start - 2
    return None


def _fast_template(text: str, span: Span | None, offset: int | None) -> Template | None:
    """Split a string whose interpolations are all plain references, without the parser."""
    parts: list[str | Expr] = []
    literal: list[str] = []
    pos = 0
    while True:
        found = text.find("${", pos)
        if found == -1:
            literal.append(text[pos:])
            break
        if found > 0 and text[found - 1] == "$":
            return None  # `$${` escapes: leave them to the real parser
        close = text.find("}", found + 2)
        if close == -1:
            return None
        match = _SIMPLE_REF.fullmatch(text, found + 2, close)
        if match is None:
            return None
        parts_text = match.group(1).split(".")
        if parts_text[0] in _KEYWORDS:
            return None
        literal.append(text[pos:found])
        if any(literal):
            parts.append("".join(literal))
        literal = []
        ref_span = span
        if offset is not None and span is not None:
            ref_span = span.source.span(offset + match.start(1), offset + match.end(1))
        parts.append(Ref(parts=tuple(parts_text), span=ref_span))
        pos = close + 1
    if any(literal):
        parts.append("".join(literal))
    return Template(parts=tuple(parts), span=span)


def parse_string(text: str, span: Span | None) -> tuple[Template | None, list[Diagnostic]]:
    """The template of a document string, or None when it holds no ``${``.

    Plain references are split here; anything else goes through ``syntax.parse_template``.
    """
    if "${" not in text:
        return None, []
    offset = _content_offset(text, span)
    fast = _fast_template(text, span, offset)
    if fast is not None:
        return fast, []
    if span is None:
        return None, []
    from .syntax import parse_template  # the Lark parser is only loaded when needed

    template: Template | None
    template, diagnostics = parse_template(text, span, offset)
    return template, list(diagnostics)


def _strings(value: Any, path: DocPath) -> Iterator[tuple[str, DocPath]]:
    """Every string inside a value, with its document path."""
    if isinstance(value, str):
        yield value, path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


# -- the workspace view shared by check and resolve ------------------------------------------


@dataclass(slots=True)
class _Model:
    """The merged document with lookups and per-workflow caches."""

    ws: WorkspaceLike
    agents: dict[str, Any]
    workflows: dict[str, Any]
    templates: dict[DocPath, Template | None] = field(default_factory=dict)
    parse_diagnostics: list[Diagnostic] = field(default_factory=list)
    flat: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    _stages: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    _uses: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, ws: WorkspaceLike) -> _Model:
        # The loader pruned the data to the schema: agents and workflows are objects.
        return cls(ws=ws, agents=ws.data.get("agents") or {}, workflows=ws.data.get("workflows") or {})

    def value_span(self, path: DocPath) -> Span:
        spans = self.ws.spans
        return spans.values.get(path) or spans.value(path)

    def item_spans(self, path: DocPath, count: int) -> list[Span]:
        """``[value_span((*path, 0)), ..., value_span((*path, count - 1))]`` in one lookup."""
        return self.ws.spans.item_values(path, count)

    def key_span(self, path: DocPath) -> Span:
        return self.ws.spans.key(path)

    def template(self, text: str, path: DocPath) -> Template | None:
        """The parsed template of the string at ``path`` (parsed once; diagnostics kept)."""
        if "${" not in text:
            return None
        if path in self.templates:
            return self.templates[path]
        parsed, diagnostics = parse_string(text, self.value_span(path))
        self.templates[path] = parsed
        self.parse_diagnostics.extend(diagnostics)
        return parsed

    def uses_of(self, workflow: str) -> dict[str, dict[str, Any]]:
        found = self._uses.get(workflow)
        if found is None:
            found = self._uses[workflow] = self.workflows[workflow].get("uses") or {}
        return found

    def stages_of(self, workflow: str) -> dict[str, dict[str, Any]]:
        found = self._stages.get(workflow)
        if found is None:
            found = self._stages[workflow] = self.workflows[workflow].get("stages") or {}
        return found

    def flat_stages(self, workflow: str, stack: tuple[str, ...] = ()) -> dict[str, tuple[str, str]]:
        """Stage names of a workflow with its templates expanded (``auth.spec``) ->
        (declaring workflow, stage name). Recursive uses are cut off (reported elsewhere)."""
        cached = self.flat.get(workflow)
        if cached is not None:
            return cached
        result: dict[str, tuple[str, str]] = {name: (workflow, name) for name in self.stages_of(workflow)}
        for alias, use in self.uses_of(workflow).items():
            template = use["template"]  # required by the schema
            if template not in self.workflows:
                continue
            if template in stack or template == workflow:
                continue
            for name, origin in self.flat_stages(template, (*stack, workflow)).items():
                result[f"{alias}.{name}"] = origin
        if not stack:
            self.flat[workflow] = result
        return result

    def used_as_template(self) -> set[str]:
        return {
            use["template"]
            for name in self.workflows
            for use in self.uses_of(name).values()
        }

    def matching_agents(self, capabilities: Sequence[str]) -> list[str]:
        wanted = set(capabilities)
        return [
            name
            for name, agent in self.agents.items()
            if wanted <= set(_names(agent.get("capabilities")))
        ]

    def stage_agents(self, stage: Mapping[str, Any]) -> list[str]:
        agent = stage.get("agent")
        if isinstance(agent, str):
            return [agent] if agent in self.agents else []
        if "requires" in stage:
            return self.matching_agents(_names(stage.get("requires")))
        return []

    def declared_outputs(self, workflow: str, stage_name: str) -> list[str] | None:
        stage = self.stages_of(workflow).get(stage_name, {})
        if isinstance(stage.get("outputs"), list):
            return _names(stage["outputs"])
        agents = self.stage_agents(stage)
        declared = [self.agents[a].get("outputs") for a in agents]
        if agents and all(isinstance(d, list) for d in declared):
            return sorted({name for d in declared for name in _names(d)})
        return None

    def param_types(self, workflow: str) -> dict[str, str]:
        types: dict[str, str] = {}
        for name, spec in (self.workflows[workflow].get("params") or {}).items():
            types[name] = spec["type"]  # required by the schema
        return types


def _stage_folder(model: _Model, workflow: str, stage: Mapping[str, Any], agents: Sequence[str]) -> str:
    """The absolute folder a stage runs in: its `cwd`, else its only agent's, else the
    folder of the file that declares the workflow."""
    ws = model.ws
    base = ws.base_dirs.get(f"workflows/{workflow}", ws.root)
    cwd = stage.get("cwd")
    if not isinstance(cwd, str) and len(agents) == 1:
        agent_cwd = model.agents[agents[0]].get("cwd")
        if isinstance(agent_cwd, str):
            base, cwd = ws.base_dirs.get(f"agents/{agents[0]}", ws.root), agent_cwd
    target = os.path.join(base, os.path.expanduser(cwd)) if isinstance(cwd, str) else str(base)
    return os.path.normpath(os.path.abspath(target))
