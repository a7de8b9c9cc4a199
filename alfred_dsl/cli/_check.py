"""``alfredc check FILE...``: every check of every workflow of every file, in one pass.

Exit status: 0 no errors (warnings allowed), 1 errors (or warnings with ``--strict``),
2 usage or I/O error (a file that cannot be read: A001).
"""

from __future__ import annotations

import click

from .._render_diag import exit_status
from ._common import colour_option, emit

__all__ = ["check"]

FORMATS = ("text", "json", "sarif")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="Output format: text for people, json for tools, sarif for code-scanning services.",
)
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@colour_option
def check(files: tuple[str, ...], fmt: str, strict: bool, colour: str) -> int:
    """Check FILE... (.alfred, .yaml, .yml or .json) and report every problem found.

    Parses, validates against the schema, resolves names, type-checks params and
    references and analyses the graph of every workflow. Exit status: 0 no errors,
    1 errors (or warnings with --strict), 2 a file cannot be read.
    """
    from ..compiler._pipeline import check_paths

    diags = check_paths(list(files))
    emit(diags, fmt, colour=colour)
    if fmt == "text" and not diags:
        count = len(files)
        click.echo(f"ok: {count} file{'' if count == 1 else 's'} checked, no problems found")
    return exit_status(diags, strict=strict)
