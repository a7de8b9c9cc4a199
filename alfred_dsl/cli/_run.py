"""``alfredc run FILE``: execute a workflow on the Trio runtime.

Exit status: 0 every stage succeeded or was skipped by ``when``; 1 a stage failed (or the
file has errors); 2 usage or I/O error (unreadable file, unusable state directory, unknown
run to resume, unwritable ``--events`` file); 130 interrupted (SIGINT/SIGTERM: children are
killed, the run is saved as ``interrupted`` and can be continued with ``--resume``).

The pieces: ``runtime._eventlog`` writes ``--events FILE``, ``runtime._hooks`` runs the
workflow's hooks, ``runtime._view`` draws the run on stdout (a live display on a terminal,
plain lines otherwise) and ``runtime._dryrun`` prints ``--dry-run``. The ``runs``, ``show``
and ``logs`` commands live in ``alfred_dsl.cli._runs``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..compiler._plan import Plan
from ._common import cache_option, duration_seconds

if TYPE_CHECKING:
    from ..runtime import RunOptions, StateStore

__all__ = ["run"]

EXIT_USAGE = 2


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
    "--grace", "kill_grace_s", callback=duration_seconds, default="5s", show_default=True,
    metavar="DURATION",
    help="After SIGTERM to a stage's processes (timeout, cancel), wait this long before SIGKILL.",
)
@click.option(
    "--cluster", metavar="tcp://HOST:PORT", envvar="ALFRED_CLUSTER",
    help="Run command and python stages on the workers of this Dask scheduler (env ALFRED_CLUSTER).",
)
@click.option(
    "--colour", "--color", "colour", type=click.Choice(("auto", "always", "never")), default="auto",
    show_default=True, help="Colour: auto = only on a terminal and when NO_COLOR is unset.",
)
@click.option(
    "--force", "force", multiple=True, is_flag=False, flag_value="*", metavar="[STAGE]",
    help="Run up-to-date stages anyway: all of them, or STAGE (repeatable). Put FILE first.",
)
@click.option("--from", "from_stage", metavar="STAGE", help="Run STAGE and every stage after it.")
@click.option("--until", "until_stage", metavar="STAGE", help="Run STAGE and every stage before it.")
@click.option(
    "--only", "only", multiple=True, metavar="STAGE",
    help="Run just STAGE (repeatable); the stages it needs give the outputs of their last success.",
)
@click.option(
    "--cleanup-grace", "cleanup_grace_s", callback=duration_seconds, default="5m", show_default=True,
    metavar="DURATION",
    help="After a cancel, Ctrl-C or the workflow timeout: how long `run_if` cleanup stages may still run.",
)
@cache_option
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
    cluster: str | None,
    colour: str,
    force: tuple[str, ...] = (),
    from_stage: str | None = None,
    until_stage: str | None = None,
    only: tuple[str, ...] = (),
    cleanup_grace_s: float = 300.0,
) -> int:
    """Run a workflow of FILE: each stage once its dependencies succeeded, with retries,
    timeouts and durable state (SQLite under .alfred/).

    `alfredc run --resume last` (or a run id) continues an interrupted, killed or failed
    run; stages that succeeded keep their outputs and are not run again. A stage that was
    running when the run died runs again (at-least-once).
    """
    from ..runtime import RunOptions, StateStore, StoreError, find_run
    from ..runtime._eventlog import EventLogError
    from ._common import compile_for_cli, parse_params, print_error, use_colour

    if file is None and resume is None and force and Path(force[-1]).exists():
        file, force = force[-1], (*force[:-1], "*")  # `alfredc run --force FILE`: FILE is not a stage
    if file is None and resume is None:
        raise click.UsageError("missing FILE (or --resume RUN_ID)")
    cli_params = parse_params(params)
    events_folder = None if events_file is None else Path(events_file).parent
    if events_folder is not None and not events_folder.is_dir():
        # Refused before anything starts: a mistyped folder is not created, nothing is recorded.
        print_error(f"cannot write events to {events_file}: "
                    f"the folder {events_folder} does not exist (create it first)")
        return EXIT_USAGE
    try:
        store = StateStore(state_dir)
    except StoreError as exc:
        print_error(str(exc))
        return EXIT_USAGE
    try:
        run_id: str | None = None
        if resume is not None:
            record = find_run(store, resume)
            run_id = record.id
            file = file or record.entry or record.source
            workflow = workflow or record.workflow
            if not params:
                cli_params = dict(record.cli_params)
        assert file is not None
        compiled = compile_for_cli(
            file, workflow, [f"{k}={v}" for k, v in cli_params.items()], colour,
            state_dir=state_dir, create_state=True,
        )
        if isinstance(compiled, int):
            return compiled
        plan: Plan = compiled
        # The view and --dry-run write to stdout: colour is decided for stdout.
        coloured = use_colour(colour, "stdout")
        from ..runtime._selection import SelectionError, select

        try:
            chosen = select(
                plan, force=[f for f in force if f != "*"], force_all="*" in force, from_stage=from_stage,
                until_stage=until_stage, only=only,
            )
        except SelectionError as exc:
            print_error(str(exc))
            return EXIT_USAGE
        options = RunOptions(
            max_concurrency=max_concurrency, kill_grace_s=kill_grace_s, handle_signals=True,
            cli_params=cli_params, entry=file, force=chosen.force, force_stages=chosen.force_stages,
            selected=chosen.selected, cleanup_grace_s=cleanup_grace_s,
            cluster=cluster or None,
        )
        if dry_run:
            from ..runtime._dryrun import dry_run as print_dry_run

            return int(print_dry_run(plan, max_concurrency=options.concurrency, colour=coloured))
        if options.cluster is not None:
            from ._cluster import run_on_cluster

            return run_on_cluster(
                options, lambda o: _execute(plan, store, o, run_id, events_file, quiet=quiet, colour=coloured)
            )
        return _execute(plan, store, options, run_id, events_file, quiet=quiet, colour=coloured)
    except EventLogError as exc:
        print_error(str(exc))
        return EXIT_USAGE
    except StoreError as exc:
        print_error(str(exc))
        return EXIT_USAGE
    finally:
        store.close()


def _execute(
    plan: Plan,
    store: StateStore,
    options: RunOptions,
    run_id: str | None,
    events_file: str | None,
    *,
    quiet: bool,
    colour: bool,
) -> int:
    """Run ``plan`` with the events file, the hooks and the view attached; the exit status.
    With a ``concurrency_group``, first wait for (or cancel) the group's earlier runs."""
    if plan.concurrency_group and run_id is None:
        from ..runtime._concurrency import GroupCancelled, GroupSlot

        run_id = store.new_run_id()
        slot = GroupSlot(store.state_dir, plan.concurrency_group, run_id)
        try:
            try:
                slot.enter(
                    cancel_in_progress=plan.cancel_in_progress,
                    on_wait=lambda ahead: click.echo(
                        f"alfredc: waiting for run {', '.join(ahead)} of concurrency group"
                        f" `{plan.concurrency_group}`", err=True,
                    ),
                )
            except GroupCancelled as exc:
                click.echo(f"alfredc: {exc}", err=True)
                return 1
            except KeyboardInterrupt:
                return 130
            return _execute_now(
                plan, store, options, run_id, events_file, quiet=quiet, colour=colour, new=True,
                control=slot.control,
            )
        finally:
            slot.leave()
    return _execute_now(plan, store, options, run_id, events_file, quiet=quiet, colour=colour)


def _execute_now(
    plan: Plan,
    store: StateStore,
    options: RunOptions,
    run_id: str | None,
    events_file: str | None,
    *,
    quiet: bool,
    colour: bool,
    new: bool = False,
    control: Callable[[str], str | None] | None = None,
) -> int:
    """Run ``plan`` now (``new``: as a new run with id ``run_id``, else resuming it)."""
    import trio

    from ..runtime import EventBus, start_run
    from ..runtime._eventlog import attach as attach_events
    from ..runtime._view import attach as attach_view

    bus = EventBus()
    # Everything that can fail to open is opened before the live view takes the terminal
    # (it hides the cursor), and the view is always finished, so no error leaves it hidden.
    close_events: Callable[[], None] | None = None
    if events_file is not None:
        env = options.env if options.env is not None else os.environ
        secrets = {name: env[name] for name in plan.secrets if name in env}
        close_events = attach_events(bus, events_file, secrets=secrets)
    finish_view: Callable[[object], None] | None = None

    def view(bus: EventBus) -> None:
        nonlocal finish_view
        finish_view = attach_view(bus, plan, quiet=quiet, colour=colour)

    try:
        result = None
        try:
            result = trio.run(lambda: start_run(
                plan, store, options, resume=None if new else run_id, run_id=run_id if new else None,
                control=control, bus=bus, hooks=True, observers=(view,),
            ))
        finally:
            if finish_view is not None:
                finish_view(result)
    finally:
        if close_events is not None:
            close_events()
    if result.already_succeeded:  # no event was emitted: the view had nothing to show
        from ..runtime._view import summary_line

        counts: dict[str, int] = {}
        for stage in result.stages.values():
            counts[stage.state] = counts.get(stage.state, 0) + 1
        line = summary_line(
            run_id=result.run_id, workflow=result.workflow, state="already succeeded", counts=counts,
            duration_s=result.duration_s,
        )
        click.echo(f"{line}; nothing to run")
    return int(result.exit_status)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
