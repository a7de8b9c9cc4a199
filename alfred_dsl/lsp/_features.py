"""What the language server answers, computed from a checked file and its index.

Nothing here knows about JSON-RPC: positions are character offsets into the file, results
are compiler spans and plain text. ``_server`` turns them into LSP types.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._gcpause import collector_paused
from ._compiler import (
    KEYWORDS,
    PARAM_TYPES,
    PRIORITIES,
    ROOTS,
    Checked,
    Diagnostic,
    Plan,
    SourceFile,
    Span,
    ast,
    check_text,
    plan_of,
    schema,
)
from ._index import Attribute, Import, Index, Occurrence, Symbol, SymbolKey, build_index

__all__ = [
    "Analysis",
    "Completion",
    "block_at",
    "complete",
    "hover",
    "keyword_spans",
]

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
#: Which schema definition describes the attributes of each kind of block.
_BLOCK_DEFS = {"agent": "agent", "stage": "stage", "workflow": "workflow", "defaults": "defaults",
               "param": "param", "use": "use", "on": "hook"}
_TOP_KEYWORDS = ("agent", "workflow", "import")
_WORKFLOW_KEYWORDS = ("stage", "param", "defaults", "use", "on")
#: A whole-file parser (the server's incremental one).
Parse = Callable[[SourceFile], tuple[ast.File | None, list[Diagnostic]]]


@dataclass(slots=True)
class Analysis:
    """One check of one open file: the text it was made from, its results, its plans.

    The index of names and the plans are made on the first request that needs them: a
    re-check after an edit only publishes diagnostics, and indexing a large file costs
    about a tenth of its check.
    """

    text: str
    checked: Checked
    plans: dict[str, Plan | None] = field(default_factory=dict)
    _index: Index | None = field(default=None, repr=False)

    @classmethod
    def of(cls, text: str, checked: Checked) -> Analysis:
        return cls(text, checked)

    @property
    def loaded(self) -> bool:
        """Whether the file loaded (parsed): only then are there names to index."""
        return self.checked.workspace is not None

    @property
    def index(self) -> Index | None:
        """The names of the checked workspace (None when it did not load), made once."""
        if self._index is None and self.loaded:
            with collector_paused():
                self._index = build_index(self.checked)
        return self._index

    @classmethod
    def check(cls, path: str, texts: Mapping[str, str], parse: Parse | None = None) -> Analysis:
        """Check the file at ``path`` (``texts``: the editor's texts by absolute path)."""
        with collector_paused():
            return cls.of(texts.get(os.path.abspath(path), ""), check_text(path, texts, parse))

    def plan(self, workflow: str) -> Plan | None:
        if workflow not in self.plans:
            workspace = self.checked.workspace
            with collector_paused():
                self.plans[workflow] = None if workspace is None else plan_of(workspace, workflow)
        return self.plans[workflow]


# -- hover ------------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    whole = round(value)
    if abs(value - whole) > 1e-9:
        return f"{value:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{seconds}s" if seconds else ""]
    return "".join(parts) or "0s"


def _attribute_doc(block: str, name: str) -> str | None:
    definition = schema()["$defs"].get(_BLOCK_DEFS.get(block, block), {})
    described = definition.get("properties", {}).get(name, {})
    text = described.get("description")
    return text if isinstance(text, str) else None


def _describe(symbol: Symbol, analysis: Analysis) -> str:
    value: dict[str, Any] = symbol.value if isinstance(symbol.value, dict) else {}
    kind, scope, name = symbol.key
    lines: list[str] = []
    if kind == "agent":
        lines.append(f"**agent** `{name}` ({value.get('kind', 'command')})")
        capabilities = value.get("capabilities")
        if capabilities:
            lines.append("capabilities: " + ", ".join(f"`{c}`" for c in capabilities))
    elif kind == "workflow":
        lines.append(f"**workflow** `{name}`")
        params = value.get("params") or {}
        if params:
            lines.append("params: " + ", ".join(f"`{p}`" for p in params))
    elif kind == "param":
        line = f"**param** `{name}`: `{value.get('type', 'any')}` in workflow `{scope}`"
        if "default" in value:
            line += f" = `{value['default']}`"
        else:
            line += " (required)"
        lines.append(line)
    elif kind == "alias":
        lines.append(f"**use** `{value.get('template', '?')}` as `{name}` in workflow `{scope}`")
    elif kind == "stage":
        lines.append(f"**stage** `{name}` in workflow `{scope}`")
        if isinstance(value.get("agent"), str):
            lines.append(f"agent: `{value['agent']}`")
        elif value.get("requires"):
            lines.append("requires: " + ", ".join(f"`{c}`" for c in value["requires"]))
        plan = analysis.plan(scope)
        stage = None
        if plan is not None:
            stage = next((s for s in plan.stages if s.name == name), None)
        if stage is not None:
            critical = " (on the critical path)" if stage.critical else ""
            lines.append(
                f"planned start {_seconds(stage.earliest_start_s)}, "
                f"finish {_seconds(stage.earliest_finish_s)}, slack {_seconds(stage.slack_s)}{critical}"
            )
    description = value.get("description")
    if isinstance(description, str) and description:
        lines.append(description)
    return "\n\n".join(lines)


def hover(analysis: Analysis, file: str, offset: int) -> tuple[str, Span] | None:
    index = analysis.index
    if index is None:
        return None
    found = index.at(file, offset)
    if isinstance(found, Occurrence):
        symbol = index.symbols.get(found.key)
        return None if symbol is None else (_describe(symbol, analysis), found.span)
    if isinstance(found, Import):
        return f"imports `{found.target}`", found.span
    if isinstance(found, Attribute):
        doc = _attribute_doc(found.block, found.name)
        text = f"**{found.name}** ({found.block} attribute)"
        return (text + ("\n\n" + doc if doc else "")), found.span
    return None


def symbol_at(analysis: Analysis, file: str, offset: int) -> SymbolKey | None:
    index = analysis.index
    found = None if index is None else index.at(file, offset)
    return found.key if isinstance(found, Occurrence) else None


# -- completion -------------------------------------------------------------------------------

_TOKENS_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[{}]')


@dataclass(frozen=True, slots=True)
class Block:
    kind: str      # top, agent, workflow, stage, defaults, param, use, on, map
    workflow: str | None


def block_at(text: str, offset: int) -> Block:
    """The innermost block around ``offset``, from the braces before it (works on broken text)."""
    headers: list[str] = []
    last = 0
    for match in _TOKENS_RE.finditer(text, 0, offset):
        token = match.group()
        if token == "{":
            line_start = max(text.rfind("\n", 0, match.start()) + 1, last)
            headers.append(text[line_start : match.start()].strip())
            last = match.end()
        elif token == "}":
            if headers:
                headers.pop()
            last = match.end()
    workflow = None
    for header in headers:
        words = header.split()
        if len(words) >= 2 and words[0] == "workflow":
            workflow = words[1]
    if not headers:
        return Block("top", None)
    words = headers[-1].split()
    first = words[0] if words else ""
    if first in ("agent", "workflow", "stage", "defaults", "on") and "=" not in words[:2]:
        return Block(first, workflow)
    return Block("map", workflow)


@dataclass(frozen=True, slots=True)
class Completion:
    label: str
    kind: str      # keyword, attribute, agent, stage, param, workflow, capability, value, reference
    detail: str = ""


def _attributes_of(block: str) -> list[str]:
    definition = schema()["$defs"].get(_BLOCK_DEFS.get(block, ""), {})
    names = list(definition.get("properties", {}))
    if block == "workflow":  # params, stages and uses are written as declarations in .alfred
        names = [n for n in names if n not in ("params", "stages", "uses", "defaults", "on")]
    return names


def complete(analysis: Analysis | None, text: str, offset: int) -> list[Completion]:
    line_start = text.rfind("\n", 0, offset) + 1
    before = text[line_start:offset]
    block = block_at(text, offset)
    index = analysis.index if analysis is not None else None
    workspace = index.checked.workspace if index is not None else None
    workflow = block.workflow or ""

    def names(kind: str, scope: str = "") -> list[str]:
        return [] if index is None else index.names(kind, scope)

    reference = re.search(r"([A-Za-z_][A-Za-z0-9_.-]*\.)[A-Za-z0-9_-]*$", before)
    if reference:
        parts = reference.group(1).split(".")[:-1]
        if parts == ["params"]:
            return [Completion(p, "param", "param") for p in names("param", workflow)]
        if parts == ["stages"]:
            return [Completion(s, "stage", "stage") for s in names("stage", workflow)]
        if parts == ["each"]:
            return [Completion("item", "keyword", "the item of this for_each instance"),
                    Completion("index", "keyword", "the position of this for_each instance (0, 1, ...)")]
        if len(parts) == 2 and parts[0] == "stages":
            return [Completion("outputs", "keyword", "the stage's outputs")]
        if len(parts) == 3 and parts[0] == "stages" and parts[2] == "outputs" and workspace is not None:
            from ._compiler import declared_outputs

            return [Completion(o, "value", "output") for o in declared_outputs(workspace, workflow, parts[1])]
        return []
    value = re.search(r"([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:\[[^\]]*)?[\"A-Za-z0-9_-]*$", before)
    if value:
        attribute = value.group(1)
        if attribute == "agent":
            return [Completion(a, "agent", "agent") for a in names("agent")]
        if attribute == "requires":
            found: set[str] = set()
            if workspace is not None:
                for agent in workspace.data.get("agents", {}).values():
                    found.update(c for c in agent.get("capabilities", ()) if isinstance(c, str))
            return [Completion(c, "capability", "capability") for c in sorted(found)]
        if attribute == "priority":
            return [Completion(p, "value", "priority") for p in PRIORITIES]
        if attribute == "kind":
            return [Completion(k, "value", "agent kind") for k in ("command", "python", "http", "mcp")]
        return [Completion(r, "reference", "reference") for r in ROOTS]
    if re.search(r"\bafter\s+(?:[A-Za-z0-9_.-]+\s*,\s*)*[A-Za-z0-9_.-]*$", before):
        targets = [*names("stage", workflow), *names("alias", workflow)]
        return [Completion(s, "stage", "stage") for s in targets]
    if re.search(r"\buse\s+[A-Za-z0-9_-]*$", before):
        return [Completion(w, "workflow", "workflow") for w in names("workflow")]
    if re.search(r"\bparam\s+[A-Za-z0-9_-]+\s*:\s*[A-Za-z]*$", before):
        return [Completion(t, "value", "param type") for t in PARAM_TYPES]
    if re.fullmatch(r"\s*[A-Za-z_-]*", before):
        if block.kind == "top":
            return [Completion(k, "keyword") for k in _TOP_KEYWORDS]
        result = [Completion(a, "attribute", f"{block.kind} attribute") for a in _attributes_of(block.kind)]
        if block.kind == "workflow":
            result += [Completion(k, "keyword") for k in _WORKFLOW_KEYWORDS]
        return result
    return [Completion(k, "keyword") for k in KEYWORDS]


# -- keywords for highlighting ----------------------------------------------------------------

_WORD_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[A-Za-z_][A-Za-z0-9_-]*')


def keyword_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each keyword outside strings and comments."""
    return [
        (match.start(), match.end())
        for match in _WORD_RE.finditer(text)
        if match.group() in KEYWORDS
    ]
