"""The ``alfredc`` command line.

Each command lives in its own module and is imported only when it is invoked, so that
``alfredc check`` does not pay for trio, rich or jinja2 at start-up.

Exit statuses: 0 success, 1 errors found (or a stage failed), 2 usage or I/O error,
3 internal error (a bug in alfred), 130 interrupted.
"""

from __future__ import annotations

import atexit
import codecs
import gc
import importlib
import os
import sys
from typing import NoReturn

# Before anything else is imported: what a command loads (click, trio, alfred's modules, a
# plan) lives until the process ends, and the default thresholds run the cyclic collector
# about 20 times over it (7-12 ms of a 1-stage `alfredc run`, bench/README.md). With these
# it runs while a large compile allocates (main() keeps them for callers in the same process).
GC_THRESHOLDS = (100_000, 50, 50)
gc.set_threshold(*GC_THRESHOLDS)

import click  # noqa: E402

from .._version import __version__  # noqa: E402

__all__ = ["entry", "main"]

#: command name -> "module:attribute" of its click command, in help order.
COMMANDS: dict[str, str] = {
    "check": "alfred_dsl.cli._check:check",
    "plan": "alfred_dsl.cli._plan:plan",
    "simulate": "alfred_dsl.cli._simulate:simulate",
    "graph": "alfred_dsl.cli._graph:graph",
    "export": "alfred_dsl.cli._export:export",
    "fmt": "alfred_dsl.cli._fmt:fmt",
    "lock": "alfred_dsl.cli._lock:lock",
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
    "approve": "alfred_dsl.cli._approve:approve",
    "reject": "alfred_dsl.cli._approve:reject",
    "schema": "alfred_dsl.cli._schema:schema",
    "doctor": "alfred_dsl.cli._doctor:doctor",
    "lsp": "alfred_dsl.cli._lsp:lsp",
}

#: command name -> its line in `alfredc --help` (click would cut the docstring at "e.g." or
#: "FILE..." and would import every command module to read it).
SUMMARIES: dict[str, str] = {
    "check": "Check files and report every problem.",
    "plan": "Show the compiled plan and its critical path.",
    "simulate": "Simulate many runs: the makespan's spread, risks, utilisation.",
    "graph": "Draw the dependency graph (Mermaid, Graphviz, JSON).",
    "export": "Export a workflow to Airflow, Prefect or Dagster.",
    "fmt": "Format .alfred files.",
    "lock": "Pin the documentation stages read in alfred.lock.",
    "explain": "Explain what a diagnostic code means.",
    "run": "Run a workflow.",
    "runs": "List past runs.",
    "show": "Show one run.",
    "logs": "Print the captured output of a stage.",
    "docs": "Write documentation pages for workflows.",
    "report": "Write the HTML report of a run, or the report of a period.",
    "submit": "Queue a run of a workflow.",
    "worker": "Execute queued and scheduled runs.",
    "status": "Show the queue and the workers, or one run.",
    "cancel": "Cancel a queued or running run.",
    "pause": "Pause a run.",
    "resume": "Resume a paused run.",
    "metrics": "Show figures about past runs.",
    "approve": "Approve a stage waiting for a decision.",
    "reject": "Reject a stage waiting for a decision.",
    "schema": "Print the JSON Schema of YAML/JSON workflows.",
    "doctor": "Say how this machine contains stages, and what alfred runs on.",
    "lsp": "Run the language server for editors (stdio).",
}

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, SUMMARIES.get(name, "")) for name in COMMANDS])

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS and not ctx.resilient_parsing:
            from .._values import suggest

            close = suggest(name, COMMANDS)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise click.UsageError(f"No such command `{name}`.{hint}", ctx)
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        # A module that cannot be imported is a bug (an internal error), never a missing command.
        module_name, _, attribute = target.partition(":")
        from .._codecache import cover_dataclasses

        cover_dataclasses()
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="alfredc")
@click.option("--debug", is_flag=True, hidden=True, help="Show a traceback for internal errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """alfred: a declarative workflow compiler for multi-agent pipelines."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _streams_that_take_any_text() -> None:
    """Make printing a non-ASCII name or message never fail, whatever the locale.

    In the C/POSIX locale (an ASCII encoding) output is UTF-8, as Python's own UTF-8 mode
    would make it (PEP 540) had ``PYTHONUTF8=0`` not turned it off; under another non-UTF-8
    locale, what it cannot encode is written as a backslash escape.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        try:
            encoding = codecs.lookup(getattr(stream, "encoding", None) or "utf-8").name
        except LookupError:
            encoding = "unknown"
        if reconfigure is None or encoding == "utf-8":
            continue
        if encoding == "ascii":
            reconfigure(encoding="utf-8", errors="surrogateescape")
        else:
            reconfigure(errors="backslashreplace")


def entry() -> NoReturn:
    """The process's entry point (the ``alfredc`` script, ``python -m alfred_dsl``): :func:`main`,
    then a quick exit.

    Python's own exit tears down every module and object one by one: ~25 ms after a run,
    a tenth of a short ``alfredc run`` (bench/README.md). The process ends instead as
    ``sys.exit`` would have it end for everything one can observe: the ``atexit`` handlers
    run (the cgroup folders of the run are removed there) and the standard streams are
    flushed, then ``os._exit``. When a thread that is not a daemon still runs, Python waits
    for it: so does this, through the ordinary exit. ``main`` itself keeps raising
    ``SystemExit``, for callers in the same process (tests).

    The process also compiles the methods that dataclasses and attrs generate through the
    code cache (``_codecache``): the same code, compiled once per install rather than at
    every start.
    """
    from .._codecache import enable as cache_generated_code

    cache_generated_code()
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    if code is None:
        status = EXIT_OK
    elif isinstance(code, int):
        status = code
    else:  # as Python prints a non-integer exit code
        sys.stderr.write(f"{code}\n")
        status = 1
    threading = sys.modules.get("threading")
    if threading is not None and any(
        not t.daemon and t is not threading.main_thread() for t in threading.enumerate()
    ):
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the reader left (see main), or closed
            pass
        except OSError:  # a full disk: as Python's own exit, status 120 when it was 0
            status = status or 120
    os._exit(status)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of ``alfredc``: never lets a Python traceback reach the user."""
    # The compiler allocates many small, acyclic objects; the default thresholds make the
    # cyclic collector run hundreds of times on a large file (about 15% of a 10k-stage check).
    gc.set_threshold(*GC_THRESHOLDS)
    _streams_that_take_any_text()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(os.environ.get("ALFRED_DEBUG"))
    try:
        status = cli.main(args=argv, prog_name="alfredc", standalone_mode=False)
        sys.exit(status if isinstance(status, int) else EXIT_OK)
    except click.exceptions.Abort:
        click.echo("alfredc: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.UsageError as exc:
        exc.show()  # the usage line, a pointer to --help, then the error
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        from ._common import print_error

        print_error(exc.format_message())
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
