"""Lowering: the syntax tree of an ``.alfred`` file to the normalized document.

The document has the shape of docs/design.md (the same one YAML and JSON inputs have);
every key and value written by the user gets a span in the :class:`SpanIndex`. Bare
names lower to strings, durations to their text (``"1h30m"``), expressions to
``"${...}"`` in canonical form, and string literals to their unescaped text (their
``${...}`` parts are parsed here, so that a bad one is reported at its exact position).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from .._diagnostics import Diagnostic, Label, error
from .._expr import Binary, Literal, Ref, Unary, unparse
from .._gcpause import collector_paused
from .._source import SourceFile, Span
from . import _ast as ast
from ._document import Document, Path, SpanIndex
from .syntax import parse_ast, template_parts

__all__ = ["PARSE_AST", "lower", "parse_document"]

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
    tree, diagnostics = PARSE_AST.get()(source)
    if tree is None or any(d.is_error for d in diagnostics):
        return None, diagnostics
    document, problems = lower(tree, source)
    del tree  # its Span objects die here but for the index's, which become ints
    document.spans.pack()
    diagnostics.extend(problems)
    if any(d.is_error and d.code != "A208" for d in problems):
        return None, diagnostics
    return document, diagnostics


class _Lowering:
    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.spans = SpanIndex(source)
        self.diagnostics: list[Diagnostic] = []

    # -- helpers -------------------------------------------------------------------------

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

    def claim(self, seen: dict[str, Span], what: str, name: str, span: Span) -> bool:
        """Record a name in a namespace; False (and A208) when it is taken already."""
        first = seen.get(name)
        if first is not None:
            self.duplicate(what, name, span, first)
            return False
        seen[name] = span
        return True

    # -- values --------------------------------------------------------------------------

    def value(self, node: ast.Value, path: Path) -> Any:
        self.spans.set(path, _span(node, self.source))
        if isinstance(node, ast.String):
            if "${" in node.value:
                self.check_template(node)
            return node.value
        if isinstance(node, ast.Name):
            return node.name
        if isinstance(node, ast.Bool):
            return node.value
        if isinstance(node, ast.Number):
            return node.value if node.value is not None else node.raw
        if isinstance(node, ast.Duration):
            return node.raw
        if isinstance(node, ast.ListValue):
            return [self.value(item, (*path, index)) for index, item in enumerate(node.items)]
        if isinstance(node, ast.MapValue):
            result: dict[str, Any] = {}
            seen: dict[str, Span] = {}
            for entry in node.entries:
                if self.claim(seen, "key", entry.key, entry.key_span):
                    at = (*path, entry.key)  # one tuple for both indexes
                    result[entry.key] = self.value(entry.value, at)
                    self.spans.keys[at] = entry.key_span
            return result
        assert isinstance(node, Literal | Ref | Unary | Binary)
        return "${" + unparse(node) + "}"

    def check_template(self, node: ast.String) -> None:
        """Parse the ``${...}`` parts of a string literal so errors point inside it."""
        start = node.span.start + 1
        if node.raw == node.value:
            _, problems = template_parts(node.value, node.span, lambda i: start + i)
        else:
            _, problems = template_parts(node.value, node.span, None, _offsets(node.raw, start))
        self.diagnostics.extend(problems)

    def attributes(self, attributes: tuple[ast.Attribute, ...], path: Path, into: dict[str, Any]) -> None:
        seen: dict[str, Span] = {}
        for attribute in attributes:
            if attribute.name in into and attribute.name not in seen:
                # Set by the block header (`stage x after y` and an `after = [...]` attribute).
                seen[attribute.name] = self.spans.key((*path, attribute.name))
            if self.claim(seen, "attribute", attribute.name, attribute.name_span):
                at = (*path, attribute.name)  # one tuple for both indexes
                into[attribute.name] = self.value(attribute.value, at)
                self.spans.keys[at] = attribute.name_span

    def targets(self, targets: tuple[ast.Target, ...], path: Path) -> list[str]:
        for index, target in enumerate(targets):
            self.spans.set((*path, index), target.span)
        if targets:
            self.spans.set(path, targets[0].span.cover(targets[-1].span), targets[0].span)
        return [target.name for target in targets]

    # -- blocks --------------------------------------------------------------------------

    def file(self, tree: ast.File) -> tuple[dict[str, Any], tuple[tuple[str, Span], ...]]:
        data: dict[str, Any] = {}
        imports: list[tuple[str, Span]] = []
        agents: dict[str, Any] = {}
        workflows: dict[str, Any] = {}
        agent_names: dict[str, Span] = {}
        workflow_names: dict[str, Span] = {}
        self.spans.set((), tree.span)
        for item in tree.items:
            if isinstance(item, ast.Import):
                self.spans.set(("imports", len(imports)), item.path.span, item.span)
                imports.append((item.path.value, item.path.span))
            elif isinstance(item, ast.Agent):
                if self.claim(agent_names, "agent", item.name, item.name_span):
                    path: Path = ("agents", item.name)
                    self.spans.set(path, item.span, item.name_span)
                    body: dict[str, Any] = {}
                    agents[item.name] = body
                    self.attributes(item.attributes, path, body)
            elif self.claim(workflow_names, "workflow", item.name, item.name_span):
                workflows[item.name] = self.workflow(item)
        if imports:
            data["imports"] = [path for path, _ in imports]
        data["agents"] = agents
        data["workflows"] = workflows
        return data, tuple(imports)

    def workflow(self, workflow: ast.Workflow) -> dict[str, Any]:
        path: Path = ("workflows", workflow.name)
        self.spans.set(path, workflow.span, workflow.name_span)
        body: dict[str, Any] = {}
        params: dict[str, Any] = {}
        stages: dict[str, Any] = {}
        uses: dict[str, Any] = {}
        hooks: dict[str, Any] = {}
        order: list[str] = []
        attributes: list[ast.Attribute] = []
        param_names: dict[str, Span] = {}
        member_names: dict[str, Span] = {}  # stages and `use` aliases share one namespace
        hook_names: dict[str, Span] = {}
        defaults_span: Span | None = None
        for item in workflow.items:
            if isinstance(item, ast.Attribute):
                attributes.append(item)
            elif isinstance(item, ast.Param):
                if self.claim(param_names, "param", item.name, item.name_span):
                    params[item.name] = self.param(item, (*path, "params", item.name))
            elif isinstance(item, ast.Defaults):
                if defaults_span is not None:
                    self.duplicate("block", "defaults", item.span, defaults_span)
                    continue
                defaults_span = item.span
                self.spans.set((*path, "defaults"), item.span, item.span)
                defaults: dict[str, Any] = {}
                body["defaults"] = defaults
                self.attributes(item.attributes, (*path, "defaults"), defaults)
            elif isinstance(item, ast.Stage):
                if self.claim(member_names, "stage", item.name, item.name_span):
                    order.append(item.name)
                    stages[item.name] = self.stage(item, (*path, "stages", item.name))
            elif isinstance(item, ast.Use):
                if self.claim(member_names, "use alias", item.alias, item.alias_span):
                    order.append(item.alias)
                    uses[item.alias] = self.use(item, (*path, "uses", item.alias))
            elif self.claim(hook_names, "hook", f"on {item.event}", item.event_span):
                hook_path: Path = (*path, "on", item.event)
                self.spans.set(hook_path, item.span, item.event_span)
                hook: dict[str, Any] = {}
                hooks[item.event] = hook
                self.attributes(item.attributes, hook_path, hook)
        attribute_body: dict[str, Any] = {}
        self.attributes(tuple(attributes), path, attribute_body)
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

    def param(self, param: ast.Param, path: Path) -> dict[str, Any]:
        self.spans.set(path, param.span, param.name_span)
        self.spans.set((*path, "type"), param.type_span, param.type_span)
        result: dict[str, Any] = {"type": param.type}
        if param.default is not None:
            result["default"] = self.value(param.default, (*path, "default"))
        return result

    def stage(self, stage: ast.Stage, path: Path) -> dict[str, Any]:
        self.spans.set(path, stage.span, stage.name_span)
        body: dict[str, Any] = {}
        if stage.after:
            body["after"] = self.targets(stage.after, (*path, "after"))
        self.attributes(stage.attributes, path, body)
        return body

    def use(self, use: ast.Use, path: Path) -> dict[str, Any]:
        self.spans.set(path, use.span, use.alias_span)
        self.spans.set((*path, "template"), use.template_span, use.template_span)
        arguments: dict[str, Any] = {}
        if use.arguments:
            self.spans.set((*path, "params"), use.arguments[0].span.cover(use.arguments[-1].span))
        self.attributes(use.arguments, (*path, "params"), arguments)
        body: dict[str, Any] = {"template": use.template, "params": arguments}
        if use.after:
            body["after"] = self.targets(use.after, (*path, "after"))
        return body


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
    lowering = _Lowering(source)
    with collector_paused():  # many small allocations, no garbage
        data, imports = lowering.file(tree)
    return Document(source=source, data=data, spans=lowering.spans, imports=imports), lowering.diagnostics
