"""What a person sees while a run runs: a live view, plain event lines, or only the summary.

:func:`open_view` returns an event subscriber for the run's :class:`EventBus`:

- ``live`` (stdout is a terminal): a progress bar (done/total), one line per running stage
  with its agent, attempt and elapsed time, a row per approval stage waiting for a decision
  (who may decide and the time left, with the command that approves below), a line per
  finished stage, then the summary;
- ``plain`` (a pipe or a file): one line per event, ``12:00:01 stage_started build (agent
  worker, attempt 1)``, then the summary;
- ``quiet``: only failures and the final summary line.

Colour is used only on a terminal, and never when ``NO_COLOR`` is set.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TextIO

from .._values import format_clock, format_elapsed
from ..compiler._budget import format_amount
from ..compiler._plan import Plan
from ._events import (
    APPROVAL_DECIDED,
    APPROVAL_REQUESTED,
    BUDGET_EXCEEDED,
    FINAL_RUN_EVENTS,
    RUN_COMPLETED,
    RUN_FAILED,
    RUN_INTERRUPTED,
    RUN_RESUMED,
    RUN_STARTED,
    STAGE_CANCELLED,
    STAGE_EXPANDED,
    STAGE_FAILED,
    STAGE_OUTPUT,
    STAGE_READY,
    STAGE_RETRYING,
    STAGE_SKIPPED,
    STAGE_STARTED,
    STAGE_SUCCEEDED,
    STAGE_UP_TO_DATE,
    STAGE_UPSTREAM_FAILED,
    Event,
    EventBus,
)

__all__ = [
    "ViewMode",
    "attach",
    "choose_mode",
    "describe_event",
    "open_view",
    "summary_line",
]

ViewMode = Literal["live", "plain", "quiet"]

#: Final stage events and the state each one leaves the stage in.
_FINAL_STAGE_EVENTS = {
    STAGE_SUCCEEDED: "succeeded",
    STAGE_FAILED: "failed",
    STAGE_SKIPPED: "skipped",
    STAGE_UP_TO_DATE: "up_to_date",
    STAGE_UPSTREAM_FAILED: "upstream_failed",
    STAGE_CANCELLED: "cancelled",
}
#: The order states are listed in a summary.
_STATE_ORDER = (
    "succeeded", "up_to_date", "failed", "skipped", "upstream_failed", "cancelled", "pending", "running",
)
#: Events too frequent or too uninformative for the plain view.
_PLAIN_HIDDEN = frozenset({STAGE_READY, STAGE_OUTPUT})


def choose_mode(stream: TextIO, *, quiet: bool = False) -> ViewMode:
    """``quiet`` if asked, ``live`` on a capable terminal, else ``plain``."""
    if quiet:
        return "quiet"
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty() and os.environ.get("TERM", "") != "dumb":
        return "live"
    return "plain"


def _short_path(path: str) -> str:
    """``path`` relative to the working directory when it lies inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def _clock(timestamp: float) -> str:
    return format_clock(timestamp)


def _counts_text(counts: Mapping[str, Any]) -> str:
    ordered = [s for s in _STATE_ORDER if counts.get(s)] + sorted(
        s for s in counts if s not in _STATE_ORDER and counts.get(s)
    )
    return ", ".join(f"{counts[s]} {s}" for s in ordered) or "no stages"


def _spend_text(spend: Any) -> str:
    """``spent usd 4.20 of 5, tokens 1000`` from a final event's ``spend`` (spent, budget)."""
    if not isinstance(spend, Mapping):
        return ""
    totals, budget = spend.get("spent") or {}, spend.get("budget") or {}
    parts = []
    for unit in ("usd", "tokens"):
        if unit in totals or unit in budget:
            part = format_amount(unit, float(totals.get(unit, 0.0)))
            parts.append(part + (f" of {budget[unit]:g}" if unit in budget else ""))
    return "spent " + ", ".join(parts) if parts else ""


def describe_event(event: Event, *, workflow: str = "") -> str:
    """The text after the time in a plain-view line: ``stage_started build (agent worker, attempt 1)``.

    ``workflow`` names the run in run events whose data does not.
    """
    data = event.data
    kind = event.type
    details: list[str] = []
    subject = event.stage or ""
    if kind in (RUN_STARTED, RUN_RESUMED):
        subject = str(data.get("workflow") or workflow)
        details.append(f"run {event.run_id}")
        stages = data.get("stages")
        if isinstance(stages, list | tuple):
            details.append(f"{len(stages)} stage" + ("" if len(stages) == 1 else "s"))
        reused = data.get("reused")
        if isinstance(reused, list | tuple) and reused:
            details.append(f"{len(reused)} reused")
    elif kind == STAGE_EXPANDED:
        count = data.get("count")
        if isinstance(count, int):
            details.append(f"{count} instance" + ("" if count == 1 else "s"))
        if data.get("source"):
            details.append(f"over {data['source']}")
    elif kind == STAGE_STARTED:
        if data.get("agent"):
            details.append(f"agent {data['agent']}")
        if event.attempt is not None:
            details.append(f"attempt {event.attempt}")
    elif kind == STAGE_RETRYING:
        failed = f"attempt {event.attempt} failed" if event.attempt is not None else "attempt failed"
        details.append(f"{failed}: {data['error']}" if data.get("error") else failed)
        if data.get("delay_s") is not None:
            details.append(f"retry in {format_elapsed(float(data['delay_s']))}")
    elif kind == STAGE_SUCCEEDED:
        if data.get("duration_s") is not None:
            details.append(format_elapsed(float(data["duration_s"])))
    elif kind == STAGE_FAILED:
        if event.attempt is not None:
            details.append(f"attempt {event.attempt}")
        if data.get("error"):
            details.append(str(data["error"]))
        if data.get("duration_s") is not None:
            details.append(format_elapsed(float(data["duration_s"])))
        if data.get("log"):
            details.append(f"log {data['log']}")
    elif kind in (STAGE_SKIPPED, STAGE_UP_TO_DATE):
        if data.get("reason"):
            details.append(str(data["reason"]))
    elif kind == STAGE_UPSTREAM_FAILED:
        if data.get("upstream"):
            details.append(f"upstream {data['upstream']} failed")
    elif kind == STAGE_CANCELLED:
        if data.get("reason"):
            details.append(str(data["reason"]))
    elif kind in FINAL_RUN_EVENTS:
        subject = str(data.get("workflow") or workflow or event.run_id)
        counts = data.get("counts")
        took = ""
        if data.get("duration_s") is not None:
            took = f" in {format_elapsed(float(data['duration_s']))}"
        if isinstance(counts, Mapping):
            details.append(_counts_text(counts) + took)
        elif took:
            details.append(took.strip())
        if data.get("signal"):
            details.append(f"signal {data['signal']}")
        if data.get("reason"):
            details.append(str(data["reason"]))
        spend = _spend_text(data.get("spend"))
        if spend:
            details.append(spend)
    elif kind == APPROVAL_REQUESTED and data.get("waiting"):
        details.append(str(data["waiting"]))
    elif kind == APPROVAL_DECIDED:
        decided = f"{data.get('decision')} by {data.get('by')}"
        details.append(f"{decided}: {data['comment']}" if data.get("comment") else decided)
    elif kind == BUDGET_EXCEEDED and data.get("reason"):
        details.append(str(data["reason"]))
    elif kind == STAGE_OUTPUT and data.get("line") is not None:
        details.append(str(data["line"]))
    text = f"{kind} {subject}".rstrip()
    return f"{text} ({', '.join(details)})" if details else text


def summary_line(
    *, run_id: str, workflow: str, state: str, counts: Mapping[str, int], duration_s: float | None
) -> str:
    """``run 20240101-120000-abc123 (demo) succeeded: 7 succeeded, 1 skipped in 3.2s``."""
    took = "" if duration_s is None else f" in {format_elapsed(duration_s)}"
    return f"run {run_id} ({workflow}) {state}: {_counts_text(counts)}{took}"


@dataclass(slots=True)
class _Running:
    """A stage being run, as the view shows it."""

    agent: str
    attempt: int
    since: float  # time.monotonic() of the start


@dataclass(slots=True)
class _Waiting:
    """An approval stage waiting for a decision (from its ``approval_requested`` event)."""

    by: str               # "lead or carol"
    deadline: float | None  # epoch seconds
    command: str          # alfredc approve RUN STAGE

    def text(self, now: float) -> str:
        """``waiting for approval by lead, 23h59m left``."""
        left = "" if self.deadline is None else f", {format_elapsed(max(int(self.deadline - now), 0))} left"
        return f"waiting for approval by {self.by}{left}"


@dataclass(slots=True)
class _RunState:
    """What the views know about the run, updated from events."""

    workflow: str
    total: int
    run_id: str = ""
    started: float | None = None
    states: dict[str, str] = field(default_factory=dict)
    running: dict[str, _Running] = field(default_factory=dict)
    waiting: dict[str, _Waiting] = field(default_factory=dict)  # approval stages, in request order
    logs: dict[str, str] = field(default_factory=dict)  # stage -> log of its latest attempt
    final: Event | None = None

    @property
    def done(self) -> int:
        return sum(1 for state in self.states.values() if state in _FINAL_STATES)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for state in self.states.values():
            counts[state] = counts.get(state, 0) + 1
        return counts

    def apply(self, event: Event) -> None:
        self.run_id = event.run_id
        if event.type in (RUN_STARTED, RUN_RESUMED):
            self.started = event.time
            stages = event.data.get("stages")
            if isinstance(stages, list | tuple) and stages:
                self.total = len(stages)
                for name in stages:
                    self.states.setdefault(str(name), "pending")
            reused = event.data.get("reused")
            if isinstance(reused, list | tuple):
                for name in reused:
                    self.states[str(name)] = "succeeded"
        elif event.stage is not None:
            if event.type == STAGE_STARTED:
                self.states[event.stage] = "running"
                if event.data.get("log"):
                    self.logs[event.stage] = str(event.data["log"])
                self.running[event.stage] = _Running(
                    agent=str(event.data.get("agent") or "?"),
                    attempt=event.attempt or 1,
                    since=time.monotonic(),
                )
            elif event.type == APPROVAL_REQUESTED:
                by = event.data.get("by")
                deadline = event.data.get("deadline")
                self.waiting[event.stage] = _Waiting(
                    by=" or ".join(str(b) for b in by) if isinstance(by, list | tuple) and by else "?",
                    deadline=float(deadline) if isinstance(deadline, int | float) else None,
                    command=str(event.data.get("command") or f"alfredc approve {event.run_id} {event.stage}"),
                )
            elif event.type == APPROVAL_DECIDED:
                self.waiting.pop(event.stage, None)
            elif event.type in _FINAL_STAGE_EVENTS:
                self.states[event.stage] = _FINAL_STAGE_EVENTS[event.type]
                self.running.pop(event.stage, None)
                self.waiting.pop(event.stage, None)
        if event.type in FINAL_RUN_EVENTS:
            self.final = event

    def with_log(self, event: Event) -> Event:
        """A failure event that also names the log of the failed attempt (the runtime sends it earlier)."""
        if event.type != STAGE_FAILED or event.data.get("log") or event.stage not in self.logs:
            return event
        data = dict(event.data)
        data["log"] = _short_path(self.logs[event.stage or ""])
        return replace(event, data=data)

    def summary(self) -> str:
        final = self.final
        state = "unfinished"
        duration: float | None = None
        counts: Mapping[str, Any] = self.counts()
        if final is not None:
            state = str(final.data.get("state") or _RUN_STATE_OF[final.type])
            if final.data.get("duration_s") is not None:
                duration = float(final.data["duration_s"])
            elif self.started is not None:
                duration = final.time - self.started
            given = final.data.get("counts")
            if isinstance(given, Mapping) and given:
                counts = given
        return summary_line(
            run_id=self.run_id or "?", workflow=self.workflow, state=state, counts=counts, duration_s=duration
        )


_FINAL_STATES = frozenset(_FINAL_STAGE_EVENTS.values())
_RUN_STATE_OF = {RUN_COMPLETED: "succeeded", RUN_FAILED: "failed", RUN_INTERRUPTED: "interrupted"}


def _wants_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(callable(isatty) and isatty())


@contextmanager
def open_view(
    plan: Plan, *, mode: ViewMode, stream: TextIO, colour: bool | None = None
) -> Iterator[Callable[[Event], None]]:
    """Show a run on ``stream``; yields the handler to subscribe to the run's event bus.

    The final summary line is written when the run's last event arrives (or, if the
    run never got that far, when the context exits). ``colour``: ``None`` decides from
    the stream (a terminal, and ``NO_COLOR`` unset).
    """
    state = _RunState(workflow=plan.workflow, total=len(plan.stages))
    for stage in plan.stages:
        state.states[stage.name] = "pending"
    use_colour = _wants_colour(stream) if colour is None else colour and not os.environ.get("NO_COLOR")
    if mode == "live":
        with _live_view(state, stream, use_colour) as handler:
            yield handler
        return
    printed_summary = False

    def write(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    def handle(event: Event) -> None:
        nonlocal printed_summary
        state.apply(event)
        event = state.with_log(event)
        if mode == "plain" and event.type not in _PLAIN_HIDDEN:
            write(f"{_clock(event.time)} {describe_event(event, workflow=state.workflow)}")
        elif mode == "quiet" and event.type == STAGE_FAILED:
            write(f"error: {describe_event(event, workflow=state.workflow)}")
        if event.type in FINAL_RUN_EVENTS and not printed_summary:
            printed_summary = True
            write(state.summary())

    try:
        yield handle
    finally:
        if not printed_summary and state.run_id:
            write(state.summary())


# -- the live view (rich) ---------------------------------------------------------------


_STATE_STYLE = {
    "succeeded": ("✔", "green"),
    "failed": ("✘", "bold red"),
    "skipped": ("↷", "dim"),
    "up_to_date": ("≡", "green"),
    "upstream_failed": ("⊘", "yellow"),
    "cancelled": ("■", "yellow"),
}


_LIVE_VERB = {
    STAGE_SUCCEEDED: "succeeded",
    STAGE_FAILED: "failed",
    STAGE_SKIPPED: "skipped",
    STAGE_UP_TO_DATE: "up to date",
    STAGE_UPSTREAM_FAILED: "not run",
    STAGE_CANCELLED: "cancelled",
    STAGE_RETRYING: "will retry",
    BUDGET_EXCEEDED: "not started",
}


#: Events the live view prints as lines besides the final ones of stages.
_NOTICES = frozenset({STAGE_RETRYING, APPROVAL_REQUESTED, APPROVAL_DECIDED, BUDGET_EXCEEDED})


@contextmanager
def _live_view(state: _RunState, stream: TextIO, colour: bool) -> Iterator[Callable[[Event], None]]:
    # rich is imported here only: `alfredc check` and the plain view never pay for it.
    from rich.console import Console, Group, RenderableType
    from rich.live import Live
    from rich.progress_bar import ProgressBar
    from rich.spinner import Spinner
    from rich.table import Table
    from rich.text import Text

    console = Console(
        file=stream,
        force_terminal=True,
        color_system="auto" if colour else None,
        no_color=not colour,
        highlight=False,
    )
    # Handlers run on the Trio thread, rich refreshes from its own: one lock for both.
    lock = threading.Lock()
    spinner = Spinner("dots", style="cyan")

    class _Display:
        def __rich__(self) -> RenderableType:
            with lock:
                done, total = state.done, max(state.total, 1)
                running = sorted(state.running.items(), key=lambda item: item[1].since)
                waiting = list(state.waiting.items())
                now = time.monotonic()
            header = Table.grid(padding=(0, 1))
            counters = [Text(f"{len(running)} running", style="cyan")]
            if waiting:
                counters.append(Text(f"{len(waiting)} waiting for approval", style="magenta"))
            header.add_row(
                ProgressBar(total=total, completed=done, width=40),
                Text(f"{done}/{state.total} stages", style="bold"),
                *counters,
            )
            rows = Table.grid(padding=(0, 2))
            for name, info in running:
                rows.add_row(
                    spinner.render(now),
                    Text(name, style="bold"),
                    Text(f"agent {info.agent}", style="dim"),
                    Text(f"attempt {info.attempt}"),
                    Text(format_elapsed(now - info.since), style="cyan"),
                )
            if not waiting:
                return Group(header, rows)
            # A person's decision is awaited: say who, how long is left, and (on a line of its
            # own, so a narrow terminal does not cut it) the command that gives it.
            waits = Table.grid(padding=(0, 2))
            wall = time.time()
            for name, wait in waiting:
                waits.add_row(Text("⏸", style="magenta"), Text(name, style="bold"),
                              Text(wait.text(wall), style="magenta"))
                waits.add_row(Text(""), Text(""), Text(f"approve: {wait.command}", style="dim"))
            return Group(header, rows, waits)

    def finished_line(event: Event) -> Text:
        if event.type in (APPROVAL_REQUESTED, APPROVAL_DECIDED) and event.stage:
            return approval_line(event)
        symbol, style = _STATE_STYLE.get(_FINAL_STAGE_EVENTS.get(event.type, ""), ("•", ""))
        line = Text(f"{symbol} ", style=style)
        text = describe_event(event, workflow=state.workflow)
        prefix = f"{event.type} {event.stage}"
        if event.stage and text.startswith(prefix):  # "build succeeded (2.1s)" reads better here
            text = f"{event.stage} {_LIVE_VERB.get(event.type, event.type)}{text[len(prefix):]}"
        line.append(text)
        return line

    def approval_line(event: Event) -> Text:
        """``⏸ gate waiting for approval by lead (alfredc approve R gate)``, then
        ``✔ gate approved by alice: ship it``."""
        data = event.data
        if event.type == APPROVAL_REQUESTED:
            line = Text("⏸ ", style="magenta")
            line.append(f"{event.stage} {data.get('waiting') or 'waiting for approval'}")
            return line
        approved = data.get("decision") == "approved"
        symbol, style = _STATE_STYLE["succeeded" if approved else "failed"]
        line = Text(f"{symbol} ", style=style)
        line.append(f"{event.stage} {data.get('decision')} by {data.get('by')}")
        if data.get("comment"):
            line.append(f": {data['comment']}")
        return line

    live = Live(_Display(), console=console, refresh_per_second=8, transient=True, redirect_stdout=False)
    printed_summary = False

    def handle(event: Event) -> None:
        nonlocal printed_summary
        with lock:
            state.apply(event)
        event = state.with_log(event)
        if event.type in _FINAL_STAGE_EVENTS or event.type in _NOTICES:
            live.console.print(finished_line(event))
        if event.type in FINAL_RUN_EVENTS and not printed_summary:
            printed_summary = True
            live.stop()
            ok = event.type == RUN_COMPLETED
            console.print(Text(state.summary(), style="bold green" if ok else "bold red"))

    live.start()
    try:
        yield handle
    finally:
        live.stop()  # idempotent; restores the cursor even when the run raised
        if not printed_summary and state.run_id:
            console.print(Text(state.summary(), style="bold"))


def attach(
    bus: EventBus, plan: Plan, *, quiet: bool, colour: bool, stream: TextIO | None = None
) -> Callable[[object], None]:
    """Subscribe the view of ``plan`` to ``bus`` (what ``alfredc run`` calls).

    The mode follows :func:`choose_mode` on ``stream`` (default ``sys.stdout``). Returns
    the function to call once when the run is over (with its result, or None if it
    raised): it ends the live display and makes sure the summary line was written.
    """
    out = stream if stream is not None else sys.stdout
    stack = ExitStack()
    mode = choose_mode(out, quiet=quiet)
    handler = stack.enter_context(open_view(plan, mode=mode, stream=out, colour=colour))
    # No view shows `stage_ready` (one per stage): the run need not build them for it.
    unsubscribe = bus.subscribe(handler, ignore=(STAGE_READY,))

    def finish(result: object = None) -> None:
        unsubscribe()
        stack.close()

    return finish
