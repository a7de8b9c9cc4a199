"""``alfredc plan FILE``: the compiled plan and its critical-path analysis, as text or JSON.

Diagnostics go to stderr (warnings too, so that stdout stays machine-readable); exit
status 1 on errors, 2 when the file cannot be read (A001) or the usage is wrong.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import click

from .._diagnostics import Diagnostic
from .._plan import Plan

__all__ = ["COLOUR_MODES", "compile_for_cli", "param_option", "parse_params", "plan", "use_colour"]

COLOUR_MODES = ("auto", "always", "never")

F = TypeVar("F", bound=Callable[..., Any])


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """``["k=v", ...]`` to a dict of raw strings (typed later against the declared params)."""
    params: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        name = name.strip()
        if not equals or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="'--param'")
        params[name] = value
    return params


def use_colour(mode: str, stream_name: Literal["stdout", "stderr"]) -> bool:
    """Colour for ``mode`` on the named stream: ``auto`` means a terminal and no NO_COLOR."""
    if mode == "never":
        return False
    if mode == "always":
        return True
    from .._render_diag import should_colour

    return should_colour(sys.stderr if stream_name == "stderr" else sys.stdout)


def _print_diagnostics(diags: Sequence[Diagnostic], colour: str) -> None:
    if not diags:
        return
    from .._render_diag import render_text

    coloured = use_colour(colour, "stderr")
    click.echo(render_text(diags, colour=coloured), err=True, nl=False, color=coloured)


def compile_for_cli(file: str, workflow: str | None, params: Sequence[str], colour: str) -> Plan | int:
    """Compile ``file`` and print its diagnostics to stderr: the plan, or the exit status."""
    from .._pipeline import compile_path
    from .._render_diag import exit_status

    compiled, diags = compile_path(file, workflow, parse_params(params))
    _print_diagnostics(diags, colour)
    status = exit_status(diags)
    if not isinstance(compiled, Plan) or status != 0:
        return status or 1
    return compiled


def param_option(function: F) -> F:
    """The shared ``--workflow``/``--param``/``--colour`` options of ``plan`` and ``graph``."""
    function = click.option(
        "--colour",
        "--color",
        "colour",
        type=click.Choice(COLOUR_MODES),
        default="auto",
        show_default=True,
        help="Colour: auto = only on a terminal and when NO_COLOR is unset.",
    )(function)
    function = click.option(
        "--param",
        "-p",
        "params",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set a workflow param (repeatable); parsed to the param's declared type.",
    )(function)
    function = click.option(
        "--workflow",
        "-w",
        metavar="NAME",
        help="The workflow to compile (default: the first one that is not only a template).",
    )(function)
    return function


@click.command()
@click.argument("file", type=click.Path(dir_okay=True, path_type=str))
@param_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("text", "json")),
    default="text",
    show_default=True,
    help="text: a table with the critical path marked; json: the plan of spec section 5.",
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
