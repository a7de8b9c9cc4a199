"""Small formatting helpers shared by the docs and report renderers."""

from __future__ import annotations

import math

__all__ = ["format_duration", "format_seconds"]

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
