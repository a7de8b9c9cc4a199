"""``alfredc schema``: print the JSON Schema of alfred's YAML/JSON documents, for editors.

Point ``yaml-language-server`` (VS Code's YAML extension, Neovim, ...) at it with a first
line ``# yaml-language-server: $schema=<path or URL>``, or in a JSON file with a top-level
``"$schema"`` key; ``alfredc schema --path`` prints where the shipped copy lives.
"""

from __future__ import annotations

import click

from .._resources import schema_path
from ..compiler._schema import schema_text

__all__ = ["schema"]


@click.command("schema")
@click.option(
    "--path",
    "show_path",
    is_flag=True,
    help="Print the path of the schema file instead of its text.",
)
def schema(show_path: bool) -> None:
    """Print the JSON Schema (2020-12) of the normalized workflow document.

    Editors use it to complete and check .yaml/.json workflows: put
    `# yaml-language-server: $schema=PATH` on the first line of a YAML file.
    """
    if show_path:
        click.echo(str(schema_path()))
        return
    click.echo(schema_text(), nl=False)
