"""Shell lines whose interpolated values reach ``/bin/sh`` as data, never as code.

The GitHub Actions hardening rule: each ``${...}`` of a shell line becomes a reference to an
environment variable (``ALFRED_VALUE_1``, ``ALFRED_VALUE_2``, ...) set in the stage's
environment, so the text the shell parses never contains a value and no quoting context
(heredoc, comment, backslash, nested quotes) can turn one into code. A small scanner of the
POSIX shell grammar picks, for each reference, the form with the meaning the user wrote:
``"${ALFRED_VALUE_1}"`` outside quotes (one word, no globbing), ``${ALFRED_VALUE_1}`` inside
``"..."`` and here-documents, ``'"${ALFRED_VALUE_1}"'`` inside ``'...'`` (close and reopen).
The scanner only decides the meaning: a context it misreads can change what the value reads
as, never make it code, because the value is not in the text.

Two places expand a value as code whatever the text says: bash arithmetic (``$((...))``,
``((...))``, array subscripts), where a value must be an integer, and commands that run their
arguments as code (``eval``, ``sh -c``), which are documented limits.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._expr import Expr, ExprError, evaluate, to_text, unparse

__all__ = ["VALUE_PREFIX", "ShellLine", "nul_error", "render_shell"]

#: The environment variables that carry interpolated values: ``ALFRED_VALUE_1``, ...
VALUE_PREFIX = "ALFRED_VALUE_"

_SLOT = "\x00"  # stands for an interpolation while scanning (no shell text contains a NUL)
_BLANKS = " \t"
_OPERATORS = ";&|<>()\n"
_COMMAND = frozenset({"top", "subst", "paren", "tick"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SAFE_DELIMITER = re.compile(r"[A-Za-z0-9_.,:+@%^=-]+\Z")
_INTEGER = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*\Z")


@dataclass(frozen=True, slots=True)
class ShellLine:
    """The text ``/bin/sh -c`` runs and the variables its ``${ALFRED_VALUE_n}`` references read."""

    text: str
    values: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where an interpolation stands: ``kind`` is the quoting context."""

    kind: str       # word, double, single, ansi, comment, heredoc, arith
    ticks: int      # enclosing backquotes: each adds a level of backslash escaping
    escaped: bool   # right after a backslash of the user's (which the value cannot undo)


@dataclass(slots=True)
class _Heredoc:
    """A here-document of a shell line: its delimiter and where its word and body are."""

    delimiter: str
    quoted: bool
    strip_tabs: bool
    word: tuple[int, int]
    body: tuple[int, int] = (0, 0)
    has_slot: bool = False


class _Scanner:
    """One pass over a shell line with :data:`_SLOT` for each interpolation."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.slots: dict[int, _Slot] = {}
        self.heredocs: list[_Heredoc] = []
        self.pending: list[_Heredoc] = []
        self.deleted: set[int] = set()  # positions of backslashes to drop from the text

    def scan(self, start: int, end: int, stack: list[str]) -> None:
        text = self.text
        i = start
        word_start = True
        arith_depth: list[int] = []
        while i < end:
            char = text[i]
            top = stack[-1]
            ticks = stack.count("tick")
            if char == _SLOT:
                self._slot(i, top, ticks, escaped=False)
                word_start = False
                i += 1
                continue
            if top == "single":
                if char == "'":
                    stack.pop()
                i += 1
                continue
            if top == "ansi":
                if char == "\\" and i + 1 < end:
                    if text[i + 1] == _SLOT:
                        self._slot(i + 1, "ansi", ticks, escaped=True)
                    i += 2
                    continue
                if char == "'":
                    stack.pop()
                i += 1
                continue
            if char == "\\":
                if i + 1 < end and text[i + 1] == _SLOT:
                    self._slot(i + 1, top, ticks, escaped=True)
                    self.deleted.add(i)
                i += 2
                word_start = False
                continue
            command = top in _COMMAND
            if command and word_start and char == "#":
                while i < end and text[i] != "\n":
                    if text[i] == _SLOT:
                        self.slots[i] = _Slot("comment", ticks, False)
                    i += 1
                continue
            if char == "$" and i + 1 < end:
                following = text[i + 1]
                if text.startswith("((", i + 1):
                    stack.append("arith")
                    arith_depth.append(0)
                    i += 3
                elif following == "(":
                    stack.append("subst")
                    i += 2
                elif following == "{":
                    i = self._brace(i + 2, end, stack)
                elif following == "'" and top != "double" and top != "heredoc":
                    stack.append("ansi")
                    i += 2
                elif following == '"' and top != "double" and top != "heredoc":
                    stack.append("double")
                    i += 2
                else:
                    i += 1
                word_start = False
                continue
            if char == "`":
                if top == "tick":
                    stack.pop()
                else:
                    stack.append("tick")
                i += 1
                word_start = False
                continue
            if top == "double":
                if char == '"':
                    stack.pop()
                i += 1
                continue
            if top == "heredoc":
                i += 1
                continue
            if top == "brace":
                if char == "}":
                    stack.pop()
                elif char == "'":
                    stack.append("single")
                elif char == '"':
                    stack.append("double")
                i += 1
                continue
            if top == "arith":
                if char == "(":
                    arith_depth[-1] += 1
                elif char == ")":
                    if arith_depth[-1] == 0 and text.startswith("))", i):
                        stack.pop()
                        arith_depth.pop()
                        i += 2
                        continue
                    arith_depth[-1] = max(arith_depth[-1] - 1, 0)
                elif char == "'":
                    stack.append("single")
                elif char == '"':
                    stack.append("double")
                i += 1
                continue
            # A command context: top level, $(...), (...) or `...`.
            if char == "'":
                stack.append("single")
            elif char == '"':
                stack.append("double")
            elif char == "(" and word_start and text.startswith("((", i):
                stack.append("arith")  # bash's ((...)) command; POSIX scripts write `( (`
                arith_depth.append(0)
                i += 2
                continue
            elif char == "(":
                stack.append("paren")
            elif char == ")" and top in ("subst", "paren"):
                stack.pop()
            elif char == "<" and text.startswith("<<", i) and not text.startswith("<<<", i):
                i = self._heredoc_word(i + 2, end)
                word_start = False
                continue
            elif char == "\n" and self.pending:
                i = self._bodies(i + 1, end, stack)
                word_start = True
                continue
            word_start = char in _BLANKS or char in _OPERATORS
            i += 1

    def _slot(self, index: int, top: str, ticks: int, *, escaped: bool) -> None:
        kind = {
            "top": "word", "subst": "word", "paren": "word", "tick": "word", "brace": "word",
            "double": "double", "single": "single", "ansi": "ansi", "heredoc": "heredoc",
            "arith": "arith",
        }[top]
        self.slots[index] = _Slot(kind, ticks, escaped and kind in ("double", "heredoc", "ansi"))

    def _brace(self, i: int, end: int, stack: list[str]) -> int:
        """After ``${``: a parameter expansion; ``${name[...]}`` subscripts are arithmetic."""
        name_end = i
        while name_end < end and (self.text[name_end].isalnum() or self.text[name_end] == "_"):
            name_end += 1
        stack.append("brace")
        if name_end < end and self.text[name_end] == "[" and _NAME.match(self.text[i:name_end]):
            close = self.text.find("]", name_end)
            close = end if close == -1 or close > end else close
            for index in range(name_end + 1, close):
                if self.text[index] == _SLOT:
                    self.slots[index] = _Slot("arith", stack.count("tick"), False)
            return close
        return i

    def _heredoc_word(self, i: int, end: int) -> int:
        """After ``<<``: read the delimiter word of a here-document whose body comes later."""
        text = self.text
        strip_tabs = i < end and text[i] == "-"
        if strip_tabs:
            i += 1
        while i < end and text[i] in _BLANKS:
            i += 1
        start, delimiter, quoted = i, [], False
        while i < end and text[i] not in _BLANKS and text[i] not in _OPERATORS:
            char = text[i]
            if char == _SLOT:
                raise ExprError("a value cannot be the delimiter of a here-document: write the delimiter out")
            if char in "'\"":
                close = text.find(char, i + 1)
                close = end if close == -1 else close
                delimiter.append(text[i + 1:close])
                quoted, i = True, close + 1
                if _SLOT in text[start:i]:
                    raise ExprError(
                        "a value cannot be the delimiter of a here-document: write the delimiter out"
                    )
            elif char == "\\" and i + 1 < end:
                delimiter.append(text[i + 1])
                quoted, i = True, i + 2
            else:
                delimiter.append(char)
                i += 1
        heredoc = _Heredoc("".join(delimiter), quoted, strip_tabs, (start, i))
        self.pending.append(heredoc)
        self.heredocs.append(heredoc)
        return i

    def _bodies(self, i: int, end: int, stack: list[str]) -> int:
        """The bodies of the pending here-documents, from ``i`` (after the newline)."""
        pending, self.pending = self.pending, []
        for heredoc in pending:
            position = i
            body_end = end
            while position < end:
                line_end = self.text.find("\n", position, end)
                line_end = end if line_end == -1 else line_end
                line = self.text[position:line_end]
                if (line.lstrip("\t") if heredoc.strip_tabs else line) == heredoc.delimiter:
                    body_end = position
                    position = min(line_end + 1, end)
                    break
                position = line_end + 1
            else:
                position = end
            heredoc.body = (i, body_end)
            if heredoc.quoted:  # literal text: a value in it is the only thing to place
                for index in range(i, body_end):
                    if self.text[index] == _SLOT:
                        self.slots[index] = _Slot("heredoc", stack.count("tick"), False)
                        heredoc.has_slot = True
            else:
                self.scan(i, body_end, [*stack, "heredoc"])
            i = position
        return i


@dataclass(frozen=True, slots=True)
class _Layout:
    """A shell line ready to render: literal segments (already rewritten) and slots."""

    segments: tuple[str | _Slot, ...]


def _layout(parts: tuple[str | Expr, ...]) -> _Layout:
    literals = [p for p in parts if isinstance(p, str)]
    if any(_SLOT in p for p in literals):
        raise ExprError("a shell line cannot contain a NUL byte")
    text = "".join(p if isinstance(p, str) else _SLOT for p in parts)
    scanner = _Scanner(text)
    scanner.scan(0, len(text), ["top"])
    edits: dict[int, str] = {i: "" for i in scanner.deleted}
    for heredoc in scanner.heredocs:
        if not (heredoc.quoted and heredoc.has_slot):
            continue
        # The body of `<<'EOF'` is literal and would not expand a reference: make it an
        # unquoted here-document whose literal text is escaped, so it still reads the same.
        if not _SAFE_DELIMITER.match(heredoc.delimiter):
            raise ExprError(
                f"a value in the here-document ending `{heredoc.delimiter}` cannot be placed: "
                "use a delimiter of letters, digits and `_` (e.g. <<'EOF')"
            )
        start, stop = heredoc.word
        edits[start] = heredoc.delimiter
        for index in range(start + 1, stop):
            edits[index] = ""
        for index in range(*heredoc.body):
            if text[index] in "\\$`":
                edits[index] = "\\" + text[index]
    segments: list[str | _Slot] = []
    literal: list[str] = []
    for index, char in enumerate(text):
        slot = scanner.slots.get(index) if char == _SLOT else None
        if char == _SLOT:
            if literal:
                segments.append("".join(literal))
                literal = []
            segments.append(slot if slot is not None else _Slot("word", 0, False))
        else:
            literal.append(edits.get(index, char))
    if literal:
        segments.append("".join(literal))
    return _Layout(tuple(segments))


@functools.lru_cache(maxsize=1024)
def _cached_layout(parts: tuple[str | Expr, ...]) -> _Layout:
    return _layout(parts)


def nul_error(expr: Expr) -> ExprError:
    """The error of a value with a NUL byte, naming where it comes from (e.g. a stage output)."""
    return ExprError(
        f"the value of `${{{unparse(expr)}}}` contains a NUL byte, which cannot be passed to a process "
        "(argv, shell line or environment)"
    )


def _reference(slot: _Slot, name: str, value: str) -> str:
    ref = "${" + name + "}"
    kind = slot.kind
    if kind == "word":
        text = f'"{ref}"'
    elif kind == "single":
        text = f"'\"{ref}\"'"
    elif kind == "ansi":
        # A backslash of the user's before it is kept literal (doubled), then close and reopen.
        text = ("\\" if slot.escaped else "") + f"'\"{ref}\"$'"
    elif kind in ("double", "heredoc"):
        # The shell drops a backslash before these characters and keeps it before others:
        # the user's backslash (taken out of the text) applies to the value's first character.
        special = '$`\\\n"' if kind == "double" else "$`\\\n"
        keep = slot.escaped and not (value and value[0] in special)
        text = ("\\\\" if keep else "") + ref
    else:  # comment (inert text) and arithmetic
        text = ref
    for _ in range(slot.ticks):  # each backquote removes one level of backslashes
        text = text.replace("\\", "\\\\")
    return text


def render_shell(
    parts: tuple[str | Expr, ...],
    scope: Mapping[str, Any],
    *,
    check: bool = True,
    first: int = 1,
) -> ShellLine:
    """The shell line of a template's ``parts``: every value in an ``ALFRED_VALUE_n`` variable.

    ``check`` (off for ``--dry-run``, which shows placeholders) refuses a value that is not
    an integer where the shell evaluates it as arithmetic, and a value with a NUL byte.
    """
    if not any(not isinstance(p, str) for p in parts):
        text = "".join(p for p in parts if isinstance(p, str))
        if _SLOT in text:
            raise ExprError("a shell line cannot contain a NUL byte")
        return ShellLine(text, {})
    layout = _cached_layout(parts)
    exprs = [p for p in parts if not isinstance(p, str)]
    out: list[str] = []
    values: dict[str, str] = {}
    number = first
    for segment in layout.segments:
        if isinstance(segment, str):
            out.append(segment)
            continue
        expr = exprs[number - first]
        value = to_text(evaluate(expr, scope))
        name = f"{VALUE_PREFIX}{number}"
        number += 1
        if check and "\x00" in value:
            raise nul_error(expr)
        if check and segment.kind == "arith" and not _INTEGER.match(value):
            raise ExprError(
                f"`${{{unparse(expr)}}}` stands in shell arithmetic, where a value is evaluated as an "
                f"expression: it must be an integer, got {value!r}"
            )
        values[name] = value
        out.append(_reference(segment, name, value))
    return ShellLine("".join(out), values)
