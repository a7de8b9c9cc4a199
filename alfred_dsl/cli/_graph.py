"""``alfredc graph FILE``: the dependency graph as Mermaid, Graphviz DOT or JSON."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import compile_for_cli, param_option

__all__ = ["graph"]

FORMATS = ("mermaid", "dot", "json")


@click.command()
@click.argument("file", type=click.Path(dir_okay=True, path_type=str))
@param_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="mermaid",
    show_default=True,
    help="mermaid (paste into Markdown), dot (Graphviz: `dot -Tsvg`) or json (nodes and edges).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the graph to this file instead of stdout.",
)
def graph(
    file: str, workflow: str | None, params: tuple[str, ...], colour: str, fmt: str, output: Path | None
) -> int:
    """Compile FILE and draw its dependency graph.

    Each stage shows its estimate; the critical path is highlighted; stages included
    with `use ... as ALIAS` are grouped in a box per alias.
    """
    compiled = compile_for_cli(file, workflow, params, colour)
    if isinstance(compiled, int):
        return compiled
    from ..render import dumps, graph_to_json, to_dot, to_mermaid

    if fmt == "json":
        text = dumps(graph_to_json(compiled))
    elif fmt == "dot":
        text = to_dot(compiled)
    else:
        text = to_mermaid(compiled)
    if output is None:
        click.echo(text, nl=False)
        return 0
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        click.echo(f"alfredc: cannot write {output}: {exc.strerror or exc}", err=True)
        return 2
    return 0
