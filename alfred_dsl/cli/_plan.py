"""``alfredc plan FILE``: the compiled plan and its critical-path analysis, as text or JSON.

Diagnostics go to stderr (warnings too, so that stdout stays machine-readable); exit
status 1 on errors, 2 when the file cannot be read (A001) or the usage is wrong.
"""

from __future__ import annotations

import click

from ..compiler._plan import Plan
from ._common import compile_for_cli, param_option, print_error, use_colour

__all__ = ["plan"]


@click.command()
@click.argument("file", type=click.Path(dir_okay=True, path_type=str))
@param_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("text", "json")),
    default="text",
    show_default=True,
    help="text: a table with the critical path marked; json: the plan as one JSON object.",
)
@click.option(
    "--explain-skips", is_flag=True,
    help="Say, per stage, whether `alfredc run` would run it or skip it as up to date, and why.",
)
@click.option(
    "--state", "state_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=str),
    help="The state directory: its plan cache, and the runs --explain-skips reads (default: .alfred).",
)
@click.option(
    "--online", is_flag=True,
    help="First check stages' MCP tools and arguments against their servers (as check --online).",
)
def plan(
    file: str, workflow: str | None, params: tuple[str, ...], colour: str, fmt: str,
    explain_skips: bool = False, state_dir: str | None = None, online: bool = False,
) -> int:
    """Compile FILE and show the plan: every stage with its earliest and latest start and
    finish, its slack and layer, then the critical path and the total duration.

    Durations come from each stage's `estimate` (0 where none). Stages on the critical
    path have zero slack: delaying any of them delays the whole run.
    """
    if online:
        from .._render_diag import exit_status
        from ._common import emit
        from ._online import online_diagnostics

        found = online_diagnostics([file])
        emit(found, colour=colour, err=True)
        if exit_status(found) != 0:
            return 1
    compiled = compile_for_cli(file, workflow, params, colour, state_dir=state_dir)
    if isinstance(compiled, int):
        return compiled
    from ..render import plan_to_text
    from ..render._plan import dump_plan

    if explain_skips:
        return _explain_skips(compiled, state_dir, fmt)

    if fmt == "json":
        dump_plan(compiled, lambda text: click.echo(text, nl=False))
    else:
        coloured = use_colour(colour, "stdout")
        click.echo(plan_to_text(compiled, colour=coloured), nl=False, color=coloured)
    return 0


def _explain_skips(compiled: Plan, state_dir: str | None, fmt: str) -> int:
    """``plan --explain-skips``: reads the state directory, never writes it."""
    import json
    import os

    from ..runtime import StateStore, StoreError
    from ..runtime._incremental import explain_skips

    try:
        store = StateStore.open_readonly(state_dir)
    except StoreError as exc:
        print_error(str(exc))
        return 2
    try:
        decisions = explain_skips(compiled, store, os.environ)
    finally:
        if store is not None:
            store.close()
    if fmt == "json":
        rows = [{"stage": name, "run": d.run, "reason": d.reason} for name, d in decisions]
        click.echo(json.dumps({"workflow": compiled.workflow, "stages": rows}, indent=2))
        return 0
    width = max((len(name) for name, _ in decisions), default=0)
    for name, decision in decisions:
        verb = "would run: " if decision.run else "would skip:"
        click.echo(f"{name:<{width}}  {verb} {decision.reason}")
    return 0
