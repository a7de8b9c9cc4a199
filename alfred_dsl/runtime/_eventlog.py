"""``--events FILE``: every run event as one JSON object per line, written as it happens.

Each line is :meth:`Event.to_json` (``seq``, ``type``, ``run_id``, ``time``, ``stage``,
``attempt``, ``data``) and is flushed at once, so ``tail -f`` and other processes see
events live. Secret values are masked (``***``) again here: the runtime masks before
emitting, and a second pass costs little and protects against a handler upstream that
forgot.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from .._diagnostics import AlfredError
from ._events import Event, EventBus
from ._resolve import Masker

__all__ = ["EventLogError", "attach", "open_event_log", "read_event_log"]


class EventLogError(AlfredError):
    """The events file cannot be opened for writing (``alfredc run`` exits with status 2)."""


@contextmanager
def open_event_log(
    path: str | os.PathLike[str], *, secrets: Mapping[str, str] | None = None
) -> Iterator[Callable[[Event], None]]:
    """Write events to ``path`` (truncated first); yields the handler to subscribe.

    ``secrets``: name -> value of the run's secrets; their values never reach the file.
    Raises :class:`EventLogError` if the file cannot be opened.
    """
    target = Path(path)
    try:
        if target.parent != Path(""):
            target.parent.mkdir(parents=True, exist_ok=True)
        handle = open(target, "w", encoding="utf-8")  # noqa: SIM115 - closed in finally below
    except OSError as exc:
        raise EventLogError(f"cannot write events to {target}: {exc.strerror or exc}") from exc
    masker = Masker(secrets)

    def write(event: Event) -> None:
        record: dict[str, Any] = event.to_json()
        line = json.dumps(masker.data(record), ensure_ascii=False, default=str, separators=(",", ":"))
        handle.write(line + "\n")
        handle.flush()

    try:
        yield write
    finally:
        handle.close()


def read_event_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The events of a file written by :func:`open_event_log` (for tests and tools)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def attach(
    bus: EventBus, path: str | os.PathLike[str], *, secrets: Mapping[str, str] | None = None
) -> Callable[[], None]:
    """Subscribe an events file to ``bus`` (what ``alfredc run --events FILE`` calls).

    Returns the function that closes the file. Raises :class:`EventLogError`.
    """
    stack = ExitStack()
    handler = stack.enter_context(open_event_log(path, secrets=secrets))
    unsubscribe = bus.subscribe(handler)

    def close() -> None:
        unsubscribe()
        stack.close()

    return close
