"""Human-readable durations, in one place for the renderers, the run view, the CLI and the service.

Two notations on purpose: :func:`format_duration` writes the DSL's own duration syntax
(``1h30m``, ``500ms``) for plans and docs; :func:`format_elapsed` writes a clock-like
elapsed time (``12.3s``, ``2m05s``, ``1h02m``) for runs being watched or listed.
"""

from __future__ import annotations

import math

__all__ = ["MAX_INT_DIGITS", "format_duration", "format_elapsed", "format_seconds"]

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
