"""The ``mcp`` executor: a stage calls one tool of a Model Context Protocol server.

An agent of ``kind = mcp`` names its server: ``server = [argv]`` (stdio: alfred starts
it) or ``url = "http://host/mcp"`` (streamable HTTP). One connection per agent per run,
opened at the agent's first stage and reused by the others, closed when the run ends
(:func:`close_run`, called by the scheduler however the run ends). A connection belongs to
the run's attempts that share a work folder: all of them in ``alfredc run``, one task of an
exported module (each has its own, and stops its server when it ends).

The official SDK (``mcp``) runs its session on an asyncio loop in a thread of its own: the
session outlives each stage's Trio task and cancel scope, and a stage that times out or is
cancelled cancels only its own call. The SDK starts a stdio server in a new session
(process group) and kills the group when the connection closes; it is launched through
``_orphan.py``, so that on Linux the kernel kills it when alfred dies without closing it
(``kill -9``), even in the middle of a call.
A server that dies, or a call that cannot reach it, is a failed attempt; the next attempt
starts a new server.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import trio

from ..compiler._plan import PlanAgent, PlanStage, thaw

if TYPE_CHECKING:
    # asyncio (and concurrent.futures) load with the first connection: a run without an
    # mcp stage does not pay for them at start-up.
    import asyncio
    import concurrent.futures

    from mcp.client.session import ClientSession

    from ._executors import AttemptContext, AttemptOutcome

__all__ = ["McpExecutor", "McpValues", "close_run", "outputs_of", "resolve_mcp"]

#: The launcher that makes a stdio server die with alfred (a script: it imports only the stdlib).
_ORPHAN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_orphan.py")
#: How long opening a connection (spawn, initialize) may take before the attempt fails.
CONNECT_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class McpValues:
    """What one attempt of an mcp stage sends, every ``${...}`` resolved."""

    tool: str
    arguments: Mapping[str, Any]
    headers: Mapping[str, str]
    #: The argv of a stdio server (``${env.ALFRED_PYTHON}`` and the like resolved).
    server: tuple[str, ...] = ()


def resolve_mcp(stage: PlanStage, agent: PlanAgent, render: Any) -> McpValues | None:
    """The tool, arguments and headers of an mcp stage; ``render(value)`` resolves ``${...}``."""
    if agent.kind != "mcp" or stage.mcp is None:
        return None
    arguments = render(thaw(stage.mcp.get("arguments") or {}))
    headers = agent.options.get("headers")
    rendered = render(thaw(headers)) if isinstance(headers, Mapping) else {}
    server = agent.options.get("server")
    return McpValues(
        tool=str(stage.mcp.get("tool") or ""),
        arguments=dict(arguments) if isinstance(arguments, Mapping) else {},
        headers={str(k): str(v) for k, v in rendered.items()},
        server=tuple(str(render(part)) for part in server) if isinstance(server, tuple | list) else (),
    )


def outputs_of(result: Any) -> dict[str, Any]:
    """A tool's result as a stage's outputs: its structured content key by key, else a text
    content that is a JSON object key by key, else the text as ``text``."""
    structured = getattr(result, "structured_content", None)
    if isinstance(structured, Mapping):
        return {str(k): v for k, v in structured.items()}
    text = _text_of(result)
    with contextlib.suppress(ValueError):
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            return {str(k): v for k, v in parsed.items()}
    return {"text": text}


def _text_of(result: Any) -> str:
    parts = [getattr(item, "text", None) for item in getattr(result, "content", None) or ()]
    return "\n".join(part for part in parts if isinstance(part, str))


#: A connection's owner: run id, the attempts' work folder, agent name.
_Key = tuple[str, str, str]


class _Connection:
    """One MCP session on an asyncio loop in its own thread."""

    def __init__(self, key: _Key, errlog_path: str | None) -> None:
        import asyncio

        self.key = key
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"mcp-{key[2]}", daemon=True)
        self.thread.start()
        self.session: ClientSession | None = None
        self.dead: str | None = None
        self._closing: asyncio.Event | None = None
        self._task: concurrent.futures.Future[None] | None = None
        self._errlog_path = errlog_path
        self._errlog: TextIO | None = None

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def _serve(self, agent: PlanAgent, env: Mapping[str, str], cwd: str, values: McpValues,
                     ready: concurrent.futures.Future[None]) -> None:
        import asyncio

        from mcp.client.session import ClientSession

        self._closing = asyncio.Event()
        try:
            async with contextlib.AsyncExitStack() as stack:
                if agent.url:
                    from mcp.client.streamable_http import streamable_http_client
                    from mcp.shared._httpx_utils import create_mcp_http_client

                    client = await stack.enter_async_context(
                        create_mcp_http_client(headers=dict(values.headers) or None)
                    )
                    streams = await stack.enter_async_context(
                        streamable_http_client(agent.url, http_client=client)
                    )
                else:
                    from mcp.client.stdio import StdioServerParameters, stdio_client

                    argv = list(values.server)
                    if self._errlog_path is not None:
                        self._errlog = open(self._errlog_path, "a", encoding="utf-8")  # noqa: SIM115
                    # Through _orphan: the server dies with alfred even when alfred is killed.
                    params = StdioServerParameters(
                        command=sys.executable, args=["-I", _ORPHAN, *argv], env=dict(env) or None, cwd=cwd,
                    )
                    streams = await stack.enter_async_context(
                        stdio_client(params, errlog=self._errlog or open(os.devnull, "w"))  # noqa: SIM115
                    )
                read, write = streams[0], streams[1]
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                self.session = session
                ready.set_result(None)
                await self._closing.wait()
        except BaseException as exc:
            self.dead = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(self.dead))
            if not isinstance(exc, Exception):
                raise
        finally:
            self.session = None
            self.dead = self.dead or "the connection was closed"
            if self._errlog is not None:
                self._errlog.close()

    def open(self, agent: PlanAgent, env: Mapping[str, str], cwd: str, values: McpValues) -> None:
        """Start the session; blocks until it is initialized (raises if it cannot be)."""
        import concurrent.futures

        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._task = self.submit(self._serve(agent, env, cwd, values, ready))
        ready.result(timeout=CONNECT_TIMEOUT_S)

    def close(self, timeout: float = 10.0) -> None:
        """Close the session (the SDK stops a stdio server and its process group) and the loop."""
        closing = self._closing
        if closing is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(closing.set)
        if self._task is not None:
            with contextlib.suppress(BaseException):
                self._task.result(timeout=timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=timeout)


_LOCK = threading.Lock()
_CONNECTIONS: dict[_Key, _Connection] = {}


def close_run(run_id: str, work_dir: str | None = None) -> None:
    """Close every connection the run ``run_id`` opened, or those of its attempts in
    ``work_dir`` (an exported task's): their stdio servers stop."""
    with _LOCK:
        mine = [key for key in _CONNECTIONS if key[0] == run_id and work_dir in (None, key[1])]
        connections = [_CONNECTIONS.pop(key) for key in mine]
    for connection in connections:
        connection.close()


@atexit.register
def _close_all() -> None:  # a run that never reached its end (an embedding program exits)
    with _LOCK:
        run_ids = {key[0] for key in _CONNECTIONS}
    for run_id in run_ids:
        close_run(run_id)


def _connection(ctx: AttemptContext, values: McpValues) -> _Connection:
    """The run's open connection to the agent's server, opened now if there is none."""
    key = (ctx.run_id, str(ctx.work_dir), ctx.agent.name)
    with _LOCK:
        found = _CONNECTIONS.get(key)
        if found is not None and found.session is not None and found.dead is None:
            return found
        stale = _CONNECTIONS.pop(key, None)
    if stale is not None:
        stale.close(timeout=5.0)
    connection = _Connection(key, os.path.join(str(ctx.work_dir), f"mcp-{ctx.agent.name}.log"))
    try:
        connection.open(ctx.agent, ctx.env, str(ctx.cwd), values)
    except BaseException:
        connection.close(timeout=5.0)
        raise
    with _LOCK:
        _CONNECTIONS[key] = connection
    return connection


class McpExecutor:
    """Call the stage's ``tool`` with its ``arguments`` on the agent's MCP server."""

    #: Connections opened by a thread at a time: two stages of one agent share one server.
    _opening = threading.Lock()

    async def run(self, ctx: AttemptContext) -> AttemptOutcome:
        from ._executors import AttemptOutcome, append_log

        values = ctx.mcp
        if values is None or not values.tool:
            return AttemptOutcome(ok=False, error="nothing to call: the mcp stage has no `tool`",
                                  permanent="the stage names no tool")
        if not ctx.agent.url and not ctx.agent.options.get("server"):
            return AttemptOutcome(
                ok=False, error=f"mcp agent `{ctx.agent.name}` has neither `server` nor `url`",
                permanent="the agent names no server",
            )
        where = ctx.agent.url or " ".join(str(p) for p in ctx.agent.options.get("server") or ())

        def connect() -> _Connection:
            with self._opening:
                return _connection(ctx, values)

        try:
            connection = await trio.to_thread.run_sync(connect, abandon_on_cancel=True)
        except ModuleNotFoundError as exc:
            error = f"mcp agents need the `mcp` package ({exc})"
            return AttemptOutcome(ok=False, error=error, log_path=append_log(ctx, f"alfred: {error}\n"),
                                  permanent="pip install mcp")
        except Exception as exc:
            error = ctx.masker.text(f"cannot connect to MCP server `{where}`: {_describe(exc)}")
            return AttemptOutcome(ok=False, error=error, log_path=append_log(ctx, f"alfred: {error}\n"))
        session = connection.session
        if session is None:
            error = f"MCP server `{where}` is gone: {connection.dead}"
            return AttemptOutcome(ok=False, error=error, log_path=append_log(ctx, f"alfred: {error}\n"))
        arguments = dict(values.arguments)
        append_log(ctx, f"call {values.tool} {json.dumps(ctx.masker.data(arguments), default=str)}\n")
        future = connection.submit(session.call_tool(values.tool, arguments))
        try:
            result = await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)
        except trio.Cancelled:
            future.cancel()  # the call stops; the server goes on serving the other stages
            raise
        except BaseException as exc:
            # The connection broke (the server died?): the next attempt opens a new one.
            connection.dead = connection.dead or _describe(exc)
            error = ctx.masker.text(f"MCP call `{values.tool}` failed: {_describe(exc)}")
            return AttemptOutcome(ok=False, error=error, log_path=append_log(ctx, f"alfred: {error}\n"))
        text = _text_of(result)
        log = append_log(ctx, text + ("\n" if text and not text.endswith("\n") else ""))
        if getattr(result, "is_error", False):
            error = ctx.masker.text(f"tool `{values.tool}` failed: {_first_line(text)}")
            return AttemptOutcome(ok=False, error=error, log_path=log)
        return AttemptOutcome(ok=True, outputs=outputs_of(result), log_path=log)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    if isinstance(exc, TimeoutError):  # concurrent.futures.TimeoutError is TimeoutError (3.11)
        return f"no answer within {CONNECT_TIMEOUT_S:g}s"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(no message)"
    return line if len(line) <= limit else line[: limit - 3] + "..."
