"""alfred as a service: ``submit``, ``worker``, ``status``, ``cancel``, ``pause``, ``resume``, ``metrics``.

All of them work on the state directory (``.alfred`` by default, ``--state DIR``), so a
worker in one terminal is controlled from another. Exit statuses: 0 done; 1 the file has
errors, or the command was refused (the run already finished); 2 usage error, unknown
run, unusable state directory; 130 a worker stopped by Ctrl-C (its runs stay resumable).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from .._values import format_clock, format_moment, parse_at, parse_since, suggest
from ._common import cache_option, cache_wanted, duration_seconds, print_error

__all__ = ["cancel", "metrics", "pause", "resume", "status", "submit", "worker"]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_state_option = click.option(
    "--state", "state_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=str),
    default=None, help="The state directory (default: .alfred in the current directory).",
)


def _state(state_dir: str | None) -> Path:
    return Path(state_dir) if state_dir is not None else Path.cwd() / ".alfred"


def _fail(message: str, status: int = EXIT_USAGE) -> int:
    print_error(message)
    return status


def _open_queue(state_dir: str | None, *, read_only: bool = False) -> Any:
    from ..service._queue import QueueError, RunQueue

    try:
        return RunQueue(_state(state_dir), read_only=read_only)
    except QueueError as exc:
        raise click.ClickException(str(exc)) from exc


def _clock(moment: float | None) -> str:
    return format_moment(moment)


def _seconds_option(text: str, what: str) -> float:
    value = parse_since(text)
    if value is None:
        raise click.BadParameter(f"expected a duration such as 30s, 5m or 24h, got {text!r}", param_hint=what)
    return value


# -- submit -------------------------------------------------------------------------------

@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--workflow", "-w", metavar="NAME", help="The workflow to run (default: the file's main one).")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Set a workflow param.")
@click.option("--priority", default="medium", show_default=True, metavar="low|medium|high|critical",
              help="Higher priority runs are taken first (then the oldest).")
@click.option("--at", "at", metavar="TIME",
              help="Not before TIME: +DURATION (e.g. +10m), HH:MM (next one) or an ISO date-time.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="text: the run's id alone; json: id, workflow, priority and not_before.")
@_state_option
@cache_option
def submit(
    file: str, workflow: str | None, params: tuple[str, ...], priority: str, at: str | None, fmt: str,
    state_dir: str | None,
) -> int:
    """Check FILE and put a run of its workflow in the queue; print the run's id.

    A worker (`alfredc worker`) executes it. The file is compiled now (errors are
    reported and nothing is queued) and again when the run starts.
    """
    from ..service._queue import parse_priority
    from ._common import compile_for_cli, parse_params

    try:
        level = parse_priority(priority)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--priority'") from exc
    not_before = None
    if at is not None:
        not_before = parse_at(at)
        if not_before is None:
            raise click.BadParameter(
                f"expected +DURATION, HH:MM or an ISO date-time, got {at!r}", param_hint="'--at'"
            )
    raw = parse_params(params)
    compiled = compile_for_cli(file, workflow, list(params), "auto", state_dir=state_dir, create_state=True)
    if isinstance(compiled, int):
        return compiled
    with _open_queue(state_dir) as queue:
        entry = queue.submit(
            entry=file, workflow=compiled.workflow, params=raw, priority=level, at=not_before
        )
    if fmt == "json":
        click.echo(json.dumps({"id": entry.id, "workflow": entry.workflow, "priority": entry.priority,
                               "not_before": entry.not_before}))
    else:
        click.echo(entry.id)
    return EXIT_OK


# -- worker -------------------------------------------------------------------------------

@click.command()
@click.argument("schedule_files", nargs=-1, type=click.Path(dir_okay=False, path_type=str))
@click.option("--max-workflows", "-n", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Runs executed at once.")
@click.option("--max-concurrency", "-j", type=click.IntRange(min=1), metavar="N",
              help="Stages at once within each run (default: the number of CPUs).")
@click.option("--lease", "lease", default="30s", show_default=True, metavar="DURATION",
              help="A run whose worker sent no heartbeat for this long is taken over by another worker.")
@click.option("--poll", "poll", default="1s", show_default=True, metavar="DURATION",
              help="How often to look at the queue and the schedules when idle.")
@click.option("--control-interval", "control_interval", default="500ms", show_default=True,
              metavar="DURATION", help="How often a running run reads its pause/cancel flag.")
@click.option("--until-empty", is_flag=True, help="Stop once nothing is queued or running.")
@click.option("--metrics-port", type=click.IntRange(min=0, max=65535), metavar="PORT",
              help="Serve metrics in the Prometheus text format on 127.0.0.1:PORT.")
@click.option("--metrics-window", default="24h", show_default=True, metavar="DURATION",
              help="The period the served metrics cover.")
@click.option("--grace", "kill_grace_s", callback=duration_seconds, default="5s", show_default=True,
              metavar="DURATION", help="After SIGTERM to a stage's processes, wait this long before SIGKILL.")
@click.option("--cluster", metavar="tcp://HOST:PORT", envvar="ALFRED_CLUSTER",
              help="Run command and python stages on the workers of this Dask scheduler "
                   "(env ALFRED_CLUSTER).")
@_state_option
@cache_option
def worker(
    schedule_files: tuple[str, ...], max_workflows: int, max_concurrency: int | None, lease: str, poll: str,
    control_interval: str, until_empty: bool, metrics_port: int | None, metrics_window: str,
    kill_grace_s: float, cluster: str | None, state_dir: str | None,
) -> int:
    """Execute queued runs: highest priority first, then the oldest, none before its --at time.

    SCHEDULE_FILES: files whose workflows with a `schedule` this worker enqueues on each
    cron tick (exactly once per tick, however many workers run). Ctrl-C stops the worker:
    its runs are interrupted and the next worker resumes them; a second Ctrl-C kills at once.
    """
    import trio

    from ..service._worker import Worker, WorkerOptions

    options = WorkerOptions(
        max_workflows=max_workflows,
        lease_s=_seconds_option(lease, "'--lease'"),
        poll_s=_seconds_option(poll, "'--poll'"),
        control_interval_s=_seconds_option(control_interval, "'--control-interval'"),
        until_empty=until_empty,
        schedule_files=tuple(os.path.abspath(f) for f in schedule_files),
        max_concurrency=max_concurrency,
        kill_grace_s=kill_grace_s,
        cluster=cluster or None,
        plan_cache=cache_wanted(),
    )
    if options.cluster is not None:
        from ..runtime._cluster import ClusterError, connect

        try:
            connect(options.cluster)  # refused now, not at the first stage
        except ClusterError as exc:
            return _fail(str(exc))
    window = _seconds_option(metrics_window, "'--metrics-window'")

    def say(line: str) -> None:
        click.echo(f"{format_clock()} {line}", err=True)

    try:
        runner = Worker(_state(state_dir), options, report=say)
    except Exception as exc:  # QueueError: an unusable state directory
        return _fail(str(exc))
    server = None
    if metrics_port is not None:
        from ..service._prometheus import serve_prometheus

        try:
            server = serve_prometheus(_state(state_dir), metrics_port, window_s=window)
        except OSError as exc:
            return _fail(f"cannot serve metrics on 127.0.0.1:{metrics_port}: {exc.strerror or exc}")
        say(f"metrics on http://127.0.0.1:{server.server_port}/metrics")
    interrupted = False

    async def main() -> int:
        nonlocal interrupted
        import signal

        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

                async def watch() -> None:
                    nonlocal interrupted
                    async for _signum in signals:
                        if not interrupted:
                            interrupted = True
                            say("stopping: interrupting the running runs (Ctrl-C again to kill at once)")
                            runner.stop()
                        else:
                            nursery.cancel_scope.cancel()

                nursery.start_soon(watch)
                say(f"worker {runner.id} on {runner.queue.state_dir} (up to {max_workflows} at once)")
                done = await runner.run()
                nursery.cancel_scope.cancel()
                return done

    try:
        finished = trio.run(main)
    finally:
        runner.queue.close()
        if server is not None:
            server.shutdown()
    if finished is None or interrupted:
        return EXIT_INTERRUPTED
    say(f"worker done: {finished} run(s) finished")
    return EXIT_OK


# -- status -------------------------------------------------------------------------------

def _resolve(queue: Any, ref: str) -> str | None:
    run_id: str | None = queue.resolve(ref)
    if run_id is None:
        close = suggest(ref, queue.all_ids())
        hint = f"; did you mean `{close[0]}`?" if close else ""
        print_error(f"no run `{ref}` in {queue.state_dir}{hint}")
    return run_id


def _entry_state(queue: Any, entry: Any, run_state: str | None, now: float) -> str:
    command = queue.command(entry.id)
    if entry.state == "queued":
        if command == "pause":
            return "paused"
        if entry.claims:
            return "interrupted"  # given back by a stopped worker: the next one resumes it
        return "scheduled" if entry.not_before > now else "queued"
    if entry.state == "claimed":
        if command == "cancel":
            return "cancelling"
        return run_state or "starting"
    return str(entry.result or entry.state)


def _status_json(queue: Any, store: Any, run_id: str) -> dict[str, Any]:
    from ..service._queue import priority_name

    now = time.time()
    entry = queue.entry(run_id)
    record = store.run(run_id)
    data: dict[str, Any] = {"id": run_id}
    if entry is not None:
        data.update(
            workflow=entry.workflow, file=entry.entry, params=dict(entry.params),
            priority=priority_name(entry.priority), submitted=entry.submitted, not_before=entry.not_before,
            queue_state=entry.state, worker=entry.worker, wait_s=entry.wait_s, error=entry.error,
            control=queue.command(run_id),
        )
    data["state"] = (
        _entry_state(queue, entry, record.state if record else None, now)
        if entry is not None else (record.state if record else "unknown")
    )
    if record is not None:
        data.update(workflow=record.workflow, started=record.started, finished=record.finished)
        data["stages"] = [
            {
                "name": s.name, "state": s.state, "agent": s.agent, "attempts": s.attempts,
                "duration_s": (
                    None if s.started is None or s.finished is None else round(s.finished - s.started, 3)
                ),
            }
            for s in store.stages(run_id)
        ]
    return data


@click.command()
@click.argument("run_id", required=False)
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="text for people, json for scripts.")
@_state_option
def status(run_id: str | None, fmt: str, state_dir: str | None) -> int:
    """The queue and the workers, or the state of run RUN_ID (an id, a unique prefix, or `last`)."""
    with _open_queue(state_dir, read_only=True) as queue:
        store = _open_store(queue)
        try:
            if run_id is not None:
                found = _resolve(queue, run_id)
                if found is None:
                    return EXIT_USAGE
                data = _status_json(queue, store, found)
                if fmt == "json":
                    click.echo(json.dumps(data, indent=2, default=str))
                else:
                    click.echo(_status_text(data))
                return EXIT_OK
            return _overview(queue, store, fmt)
        finally:
            store.close()


class _NoRuns:
    """The run store of a state directory without a database: it holds no run."""

    def run(self, run_id: str) -> None:
        return None

    def stages(self, run_id: str) -> list[Any]:
        return []

    def close(self) -> None:
        pass


def _open_store(queue: Any) -> Any:
    # Read-only: looking must never create or alter the state directory.
    from ..runtime._store import StateStore, StoreError

    try:
        store = StateStore.open_readonly(queue.state_dir)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    return _NoRuns() if store is None else store


def _status_text(data: dict[str, Any]) -> str:
    lines = [f"run {data['id']}: {data['state']}"]
    for key, label in (("workflow", "workflow"), ("file", "file"), ("priority", "priority"),
                       ("worker", "worker"), ("error", "error")):
        if data.get(key):
            lines.append(f"  {label}: {data[key]}")
    if data.get("submitted") is not None:
        lines.append(f"  submitted: {_clock(data['submitted'])}")
        if data["not_before"] > data["submitted"] + 0.5:
            lines.append(f"  not before: {_clock(data['not_before'])}")
    if data.get("started") is not None:
        lines.append(f"  started: {_clock(data['started'])}")
    if data.get("finished") is not None:
        lines.append(f"  finished: {_clock(data['finished'])}")
    stages = data.get("stages") or []
    if stages:
        width = max(len(s["name"]) for s in stages)
        lines.append("  stages:")
        for s in stages:
            took = "" if s["duration_s"] is None else f" {s['duration_s']:.2f}s"
            attempts = f" (attempt {s['attempts']})" if s["attempts"] > 1 else ""
            lines.append(f"    {s['name']:<{width}}  {s['state']}{took}{attempts}")
    return "\n".join(lines)


def _overview(queue: Any, store: Any, fmt: str) -> int:
    from ..service._queue import priority_name

    now = time.time()
    workers = queue.workers(alive_within_s=120.0)
    entries = queue.entries(states=("queued", "claimed"))
    recent = queue.entries(states=("done", "cancelled"), limit=10)
    rows = []
    for entry in [*entries, *recent]:
        record = store.run(entry.id) if entry.state == "claimed" else None
        rows.append({
            "id": entry.id, "workflow": entry.workflow, "priority": priority_name(entry.priority),
            "state": _entry_state(queue, entry, record.state if record else None, now),
            "submitted": entry.submitted, "not_before": entry.not_before, "worker": entry.worker,
        })
    if fmt == "json":
        click.echo(json.dumps({
            "workers": [{"id": w.id, "pid": w.pid, "host": w.host, "heartbeat": w.heartbeat,
                         "max_workflows": w.max_runs} for w in workers],
            "runs": rows,
            "queue_length": sum(1 for e in entries if e.state == "queued"),
        }, indent=2))
        return EXIT_OK
    click.echo(f"workers: {len(workers)}")
    for w in workers:
        click.echo(f"  {w.id} (up to {w.max_runs} at once)")
    if not rows:
        click.echo("queue: empty")
        return EXIT_OK
    click.echo("runs:")
    for row in rows:
        when = f" at {_clock(row['not_before'])}" if row["state"] == "scheduled" else ""
        click.echo(f"  {row['id']}  {row['workflow']:<20} {row['state']:<12} {row['priority']}{when}")
    return EXIT_OK


# -- cancel / pause / resume ------------------------------------------------------------------

def _control(run_ref: str, command: str, state_dir: str | None) -> int:
    from ..service._queue import QueueError

    if not (_state(state_dir) / "state.db").is_file():  # nothing to control: create nothing
        print_error(f"no run `{run_ref}` in {_state(state_dir)}")
        return EXIT_USAGE
    with _open_queue(state_dir) as queue:
        run_id = _resolve(queue, run_ref)
        if run_id is None:
            return EXIT_USAGE
        if queue.entry(run_id) is None:
            return _fail(
                f"run `{run_id}` was not submitted to the queue (`alfredc run` runs are controlled "
                "from their own terminal)",
                EXIT_ERRORS,
            )
        try:
            entry = queue.send(run_id, command)
        except QueueError as exc:
            return _fail(str(exc), EXIT_ERRORS)
    done = {"cancel": "cancelled" if entry.state == "cancelled" else "cancel requested",
            "pause": "pause requested", "resume": "resume requested"}[command]
    click.echo(f"run {run_id}: {done}")
    return EXIT_OK


@click.command()
@click.argument("run_id")
@_state_option
def cancel(run_id: str, state_dir: str | None) -> int:
    """Cancel run RUN_ID: a queued run never starts; a running one stops its stages."""
    return _control(run_id, "cancel", state_dir)


@click.command()
@click.argument("run_id")
@_state_option
def pause(run_id: str, state_dir: str | None) -> int:
    """Pause run RUN_ID: no new stage starts (running stages finish) until `alfredc resume`."""
    return _control(run_id, "pause", state_dir)


@click.command()
@click.argument("run_id")
@_state_option
def resume(run_id: str, state_dir: str | None) -> int:
    """Resume a paused run RUN_ID."""
    return _control(run_id, "resume", state_dir)


# -- metrics ------------------------------------------------------------------------------

@click.command()
@click.option("--since", default="24h", show_default=True, metavar="DURATION",
              help="The period: runs that started this long ago or later.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="text for people, json for scripts (the same figures).")
@_state_option
def metrics(since: str, fmt: str, state_dir: str | None) -> int:
    """Runs, success rate, durations, estimate vs actual, agent utilization and queue figures."""
    from ..service._metrics import collect, metrics_to_json, metrics_to_text

    period = _seconds_option(since, "'--since'")
    now = time.time()
    figures = collect(_state(state_dir), since=now - period, until=now)
    if fmt == "json":
        click.echo(json.dumps(metrics_to_json(figures), indent=2))
    else:
        click.echo(metrics_to_text(figures), nl=False)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(status())
