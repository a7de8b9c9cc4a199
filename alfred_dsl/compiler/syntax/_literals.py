"""The vocabulary of the ``.alfred`` lexer: keywords, the regexes of literals, and their values.

:func:`classify_number` sorts a number-like token (int, float, duration, size) and gives its
value through the one parser of :mod:`alfred_dsl._values`; :func:`unescape` reads a string.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..._values import MAX_INT_DIGITS, parse_duration, parse_size

#: Reserved words: never names of agents, workflows, stages, params or aliases.
KEYWORDS: dict[str, str] = {
    word: word.upper()
    for word in (
        "import", "agent", "workflow", "param", "defaults", "stage", "use", "as", "after", "on",
        "true", "false", "and", "or", "not",
    )
}
_KEYWORD_TYPES = frozenset(KEYWORDS.values())
#: Keywords that start a block or a workflow item: a sign that a `}` is missing before them.
_ITEM_KEYWORDS = frozenset({"IMPORT", "AGENT", "WORKFLOW", "PARAM", "DEFAULTS", "STAGE", "USE", "ON"})
# The start of a declaration, where a parse that lost its way at top level starts again
# (not `agent = x` inside a stage, which also starts with a top-level keyword).
_DECLARATION_RE = re.compile(
    r'^[ \t]*(?:import[ \t]+"|(?:agent|workflow)[ \t]+[A-Za-z_][A-Za-z0-9_-]*[ \t]*\{)', re.MULTILINE
)
_OPENERS = {"LBRACE": "RBRACE", "LBRACK": "RBRACK", "LPAR": "RPAR"}
_CLOSERS = frozenset(_OPENERS.values())
_CLOSER_TEXT = {"RBRACE": "}", "RBRACK": "]", "RPAR": ")", "_NL": "\n"}
_VALUE_STARTS = frozenset({"STRING", "NUMBER", "TRUE", "FALSE", "NAME", "LPAR", "LBRACK", "LBRACE", "NOT"})

MAX_ERRORS = 50
MAX_DEPTH = 100

_WORDS = {
    "NAME": "a name", "STRING": "a string", "NUMBER": "a number", "COMPARE": "a comparison",
    "_NL": "a new line", "$END": "the end of the file", "LBRACE": "`{`", "RBRACE": "`}`",
    "LBRACK": "`[`", "RBRACK": "`]`", "LPAR": "`(`", "RPAR": "`)`", "EQUAL": "`=`", "COMMA": "`,`",
    "COLON": "`:`", "DOT": "`.`",
}
# Continuations of a value that are noise in "expected ..." once the value could end here.
_CONTINUATIONS = frozenset({"DOT", "COMPARE", "AND", "OR"})

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_ESCAPE_RE = re.compile(r"\\(.)")
# The next unknown escape: valid text and escapes are skipped inside the regex engine.
# The group is possessive for memory (see NUMBER in alfred.lark), but the match does not
# depend on it: the captured escape is never a known one, so backtracking finds the same.
_BAD_ESCAPE_RE = re.compile(r'(?:[^\\]++|\\["\\nt])*+(\\[^"\\nt\n])')
_INT_RE = re.compile(r"-?[0-9]+")
_FLOAT_RE = re.compile(r"-?(?:[0-9]+\.[0-9]+(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)")
_DURATION_RE = re.compile(r"(?:[0-9]+(?:ms|s|m|h|d))+")
_DURATION_PART_RE = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNIT_RANK = {"d": 4, "h": 3, "m": 2, "s": 1, "ms": 0}
_SIZE_RE = re.compile(r"[0-9]+(?:B|[KMGT]i?B)")
_COMMENT_RE = re.compile(r"#[^\n]*")
_BLANK_RE = re.compile(r"[ \t\f\r]*+")
_BLANK_OR_COMMENT_RE = re.compile(r"[ \t\f\r]*+(?:#.*+)?")
_NOT_TOKEN_START_RE = re.compile(r"[^A-Za-z0-9_\s\"{}\[\]()=,.:;#<>!\-]*+")


def unescape(raw: str) -> str:
    """The value of a string literal from the text between its quotes.

    Escapes pair left to right, as ``str.split`` does: once the ``\\\\`` pairs are split
    out, each piece holds only single backslashes, so plain replaces are exact (and run in
    C: a callback per escape took seconds on a string of a million escapes). Unknown
    escapes stay as written (they are reported as A105).
    """
    if "\\" not in raw:
        return raw
    return "\\".join(
        piece.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t") if "\\" in piece else piece
        for piece in raw.split("\\\\")
    )


def shorten(text: str, limit: int = 30) -> str:
    """``text`` cut to about ``limit`` characters with ``...``, for quoting in a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@lru_cache(maxsize=1024)
def classify_number(raw: str) -> tuple[str, int | float | None, str | None]:
    """Sort a number-like literal: ``("int"|"float"|"duration"|"size"|"invalid", value, problem)``.

    A duration's value is its length in seconds, a size's (``100MB``, ``10KiB``) its bytes.
    """
    if _INT_RE.fullmatch(raw):
        if len(raw) > MAX_INT_DIGITS:  # Python refuses to convert longer digit strings
            return "invalid", None, (
                f"integer literal `{shorten(raw)}` is too long: {len(raw.lstrip('+-'))} digits, "
                f"at most {MAX_INT_DIGITS}"
            )
        return "int", int(raw), None
    if _FLOAT_RE.fullmatch(raw):
        return "float", float(raw), None
    body = raw[1:] if raw.startswith("-") else raw
    if _DURATION_RE.fullmatch(body):
        if raw.startswith("-"):
            return "invalid", None, f"a duration cannot be negative: `{shorten(raw)}`"
        # The token is any run of amounts and units; here its order is checked for a precise
        # message, then the one duration parser gives its value.
        last_rank = 99
        for amount, unit in _DURATION_PART_RE.findall(body):
            if len(amount) > MAX_INT_DIGITS:
                return "invalid", None, f"duration `{shorten(raw)}` is too long"
            rank = _UNIT_RANK[unit]
            if rank >= last_rank:
                return "invalid", None, (
                    f"invalid duration `{shorten(raw)}`: "
                    "units must go from largest to smallest, each once (like `1h30m`)"
                )
            last_rank = rank
        return "duration", parse_duration(body), None
    if _SIZE_RE.fullmatch(raw):
        return "size", parse_size(raw), None
    return "invalid", None, f"invalid number or duration `{shorten(raw)}`"


# Strings (closed or not), comments and brackets: what a bracket count must see.
_BRACKETS_RE = re.compile(r'"(?:[^"\\\n]++|\\.)*+"?|#[^\n]*+|[{}\[\]()]')
