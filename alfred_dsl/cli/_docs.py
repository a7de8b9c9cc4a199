"""``alfredc docs FILE... -o DIR [--format md|html]``: one page per workflow, plus an index.

Every workflow declared in each file is documented; one that does not compile still gets
its page (without plan figures) and its diagnostics are printed on stderr.
Exit status: 0 pages written and no errors, 1 some workflow has errors, 2 a file cannot be read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .._render_diag import exit_status, render, should_colour

__all__ = ["docs"]


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False, path_type=Path),
              metavar="DIR", help="Directory to write the pages to (created if needed).")
@click.option("--format", "fmt", type=click.Choice(("md", "html")), default="md", show_default=True,
              help="md: Markdown with Mermaid diagrams; html: a static site with inline SVG diagrams.")
@click.option("--title", default="Workflows", show_default=True, help="Title of the index page.")
def docs(files: tuple[str, ...], output: Path, fmt: str, title: str) -> int:
    """Render documentation pages for every workflow of FILE..."""
    from ..render._docs import collect, write_html, write_markdown

    pages, diagnostics = collect(files)
    if diagnostics:
        stream = sys.stderr
        colour = should_colour(stream)
        click.echo(render(diagnostics, "text", colour=colour), file=stream, nl=False, color=colour)
    status = exit_status(diagnostics)
    if status == 2:
        return status
    try:
        written = (write_html if fmt == "html" else write_markdown)(pages, output, title=title)
    except OSError as exc:
        raise click.ClickException(f"cannot write to {output}: {exc.strerror or exc}") from exc
    click.echo(f"wrote {len(written)} pages to {output}", err=True)
    return status
