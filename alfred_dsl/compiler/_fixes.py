"""Machine-applicable fixes: the edits behind a "did you mean" that an editor can apply.

A fix is offered only when it is certain: the misspelt name occurs exactly once, as a whole
name, in the text the diagnostic marks (a plain name, a quoted YAML scalar, a dotted reference).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .._diagnostics import Edit
from .._source import Span
from .._values import suggest

__all__ = ["closest", "rename_fix"]

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
