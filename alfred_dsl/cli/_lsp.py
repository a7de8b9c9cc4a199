"""``alfredc lsp``: the language server for editors (docs/editors.md)."""

from __future__ import annotations

import click

__all__ = ["lsp"]


@click.command("lsp")
@click.option("--stdio", is_flag=True, help="Speak over stdin/stdout (the default and only transport).")
def lsp(stdio: bool) -> None:
    """Run the language server over stdin/stdout for VS Code, Neovim, Helix and others.

    It reports diagnostics while you type, with quick fixes, and answers hover, go to
    definition, references, rename, completion, formatting, document symbols and semantic
    tokens. See docs/editors.md for the set-up of each editor.
    """
    from ..lsp import serve

    serve()
