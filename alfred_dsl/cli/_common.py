"""What several commands share: the ``--colour``/``--workflow``/``--param`` options, printing
diagnostics, and compiling one file to a plan (diagnostics to stderr, or an exit status).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

from .._diagnostics import Diagnostic
from .._values import parse_duration
from ..compiler._plan import Plan

__all__ = [
    "COLOUR_MODES",
    "cache_option",
    "cache_wanted",
    "colour_option",
    "compile_for_cli",
    "debugging",
    "duration_seconds",
    "emit",
    "param_option",
    "parse_params",
    "plan_cache_dir",
    "print_error",
    "use_colour",
]

COLOUR_MODES = ("auto", "always", "never")


def print_error(message: str, help: str | None = None) -> None:
    """A user error on stderr, as every command prints one: ``alfredc: error: MESSAGE``
    and, with ``help``, an indented ``help:`` line. (Problems in workflow files are
    diagnostics, printed by the diagnostics printer.)"""
    click.echo(f"alfredc: error: {message}", err=True)
    if help:
        click.echo(f"  help: {help}", err=True)

F = TypeVar("F", bound=Callable[..., Any])


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """``["k=v", ...]`` to a dict of raw strings (typed later against the declared params)."""
    params: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        name = name.strip()
        if not equals or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="'--param'")
        params[name] = _text_of_argument(name, value)
    return params


def _text_of_argument(name: str, value: str) -> str:
    """A command-line value as text: its bytes read as UTF-8, whatever the locale.

    Under a non-UTF-8 locale (``LC_ALL=C``) Python hands ``héllo`` over as undecodable bytes
    (surrogate escapes) that no file, database or child process could take; alfred reads
    its files as UTF-8 and reads arguments the same way.
    """
    try:
        value.encode("utf-8")
        return value  # text already (a UTF-8 locale, or a value this function returned)
    except UnicodeEncodeError:
        pass
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeError:
        raise click.BadParameter(
            f"the value of `{name}` is not UTF-8 text; pass UTF-8 (alfred reads params as UTF-8)",
            param_hint="'--param'",
        ) from None


def use_colour(mode: str, stream_name: Literal["stdout", "stderr"]) -> bool:
    """Colour for ``mode`` on the named stream: ``auto`` means a terminal and no NO_COLOR."""
    if mode == "never":
        return False
    if mode == "always":
        return True
    from .._colour import should_colour  # (not the diagnostics printer: `run` needs only this)

    return should_colour(sys.stderr if stream_name == "stderr" else sys.stdout)


def emit(diags: Sequence[Diagnostic], fmt: str = "text", *, colour: str = "auto", err: bool = False) -> None:
    """Print ``diags`` in ``fmt`` to stdout (or stderr with ``err``); colour only for text on a terminal."""
    from .._render_diag import render

    coloured = fmt == "text" and use_colour(colour, "stderr" if err else "stdout")
    output = render(diags, fmt, colour=coloured)
    if output:
        click.echo(output, err=err, nl=False, color=coloured)


def compile_for_cli(
    file: str,
    workflow: str | None,
    params: Sequence[str],
    colour: str,
    *,
    state_dir: str | None = None,
    create_state: bool = False,
) -> Plan | int:
    """Compile ``file`` and print its diagnostics to stderr: the plan, or the exit status.

    The plan comes from the plan cache in ``state_dir`` (default ``.alfred``) when it holds
    one compiled from the same inputs, unless the command was given ``--no-cache``
    (:func:`cache_option`); ``--debug`` says on stderr what the cache did. A command that
    only reads (``plan``, ``graph``...) uses the cache of an existing state directory and
    never creates one; ``create_state`` for those that make it anyway (``run``, ``submit``).
    """
    from ..compiler._plancache import compile_cached

    folder = plan_cache_dir(state_dir)
    cache_dir: Path | None = None
    why_off = ""
    if not cache_wanted():
        why_off = " (--no-cache)"
    elif not create_state and not folder.parent.is_dir():
        why_off = f" (no state directory {folder.parent})"
    else:
        cache_dir = folder
    result = compile_cached(file, workflow, parse_params(params), cache_dir)
    if debugging():
        where = f" ({result.entry})" if result.entry is not None else why_off
        click.echo(f"alfredc: debug: plan cache: {result.outcome}{where}", err=True)
    status = 0
    if result.diagnostics:  # a clean plan does not load the printer
        from .._render_diag import exit_status

        emit(result.diagnostics, colour=colour, err=True)
        status = exit_status(result.diagnostics)
    if not isinstance(result.plan, Plan) or status != 0:
        return status or 1
    return result.plan


def cache_wanted() -> bool:
    """Whether the command may use the plan cache: it was not given ``--no-cache``."""
    context = click.get_current_context(silent=True)
    return context is None or not context.meta.get(_NO_CACHE, False)


def plan_cache_dir(state_dir: str | None) -> Path:
    """Where compiled plans are kept: ``cache/`` in the state directory (``.alfred``)."""
    return Path(state_dir if state_dir is not None else Path.cwd() / ".alfred") / "cache"


def debugging() -> bool:
    """``alfredc --debug`` or ``ALFRED_DEBUG`` set: internal details go to stderr."""
    context = click.get_current_context(silent=True)
    root = None if context is None else context.find_root().obj
    return bool(os.environ.get("ALFRED_DEBUG")) or (isinstance(root, dict) and bool(root.get("debug")))


_NO_CACHE = "alfred.no_cache"


def _remember_no_cache(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    ctx.meta[_NO_CACHE] = value
    return value


def cache_option(function: F) -> F:
    """``--no-cache``: compile the file even when the plan cache holds its plan (read by
    :func:`compile_for_cli`, not passed to the command)."""
    return click.option(
        "--no-cache",
        is_flag=True,
        expose_value=False,
        callback=_remember_no_cache,
        help="Compile the workflow file again, neither reading nor writing the plan cache (.alfred/cache/).",
    )(function)


def colour_option(function: F) -> F:
    """``--colour``/``--color`` auto|always|never, passed as ``colour``."""
    return click.option(
        "--colour",
        "--color",
        "colour",
        type=click.Choice(COLOUR_MODES),
        default="auto",
        show_default=True,
        help="Colour: auto = only on a terminal and when NO_COLOR is unset.",
    )(function)


def param_option(function: F) -> F:
    """The shared ``--workflow``/``--param``/``--colour``/``--no-cache`` options of ``plan``,
    ``graph``, ``simulate`` and ``export``."""
    function = cache_option(colour_option(function))
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


def duration_seconds(ctx: click.Context | None, param: click.Parameter | None, value: object) -> float:
    """Option callback: ``30s``, ``500ms``, ``1h30m`` or a plain number of seconds, as seconds."""
    text = str(value).strip()
    try:
        seconds: float | None = float(text)
    except ValueError:
        seconds = parse_duration(text)
    if seconds is None or not 0 <= seconds < float("inf"):
        raise click.BadParameter(f"expected a duration such as 5s, 500ms or 1m, got {value!r}")
    return float(seconds)
