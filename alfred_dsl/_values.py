"""Values every layer reads or writes: durations, sizes, priorities, param values, times, did-you-mean.

One definition each, used by the lexer, the checks, the CLI and the service alike: the
duration grammar (:data:`DURATION_SHAPE`, which the JSON schema's ``duration`` pattern
repeats and a test compares), :func:`parse_duration`, :data:`PRIORITIES`,
:func:`parse_param` (``--param k=v`` to a declared type), :func:`parse_at` /
:func:`parse_since` (``--at`` and ``--since``) and :func:`suggest` (every "did you mean").

Two notations for output on purpose: :func:`format_duration` writes the DSL's own duration syntax
(``1h30m``, ``500ms``) for plans and docs; :func:`format_elapsed` writes a clock-like
elapsed time (``12.3s``, ``2m05s``, ``1h02m``) for runs being watched or listed.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

__all__ = [
    "DURATION_RE", "DURATION_SHAPE", "MAX_INT_DIGITS", "PARAM_TYPES", "PRIORITIES", "did_you_mean",
    "duration_text", "format_clock", "format_duration", "format_elapsed", "format_moment", "format_seconds",
    "format_size", "param_strings", "parse_at", "parse_duration", "parse_param", "parse_priority",
    "parse_since", "parse_size", "suggest", "value_type",
]

#: The most digits an integer may have: Python refuses to convert longer digit strings
#: (``sys.get_int_max_str_digits``), so longer literals are a diagnostic, not a crash.
MAX_INT_DIGITS = 4300

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(seconds: float | None) -> str:
    """``5400`` -> ``"1h30m"``; ``0.5`` -> ``"500ms"``; ``None`` -> ``"—"`` (the DSL's own notation)."""
    if seconds is None or math.isnan(seconds):
        return "—"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    parts: list[str] = []
    for unit, size in _UNITS:
        amount, whole = divmod(whole, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


def format_seconds(seconds: float | None) -> str:
    """A measured duration: ``1.234`` -> ``"1.23s"``, ``75.2`` -> ``"1m15s"``; sub-minute keeps decimals."""
    if seconds is None or math.isnan(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.2f}s"
    return format_duration(seconds)


def format_elapsed(seconds: float | None) -> str:
    """A run or stage's elapsed time: ``0.4s``, ``12.3s``, ``2m05s``, ``1h02m``; ``None`` -> ``"-"``."""
    if seconds is None:
        return "-"
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


#: Size units: decimal (``KB`` = 1000 bytes) and binary (``KiB`` = 1024 bytes).
_SIZE_UNITS = {
    "B": 1,
    "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
    "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4,
}
_SIZE_RE = re.compile(r"([0-9]+)(B|[KMGT]i?B)")


def parse_size(value: object) -> int | None:
    """Bytes of a size (``"100MB"``, ``"10KiB"``, ``"512B"`` or a whole number of bytes); None if invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    if not isinstance(value, str):
        return None
    match = _SIZE_RE.fullmatch(value.strip())
    if match is None:
        return None
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def format_size(size: int) -> str:
    """``100000000`` -> ``"100MB"``, ``10240`` -> ``"10KiB"``, ``1500`` -> ``"1500B"`` (exact, parseable)."""
    if size > 0:
        for unit in ("TiB", "TB", "GiB", "GB", "MiB", "MB", "KiB", "KB"):
            amount, rest = divmod(size, _SIZE_UNITS[unit])
            if amount and not rest:
                return f"{amount}{unit}"
    return f"{size}B"


# -- durations --------------------------------------------------------------------------------

#: A duration as text: units from the largest to the smallest, each at most once (``1h30m``,
#: ``500ms``). The JSON schema's ``$defs/duration`` pattern is ``^`` + this + ``$``
#: (tests/test_units.py checks that they stay the same).
DURATION_SHAPE = r"(?=[0-9])([0-9]+d)?([0-9]+h)?([0-9]+m(?!s))?([0-9]+s)?([0-9]+ms)?"
DURATION_RE = re.compile(DURATION_SHAPE)


def parse_duration(value: Any) -> float | None:
    """Seconds of a duration (``"1h30m"``, ``"500ms"`` or a number of seconds); None if invalid.

    Whole numbers of seconds come back as ``int`` so that JSON output reads ``1200``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not (math.isfinite(value) and value >= 0):
            return None
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if not isinstance(value, str) or not value:
        return None
    match = DURATION_RE.fullmatch(value)
    if match is None:
        return None
    days, hours, minutes, seconds, millis = (
        int(group.rstrip("dhms")) if group else 0 for group in match.groups()
    )
    total_ms = (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000 + millis
    return total_ms // 1000 if total_ms % 1000 == 0 else total_ms / 1000


# -- priorities --------------------------------------------------------------------------------

#: Stage and queue priorities, highest runs first.
PRIORITIES: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def parse_priority(text: str | int) -> int:
    """``low``/``medium``/``high``/``critical`` or an integer; raises ValueError otherwise."""
    if isinstance(text, int):
        return text
    lowered = text.strip().lower()
    if lowered in PRIORITIES:
        return PRIORITIES[lowered]
    try:
        return int(lowered)
    except ValueError:
        raise ValueError(f"unknown priority `{text}` (low, medium, high, critical or an integer)") from None


# -- param values ------------------------------------------------------------------------------

PARAM_TYPES = ("string", "int", "float", "bool", "duration", "list", "map")


def parse_param(raw: str, type_name: str) -> tuple[Any, str | None]:
    """A ``--param`` string read as its declared type: ``(value, None)`` or ``(None, problem)``."""
    text = raw.strip()
    if type_name == "string":
        return raw, None
    if type_name == "int":
        if re.fullmatch(r"[+-]?\d{1,4300}", text):
            return int(text), None
        return None, "expected an integer such as `80`"
    if type_name == "float":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and text.lower() not in ("inf", "nan"):
            return number, None
        return None, "expected a number such as `0.5`"
    if type_name == "bool":
        if text.lower() in ("true", "false"):
            return text.lower() == "true", None
        return None, "expected `true` or `false`"
    if type_name == "duration":
        seconds = parse_duration(text)
        if seconds is None and re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = parse_duration(float(text))
        if seconds is not None:
            return seconds, None
        return None, "expected a duration such as `30s`, `5m` or `1h30m`"
    if type_name in ("list", "map"):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        wanted = list if type_name == "list" else dict
        if isinstance(value, wanted):
            return value, None
        example = '`["a", "b"]`' if type_name == "list" else '`{"key": "value"}`'
        return None, f"expected a JSON {type_name} such as {example}"
    return raw, None


# -- times of the CLI (--at, --since) ----------------------------------------------------------

def parse_at(text: str, *, now: float | None = None) -> float | None:
    """When a run may start: ``+90s``/``+1h30m`` (from now), ``HH:MM[:SS]`` (the next such
    time, local), or an ISO 8601 date-time (local unless it has an offset). None if invalid."""
    moment = time.time() if now is None else now
    value = text.strip()
    if value.startswith("+"):
        seconds = parse_duration(value[1:])
        return None if seconds is None else moment + float(seconds)
    if len(value) in (5, 8) and value[2] == ":":
        try:
            parts = [int(p) for p in value.split(":")]
        except ValueError:
            return None
        if not (0 <= parts[0] < 24 and 0 <= parts[1] < 60 and (len(parts) < 3 or 0 <= parts[2] < 60)):
            return None
        today = datetime.fromtimestamp(moment)
        target = today.replace(hour=parts[0], minute=parts[1], second=parts[2] if len(parts) > 2 else 0,
                               microsecond=0)
        stamp = target.timestamp()
        return stamp if stamp >= moment else stamp + 86400
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.timestamp()


def parse_since(text: str) -> float | None:
    """``24h``, ``7d``, ``90m``, ``1h30m`` or a number of seconds -> seconds; None if invalid."""
    value = text.strip()
    seconds = parse_duration(float(value) if _is_number(value) else value)
    return None if seconds is None or seconds <= 0 else float(seconds)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- did you mean ------------------------------------------------------------------------------

#: Up to this many candidates, every one is compared with difflib (about 20 µs each).
SUGGEST_EXHAUSTIVE = 1000
#: Past that, difflib compares only this many: those most alike by their letter pairs (a
#: 100,000-stage workflow with a few hundred unknown names took minutes).
SUGGEST_SHORTLIST = 64


def suggest(word: str, candidates: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The ``n`` candidates closest to ``word`` (difflib's similarity >= ``cutoff``), best first.

    Among more than :data:`SUGGEST_EXHAUSTIVE` candidates, difflib compares only the
    :data:`SUGGEST_SHORTLIST` whose letter pairs are most like the word's (Dice's
    coefficient, found by set operations that run in C): a bounded cost per wrong name.
    """
    import difflib  # only when a name is wrong: not at every start-up

    names = [str(c) for c in candidates]
    if len(names) <= SUGGEST_EXHAUSTIVE:
        return difflib.get_close_matches(word, names, n=n, cutoff=cutoff)
    global _last_pairs
    last = _last_pairs
    if last[0] != names:
        pairs = list(map(_pairs, names))
        last = _last_pairs = (names, pairs, list(map(len, pairs)), {})
    found = last[3].get((word, n, cutoff))
    if found is None:
        found = last[3][word, n, cutoff] = difflib.get_close_matches(
            word, _shortlist(word, names, last[1], last[2]), n=n, cutoff=cutoff
        )
    return list(found)


#: The last candidates shortlisted among, their letter pairs and the pairs' counts, and the
#: answers given: the wrong names of a check are looked up among the same names again and
#: again (twice each: the message's suggestion and the fix's).
_last_pairs: tuple[list[str], list[frozenset[str]], list[int], dict[tuple[str, int, float], list[str]]] = (
    [], [], [], {}
)


def _shortlist(word: str, names: list[str], pairs: list[frozenset[str]], counts: list[int]) -> list[str]:
    import heapq
    from itertools import repeat
    from operator import add, mul, truediv

    mine = _pairs(word)
    shared = map(len, map(mine.intersection, pairs))
    # Dice's coefficient, 2|A & B| / (|A| + |B|), a candidate at a time, in C.
    dice = list(map(truediv, map(mul, shared, repeat(2)), map(add, counts, repeat(len(mine)))))
    return [names[i] for i in heapq.nlargest(SUGGEST_SHORTLIST, range(len(names)), key=dice.__getitem__)]


def _pairs(text: str) -> frozenset[str]:
    """The letter pairs of ``text`` (``"ab"``, ``"bc"`` of ``"abc"``; the text itself when shorter)."""
    return frozenset([text[i : i + 2] for i in range(max(len(text) - 1, 1))])


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """``did you mean `x`?`` for the closest candidate, or None."""
    close = suggest(word, candidates)
    return f"did you mean `{close[0]}`?" if close else None


def duration_text(seconds: float) -> str:
    """``5400`` -> ``1h30m``, ``0.5`` -> ``500ms``, and fractions kept: ``90.5`` -> ``1m30.5s``."""
    if seconds < 1 or float(seconds).is_integer():
        return format_duration(seconds)
    whole_minutes = int(seconds // 60) * 60
    rest = f"{seconds - whole_minutes:.3f}".rstrip("0").rstrip(".")
    return (format_duration(whole_minutes) if whole_minutes else "") + f"{rest}s"


def param_strings(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Param values given from Python as ``--param`` strings (they are parsed to the declared types)."""
    raw: dict[str, str] = {}
    for name, value in (params or {}).items():
        if isinstance(value, str):
            raw[name] = value
        elif isinstance(value, bool):
            raw[name] = "true" if value else "false"
        elif isinstance(value, int | float):
            raw[name] = repr(value)
        else:
            raw[name] = json.dumps(value)
    return raw


def format_moment(moment: float | None, *, seconds: bool = True) -> str:
    """A point in time as every command and report shows it: local ``2026-11-27 14:03:09``
    (``14:03`` without ``seconds``: cron ticks); ``-`` for None."""
    if moment is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M", time.localtime(moment))


def format_clock(moment: float | None = None) -> str:
    """The local time of day ``14:03:09`` (now by default): the prefix of live lines."""
    return time.strftime("%H:%M:%S", time.localtime(moment))


def value_type(value: Any) -> str:
    """The language's name of a document value's type: ``bool``, ``int``, ``float``,
    ``string``, ``list``, ``map`` or ``null`` (a bool is not an int here, unlike in Python)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "map"
    return "null"
