"""``alfredc check FILE...``: every check of every workflow of every file, in one pass.

Exit status: 0 no errors (warnings allowed), 1 errors (or warnings with ``--strict``),
2 usage or I/O error (a file that cannot be read: A001; an invalid ``alfred.toml``: A004).
``--fix`` applies the fixes diagnostics carry; the status is then that of what remains.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from .._diagnostics import Diagnostic
from .._render_diag import exit_status
from ._common import colour_option, emit

__all__ = ["check"]

FORMATS = ("text", "json", "sarif", "github")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="Output format: text for people, json for tools, sarif for code-scanning services, "
    "github for GitHub Actions annotations.",
)
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@click.option("--fix", is_flag=True, help="Apply the fixes problems carry, write the files, report the rest.")
@click.option("--statistics", is_flag=True, help="Print how often each code occurs instead of the problems.")
@click.option(
    "--online", is_flag=True,
    help="Also start or connect to each MCP server: check stages' tools and arguments against "
    "the tools it lists, and pinned docs against what it serves now.",
)
@colour_option
def check(
    files: tuple[str, ...], fmt: str, strict: bool, fix: bool, statistics: bool, colour: str,
    online: bool = False,
) -> int:
    """Check FILE... (.alfred, .yaml, .yml or .json) and report every problem found.

    Parses, validates against the schema, resolves names, type-checks params and
    references and analyses the graph of every workflow. Warnings the project's
    alfred.toml ([check] select/ignore) or an `# alfred: ignore[CODE]` comment on their
    line turns off are not reported. Without --online no MCP server is started. Exit
    status: 0 no errors, 1 errors (or warnings with --strict), 2 a file cannot be read or
    alfred.toml is invalid.
    """
    from ..compiler._fixing import CONFIG_CODE, check_and_fix, check_with_config

    if statistics and fmt not in ("text", "json"):
        raise click.UsageError("--statistics prints text or json, not " + fmt)
    fixed: list[dict[str, object]] | None = None
    if fix:
        diags, fixed_files, notes = check_and_fix(list(files))
        fixed = [entry.as_json() for entry in fixed_files]
        if fmt == "text":
            for entry in fixed_files:
                click.echo(f"fixed {entry.count} problem{'' if entry.count == 1 else 's'} in {entry.file}")
        for note in notes:
            click.echo(note, err=True)
    else:
        diags = check_with_config(list(files))
    if online:
        from ..compiler._pipeline import finish
        from ._online import online_diagnostics

        diags = [*(d for d in diags if d.code == CONFIG_CODE), *finish(
            [*(d for d in diags if d.code != CONFIG_CODE), *online_diagnostics(list(files))]
        )]
    if statistics:
        _print_statistics(diags, fmt, fixed)
    elif fmt == "json" and fixed is not None:
        from .._render_diag import render_json

        click.echo(render_json(diags, fixed=fixed), nl=False)
    else:
        emit(diags, fmt, colour=colour)
        if fmt == "text" and not diags:
            count = len(files)
            click.echo(f"ok: {count} file{'' if count == 1 else 's'} checked, no problems found")
    if any(d.code == CONFIG_CODE for d in diags):
        return 2
    return exit_status(diags, strict=strict)


def _print_statistics(diags: Sequence[Diagnostic], fmt: str, fixed: list[dict[str, object]] | None) -> None:
    from .._render_diag import FORMAT_VERSION, summary
    from ..compiler._fixing import statistics

    rows = statistics(diags)
    if fmt == "json":
        errors, warnings = summary(diags)
        document: dict[str, object] = {
            "format_version": FORMAT_VERSION,
            "statistics": [row.as_json() for row in rows],
            "summary": {"errors": errors, "warnings": warnings},
        }
        if fixed is not None:
            document["fixed"] = fixed
        click.echo(json.dumps(document, indent=2))
        return
    width = max((len(str(row.count)) for row in rows), default=1)
    for row in rows:
        marker = "[*] " if row.fixable else ""
        click.echo(f"{row.count:>{width}}\t{row.code}\t{marker}{row.name}")
