"""JSON with positions: ``json``'s own scanners driven by an explicit stack."""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import re
from collections.abc import Callable
from typing import Any, cast

from ..._diagnostics import Diagnostic, error
from ..._source import SourceFile
from ..._values import MAX_INT_DIGITS
from .._document import SpanIndex
from ._positions import _begin_key, _child_path, _end_value, _Frame, _InputError, _too_long
from ._read import _NESTING_MESSAGE, MAX_DEPTH

# -- JSON with positions ----------------------------------------------------------------

_JSON_WS = re.compile(r"[ \t\n\r]+")
#: The C string scanner of the json module (not in its typed interface).
_scanstring = cast(Callable[[str, int], tuple[str, int]], cast(Any, json.decoder).scanstring)
_JSON_NUMBER = json.scanner.NUMBER_RE
_JSON_LITERALS: tuple[tuple[str, Any], ...] = (("true", True), ("false", False), ("null", None))


def parse_json(source: SourceFile) -> tuple[Any, SpanIndex, list[Diagnostic]]:
    """Parse JSON text keeping the span of every key and value.

    Returns ``(value, spans, diagnostics)``: the value is None after a syntax error (A109)
    or nesting deeper than :data:`MAX_DEPTH` (A003); a duplicate key is A208 (the first
    one is kept). Error messages are those of Python's ``json`` module.
    """
    text = source.text
    spans = SpanIndex(source)
    diags: list[Diagnostic] = []
    try:
        value = _parse_json(source, spans, diags)
    except json.JSONDecodeError as exc:
        span = source.span(exc.pos, min(exc.pos + 1, len(text)))
        label = exc.msg[0].lower() + exc.msg[1:]
        return None, spans, [error("A109", f"invalid JSON: {exc.msg}", span, label)]
    except _InputError as exc:
        span = source.span(exc.start, min(exc.end, len(text)))
        return None, spans, [error(exc.code, exc.message, span)]
    return value, spans, diags


def _parse_json(source: SourceFile, spans: SpanIndex, diags: list[Diagnostic]) -> Any:
    # An explicit stack instead of recursion: nesting is bounded by MAX_DEPTH, not the C stack.
    text = source.text
    n = len(text)
    def ws(at: int) -> int:
        match = _JSON_WS.match(text, at)
        return at if match is None else match.end()

    stack: list[_Frame] = []
    pos = ws(0)

    def key_at(at: int, frame: _Frame) -> int:
        if at >= n or text[at] != '"':
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, at)
        key, end = _scanstring(text, at + 1)
        _begin_key(frame, key, source.span(at, end), spans, diags)
        end = ws(end)
        if end >= n or text[end] != ":":
            raise json.JSONDecodeError("Expecting ':' delimiter", text, end)
        return ws(end + 1)

    while True:
        # -- a value starts at pos ---------------------------------------------------
        ch = text[pos] if pos < n else ""
        start = pos
        value: Any
        if ch == "{" or ch == "[":
            if len(stack) >= MAX_DEPTH:
                raise _InputError("A003", _NESTING_MESSAGE, pos)
            path = _child_path(stack[-1]) if stack else ()
            frame = _Frame({} if ch == "{" else [], path, pos)
            stack.append(frame)
            pos = ws(pos + 1)
            if pos < n and text[pos] == ("}" if ch == "{" else "]"):
                stack.pop()
                pos += 1
                value = frame.container
            else:
                if ch == "{":
                    pos = key_at(pos, frame)
                continue
        elif ch == '"':
            value, pos = _scanstring(text, pos + 1)
        elif ch == "-" or "0" <= ch <= "9":
            match = _JSON_NUMBER.match(text, pos)
            if match is None:
                raise json.JSONDecodeError("Expecting value", text, pos)
            integer, fraction, exponent = match.groups()
            if not (fraction or exponent) and len(integer) > MAX_INT_DIGITS:
                raise _InputError("A106", _too_long(integer), pos, match.end())
            value = float(match.group()) if fraction or exponent else int(integer)
            pos = match.end()
        else:
            for word, literal in _JSON_LITERALS:
                if text.startswith(word, pos):
                    value, pos = literal, pos + len(word)
                    break
            else:
                raise json.JSONDecodeError("Expecting value", text, pos)
        # -- a complete value [start, pos): store it, then close finished containers --
        size = 1
        while True:
            if not stack:
                pos = ws(pos)
                if pos != n:
                    raise json.JSONDecodeError("Extra data", text, pos)
                spans.set((), source.span(start, pos))
                return value
            frame = stack[-1]
            _end_value(frame, value, source.span(start, pos), size, spans)
            pos = ws(pos)
            ch = text[pos] if pos < n else ""
            is_list = isinstance(frame.container, list)
            if ch == ",":
                pos = ws(pos + 1)
                if not is_list:
                    pos = key_at(pos, frame)
                break
            if ch == ("]" if is_list else "}"):
                stack.pop()
                pos += 1
                value, start, size = frame.container, frame.start, frame.size
                continue
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
