"""Human-readable durations and sizes, in one place for the renderers, the run view, the CLI and the service.

Two notations on purpose: :func:`format_duration` writes the DSL's own duration syntax
(``1h30m``, ``500ms``) for plans and docs; :func:`format_elapsed` writes a clock-like
elapsed time (``12.3s``, ``2m05s``, ``1h02m``) for runs being watched or listed.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_INT_DIGITS", "duration_text", "format_clock", "format_duration", "format_elapsed",
    "format_moment", "format_seconds", "format_size", "param_strings", "parse_size",
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
