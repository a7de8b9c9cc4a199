"""An MCP server that mimics Context7's two tools over the documents in ``docs/``.

``python context7_fixture.py`` serves stdio; ``python context7_fixture.py --http PORT``
serves streamable HTTP on 127.0.0.1:PORT/mcp. ``FIXTURE_DOCS`` names another folder of
documents (``<library>.md``, its first line ``# <library> <version>: ...``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer

DOCS = Path(os.environ.get("FIXTURE_DOCS") or Path(__file__).with_name("docs"))
server = MCPServer("context7-fixture")


def _version(library: str) -> str:
    first = (DOCS / f"{library}.md").read_text(encoding="utf-8").splitlines()[0]
    return first.split()[2].rstrip(":")


@server.tool(name="resolve-library-id", structured_output=False)
def resolve_library_id(libraryName: str) -> str:
    """The Context7-compatible library id of ``libraryName``."""
    name = libraryName.strip().lower()
    if not (DOCS / f"{name}.md").is_file():
        known = ", ".join(sorted(p.stem for p in DOCS.glob("*.md")))
        return f"No library matches {libraryName!r}. Known: {known}"
    version = _version(name)
    return f"- Title: {name}\n- Context7-compatible library ID: /fixture/{name}\n- Version: {version}\n"


@server.tool(name="get-library-docs", structured_output=False)
def get_library_docs(context7CompatibleLibraryID: str, topic: str = "", tokens: int = 5000) -> str:
    """The documentation of a library, optionally about ``topic``."""
    name = context7CompatibleLibraryID.rstrip("/").rsplit("/", 1)[-1]
    path = DOCS / f"{name}.md"
    if not path.is_file():
        raise ValueError(f"unknown library id {context7CompatibleLibraryID!r}")
    text = path.read_text(encoding="utf-8")
    return text if not topic else f"TOPIC: {topic}\n\n{text}"


@server.tool()
def add(a: int, b: int) -> dict[str, int]:
    """Structured content: ``{"sum": a + b}``."""
    return {"sum": a + b}


@server.tool(structured_output=False)
def echo(message: str) -> str:
    """Plain text back."""
    return message


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
