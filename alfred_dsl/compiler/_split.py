"""A large ``.alfred`` file read in two processes: each parses and lowers about half.

Parsing and lowering are single-threaded Python (about 5 s at 100,000 stages), and the
syntax tree costs as much to pickle and unpickle as to build. So the file is cut at a line
that starts a ``stage``, at offset ``p``; a forked child parses the part after it and lowers
its stages to plain data (:class:`._lower.LoweredStages`, read back with ``marshal``), while
the parent parses the part before it and lowers that; then the parent adds the child's part
where the lowering reaches it (:class:`._lower.Deferred`). The result is the document and
diagnostics of :func:`._lower.parse_document`'s one-process path, to the byte.

**The two texts.** The parent parses ``text[:p] + "}"``; the child parses
``"workflow w {" + " " * (p - 12) + text[p:]``, where the spaces put every character of
``text[p:]`` at its offset in the file. Both are read as texts of the file's
:class:`SourceFile` (:func:`.syntax.parse_exact`: the fast path, no recovery), so every span
is an offset into the file. They are used only when the parent's tree ends with a workflow
``W`` whose span ends at ``p + 1`` (the ``}`` added closed it) and the child's starts with a
workflow at offset 0 (the header), both without any diagnostic; any other outcome, or any
failure of the child, and the file is parsed whole in one process, which also reports the
errors.

**Why the two trees are the tree of the file.** Lexing: every terminal of the grammar but
``_NL`` ends at the end of its line (strings and comments are one line), and ``_NL`` is a
possessive run of newlines, ``;``, blanks and comments. ``p`` is the offset of ``stage``
after a newline and blanks (``\\n[ \\t]*stage[ \\t]+NAME``), so in the file an ``_NL`` token
ends exactly at ``p``, and the fast path's master regex (the basic lexer, equal to Lark's
contextual lexer on a successful parse: ``syntax/_fast.py``) reads no character past
``p`` before it: a match attempt that starts on an earlier line stops at its line's end,
except ``_NL``'s, which stops at ``text[p]``, and ``}`` ends that run as ``s`` does. So the
tokens of ``text[:p] + "}"`` are ``A`` (the file's tokens before ``p``) then ``RBRACE``, and
those of the child's text are ``WORKFLOW NAME LBRACE`` then ``B`` (the file's tokens from
``p``: the regex reads nothing before the position it starts at, and the blanks are folded
in front of the token at ``p``). Grammar: the rule is ``workflow: WORKFLOW NAME LBRACE _NL?
(member _NL)* member? RBRACE`` and ``file: _NL? (item _NL?)*``. The parent's success with
``W`` closed by the added brace shows that ``A`` is ``items WORKFLOW NAME LBRACE _NL?
(member _NL)*``; the child's shows that ``B`` is ``(member _NL)* member? RBRACE _NL? (item
_NL?)*``. Their concatenation is a file whose ``W`` has the parent's members then the
child's, and the grammar is LALR(1), so that is the parse of the file. The tree builder is a
function of each rule's children and their tokens' offsets (the lexer callbacks keep no
state across ``p`` but the nesting depth, 1 at ``p`` in all three texts, and comments, which
the lowering does not read), so the nodes are the file's nodes. Merged: ``W``'s members are
the parent's then the child's, its span runs to the child's header workflow's end, the
file's items after ``W`` are the child's after its header workflow.

**Why the lowering is the same.** The lowering of a stage depends only on the stage and its
path, except for its name, which it claims in the workflow's namespace (A208, and the stage
dropped, when taken). The child lowers its stages under their full paths
(:func:`._lower.lower_stages`): the workflow's name is the one of the last line before ``p``
that starts ``workflow NAME``, and the parent checks that it is ``W``'s (else one process). A
name seen twice in a run of stages starts a new :class:`._lower.LoweredStages`, so the paths
of one never collide. The parent, reaching them in member order, claims the names as the
one-process lowering does and records the same bodies, spans (in the same order in each
table) and diagnostics (:meth:`._lower._Lowering.lowered_stages`: in bulk when no name is
taken, else stage by stage). The child's other members (params, ``use``, hooks, attributes,
defaults: their own namespaces and rules) and the file's later items travel as syntax trees
(``pickle``, the file's ``SourceFile`` by reference) and are lowered by the parent as usual,
in their place; the later workflows' stages are lowered by the child too.

**When.** A file of :data:`._lower.SPLIT_FROM` characters or more, the default parser (the
language server sets its own), and :func:`alfred_dsl._fork.start` willing (fork, two CPUs,
one thread, ``ALFRED_PARALLEL`` not ``0``). The parent lowers its part while the child
works, and blocks on the child only when the lowering reaches the child's first member; the
child is killed and reaped on any exit (``try``/``finally``).
"""

from __future__ import annotations

import marshal
import re
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from .. import _fork
from .._diagnostics import Diagnostic
from .._source import SourceFile, Span, span_at
from . import _ast as ast, _lower
from ._document import Document
from ._lower import Deferred, LoweredStages, PartFile, PartWorkflow
from .syntax import parse_exact

__all__ = ["CHILD_SHARE", "parse_document_split", "split_point"]

#: The share of the text the child reads: it also lowers its stages and writes them out,
#: the parent reads them back (measured: equal work a little before the middle).
CHILD_SHARE = 0.47

#: A line that starts a stage: ``p`` is the offset of ``stage`` (group 1).
_STAGE_LINE = re.compile(r"\n[ \t]*(stage)[ \t]+[A-Za-z_]")

#: The child's text starts with this workflow header, then blanks up to ``p``.
_HEADER = "workflow w {"

#: A line that starts a workflow: its name is group 2.
_WORKFLOW_LINE = re.compile(r"[ \t]*(workflow)[ \t]+([A-Za-z_][A-Za-z0-9_-]*)")
#: A :class:`LoweredStages` for ``marshal``: its fields in order but the last, the
#: diagnostics, which are pickled (they hold spans of the file).
_MARSHALLED = attrgetter(*LoweredStages.__match_args__[:-1])


class _ChildFailed(Exception):
    """The child's part is not usable: the file is read in one process instead."""


def split_point(text: str, share: float = CHILD_SHARE) -> int | None:
    """The offset of the first line starting a stage at or after ``(1 - share)`` of the text."""
    match = _STAGE_LINE.search(text, max(int(len(text) * (1 - share)), 0))
    if match is None or match.start(1) <= len(_HEADER):
        return None
    return match.start(1)


def parse_document_split(
    source: SourceFile, share: float = CHILD_SHARE
) -> tuple[Document | None, list[Diagnostic]] | None:
    """:func:`._lower.parse_document` of a large file in two processes, the child reading
    about ``share`` of it; None when it cannot be done that way (no split point, no fork, a
    problem on either side): the caller then reads the file in one process."""
    text = source.text
    p = split_point(text, share)
    name = None if p is None else _workflow_before(text, p)
    if p is None or name is None:
        return None
    parse_exact(source, "")  # the parser and its fast path built before the fork: both use them
    child = _fork.start(lambda: _child(source, p, name))
    if child is None:
        return None
    try:
        tree = parse_exact(source, text[:p] + "}")
        if tree is None or not tree.items:
            return None
        workflow = tree.items[-1]
        if (not isinstance(workflow, ast.Workflow) or workflow.span.end != p + 1 or workflow.name != name
                or child.failed()):
            return None
        rest = _ChildPart(child, source, workflow.span.start)
        whole = PartFile(
            items=(
                *tree.items[:-1],
                PartWorkflow(name=workflow.name, name_span=workflow.name_span,
                             items=(*workflow.items, rest), span=workflow.span),
                rest,
            ),
            span=span_at(source, 0, len(text)),
        )
        del tree, workflow
        try:
            document, problems = _lower.lower_part(whole, source)
        except Exception:  # the child failed, or its data does not fit: one process decides
            return None
        return _lower.finish(document, problems)
    finally:
        child.close()


class _ChildPart(Deferred):
    """What the child read, taken from it when the lowering first asks."""

    def __init__(self, child: _fork.Child, source: SourceFile, workflow_start: int) -> None:
        self._child = child
        self._source = source
        self._start = workflow_start
        self._read: tuple[Sequence[_lower.Member], Span, Sequence[_lower.TopItem]] | None = None

    def _take(self) -> tuple[Sequence[_lower.Member], Span, Sequence[_lower.TopItem]]:
        if self._read is None:
            data = self._child.result()
            if data is None:
                raise _ChildFailed
            end, members, later = _decode(data, self._source)
            self._read = members, span_at(self._source, self._start, end), later
        return self._read

    def members(self) -> tuple[Sequence[_lower.Member], Span]:
        members, span, _ = self._take()
        return members, span

    def items(self) -> Sequence[_lower.TopItem]:
        return self._take()[2]


# -- the child ------------------------------------------------------------------------------


def _child(source: SourceFile, p: int, workflow: str) -> bytes:
    """Parse and lower the part of the file from ``p``, in workflow ``workflow`` (runs in the
    forked child)."""
    tree = parse_exact(source, _HEADER + " " * (p - len(_HEADER)) + source.text[p:])
    if tree is None or not tree.items:
        raise _ChildFailed
    header = tree.items[0]
    if not isinstance(header, ast.Workflow) or header.span.start != 0:
        raise _ChildFailed
    end = header.span.end
    members = list(header.items)
    later = list(tree.items[1:])
    del tree, header  # each stage is freed once lowered
    segments = _segments(members, workflow, source)
    return _encode(source, end, segments, [_lowered(item, source) for item in later])


def _segments(members: list[ast.WorkflowItem], workflow: str, source: SourceFile) -> list[_lower.Member]:
    """The members with each run of stages lowered (``members`` is emptied)."""
    path = ("workflows", workflow, "stages")
    segments: list[_lower.Member] = []
    run: list[ast.Stage] = []
    members.reverse()
    while members:
        member = members.pop()
        if type(member) is ast.Stage:
            run.append(member)
            continue
        if run:
            segments.extend(_lower.lower_stages(run, path, source))
        segments.append(member)
    if run:
        segments.extend(_lower.lower_stages(run, path, source))
    return segments


def _lowered(item: ast.TopItem, source: SourceFile) -> _lower.TopItem:
    if not isinstance(item, ast.Workflow):
        return item
    members = _segments(list(item.items), item.name, source)
    return PartWorkflow(name=item.name, name_span=item.name_span, items=tuple(members), span=item.span)


def _workflow_before(text: str, p: int) -> str | None:
    """The name in the last line before ``p`` that starts ``workflow NAME`` (the parent checks it)."""
    at = p
    while (at := text.rfind("workflow", 0, at)) >= 0:
        line = text.rfind("\n", 0, at) + 1
        match = _WORKFLOW_LINE.match(text, line)
        if match is not None and match.start(1) == at:
            return match.group(2)
    return None


# -- what goes through the pipe -------------------------------------------------------------
# Three parts, each after its length: the stages' data (marshal), their diagnostics and the
# rest (pickle; the SourceFile and each LoweredStages by reference).


def _encode(source: SourceFile, end: int, members: list[_lower.Member], later: list[_lower.TopItem]) -> bytes:
    chunks: list[LoweredStages] = []

    def reference(obj: object) -> Any:
        if obj is source:
            return "source"
        if type(obj) is LoweredStages:
            chunks.append(obj)
            return len(chunks) - 1
        return None

    rest = _fork.dumps((end, members, later), reference)
    diagnostics = _fork.dumps([chunk.diagnostics for chunk in chunks], reference)
    data = marshal.dumps([_MARSHALLED(chunk) for chunk in chunks])
    return b"".join(len(part).to_bytes(8, "little") + part for part in (data, diagnostics, rest))


def _decode(
    data: bytes | bytearray, source: SourceFile
) -> tuple[int, list[_lower.Member], list[_lower.TopItem]]:
    view = memoryview(data)
    parts: list[memoryview] = []
    at = 0
    for _ in range(3):
        length = int.from_bytes(view[at : at + 8], "little")
        parts.append(view[at + 8 : at + 8 + length])
        at += 8 + length
    stage_data: list[tuple[Any, ...]] = marshal.loads(parts[0])
    diagnostics: list[dict[int, list[Diagnostic]]] = _fork.loads(
        parts[1], lambda key: source if key == "source" else None
    )
    result: tuple[int, list[_lower.Member], list[_lower.TopItem]] = _fork.loads(
        parts[2], lambda key: source if key == "source" else _stages(stage_data[key], diagnostics[key])
    )
    return result


def _stages(fields: Any, diagnostics: dict[int, list[Diagnostic]]) -> LoweredStages:
    return LoweredStages(*fields, *[diagnostics])  # fields: what _MARSHALLED read, in order
