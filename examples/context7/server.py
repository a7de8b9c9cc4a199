"""A stand-in for Context7 (``npx -y @upstash/context7-mcp``) that works offline.

It serves Context7's two tools, ``resolve-library-id`` and ``get-library-docs``, over the
documents of ``docs/`` beside it (``<library>.md``, whose first line is ``# <library>
<version>: ...``), through MCP over stdio. It needs the MCP SDK: ``pip install 'alfred-dsl[mcp]'``.
"""

from __future__ import annotations

from pathlib import Path

from mcp.server.mcpserver import MCPServer

DOCS = Path(__file__).with_name("docs")
server = MCPServer("context7-stand-in")


@server.tool(name="resolve-library-id", structured_output=False)
def resolve_library_id(libraryName: str) -> str:
    """The Context7-compatible library id of ``libraryName``."""
    name = libraryName.strip().lower()
    path = DOCS / f"{name}.md"
    if not path.is_file():
        return f"No library matches {libraryName!r}."
    version = path.read_text(encoding="utf-8").split()[2].rstrip(":")
    return f"- Title: {name}\n- Context7-compatible library ID: /stand-in/{name}\n- Version: {version}\n"


@server.tool(name="get-library-docs", structured_output=False)
def get_library_docs(context7CompatibleLibraryID: str, topic: str = "", tokens: int = 5000) -> str:
    """The documentation of a library, optionally about ``topic``."""
    path = DOCS / f"{context7CompatibleLibraryID.rstrip('/').rsplit('/', 1)[-1]}.md"
    if not path.is_file():
        raise ValueError(f"unknown library id {context7CompatibleLibraryID!r}")
    text = path.read_text(encoding="utf-8")
    return f"TOPIC: {topic}\n\n{text}" if topic else text


if __name__ == "__main__":
    server.run("stdio")
