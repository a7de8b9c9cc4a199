"""``alfredc docs FILE... -o DIR [--format md|html]``: one page per workflow, plus an index.

Every workflow declared in each file is documented; one that does not compile still gets
its page (without plan figures) and its diagnostics are printed on stderr.
Exit status: 0 pages written and no errors, 1 some workflow has errors, 2 a file cannot be read.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._colour import should_colour
from .._diagnostics import Diagnostic
from .._render_diag import exit_status, render

if TYPE_CHECKING:
    from ..render._docs import WorkflowDoc

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
    from ..render._docs import write_html, write_markdown

    pages, diagnostics = _collect(files)
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


def _collect(paths: Iterable[str]) -> tuple[list[WorkflowDoc], list[Diagnostic]]:
    """Compile every workflow declared in each file of ``paths`` and make its page.

    A template (required params) is compiled with placeholder values; the errors of a
    workflow are returned as diagnostics and its page has no plan figures.
    """
    from ..compiler._pipeline import compile_path, merge
    from ..compiler.load import load
    from ..render._docs import params_of, placeholder_values, workflow_doc

    pages: list[WorkflowDoc] = []
    diagnostics: list[Diagnostic] = []
    taken: set[str] = set()
    for path in paths:
        workspace, found = load(Path(path))
        diagnostics.extend(found)
        if workspace is None:
            continue
        workflows = workspace.entry.data.get("workflows")
        agents = workspace.data.get("agents")
        if not isinstance(workflows, Mapping):
            continue
        for name, raw in workflows.items():
            workflow: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            param_spec = workflow.get("params")
            params = params_of(param_spec if isinstance(param_spec, Mapping) else {})
            placeholders = placeholder_values(params)
            plan, compiled = compile_path(str(path), str(name), placeholders)
            diagnostics.extend(compiled)
            pages.append(workflow_doc(
                str(name), workflow, agents if isinstance(agents, Mapping) else {}, path=Path(path),
                root=workspace.root, plan=None if plan is None or any(d.is_error for d in compiled) else plan,
                params=params, placeholders=placeholders, taken=taken,
            ))
    # Each workflow's compilation reports the file's shared problems again: once each here,
    # so that `docs` prints what `check` prints.
    return pages, merge(diagnostics)
