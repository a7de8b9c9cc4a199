"""The language server for alfred files (``alfredc lsp``); see docs/editors.md.

A back end like the renderers: it depends on the compiler and the plan only. pygls is
imported when the server starts, never by the other commands.
"""

from __future__ import annotations

__all__ = ["serve"]


def serve() -> None:
    """Run the language server on stdin/stdout."""
    from ._server import serve as run

    run()
