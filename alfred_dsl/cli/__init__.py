"""The ``alfredc`` command line.

Each command lives in its own module and is imported only when it is invoked, so that
``alfredc check`` does not pay for trio, rich or jinja2 at start-up.

Exit statuses: 0 success, 1 errors found (or a stage failed), 2 usage or I/O error,
3 internal error (a bug in alfred), 130 interrupted.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from typing import NoReturn

import click

from .. import __version__

__all__ = ["main"]

#: command name -> "module:attribute" of its click command, in help order.
COMMANDS: dict[str, str] = {
    "check": "alfred_dsl.cli._check:check",
    "plan": "alfred_dsl.cli._plan:plan",
    "graph": "alfred_dsl.cli._graph:graph",
    "fmt": "alfred_dsl.cli._fmt:fmt",
    "explain": "alfred_dsl.cli._explain:explain",
    "run": "alfred_dsl.cli._run:run",
    "runs": "alfred_dsl.cli._runs:runs",
    "show": "alfred_dsl.cli._runs:show",
    "logs": "alfred_dsl.cli._runs:logs",
    "docs": "alfred_dsl.cli._docs:docs",
    "report": "alfred_dsl.cli._report:report",
    "submit": "alfred_dsl.cli._service:submit",
    "worker": "alfred_dsl.cli._service:worker",
    "status": "alfred_dsl.cli._service:status",
    "cancel": "alfred_dsl.cli._service:cancel",
    "pause": "alfred_dsl.cli._service:pause",
    "resume": "alfred_dsl.cli._service:resume",
    "metrics": "alfred_dsl.cli._service:metrics",
    "schema": "alfred_dsl.cli._schema:schema",
    "doctor": "alfred_dsl.cli._doctor:doctor",
}

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # command not built yet
                return None
            raise
        command: click.Command = getattr(module, attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="alfredc")
@click.option("--debug", is_flag=True, hidden=True, help="Show a traceback for internal errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """alfred: a declarative workflow compiler for multi-agent pipelines."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of ``alfredc``: never lets a Python traceback reach the user."""
    # The compiler allocates many small, acyclic objects; the default thresholds make the
    # cyclic collector run hundreds of times on a large file (about 15% of a 10k-stage check).
    gc.set_threshold(100_000, 50, 50)
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(os.environ.get("ALFRED_DEBUG"))
    try:
        status = cli.main(args=argv, prog_name="alfredc", standalone_mode=False)
        sys.exit(status if isinstance(status, int) else EXIT_OK)
    except click.exceptions.Abort:
        click.echo("alfredc: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo("alfredc: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # stdout was closed early (e.g. `| head`): not an error of the user's.
        sys.stderr.close()
        sys.exit(EXIT_OK)
    except SystemExit:
        raise
    except BaseException as exc:  # the last line of defence: never a traceback
        if debug:
            raise
        click.echo(
            f"alfredc: internal error [A900]: {type(exc).__name__}: {exc}\n"
            "This is a bug in alfred. Run again with --debug for a traceback and report it.",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
