"""``alfredc runs``, ``alfredc show RUN`` and ``alfredc logs RUN STAGE``: looking at recorded runs.

They only read the state directory (``.alfred`` in the current directory, or ``--state
DIR``); they never create one. Unknown runs, stages and attempts are usage errors (exit
status 2) with a "did you mean" when a close name exists.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .._values import did_you_mean, format_elapsed, format_moment
from ..runtime._events import FINAL_RUN_EVENTS
from ..runtime._store import AttemptRecord, RunRecord, StageRecord, StateStore, StoreError, pid_alive
from ._common import print_error
from ._gates import gates_json, gates_text

__all__ = ["logs", "runs", "show"]

EXIT_OK, EXIT_USAGE = 0, 2


class _Problem(Exception):
    """A user error: printed as ``alfredc: error: ...`` (plus a help line), exit status 2."""

    def __init__(self, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.help = help


def _fail(problem: _Problem) -> int:
    print_error(problem.message, problem.help)
    return EXIT_USAGE


def _open_store(state_dir: str | None) -> StateStore | None:
    """The store of ``state_dir`` opened read-only, or None when no run was ever recorded there."""
    try:
        return StateStore.open_readonly(state_dir)
    except StoreError as exc:
        raise _Problem(str(exc)) from exc


def _state_dir_text(state_dir: str | None) -> str:
    return state_dir if state_dir is not None else ".alfred"


def _resolve_run(store: StateStore, ref: str) -> RunRecord:
    run_id = store.resolve_run_id(ref)
    record = None if run_id is None else store.run(run_id)
    if record is not None:
        return record
    ids = list(store.iter_run_ids())
    if ref == "last":
        raise _Problem(f"no runs recorded in {store.state_dir}")
    prefixed = [i for i in ids if i.startswith(ref)]
    if len(prefixed) > 1:
        shown = ", ".join(f"`{i}`" for i in prefixed[:5])
        raise _Problem(f"run id `{ref}` is ambiguous", help=f"it starts {len(prefixed)} runs: {shown}")
    hint = did_you_mean(ref, ids) or (f"the latest run is `{ids[-1]}` (or say `last`)" if ids else None)
    raise _Problem(f"no run `{ref}` in {store.state_dir}", help=hint)


def _run_state(record: RunRecord) -> str:
    """The recorded state, except that a ``running`` or ``paused`` run whose process is gone is ``stale``."""
    if (
        record.state in ("running", "paused")
        and record.pid is not None
        and record.host == socket.gethostname()
        and not pid_alive(record.pid)
    ):
        return "stale"
    return record.state


def _run_duration(record: RunRecord) -> float | None:
    if record.finished is not None:
        return record.finished - record.started
    if record.state == "running":
        return time.time() - record.started
    return None


def _short_path(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = []
    for row in [list(headers), *rows]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _state_option(function: Any) -> Any:
    return click.option(
        "--state", "state_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=str),
        help="The state directory to read (default: .alfred in the current directory).",
    )(function)


def _format_option(function: Any) -> Any:
    return click.option(
        "--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
        help="Output format.",
    )(function)


# -- alfredc runs ---------------------------------------------------------------------


def _run_json(record: RunRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "workflow": record.workflow,
        "state": _run_state(record),
        "source": record.source,
        "started": record.started,
        "finished": record.finished,
        "duration_s": None if record.finished is None else round(record.finished - record.started, 6),
    }


@click.command()
@_state_option
@_format_option
@click.option("--workflow", "-w", metavar="NAME", help="Only runs of this workflow.")
@click.option(
    "--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="At most N runs."
)
def runs(state_dir: str | None, fmt: str, workflow: str | None, limit: int) -> int:
    """List recorded runs, most recent first: id, workflow, state, start time and duration."""
    try:
        store = _open_store(state_dir)
        records: list[RunRecord] = []
        if store is not None:
            with store:
                records = store.runs(limit=limit, workflow=workflow)
    except _Problem as problem:
        return _fail(problem)
    if fmt == "json":
        click.echo(json.dumps({"runs": [_run_json(r) for r in records]}, indent=2))
        return EXIT_OK
    if not records:
        click.echo(f"no runs recorded in {_state_dir_text(state_dir)}")
        return EXIT_OK
    rows = [
        [r.id, r.workflow, _run_state(r), format_moment(r.started), format_elapsed(_run_duration(r))]
        for r in records
    ]
    click.echo(_table(["RUN", "WORKFLOW", "STATE", "STARTED", "DURATION"], rows))
    return EXIT_OK


# -- alfredc show ---------------------------------------------------------------------


def _last_attempts(attempts: Sequence[AttemptRecord]) -> dict[str, AttemptRecord]:
    last: dict[str, AttemptRecord] = {}
    for attempt in attempts:
        if attempt.stage not in last or attempt.n >= last[attempt.stage].n:
            last[attempt.stage] = attempt
    return last


def _stage_json(stage: StageRecord, attempts: Sequence[AttemptRecord]) -> dict[str, Any]:
    mine = [a for a in attempts if a.stage == stage.name]
    return {
        "name": stage.name,
        "state": stage.state,
        "agent": stage.agent,
        "attempts": stage.attempts,
        "started": stage.started,
        "finished": stage.finished,
        "duration_s": None
        if stage.started is None or stage.finished is None
        else round(stage.finished - stage.started, 6),
        "exit_code": mine[-1].exit_code if mine else None,
        "error": stage.error,
        "outputs": dict(stage.outputs),
        "log": mine[-1].log_path if mine else None,
        "attempt_details": [
            {
                "n": a.n,
                "agent": a.agent,
                "started": a.started,
                "finished": a.finished,
                "exit_code": a.exit_code,
                "error": a.error,
                "log": a.log_path,
                "log_dropped": a.log_dropped,
                "worker": a.worker,
            }
            for a in mine
        ],
    }


@click.command()
@click.argument("run_id", metavar="RUN_ID|last", default="last")
@_state_option
@_format_option
def show(run_id: str, state_dir: str | None, fmt: str) -> int:
    """Show one run (default: the last): each stage's state, attempts, duration, exit code
    and log file."""
    try:
        store = _open_store(state_dir)
        if store is None:
            raise _Problem(f"no runs recorded in {_state_dir_text(state_dir)}")
        with store:
            record = _resolve_run(store, run_id)
            stages = store.stages(record.id)
            attempts = sorted(store.attempts(record.id), key=lambda a: (a.stage, a.n))
            # The reason of the last execution's end (a resumed run that then succeeded has none).
            final = next((e for e in reversed(store.events(record.id)) if e.type in FINAL_RUN_EVENTS), None)
            failure = final.data.get("reason") if final is not None and final.type == "run_failed" else None
            gates = gates_json(store.state_dir, record, stages)
    except _Problem as problem:
        return _fail(problem)
    if fmt == "json":
        data = _run_json(record)
        data["params"] = dict(record.params)
        data["stages"] = [_stage_json(s, attempts) for s in stages]
        data.update(gates)
        if failure:
            data["reason"] = failure
        click.echo(json.dumps(data, indent=2, default=str))
        return EXIT_OK
    last = _last_attempts(attempts)
    head = [
        f"run {record.id}  workflow {record.workflow}  {_run_state(record)}",
        f"source    {record.source}",
        f"started   {format_moment(record.started)}  duration {format_elapsed(_run_duration(record))}",
    ]
    if record.params:
        shown = " ".join(f"{k}={_param_text(v)}" for k, v in record.params.items())
        head.append(f"params    {shown}")
    rows = []
    for stage in stages:
        attempt = last.get(stage.name)
        exit_code = attempt.exit_code if attempt is not None else None
        duration = None if stage.started is None or stage.finished is None else stage.finished - stage.started
        rows.append([
            stage.name,
            stage.state,
            str(stage.attempts),
            format_elapsed(duration),
            "-" if exit_code is None else str(exit_code),
            _short_path(attempt.log_path if attempt is not None else None) or "-",
            "(approval)" if stage.name in gates.get("approvals", {})
            else _attempt_agents([a for a in attempts if a.stage == stage.name], stage.agent),
        ])
    body = _table(["STAGE", "STATE", "ATTEMPTS", "DURATION", "EXIT", "LOG", "AGENT"], rows)
    errors = [f"  {s.name}: {s.error}" for s in stages if s.error and s.state != "succeeded"]
    text = "\n".join(head) + "\n\n" + body
    if failure:
        errors.insert(0, f"  run: {failure}")
    if errors:
        text += "\n\nerrors:\n" + "\n".join(errors)
    text += gates_text(gates, record.id)
    truncated = [
        f"  {a.stage} attempt {a.n}: {a.log_dropped} bytes of output past max_log not kept"
        for a in attempts
        if a.log_dropped
    ]
    if truncated:
        text += "\n\ntruncated logs:\n" + "\n".join(truncated)
    click.echo(text)
    return EXIT_OK


def _attempt_agents(attempts: Sequence[AttemptRecord], fallback: str | None) -> str:
    """The agent of each attempt in order (``w1,w2``: a retry moved), or one name when it never moved."""
    # On a cluster (--cluster) an attempt's lane is its worker: `sh@tcp://10.0.0.5:40123`.
    agents = [f"{a.agent or '?'}@{a.worker}" if a.worker else a.agent or "?" for a in attempts]
    if not agents:
        return fallback or "-"
    return agents[0] if len(set(agents)) == 1 else ",".join(agents)


def _param_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


# -- alfredc logs ---------------------------------------------------------------------


@click.command()
@click.argument("run_id", metavar="RUN_ID|last")
@click.argument("stage")
@click.option(
    "--attempt", "-a", type=click.IntRange(min=1), metavar="N", help="Attempt N (default: the last)."
)
@_state_option
def logs(run_id: str, stage: str, attempt: int | None, state_dir: str | None) -> int:
    """Print the captured output (stdout and stderr) of STAGE in run RUN_ID."""
    try:
        store = _open_store(state_dir)
        if store is None:
            raise _Problem(f"no runs recorded in {_state_dir_text(state_dir)}")
        with store:
            record = _resolve_run(store, run_id)
            names = [s.name for s in store.stages(record.id)]
            if stage not in names:
                raise _Problem(
                    f"run {record.id} has no stage `{stage}`",
                    help=did_you_mean(stage, names) or f"its stages: {', '.join(names)}",
                )
            attempts = sorted(store.attempts(record.id, stage), key=lambda a: a.n)
            log_dir = store.run_dir(record.id)
    except _Problem as problem:
        return _fail(problem)
    if not attempts:
        return _fail(_Problem(f"stage `{stage}` of run {record.id} never ran, so it has no output"))
    chosen = attempts[-1] if attempt is None else next((a for a in attempts if a.n == attempt), None)
    if chosen is None:
        numbers = ", ".join(str(a.n) for a in attempts)
        message = f"stage `{stage}` of run {record.id} has no attempt {attempt}"
        return _fail(_Problem(message, f"attempts: {numbers}"))
    path = Path(chosen.log_path) if chosen.log_path else log_dir / f"{stage}.{chosen.n}.log"
    try:
        handle = path.open("rb")
    except FileNotFoundError:  # the log file is created at the first byte of output
        return EXIT_OK
    except OSError as exc:
        return _fail(_Problem(f"cannot read {path}: {exc.strerror or exc}"))
    out = sys.stdout.buffer
    with handle:
        try:
            # In chunks: a log of any size costs a buffer of memory, not its size.
            shutil.copyfileobj(handle, out, 1 << 16)
        except BrokenPipeError:
            raise
        except OSError as exc:
            return _fail(_Problem(f"cannot read {path}: {exc.strerror or exc}"))
    out.flush()
    return EXIT_OK
