"""Lowering: the syntax tree of an ``.alfred`` file to the normalized document.

The document has the shape of docs/design.md (the same one YAML and JSON inputs have);
every key and value written by the user gets a span in the :class:`SpanIndex`. Bare
names lower to strings, durations to their text (``"1h30m"``), expressions to
``"${...}"`` in canonical form, and string literals to their unescaped text (their
``${...}`` parts are parsed here, so that a bad one is reported at its exact position).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from itertools import islice
from sys import intern
from typing import Any

from .._diagnostics import Diagnostic, Label, error
from .._expr import Binary, Literal, Ref, Unary, unparse
from .._gcpause import collector_paused
from .._source import SourceFile, Span
from . import _ast as ast
from ._document import Document, Path, SpanIndex, pack_span as _pack
from .syntax import parse_ast, template_parts

__all__ = [
    "PARSE_AST",
    "Deferred",
    "LoweredStages",
    "PartFile",
    "PartWorkflow",
    "lower",
    "lower_part",
    "lower_stages",
    "parse_document",
]

#: The parser of whole files :func:`parse_document` uses (the language server sets an
#: incremental one that gives the same trees).
PARSE_AST: ContextVar[Callable[[SourceFile], tuple[ast.File | None, list[Diagnostic]]]] = ContextVar(
    "alfred_parse_ast", default=parse_ast
)


def parse_document(source: SourceFile) -> tuple[Document | None, list[Diagnostic]]:
    """Parse and lower one ``.alfred`` file.

    The document is None when there are syntax errors or invalid interpolations; with only
    duplicate names (A208, the first declaration wins) it is returned, so that later
    checks still run.
    """
    parse = PARSE_AST.get()
    if parse is parse_ast and len(source.text) >= SPLIT_FROM:
        from . import _split  # a large file: its second half read by a second process

        split = _split.parse_document_split(source)
        if split is not None:
            return split
    tree, diagnostics = parse(source)
    if tree is None or any(d.is_error for d in diagnostics):
        return None, diagnostics
    # The lowering takes the only reference to the tree and frees each block once lowered:
    # the document grows in the memory the tree gives back (at 100,000 stages the tree
    # alone is about 240 MB).
    holder: list[ast.File | PartFile] = [tree]
    del tree
    document, problems = _lower_consumed(holder, source)
    return finish(document, diagnostics + problems)


#: Files of this many characters (about 4,500 stages) or more are read in two processes
#: where that is possible (``compiler/_split.py``). The split costs about 10% more CPU in
#: all (fork, the child's data written and read back) and saves about 45% of the wall time
#: of parsing and lowering on two free cores; below this the saving is a few hundredths of
#: a second, not worth a process.
SPLIT_FROM = 500_000


def finish(document: Document, diagnostics: list[Diagnostic]) -> tuple[Document | None, list[Diagnostic]]:
    """What :func:`parse_document` returns for a lowered document and all the diagnostics."""
    if any(d.is_error and d.code != "A208" for d in diagnostics):
        return None, diagnostics
    return document, diagnostics


# -- parts lowered elsewhere (compiler/_split.py) ------------------------------------------


@dataclass(frozen=True, slots=True)
class LoweredStages:
    """Consecutive stages of a workflow, lowered by :func:`lower_stages` in another process.

    Plain data, so that ``marshal`` reads it back (ten times faster than ``pickle`` reads a
    syntax tree) and the parent adds it in a few bulk operations: the stages' names (no two
    alike) and bodies; every span recorded, by its path (under ``path``, the workflow's
    ``stages``), packed, in the order recorded, ``value_counts[i]`` and ``key_counts[i]`` of
    them for stage ``i``; the item arrays (``after``) as bytes, ``item_counts[i]`` for stage
    ``i``; and the diagnostics of each stage's values (A108, A208 inside the stage).
    """

    path: Path
    names: list[str]
    bodies: list[dict[str, Any]]
    values: dict[Path, int]
    keys: dict[Path, int]
    items: dict[Path, bytes]
    value_counts: list[int]
    key_counts: list[int]
    item_counts: list[int]
    diagnostics: dict[int, list[Diagnostic]]


class Deferred:
    """The rest of a file that another process reads: the lowering asks for it only when it
    reaches it, so that it lowers the part it has meanwhile. It is the last member of the
    workflow it continues, and the item after that workflow in the file."""

    def members(self) -> tuple[Sequence[Member], Span]:
        """The workflow's remaining members, and the workflow's whole span."""
        raise NotImplementedError

    def items(self) -> Sequence[TopItem]:
        """The file's items after that workflow."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class PartWorkflow:
    """A workflow some of whose members are lowered already, or come later (:class:`Deferred`)."""

    name: str
    name_span: Span
    items: tuple[Member, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class PartFile:
    """A file whose last items come later (:class:`Deferred`)."""

    items: tuple[TopItem, ...]
    span: Span


Member = ast.WorkflowItem | LoweredStages | Deferred
TopItem = ast.TopItem | PartWorkflow | Deferred


def lower_stages(stages: list[ast.Stage], path: Path, source: SourceFile) -> list[LoweredStages]:
    """Lower ``stages`` of the workflow whose stages are at ``path`` (taken out of the list,
    each freed once lowered); a new :class:`LoweredStages` begins at each name seen before."""
    chunks: list[LoweredStages] = []
    stages.reverse()
    while stages:
        lowering = _Lowering(source)
        values, keys = lowering._values, lowering._keys
        items = lowering.spans.values.item_arrays()
        chunk = LoweredStages(path, [], [], values, keys, {}, [], [], [], {})  # type: ignore[arg-type]
        chunks.append(chunk)
        seen: set[str] = set()
        while stages and stages[-1].name not in seen:
            stage = stages.pop()
            seen.add(stage.name)
            counts = len(values), len(keys), len(items)
            chunk.names.append(stage.name)
            chunk.bodies.append(lowering.stage(stage, (*path, stage.name)))
            del stage
            chunk.value_counts.append(len(values) - counts[0])
            chunk.key_counts.append(len(keys) - counts[1])
            chunk.item_counts.append(len(items) - counts[2])
            if lowering.diagnostics:
                chunk.diagnostics[len(chunk.names) - 1] = lowering.diagnostics
                lowering.diagnostics = []
        if lowering.spans.keys.item_arrays() or not all(type(span) is int for span in (*values.values(),
                                                                                     *keys.values())):
            raise ValueError("spans that do not pack")  # never for one file under 4 GiB
        chunk.items.update((at, array.tobytes()) for at, array in items.items())
    return chunks


def lower_part(tree: PartFile, source: SourceFile) -> tuple[Document, list[Diagnostic]]:
    """:func:`lower` of a file read in parts (``compiler/_split.py``)."""
    return _lower_consumed([tree], source)


class _Lowering:
    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.spans = SpanIndex(source)
        self.diagnostics: list[Diagnostic] = []
        # The index's tables, written directly: each span is packed to one int as it is
        # recorded (SpanTable.__setitem__ inlined), so that no Span of the tree outlives it.
        self._values = self.spans.values.packed_dict()
        self._keys = self.spans.keys.packed_dict()

    # -- helpers -------------------------------------------------------------------------

    def set(self, path: Path, value: Span, key: Span | None = None) -> None:
        """Record the span of the value at ``path`` (and of the key naming it)."""
        self._values[path] = _pack(value, self.source)
        if key is not None:
            self._keys[path] = _pack(key, self.source)

    def duplicate(self, what: str, name: str, span: Span, first: Span) -> None:
        self.diagnostics.append(
            error(
                "A208",
                f"{what} `{name}` is declared twice",
                span,
                "declared again here",
                secondary=(Label(first, "first declared here"),),
                help="rename or remove one of them (the first one is used)",
            )
        )

    def claim(self, seen: dict[str, Path], what: str, name: str, span: Span, path: Path) -> bool:
        """Record a name in a namespace; False (and A208) when it is taken already.

        ``seen`` maps each name to the path it was lowered to (whose key span is the first
        declaration): a path is already alive in the index, a Span of the tree would not be.
        """
        first = seen.get(name)
        if first is not None:
            self.duplicate(what, name, span, self.spans.key(first))
            return False
        seen[name] = path
        return True

    # -- values --------------------------------------------------------------------------

    def value(self, node: ast.Value, path: Path) -> Any:
        # By exact type, the common values first: one comparison for most of them.
        if type(node) is ast.Name:
            self._values[path] = _pack(node.span, self.source)
            return node.name
        if type(node) is ast.Duration:
            self._values[path] = _pack(node.span, self.source)
            return intern(node.raw)  # durations recur: the tree's copies die with it
        if type(node) is ast.String:
            self._values[path] = _pack(node.span, self.source)
            if "${" in node.value:
                self.check_template(node)
            return node.value
        if type(node) is ast.Number:
            self._values[path] = _pack(node.span, self.source)
            return node.value if node.value is not None else node.raw
        if type(node) is ast.Bool:
            self._values[path] = _pack(node.span, self.source)
            return node.value
        if type(node) is ast.ListValue:
            self._values[path] = _pack(node.span, self.source)
            return [self.value(item, (*path, index)) for index, item in enumerate(node.items)]
        if type(node) is ast.MapValue:
            self._values[path] = _pack(node.span, self.source)
            result: dict[str, Any] = {}
            seen: dict[str, Path] = {}
            for entry in node.entries:
                at = (*path, entry.key)  # one tuple for both indexes
                if self.claim(seen, "key", entry.key, entry.key_span, at):
                    result[entry.key] = self.value(entry.value, at)
                    self._keys[at] = _pack(entry.key_span, self.source)
            return result
        assert isinstance(node, Literal | Ref | Unary | Binary)
        self._values[path] = _pack(_span(node, self.source), self.source)
        return "${" + unparse(node) + "}"

    def check_template(self, node: ast.String) -> None:
        """Parse the ``${...}`` parts of a string literal so errors point inside it."""
        start = node.span.start + 1
        if node.raw == node.value:
            _, problems = template_parts(node.value, node.span, lambda i: start + i)
        else:
            _, problems = template_parts(node.value, node.span, None, _offsets(node.raw, start))
        self.diagnostics.extend(problems)

    def attributes(self, attributes: Sequence[ast.Attribute], path: Path, into: dict[str, Any]) -> None:
        seen: dict[str, Path] = {}
        source, keys = self.source, self._keys
        for attribute in attributes:
            name = attribute.name
            at = (*path, name)  # one tuple for both indexes
            if name in into and name not in seen:
                # Set by the block header (`stage x after y` and an `after = [...]` attribute).
                seen[name] = at
            if self.claim(seen, "attribute", name, attribute.name_span, at):
                into[name] = self.value(attribute.value, at)
                keys[at] = _pack(attribute.name_span, source)

    def targets(self, targets: tuple[ast.Target, ...], path: Path) -> list[str]:
        if not self.spans.values.set_items(path, [target.span for target in targets]):
            source, values = self.source, self._values
            for index, target in enumerate(targets):
                values[(*path, index)] = _pack(target.span, source)
        if targets:
            self.set(path, targets[0].span.cover(targets[-1].span), targets[0].span)
        return [target.name for target in targets]

    # -- blocks --------------------------------------------------------------------------

    def file(self, holder: list[ast.File | PartFile]) -> tuple[dict[str, Any], tuple[tuple[str, Span], ...]]:
        """Lower the tree in ``holder`` (taken out of it), freeing each block once lowered."""
        tree = holder.pop()
        self.set((), tree.span)
        items: list[TopItem] = list(tree.items)
        del tree  # the File and its tuple of items; each item is freed below once lowered
        items.reverse()
        data: dict[str, Any] = {}
        imports: list[tuple[str, Span]] = []
        agents: dict[str, Any] = {}
        workflows: dict[str, Any] = {}
        agent_names: dict[str, Path] = {}
        workflow_names: dict[str, Path] = {}
        while items:
            item = items.pop()
            if isinstance(item, ast.Import):
                self.set(("imports", len(imports)), item.path.span, item.span)
                imports.append((item.path.value, item.path.span))
            elif isinstance(item, ast.Agent):
                path: Path = ("agents", item.name)
                if self.claim(agent_names, "agent", item.name, item.name_span, path):
                    self.set(path, item.span, item.name_span)
                    body: dict[str, Any] = {}
                    agents[item.name] = body
                    self.attributes(item.attributes, path, body)
            elif isinstance(item, Deferred):
                items.extend(reversed(item.items()))
            else:
                path = ("workflows", item.name)
                if self.claim(workflow_names, "workflow", item.name, item.name_span, path):
                    name = item.name
                    workflow = [item]
                    del item  # the workflow's only reference is now `workflow`, which it takes
                    workflows[name] = self.workflow(workflow)
        if imports:
            data["imports"] = [path for path, _ in imports]
        data["agents"] = agents
        data["workflows"] = workflows
        return data, tuple(imports)

    def workflow(self, holder: list[ast.Workflow | PartWorkflow]) -> dict[str, Any]:
        """Lower the workflow in ``holder`` (taken out of it): each stage is freed once lowered."""
        workflow = holder.pop()
        path: Path = ("workflows", workflow.name)
        self.set(path, workflow.span, workflow.name_span)
        members: list[Member] = list(workflow.items)
        del workflow
        members.reverse()
        body: dict[str, Any] = {}
        params: dict[str, Any] = {}
        stages: dict[str, Any] = {}
        uses: dict[str, Any] = {}
        hooks: dict[str, Any] = {}
        order: list[str] = []
        attributes: list[ast.Attribute] = []
        param_names: dict[str, Path] = {}
        member_names: dict[str, Path] = {}  # stages and `use` aliases share one namespace
        hook_names: dict[str, Path] = {}
        stages_path: Path = (*path, "stages")
        defaults_span: Span | None = None
        while members:
            item = members.pop()
            kind = type(item)
            if kind is ast.Stage:
                assert isinstance(item, ast.Stage)
                at: Path = (*stages_path, item.name)
                if self.claim(member_names, "stage", item.name, item.name_span, at):
                    order.append(item.name)
                    stages[item.name] = self.stage(item, at)
            elif kind is ast.Attribute:
                assert isinstance(item, ast.Attribute)
                attributes.append(item)
            elif kind is ast.Param:
                assert isinstance(item, ast.Param)
                at = (*path, "params", item.name)
                if self.claim(param_names, "param", item.name, item.name_span, at):
                    params[item.name] = self.param(item, at)
            elif kind is ast.Defaults:
                assert isinstance(item, ast.Defaults)
                if defaults_span is not None:
                    self.duplicate("block", "defaults", item.span, defaults_span)
                    continue
                defaults_span = item.span
                self.set((*path, "defaults"), item.span, item.span)
                defaults: dict[str, Any] = {}
                body["defaults"] = defaults
                self.attributes(item.attributes, (*path, "defaults"), defaults)
            elif kind is ast.Use:
                assert isinstance(item, ast.Use)
                at = (*path, "uses", item.alias)
                if self.claim(member_names, "use alias", item.alias, item.alias_span, at):
                    order.append(item.alias)
                    uses[item.alias] = self.use(item, at)
            elif kind is LoweredStages:
                assert isinstance(item, LoweredStages)
                self.lowered_stages(item, stages_path, member_names, order, stages)
            elif isinstance(item, Deferred):
                rest, span = item.members()
                self.set(path, span)  # the whole workflow, now known (its entry keeps its place)
                members.extend(reversed(rest))
            else:
                assert isinstance(item, ast.Hook)
                hook_path: Path = (*path, "on", item.event)
                if self.claim(hook_names, "hook", f"on {item.event}", item.event_span, hook_path):
                    self.set(hook_path, item.span, item.event_span)
                    hook: dict[str, Any] = {}
                    hooks[item.event] = hook
                    self.attributes(item.attributes, hook_path, hook)
        attribute_body: dict[str, Any] = {}
        self.attributes(attributes, path, attribute_body)
        result = {**attribute_body}
        if params:
            result["params"] = params
        if "defaults" in body:
            result["defaults"] = body["defaults"]
        result["stages"] = stages
        if uses:
            result["uses"] = uses
        result["order"] = order
        if hooks:
            result["on"] = hooks
        return result

    def lowered_stages(
        self, chunk: LoweredStages, stages_path: Path, names: dict[str, Path], order: list[str],
        stages: dict[str, Any],
    ) -> None:
        """Add stages lowered by :func:`lower_stages`: what :meth:`stage` would have recorded,
        in the same order (a name taken already is A208 and the stage is dropped, as here)."""
        if chunk.path != stages_path:
            raise ValueError(f"stages lowered for {chunk.path}, added to {stages_path}")
        item_arrays = self.spans.values.item_arrays()
        if names.keys().isdisjoint(chunk.names):  # no A208: everything at once (C loops)
            names.update(zip(chunk.names, [(*stages_path, name) for name in chunk.names], strict=True))
            order.extend(chunk.names)
            stages.update(zip(chunk.names, chunk.bodies, strict=True))
            self._values.update(chunk.values)
            self._keys.update(chunk.keys)
            item_arrays.update(zip(chunk.items, map(partial(array, "q"), chunk.items.values()), strict=True))
            for index in sorted(chunk.diagnostics):
                self.diagnostics.extend(chunk.diagnostics[index])
            _release(chunk)
            return
        values, keys, items = iter(chunk.values.items()), iter(chunk.keys.items()), iter(chunk.items.items())
        for index, name in enumerate(chunk.names):
            stage_values = list(islice(values, chunk.value_counts[index]))
            stage_keys = list(islice(keys, chunk.key_counts[index]))
            stage_items = list(islice(items, chunk.item_counts[index]))
            at = (*stages_path, name)
            first = names.get(name)
            if first is not None:
                self.duplicate("stage", name, Span.packed(self.source, chunk.keys[at]), self.spans.key(first))
                continue
            names[name] = at
            order.append(name)
            stages[name] = chunk.bodies[index]
            self._values.update(stage_values)
            self._keys.update(stage_keys)
            item_arrays.update((path, array("q", packed)) for path, packed in stage_items)
            self.diagnostics.extend(chunk.diagnostics.get(index, ()))
        _release(chunk)

    def param(self, param: ast.Param, path: Path) -> dict[str, Any]:
        self.set(path, param.span, param.name_span)
        self.set((*path, "type"), param.type_span, param.type_span)
        result: dict[str, Any] = {"type": param.type}
        if param.default is not None:
            result["default"] = self.value(param.default, (*path, "default"))
        return result

    def stage(self, stage: ast.Stage, path: Path) -> dict[str, Any]:
        self.set(path, stage.span, stage.name_span)
        body: dict[str, Any] = {}
        if stage.after:
            body["after"] = self.targets(stage.after, (*path, "after"))
        self.attributes(stage.attributes, path, body)
        return body

    def use(self, use: ast.Use, path: Path) -> dict[str, Any]:
        self.set(path, use.span, use.alias_span)
        self.set((*path, "template"), use.template_span, use.template_span)
        arguments: dict[str, Any] = {}
        if use.arguments:
            self.set((*path, "params"), use.arguments[0].span.cover(use.arguments[-1].span))
        self.attributes(use.arguments, (*path, "params"), arguments)
        body: dict[str, Any] = {"template": use.template, "params": arguments}
        if use.after:
            body["after"] = self.targets(use.after, (*path, "after"))
        return body


def _release(chunk: LoweredStages) -> None:
    """Free the tables of stages once added (tens of MB at 100,000 stages): the document
    has their entries, and the chunk stays referenced until the whole file is lowered."""
    chunk.values.clear()
    chunk.keys.clear()
    chunk.items.clear()


def _span(node: ast.Value, source: SourceFile) -> Span:
    """A value's span (expression nodes built by the parser always have one)."""
    return node.span if node.span is not None else source.whole()


def _offsets(raw: str, start: int) -> list[int]:
    """Source offset of each character of a string literal's value (escapes take two)."""
    offsets: list[int] = []
    index = 0
    while index < len(raw):
        offsets.append(start + index)
        index += 2 if raw[index] == "\\" and index + 1 < len(raw) else 1
    offsets.append(start + len(raw))
    return offsets


def lower(tree: ast.File, source: SourceFile) -> tuple[Document, list[Diagnostic]]:
    """Lower a syntax tree to the normalized document (A208 for names declared twice)."""
    return _lower_consumed([tree], source)


def _lower_consumed(
    holder: list[ast.File | PartFile], source: SourceFile | None = None
) -> tuple[Document, list[Diagnostic]]:
    """:func:`lower` of the tree in ``holder``, taken out of it: when the caller keeps no
    other reference, each block of the tree is freed as soon as it is lowered."""
    if source is None:
        source = holder[0].span.source
    lowering = _Lowering(source)
    with collector_paused():  # many small allocations, no garbage
        data, imports = lowering.file(holder)
    return Document(source=source, data=data, spans=lowering.spans, imports=imports), lowering.diagnostics
