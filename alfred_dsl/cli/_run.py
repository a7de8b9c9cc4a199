"""``alfredc run FILE``: execute a workflow on the Trio runtime.

Exit status: 0 every stage succeeded or was skipped by ``when``; 1 a stage failed (or the
file has errors); 2 usage or I/O error (unreadable file, unusable state directory, unknown
run to resume); 130 interrupted (SIGINT/SIGTERM: children are killed, the run is saved
as ``interrupted`` and can be continued with ``--resume``).

The presentation pieces come from other modules, each imported only if present, with a
plain fallback (one line per event on stderr):

- ``alfred_dsl.runtime._view.attach(bus, plan, *, quiet: bool, colour: bool)
  -> Callable[[RunResult | None], object]`` subscribes the live view; the returned function
  is called once at the end with the result (None if the run raised).
- ``alfred_dsl.runtime._eventlog.attach(bus, path: str) -> Callable[[], None]``: writes
  ``--events FILE`` (JSON lines); the returned function closes it.
- ``alfred_dsl.runtime._hooks.attach(bus, plan, *, options: RunOptions) -> None``:
  workflow hooks (``on failure { run = ... }``).
- ``alfred_dsl.runtime._dryrun.dry_run(plan, *, max_concurrency: int, colour: bool) -> int``:
  ``--dry-run`` (prints what would run; returns the exit status).

The ``runs``, ``show`` and ``logs`` commands are looked up in ``alfred_dsl.cli._runs``.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from .._plan import Plan

__all__ = ["run"]

EXIT_USAGE = 2


def _optional(module: str) -> Any:
    """An optional presentation module, or None when it is not there (yet)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def __getattr__(name: str) -> Any:
    # `alfredc runs/show/logs` live in their own module; the command table points here.
    if name in ("runs", "show", "logs"):
        return getattr(importlib.import_module("alfred_dsl.cli._runs"), name)
    raise AttributeError(name)


def _fallback_printer(quiet: bool) -> Callable[[Any], None]:
    """One line per event on stderr (the live view's stand-in)."""
    wanted = {"stage_failed", "stage_retrying", "run_completed", "run_failed", "run_interrupted"}

    def show(event: Any) -> None:
        if quiet and event.type not in wanted:
            return
        if event.type in ("stage_ready", "stage_output"):
            return
        clock = time.strftime("%H:%M:%S", time.localtime(event.time))
        parts = [clock, event.type]
        if event.stage:
            parts.append(event.stage)
        if event.attempt:
            parts.append(f"(attempt {event.attempt})")
        data = event.data
        if event.type == "run_started" or event.type == "run_resumed":
            parts.append(f"run {event.run_id} of workflow {data.get('workflow')}")
        elif data.get("error"):
            parts.append(f"- {data['error']}")
        elif data.get("reason"):
            parts.append(f"- {data['reason']}")
        elif data.get("upstream"):
            parts.append(f"- `{data['upstream']}` failed")
        elif "counts" in data:
            parts.append(", ".join(f"{n} {state}" for state, n in data["counts"].items()))
        click.echo(" ".join(parts), err=True)

    return show


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=True, path_type=str))
@click.option("--workflow", "-w", metavar="NAME", help="The workflow to run (default: the file's main one).")
@click.option(
    "--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
    help="Set a workflow param (repeatable); parsed to the param's declared type.",
)
@click.option(
    "--max-concurrency", "-j", type=click.IntRange(min=1), metavar="N",
    help="At most N stages at once over all agents (default: the number of CPUs).",
)
@click.option(
    "--state", "state_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=str),
    help="Where run state and logs live (default: .alfred in the current directory).",
)
@click.option(
    "--resume", metavar="ID|last",
    help="Continue an interrupted or failed run: stages that succeeded are not run again.",
)
@click.option("--quiet", "-q", is_flag=True, help="Only failures and the final summary.")
@click.option("--events", "events_file", metavar="FILE", help="Also write every event to FILE (JSON lines).")
@click.option("--dry-run", is_flag=True, help="Show what would run, in which order; run nothing.")
@click.option(
    "--grace", "kill_grace_s", type=click.FloatRange(min=0), default=5.0, show_default=True,
    metavar="SECONDS",
    help="After SIGTERM to a stage's processes (timeout, cancel), wait this long before SIGKILL.",
)
@click.option(
    "--colour", "--color", "colour", type=click.Choice(("auto", "always", "never")), default="auto",
    show_default=True, help="Colour: auto = only on a terminal and when NO_COLOR is unset.",
)
def run(
    file: str | None,
    workflow: str | None,
    params: tuple[str, ...],
    max_concurrency: int | None,
    state_dir: str | None,
    resume: str | None,
    quiet: bool,
    events_file: str | None,
    dry_run: bool,
    kill_grace_s: float,
    colour: str,
) -> int:
    """Run a workflow of FILE: each stage once its dependencies succeeded, with retries,
    timeouts and durable state (SQLite under .alfred/).

    `alfredc run --resume last` (or a run id) continues an interrupted, killed or failed
    run; stages that succeeded keep their outputs and are not run again. A stage that was
    running when the run died runs again (at-least-once).
    """
    from ..runtime import EventBus, RunOptions, StateStore, StoreError, execute
    from ._plan import compile_for_cli, parse_params, use_colour

    if file is None and resume is None:
        raise click.UsageError("missing FILE (or --resume RUN_ID)")
    cli_params = parse_params(params)
    try:
        store = StateStore(state_dir)
    except StoreError as exc:
        click.echo(f"alfredc: error: {exc}", err=True)
        return EXIT_USAGE
    try:
        run_id: str | None = None
        if resume is not None:
            run_id = store.resolve_run_id(resume)
            record = None if run_id is None else store.run(run_id)
            if run_id is None or record is None:
                click.echo(f"alfredc: error: no run `{resume}` in {store.state_dir}", err=True)
                return EXIT_USAGE
            file = file or record.entry or record.source
            workflow = workflow or record.workflow
            if not params:
                cli_params = dict(record.cli_params)
        assert file is not None
        compiled = compile_for_cli(file, workflow, [f"{k}={v}" for k, v in cli_params.items()], colour)
        if isinstance(compiled, int):
            return compiled
        plan: Plan = compiled
        coloured = use_colour(colour, "stderr")
        options = RunOptions(
            max_concurrency=max_concurrency, kill_grace_s=kill_grace_s, handle_signals=True,
            cli_params=cli_params, entry=file,
        )
        if dry_run:
            dryrun = _optional("alfred_dsl.runtime._dryrun")
            if dryrun is not None:
                return int(dryrun.dry_run(plan, max_concurrency=options.concurrency, colour=coloured))
            for layer, names in enumerate(plan.layers or (tuple(s.name for s in plan.stages),)):
                click.echo(f"layer {layer}: {', '.join(names)}")
            return 0
        bus = EventBus()
        closers: list[Callable[[], object]] = []
        view = _optional("alfred_dsl.runtime._view")
        finish_view: Callable[[Any], object] | None = None
        if view is not None:
            finish_view = view.attach(bus, plan, quiet=quiet, colour=coloured)
        else:
            bus.subscribe(_fallback_printer(quiet))
        if events_file is not None:
            eventlog = _optional("alfred_dsl.runtime._eventlog")
            if eventlog is not None:
                closers.append(eventlog.attach(bus, events_file))
            else:
                closers.append(_write_events(bus, events_file))
        hooks = _optional("alfred_dsl.runtime._hooks")
        if hooks is not None:
            hooks.attach(bus, plan, options=options)
        import trio

        result = None
        try:
            result = trio.run(
                lambda: execute(plan, store=store, options=options, bus=bus, resume=run_id)
            )
        finally:
            for close in closers:
                close()
            if finish_view is not None:
                finish_view(result)
        if view is None:
            click.echo(
                f"run {result.run_id}: {result.state} ({result.duration_s:.2f}s); "
                f"state in {store.state_dir}",
                err=True,
            )
        return result.exit_status
    except StoreError as exc:
        click.echo(f"alfredc: error: {exc}", err=True)
        return EXIT_USAGE
    finally:
        store.close()


def _write_events(bus: Any, path: str) -> Callable[[], None]:
    """JSON lines of every event (stand-in for runtime._eventlog)."""
    import json

    try:
        handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the returned function
    except OSError as exc:
        raise click.FileError(path, exc.strerror) from exc

    def write(event: Any) -> None:
        handle.write(json.dumps(event.to_json(), default=str) + "\n")
        handle.flush()

    bus.subscribe(write)
    return handle.close


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
