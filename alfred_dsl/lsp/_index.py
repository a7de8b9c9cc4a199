"""Names and where they occur, read off a checked workspace (no parsing of its own).

The loader records a span for every key and value of the normalized document, in
``.alfred``, YAML and JSON alike; the compiler's template parser gives the span of every
``${...}`` reference. From these the index knows each declaration (agents, workflows,
stages, params, ``use`` aliases), each use of it, each import and each attribute name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ._compiler import Checked, DocPath, Span, refs_in

__all__ = ["Attribute", "Import", "Index", "Occurrence", "Symbol", "SymbolKey", "build_index"]

#: (kind, scope, name): kind is agent, workflow, stage, param or alias; scope is the
#: workflow of a stage, param or alias, "" for agents and workflows.
SymbolKey = tuple[str, str, str]

_NAME_CHAR = r"A-Za-z0-9_\-"


@dataclass(frozen=True, slots=True)
class Symbol:
    key: SymbolKey
    path: DocPath
    name_span: Span
    span: Span
    value: Any

    @property
    def kind(self) -> str:
        return self.key[0]

    @property
    def name(self) -> str:
        return self.key[2]


@dataclass(frozen=True, slots=True)
class Occurrence:
    """A name in the text that means a symbol: its declaration or a use."""

    span: Span
    key: SymbolKey
    declaration: bool = False


@dataclass(frozen=True, slots=True)
class Import:
    span: Span
    target: str


@dataclass(frozen=True, slots=True)
class Attribute:
    """``name = value`` in a block: the span of the name, the kind of block, the name."""

    span: Span
    block: str
    name: str


@dataclass(slots=True)
class Index:
    checked: Checked
    symbols: dict[SymbolKey, Symbol] = field(default_factory=dict)
    occurrences: list[Occurrence] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)

    def in_file(self, file: str) -> Iterator[Occurrence]:
        return (o for o in self.occurrences if o.span.file == file)

    def at(self, file: str, offset: int) -> Occurrence | Import | Attribute | None:
        groups: tuple[list[Occurrence], list[Import], list[Attribute]] = (
            self.occurrences, self.imports, self.attributes,
        )
        for group in groups:
            for found in group:
                span = found.span
                if span.file == file and span.start <= offset <= span.end:
                    return found
        return None

    def of(self, key: SymbolKey) -> list[Occurrence]:
        return [o for o in self.occurrences if o.key == key]

    def names(self, kind: str, scope: str = "") -> list[str]:
        return [key[2] for key in self.symbols if key[0] == kind and key[1] == scope]


def _locate(span: Span, name: str) -> Span | None:
    """The span of ``name`` as a whole word inside ``span`` (a quoted YAML value, a reference)."""
    written = span.source.text[span.start : span.end]
    if written == name:
        return span
    found = list(re.finditer(rf"(?<![{_NAME_CHAR}]){re.escape(name)}(?![{_NAME_CHAR}])", written))
    if len(found) != 1:
        return None
    start = span.start + found[0].start()
    return span.source.span(start, start + len(name))


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class _Builder:
    def __init__(self, checked: Checked) -> None:
        assert checked.workspace is not None
        self.workspace = checked.workspace
        self.spans = checked.workspace.spans
        self.index = Index(checked)

    def declare(self, key: SymbolKey, path: DocPath, value: Any) -> None:
        name_span = self.spans.keys.get(path)
        if name_span is None:
            return
        whole = self.spans.values.get(path, name_span)
        span = whole.cover(name_span) if whole.source is name_span.source else name_span
        self.index.symbols[key] = Symbol(key, path, name_span, span, value)
        self.index.occurrences.append(Occurrence(name_span, key, declaration=True))

    def use(self, key: SymbolKey, span: Span | None, name: str | None = None) -> None:
        if span is None:
            return
        exact = _locate(span, name if name is not None else key[2])
        if exact is not None:
            self.index.occurrences.append(Occurrence(exact, key))

    def build(self) -> Index:
        data = self.workspace.data
        agents = _map(data.get("agents"))
        workflows = _map(data.get("workflows"))
        for name, agent in agents.items():
            self.declare(("agent", "", name), ("agents", name), agent)
            self.attributes(("agents", name), agent, "agent")
        for name, workflow in workflows.items():
            self.declare(("workflow", "", name), ("workflows", name), workflow)
        for name, workflow in workflows.items():
            if isinstance(workflow, dict):
                self.workflow(name, workflow, agents, workflows)
        for document in self.workspace.documents:
            base = os.path.dirname(document.source.name)
            for written, span in document.imports:
                target = os.path.normpath(os.path.join(base, written))
                self.index.imports.append(Import(span, target))
        return self.index

    def attributes(self, path: DocPath, block: Any, kind: str) -> None:
        for key in _map(block):
            span = self.spans.keys.get((*path, key))
            if span is not None:
                self.index.attributes.append(Attribute(span, kind, key))

    def workflow(self, name: str, workflow: dict[str, Any], agents: dict[str, Any],
                 workflows: dict[str, Any]) -> None:
        base: DocPath = ("workflows", name)
        self.attributes(base, {k: v for k, v in workflow.items() if k not in ("params", "stages", "uses")},
                        "workflow")
        self.attributes((*base, "defaults"), workflow.get("defaults"), "defaults")
        params = _map(workflow.get("params"))
        stages = _map(workflow.get("stages"))
        uses = _map(workflow.get("uses"))
        for param, spec in params.items():
            self.declare(("param", name, param), (*base, "params", param), spec)
            self.attributes((*base, "params", param), spec, "param")
        for stage in stages:
            self.declare(("stage", name, stage), (*base, "stages", stage), stages[stage])
        for alias in uses:
            self.declare(("alias", name, alias), (*base, "uses", alias), uses[alias])

        def target(written: Any, path: DocPath) -> None:
            if not isinstance(written, str):
                return
            head = written.split(".")[0]
            if written in stages:
                self.use(("stage", name, written), self.spans.values.get(path))
            elif head in uses:
                self.use(("alias", name, head), self.spans.values.get(path), head)

        for stage, spec in stages.items():
            path = (*base, "stages", stage)
            self.attributes(path, spec, "stage")
            if not isinstance(spec, dict):
                continue
            agent = spec.get("agent")
            if isinstance(agent, str) and agent in agents:
                self.use(("agent", "", agent), self.spans.values.get((*path, "agent")))
            for number, written in enumerate(spec.get("after") or ()):
                target(written, (*path, "after", number))
        for alias, use in uses.items():
            path = (*base, "uses", alias)
            if not isinstance(use, dict):
                continue
            template = use.get("template")
            if isinstance(template, str) and template in workflows:
                self.use(("workflow", "", template), self.spans.values.get((*path, "template")))
                for key in _map(use.get("params")):
                    self.use(("param", template, key), self.spans.keys.get((*path, "params", key)))
            for number, written in enumerate(use.get("after") or ()):
                target(written, (*path, "after", number))
        for text, path in _templates(workflow, base, []):
            span = self.spans.values.get(path)
            if span is None:
                continue
            for ref in refs_in(text, span):
                where = ref.span or span
                parts = ref.parts
                if parts[0] == "params" and len(parts) >= 2 and parts[1] in params:
                    self.use(("param", name, parts[1]), self._tail(where, parts, 1))
                elif parts[0] == "stages" and len(parts) >= 2 and parts[1] in stages:
                    self.use(("stage", name, parts[1]), self._tail(where, parts, 1))

    @staticmethod
    def _tail(span: Span, parts: tuple[str, ...], index: int) -> Span | None:
        """The span of ``parts[index]`` when ``span`` spells the reference exactly."""
        written = span.source.text[span.start : span.end]
        if written != ".".join(parts):
            return _locate(span, parts[index])
        start = span.start + sum(len(p) + 1 for p in parts[:index])
        return span.source.span(start, start + len(parts[index]))


def _templates(value: Any, path: DocPath, found: list[tuple[str, DocPath]]) -> list[tuple[str, DocPath]]:
    """Every string with a ``${`` inside a value, with its document path (in document order).

    A plain recursion into one list: most strings of a large workflow are names and
    durations, and a generator per level cost a tenth of a re-check.
    """
    if isinstance(value, str):
        if "${" in value:
            found.append((value, path))
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(item, (int, float)):
                _templates(item, (*path, key), found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _templates(item, (*path, index), found)
    return found


def build_index(checked: Checked) -> Index | None:
    """The index of a checked file, or None when it did not load."""
    if checked.workspace is None:
        return None
    return _Builder(checked).build()
