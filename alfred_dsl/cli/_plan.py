"""``alfredc plan FILE``: the compiled plan and its critical-path analysis, as text or JSON.

Diagnostics go to stderr (warnings too, so that stdout stays machine-readable); exit
status 1 on errors, 2 when the file cannot be read (A001) or the usage is wrong.
"""

from __future__ import annotations

import click

from ._common import compile_for_cli, param_option, use_colour

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
def plan(file: str, workflow: str | None, params: tuple[str, ...], colour: str, fmt: str) -> int:
    """Compile FILE and show the plan: every stage with its earliest and latest start and
    finish, its slack and layer, then the critical path and the total duration.

    Durations come from each stage's `estimate` (0 where none). Stages on the critical
    path have zero slack: delaying any of them delays the whole run.
    """
    compiled = compile_for_cli(file, workflow, params, colour)
    if isinstance(compiled, int):
        return compiled
    from ..render import dumps, plan_to_json, plan_to_text

    if fmt == "json":
        click.echo(dumps(plan_to_json(compiled)), nl=False)
    else:
        coloured = use_colour(colour, "stdout")
        click.echo(plan_to_text(compiled, colour=coloured), nl=False, color=coloured)
    return 0
