"""Machine-applicable fixes: the edits behind a "did you mean" that an editor can apply.

A fix is offered only when it is certain: the misspelt name occurs exactly once, as a whole
name, in the text the diagnostic marks (a plain name, a quoted YAML scalar, a dotted reference);
a redundant `after` entry is removed with its comma; an unused param's one-line declaration
(in an .alfred file) is removed with its line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .._diagnostics import Edit
from .._source import Span
from .._values import suggest

__all__ = ["closest", "remove_list_entry_fix", "remove_param_line_fix", "rename_fix"]

_NAME_CHAR = r"A-Za-z0-9_\-"


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate a "did you mean" names (the same choice as the help text)."""
    close = suggest(name, candidates)
    return close[0] if close else None


def rename_fix(span: Span | None, old: str, candidates: Iterable[str]) -> tuple[Edit, ...]:
    """Replace the one whole occurrence of ``old`` inside ``span`` by its closest candidate."""
    if span is None or not old:
        return ()
    new = closest(old, candidates)
    if new is None:
        return ()
    written = span.source.text[span.start : span.end]
    found = list(re.finditer(rf"(?<![{_NAME_CHAR}]){re.escape(old)}(?![{_NAME_CHAR}])", written))
    if len(found) != 1:
        return ()
    start = span.start + found[0].start()
    return (Edit(span.source.span(start, start + len(old)), new),)


_BLANK = " \t"


def remove_list_entry_fix(span: Span | None) -> tuple[Edit, ...]:
    """Remove one entry of a comma-separated list (``after a, b`` or ``[a, b]``) with its comma.

    The only entry of ``stage x after a {`` goes with its ``after``; the only entry of a
    bracketed list leaves ``[]``. Anything else (a YAML block list) gets no fix.
    """
    if span is None or span.end <= span.start:
        return ()
    text = span.source.text
    right = span.end
    while right < len(text) and text[right] in _BLANK:
        right += 1
    if right < len(text) and text[right] == ",":
        right += 1
        while right < len(text) and text[right] in _BLANK:
            right += 1
        return (Edit(span.source.span(span.start, right), ""),)
    left = span.start
    while left > 0 and text[left - 1] in _BLANK:
        left -= 1
    if left > 0 and text[left - 1] == ",":
        return (Edit(span.source.span(left - 1, span.end), ""),)
    if left > 0 and text[left - 1] == "[" and right < len(text) and text[right] == "]":
        return (Edit(span, ""),)
    keyword = left - len("after")
    if keyword > 0 and text[keyword:left] == "after" and left < span.start and text[keyword - 1] in _BLANK:
        while keyword > 0 and text[keyword - 1] in _BLANK:
            keyword -= 1
        return (Edit(span.source.span(keyword, span.end), ""),)
    return ()


def remove_param_line_fix(span: Span | None) -> tuple[Edit, ...]:
    """Remove the line ``param NAME ...`` whose NAME ``span`` marks, when the declaration is
    that whole line (an .alfred file; brackets and quotes closed on the line)."""
    if span is None or not span.source.name.endswith(".alfred") or span.end_line != span.line:
        return ()
    source = span.source
    line = source.line_text(span.line)
    start = source.offset(span.line, 1)
    name = source.text[span.start : span.end]
    before = line[: span.start - start]
    if before.strip() != "param" or not re.fullmatch(rf"[{_NAME_CHAR}]+", name):
        return ()
    code = line.split("#", 1)[0] if line.count('"') == 0 else line
    if code.count('"') % 2 or any(code.count(o) != code.count(c) for o, c in ("[]", "{}", "()")):
        return ()
    end = start + len(line)
    if source.text.startswith("\r\n", end):
        end += 2
    elif source.text.startswith("\n", end):
        end += 1
    return (Edit(source.span(start, end), ""),)
