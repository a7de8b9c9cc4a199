"""Cron schedules: one meaning for ``alfredc check`` (A310) and the service worker.

croniter is the only cron grammar: an expression is valid when croniter parses it and it
fires at least once. This module adds the language's rule (five fields, or an ``@`` macro)
and finds the field and item at fault, by asking croniter about each one alone. croniter is
imported only when a schedule is met, so ``alfredc check`` of a file without one does not
pay for it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

__all__ = ["cron_problem", "latest_tick"]

_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_ALLOWED = ("0-59", "0-23", "1-31", "1-12 or jan-dec", "0-7 or sun-sat")
_ANY = ("*",) * 5
#: Where "does it ever fire" is asked from: fixed, so that a check gives the same answer every day.
_SINCE = datetime(2000, 1, 1)


def _croniter(expression: str, start: datetime) -> Any:
    from croniter import croniter

    return croniter(expression, start)


def _refusal(expression: str) -> str | None:
    """croniter's reason for refusing ``expression`` (syntax, not whether it fires), or None."""
    from croniter import CroniterError

    try:
        _croniter(expression, _SINCE)
    except (CroniterError, ValueError, KeyError) as exc:
        return str(exc) or type(exc).__name__
    return None


def _item_problem(index: int, item: str) -> str | None:
    """Why ``item`` alone, in field ``index`` of an otherwise ``* * * * *`` expression, is refused."""
    if not item:
        return "an empty item"
    probe = list(_ANY)
    probe[index] = item
    reason = _refusal(" ".join(probe))
    if reason is None:
        return None
    what, allowed = _FIELDS[index], _ALLOWED[index]
    if "step" in reason:
        return f"the step in `{item}` of the {what} field must be a positive integer"
    message = f"`{item}` is not a valid {what} ({allowed})"
    if index == 4 and item[-1:] in ("L", "l"):
        probe[index] = "L" + item[:-1]
        if _refusal(" ".join(probe)) is None:
            message += f"; the last one of the month is written `L{item[:-1]}`"
    return message


def cron_problem(expression: str) -> tuple[str, int, int] | None:
    """Why ``expression`` is not a schedule, with the character range at fault; None if it is one."""
    from croniter import CroniterError

    stripped = expression.strip()
    whole = (0, len(expression))
    if stripped.startswith("@"):
        if _refusal(stripped) is not None:
            return (f"unknown macro `{stripped}` (known: @yearly, @annually, @monthly, @weekly, "
                    "@daily, @midnight, @hourly)", *whole)
    else:
        fields = [(m.group(), m.start()) for m in re.finditer(r"\S+", expression)]
        if len(fields) != 5:
            return (
                f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
                f"this one has {len(fields)}",
                *whole,
            )
        reason = _refusal(expression)
        if reason is not None:
            for index, (text, start) in enumerate(fields):
                offset = start
                for item in text.split(","):
                    problem = _item_problem(index, item)
                    if problem is not None:
                        return problem, offset, offset + max(len(item), 1)
                    offset += len(item) + 1
            return reason, *whole  # each item is fine alone, not together
    try:
        _croniter(expression, _SINCE).get_next(datetime)
    except (CroniterError, ValueError, KeyError):
        return "the schedule never fires: no date matches every field", *whole
    return None


def latest_tick(cron: str, now: float) -> float:
    """The latest tick of ``cron`` at or before ``now``, in local time (as cron does).

    The worker asks :func:`cron_problem` once per schedule before (``schedules_of``), as
    ``alfredc check`` does; an expression croniter refuses raises ValueError here.
    """
    import math

    from croniter import CroniterError

    # Ticks are whole minutes: asking for the tick before floor(now) + 1 includes `now` itself.
    start = datetime.fromtimestamp(math.floor(now) + 1).astimezone()
    try:
        previous: datetime = _croniter(cron, start).get_prev(datetime)
    except (CroniterError, KeyError) as exc:
        raise ValueError(str(exc)) from exc
    return previous.timestamp()
