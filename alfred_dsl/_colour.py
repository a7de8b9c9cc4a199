"""Whether output gets colour: one rule for every command and printer.

Its own small module so that a command that only asks (``alfredc run`` deciding for its
view) does not load the diagnostics printer.
"""

from __future__ import annotations

import os
import sys
from typing import IO

__all__ = ["should_colour"]


def should_colour(stream: IO[str] | None = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    target = stream if stream is not None else sys.stdout
    try:
        return target.isatty()
    except (AttributeError, ValueError):
        return False
