"""Incremental parsing of ``.alfred`` files for the language server.

After an edit, most of a large file is unchanged: the server parses each ``stage`` block of
a workflow on its own and keeps the result by the block's text, so a re-check parses only
the blocks that changed plus the file's *shell* (the file with every such block blanked
out, which lexes as whitespace). A block found again at another offset is moved there
(its spans shifted and pointed at the new text) instead of being parsed again. When the
text changed inside one block only (the usual edit), the scan for blocks reads that block
only and shifts the others (:func:`blocks_after_edit`).

The result is the tree a whole-file parse gives (the same nodes, spans and comments). A
block counts only when a cheap scan is sure of it: the scanner knows the lexer's strings
and comments, tracks every bracket, and takes a ``stage NAME ... { ... }`` only directly
inside a workflow, between item separators (a new line, ``;``, the workflow's ``{`` or
``}``), where removing it leaves a valid body and putting it back is what the grammar
does. Whenever the scan is unsure, or any part reports a diagnostic, the whole file is
parsed as ``alfredc check`` does, so error messages and recovery are the compiler's own.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from typing import Any

from ._compiler import SourceFile, Span, ast, parse_ast, parse_part

__all__ = ["IncrementalParser"]

# The lexer's STRING (grammar/alfred.lark), a lone quote (an unclosed string: unsure), a
# comment, a bracket, and the two keywords the scan needs (whole words, as NAME lexes them).
_SCAN = re.compile(
    r'"(?:[^"\\\n]++|\\.)*+"|(")|#[^\n]*|([{}\[\]()])'
    r"|(?<![A-Za-z0-9_-])(stage(?=[ \t\f]+[A-Za-z_])|workflow)(?![A-Za-z0-9_-])"
)
_BLANKS = " \t\f"
_CLOSER = {"}": "{", "]": "[", ")": "("}
#: What a stage block is parsed inside of (its own workflow, as in the file).
_PREFIX = "workflow _ {"


def stage_blocks(text: str) -> list[tuple[int, int]] | None:
    """The ``[start, end)`` of each stage block a part-wise parse can take; None when unsure."""
    scanned = _scan(text, 0, len(text), [])
    if scanned is None or scanned[1]:
        return None
    return scanned[0]


def _scan(
    text: str, pos: int, endpos: int, stack: list[str]
) -> tuple[list[tuple[int, int]], list[str]] | None:
    """The stage blocks in ``text[pos:endpos]`` and the brackets still open at its end, for a
    scan that starts with ``stack`` open (inside a workflow's body when it is not empty)."""
    blocks: list[tuple[int, int]] = []
    workflow_body = bool(stack)  # the depth-1 block is a workflow's body
    pending_workflow = False  # `workflow` seen at top level, its `{` not yet
    stage_start = -1  # a candidate block's start, while it is open
    for match in _SCAN.finditer(text, pos, endpos):
        lone_quote, bracket, keyword = match.groups()
        if lone_quote is not None:
            return None
        if bracket is not None:
            if bracket in "{[(":
                if not stack:
                    workflow_body = bracket == "{" and pending_workflow
                    pending_workflow = False
                stack.append(bracket)
                continue
            if not stack or stack.pop() != _CLOSER[bracket]:
                return None
            if len(stack) == 1 and stage_start >= 0 and bracket == "}":
                end = match.end()
                if _separator_follows(text, end):
                    blocks.append((stage_start, end))
                stage_start = -1
            elif not stack:
                stage_start = -1
            continue
        if keyword == "workflow":  # (`stage` only when a name follows it: not `stage = x`)
            if not stack:
                pending_workflow = True
        elif (
            len(stack) == 1
            and workflow_body
            and stage_start < 0
            and _separator_precedes(text, match.start())
        ):
            stage_start = match.start()
    return blocks, stack


def blocks_after_edit(
    old: str, blocks: list[tuple[int, int]], new: str
) -> list[tuple[int, int]] | None:
    """:func:`stage_blocks` of ``new`` from those of ``old`` when the two differ inside one
    stage block only (the usual edit): that block is scanned again, the others shifted.
    None when the edit reaches outside a block, or the block does not scan as one again.

    The text before the block is unchanged, so a whole scan enters the block in the state
    it did before (directly in a workflow's body); when the block's new text closes exactly
    where the old one did and nothing is unsure inside it, the scan leaves it in that state
    too, and what follows is the old text, shifted.
    """
    prefix = _common_prefix(old, new)
    limit = min(len(old), len(new)) - prefix
    suffix = _common_prefix(old[::-1], new[::-1], limit)
    delta = len(new) - len(old)
    for number, (start, end) in enumerate(blocks):
        if end - 1 < prefix:
            continue
        # The edit must begin after the block's first character and leave its `}` untouched.
        if not (start < prefix and end - 1 >= len(old) - suffix):
            return None
        scanned = _scan(new, start, end + delta, ["{"])
        if scanned is None or scanned != ([(start, end + delta)], ["{"]):
            return None
        shifted = [(later + delta, finish + delta) for later, finish in blocks[number + 1 :]]
        return [*blocks[:number], (start, end + delta), *shifted]
    return None


def _common_prefix(one: str, other: str, limit: int | None = None) -> int:
    """How many characters the two texts (up to ``limit``) start with alike: a binary search
    of slice comparisons, which compare in C (a loop over the characters would not)."""
    high = min(len(one), len(other)) if limit is None else limit
    low = 0
    while low < high:
        middle = (low + high + 1) // 2
        if one[low:middle] == other[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _separator_precedes(text: str, at: int) -> bool:
    index = at
    while index > 0 and text[index - 1] in _BLANKS:
        index -= 1
    return index > 0 and text[index - 1] in "\n;{"


def _separator_follows(text: str, at: int) -> bool:
    index = at
    while index < len(text) and text[index] in _BLANKS:
        index += 1
    return index < len(text) and (text[index] in "\n;#}" or text.startswith("\r\n", index))


@dataclasses.dataclass(frozen=True, slots=True)
class _Part:
    """One stage block as parsed at ``start``: its node and the comments inside it."""

    start: int
    stage: ast.Stage
    comments: tuple[ast.Comment, ...]


class IncrementalParser:
    """``parse_ast`` with the stage blocks of the last parse of each file kept."""

    def __init__(self) -> None:
        self._parts: dict[str, dict[str, _Part]] = {}
        #: The text of the last parse of each file and its stage blocks.
        self._scans: dict[str, tuple[str, list[tuple[int, int]]]] = {}
        self._lock = threading.Lock()
        #: How many stage blocks the last parse had to parse (-1: it parsed the whole file).
        self.parsed_blocks = -1

    def parse(self, source: SourceFile) -> tuple[ast.File | None, list[Any]]:
        with self._lock:
            self.parsed_blocks = 0
            found = self._parse(source)
            if found is None:
                self.parsed_blocks = -1
        return found if found is not None else parse_ast(source)

    def _parse(self, source: SourceFile) -> tuple[ast.File | None, list[Any]] | None:
        text = source.text
        before = self._scans.get(source.name)
        blocks = blocks_after_edit(*before, text) if before is not None else None
        if blocks is None:
            blocks = stage_blocks(text)
        if not blocks:
            self._scans.pop(source.name, None)
            return None
        self._scans[source.name] = (text, blocks)
        kept = self._parts.get(source.name, {})
        parts: dict[str, _Part] = {}
        stages: list[ast.Stage] = []
        comments: list[ast.Comment] = []
        pieces: list[str] = []
        last = 0
        for start, end in blocks:
            block = text[start:end]
            pieces.append(text[last:start])
            pieces.append(" " * (end - start))
            last = end
            part = parts.get(block) or kept.get(block)
            if part is None:
                parsed = parse_part(source, _PREFIX + block + "}", start - len(_PREFIX))
                if parsed is None:
                    return None
                tree, inner = parsed
                if len(tree.items) != 1 or not isinstance(tree.items[0], ast.Workflow):
                    return None
                items = tree.items[0].items
                if len(items) != 1 or not isinstance(items[0], ast.Stage):
                    return None
                part = _Part(start, items[0], inner)
                self.parsed_blocks += 1
            parts[block] = part
            if part.start == start and part.stage.span.source is source:
                stages.append(part.stage)
                comments.extend(part.comments)
            else:
                mover = _Mover(source, start - part.start)
                stages.append(mover.move(part.stage))
                comments.extend(mover.move(comment) for comment in part.comments)
        pieces.append(text[last:])
        self._parts[source.name] = parts
        parsed = parse_part(source, "".join(pieces), 0)
        if parsed is None:
            return None
        shell, shell_comments = parsed
        whole = _assemble(shell, stages)
        if whole is None:
            return None
        comments.extend(shell_comments)
        comments.sort(key=lambda comment: comment.span.start)
        return ast.File(items=whole.items, comments=tuple(comments), span=whole.span), []


def _assemble(shell: ast.File, stages: list[ast.Stage]) -> ast.File | None:
    """The shell's tree with each stage put back into the workflow around it."""
    items: list[ast.TopItem] = []
    index = 0
    for item in shell.items:
        if isinstance(item, ast.Workflow):
            inside: list[ast.Stage] = []
            while index < len(stages) and stages[index].span.end <= item.span.end:
                if stages[index].span.start < item.span.start:
                    return None
                inside.append(stages[index])
                index += 1
            if inside:
                merged = sorted((*item.items, *inside), key=lambda node: node.span.start)
                item = ast.Workflow(
                    name=item.name, name_span=item.name_span, items=tuple(merged), span=item.span
                )
        items.append(item)
    if index != len(stages):
        return None
    return ast.File(items=tuple(items), comments=shell.comments, span=shell.span)


class _Mover:
    """Copies a tree with every span shifted by ``delta`` and pointing into ``source``."""

    def __init__(self, source: SourceFile, delta: int) -> None:
        self.source = source
        self.delta = delta

    def move(self, node: Any) -> Any:
        kind = type(node)
        if kind is Span:
            return _moved(node, self)
        if kind is tuple:
            return tuple([self.move(item) for item in node]) if node else node
        copier = _COPIERS.get(kind)
        if copier is None:
            if kind in _ATOMS or not dataclasses.is_dataclass(node):
                return node
            copier = _COPIERS[kind] = _copier(kind)
        return copier(node, self)


_ATOMS = frozenset({str, int, float, bool, type(None)})
_COPIERS: dict[type, Any] = {}


def _copier(kind: type) -> Any:
    """A function that copies a node of ``kind``, moving the fields that can hold spans.

    Fields declared as plain text or numbers are taken as they are: the copy of a stage is
    on the path of every re-check, and most of its fields are names. The nodes and spans
    are frozen dataclasses with slots: the copy fills their slots directly (a frozen
    ``__init__`` costs four times as much, and the fields of a copy need no checking).
    """
    fields = dataclasses.fields(kind)
    names = {field.name for field in fields}
    direct = names <= set(getattr(kind, "__slots__", ())) and not hasattr(kind, "__post_init__")
    namespace: dict[str, Any] = {"kind": kind, "Span": Span, "new": object.__new__}
    values: list[tuple[str, str]] = []
    for field in fields:
        # Annotations are strings here (postponed): builtins only (`str`, `int | None`,
        # `tuple[str, ...]`) means no node and no span inside.
        annotation = str(field.type).replace("None", "")
        plain = not any(char.isupper() for char in annotation)
        value = f"node.{field.name}"
        if field.type == "Span":  # the most common field: moved without going through move()
            value = f"moved({value}, mover)" if direct else (
                f"Span(mover.source, {value}.start + mover.delta, {value}.end + mover.delta)"
            )
        elif not plain:
            value = f"mover.move({value})"
        values.append((field.name, value))
    if direct:
        namespace.update({f"set_{name}": getattr(kind, name).__set__ for name in names})
        lines = ["def copy(node, mover):", "    copied = new(kind)"]
        lines += [f"    set_{name}(copied, {value})" for name, value in values]
        code = "\n".join([*lines, "    return copied", ""])
        namespace["moved"] = _moved
    else:
        arguments = ", ".join(f"{name}={value}" for name, value in values)
        code = f"def copy(node, mover):\n    return kind({arguments})\n"
    exec(code, namespace)  # the text is made of the dataclass's field names only
    return namespace["copy"]


def _moved(span: Span, mover: _Mover) -> Span:
    """``span`` shifted by the mover's delta into its source."""
    return Span(mover.source, span.start + mover.delta, span.end + mover.delta)
