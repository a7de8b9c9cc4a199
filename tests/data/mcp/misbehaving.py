"""An MCP server that misbehaves: slow tools, a tool that kills the server, a failing tool.

``python misbehaving.py`` serves stdio; ``--http PORT`` serves streamable HTTP on 127.0.0.1.
Each start appends the server's pid to the file ``$MISBEHAVING_PIDS`` when it is set.
"""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("misbehaving")


@server.tool()
def pid() -> dict[str, int]:
    """This server's process id."""
    return {"pid": os.getpid()}


@server.tool(structured_output=False)
def slow(seconds: float) -> str:
    """Answers after ``seconds``."""
    time.sleep(seconds)
    return "finally"


@server.tool(structured_output=False)
def crash(code: int = 3) -> str:
    """The server process dies in the middle of the call."""
    os._exit(code)


@server.tool(structured_output=False)
def fail(reason: str) -> str:
    """A tool error (``isError``), not a crash."""
    raise ToolError(reason)


@server.tool(structured_output=False)
def flaky(marker: str) -> str:
    """Dies the first time (when the file ``marker`` does not exist yet), answers after."""
    if not os.path.exists(marker):
        with open(marker, "w") as handle:
            handle.write("crashed once")
        os._exit(4)
    return "second time lucky"


@server.tool(structured_output=False)
def json_text() -> str:
    """A JSON object as text content (no structured content)."""
    return '{"answer": 42, "unit": "none"}'


if __name__ == "__main__":
    if os.environ.get("MISBEHAVING_PIDS"):
        with open(os.environ["MISBEHAVING_PIDS"], "a") as pids:
            pids.write(f"{os.getpid()}\n")
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
