"""Documentation a stage reads (``docs``), from a Context7-like MCP server, pinned by ``alfred.lock``.

A docs agent serves two tools (Context7's names by default, an agent's ``docs_tools`` renames
them): one resolves a library name to its id (and version), the other returns the id's
documentation, optionally about a topic. :func:`query_server` opens one short session to an
agent's server (stdio through the same ``_orphan`` launcher as mcp stages, or streamable
HTTP) to list its tools and fetch documents; ``alfredc lock`` and ``check --online`` use it.

Fetched texts live in a content-addressed cache, ``<state dir>/docs/<sha256>``. Before an
attempt of a stage with ``docs`` (:func:`prepare_stage_docs`), each entry is read from the
cache under the hash ``alfred.lock`` pins, so a locked run is reproducible and works
offline; an entry the cache lacks is fetched again and must hash to the pinned value; an
entry no lock pins is fetched at each run. The texts are written, one after the other, to
``<run folder>/<stage>.docs.md``: the file ``$ALFRED_DOCS`` names.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..compiler._docslock import (
    DocRequest,
    FileLock,
    LockedDoc,
    LockedTool,
    LockError,
    docs_tools_of,
    read_file_lock,
    sha256_text,
)
from ..compiler._plan import PlanAgent, thaw

if TYPE_CHECKING:
    from mcp.client.session import ClientSession

__all__ = [
    "DocsCache",
    "DocsError",
    "FetchedDoc",
    "ServerAnswer",
    "ServerSpec",
    "docs_text",
    "prepare_stage_docs",
    "query_server",
    "server_spec",
]

#: The launcher that makes a stdio server die with alfred (runtime/_mcp.py uses it too).
_ORPHAN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_orphan.py")
#: How long one session (start, list, every fetch) may take.
SESSION_TIMEOUT_S = 120.0

_LIBRARY_ID = re.compile(r"Context7-compatible library ID:\s*(\S+)", re.IGNORECASE)
_VERSION = re.compile(r"^\s*-?\s*Versions?:\s*([^\s,]+)", re.IGNORECASE | re.MULTILINE)


class DocsError(Exception):
    """A server could not be reached, or did not give what a docs entry asks for."""


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """How to reach one agent's MCP server, every ``${...}`` resolved."""

    agent: str
    argv: tuple[str, ...] = ()
    url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    cwd: str = "."

    def describe(self) -> str:
        return self.url or " ".join(self.argv)


def server_spec(
    name: str, agent: Mapping[str, Any], render: Callable[[Any], Any], base_env: Mapping[str, str], cwd: str
) -> ServerSpec:
    """The server of agent ``name`` (its block's values, or a plan agent's through :func:`agent_values`);
    ``render`` resolves ``${...}`` (env, secrets, params)."""
    server = agent.get("server")
    argv = tuple(str(render(part)) for part in server) if isinstance(server, list | tuple) else ()
    url = agent.get("url")
    env = {**base_env, **{str(k): str(render(v)) for k, v in (agent.get("env") or {}).items()}}
    headers = {str(k): str(render(v)) for k, v in (agent.get("headers") or {}).items()}
    own_cwd = agent.get("cwd")
    folder = os.path.join(cwd, own_cwd) if isinstance(own_cwd, str) else cwd
    return ServerSpec(agent=name, argv=argv, url=str(render(url)) if isinstance(url, str) else None,
                      env=env, headers=headers, cwd=folder)


def agent_values(agent: PlanAgent) -> dict[str, Any]:
    """A plan agent as the values of its block (what :func:`server_spec` reads)."""
    options = thaw(agent.options)
    return {**options, "url": agent.url, "env": thaw(agent.env)}


@dataclass(frozen=True, slots=True)
class FetchedDoc:
    request: DocRequest
    library_id: str
    version: str | None
    text: str

    @property
    def sha256(self) -> str:
        return sha256_text(self.text)

    def locked(self) -> LockedDoc:
        return LockedDoc(self.request, self.library_id, self.version, self.sha256,
                         len(self.text.encode("utf-8", "surrogateescape")))


@dataclass(frozen=True, slots=True)
class ServerAnswer:
    tools: tuple[LockedTool, ...]
    docs: tuple[FetchedDoc, ...]


def query_server(
    spec: ServerSpec,
    requests: Sequence[DocRequest] = (),
    docs_tools: Mapping[str, str] | None = None,
    *,
    errlog: str | None = None,
    timeout_s: float = SESSION_TIMEOUT_S,
) -> ServerAnswer:
    """One session with ``spec``'s server: its tools, and the documents of ``requests``.
    Blocking (its own asyncio loop); :class:`DocsError` when the server fails us."""
    if not spec.argv and not spec.url:
        raise DocsError(f"agent `{spec.agent}` names no server")
    tools = dict(docs_tools or docs_tools_of(None))
    try:
        return asyncio.run(asyncio.wait_for(_query(spec, requests, tools, errlog), timeout_s))
    except DocsError:
        raise
    except ModuleNotFoundError as exc:
        raise DocsError(f"MCP servers need the `mcp` package ({exc}): pip install 'alfred-dsl[mcp]'") from exc
    except TimeoutError as exc:
        raise DocsError(f"MCP server `{spec.describe()}` gave no answer within {timeout_s:g}s") from exc
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise DocsError(f"cannot talk to MCP server `{spec.describe()}`: {_describe(exc)}") from exc


async def _query(
    spec: ServerSpec, requests: Sequence[DocRequest], tools: Mapping[str, str], errlog: str | None
) -> ServerAnswer:
    async with _session(spec, errlog) as session:
        listed = await session.list_tools()
        found = tuple(
            LockedTool(tool.name, dict(tool.input_schema) if isinstance(tool.input_schema, Mapping) else {})
            for tool in listed.tools
        )
        names = {tool.name for tool in found}
        fetched: list[FetchedDoc] = []
        for request in requests:
            for role in ("resolve", "get"):
                if tools[role] not in names:
                    known = ", ".join(sorted(names)) or "none"
                    raise DocsError(
                        f"the server of agent `{spec.agent}` has no tool `{tools[role]}` "
                        f"(its tools: {known}); "
                        f"name its {role} tool in the agent's `docs_tools`"
                    )
            fetched.append(await _fetch(session, request, tools))
        return ServerAnswer(tools=found, docs=tuple(fetched))


async def _fetch(session: ClientSession, request: DocRequest, tools: Mapping[str, str]) -> FetchedDoc:
    resolved = await session.call_tool(tools["resolve"], {"libraryName": request.library})
    text = _text_of(resolved)
    if getattr(resolved, "is_error", False):
        raise DocsError(f"`{tools['resolve']}` failed for `{request.library}`: {_first_line(text)}")
    library_id, version = _resolved(resolved, text)
    if library_id is None:
        raise DocsError(f"`{tools['resolve']}` found no library for `{request.library}`: {_first_line(text)}")
    arguments: dict[str, Any] = {"context7CompatibleLibraryID": library_id}
    if request.topic:
        arguments["topic"] = request.topic
    if request.tokens:
        arguments["tokens"] = request.tokens
    got = await session.call_tool(tools["get"], arguments)
    body = _text_of(got)
    if getattr(got, "is_error", False):
        raise DocsError(f"`{tools['get']}` failed for `{library_id}`: {_first_line(body)}")
    return FetchedDoc(request, library_id, version, body)


def _resolved(result: Any, text: str) -> tuple[str | None, str | None]:
    """The library id and version of a resolve tool's answer: structured, else Context7's text."""
    structured = getattr(result, "structured_content", None)
    if isinstance(structured, Mapping):
        found = next((structured[k] for k in ("libraryId", "library_id", "id", "context7CompatibleLibraryID")
                      if isinstance(structured.get(k), str)), None)
        if found is not None:
            version = structured.get("version")
            return found, str(version) if version is not None else None
    match = _LIBRARY_ID.search(text)
    if match is None:
        return None, None
    rest = text[match.end():]
    following = _LIBRARY_ID.search(rest)
    version = _VERSION.search(rest[: following.start()] if following else rest)
    return match.group(1), version.group(1) if version else None


@contextlib.asynccontextmanager
async def _session(spec: ServerSpec, errlog: str | None) -> AsyncIterator[ClientSession]:
    from mcp.client.session import ClientSession

    async with contextlib.AsyncExitStack() as stack:
        if spec.url:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            client = await stack.enter_async_context(
                create_mcp_http_client(headers=dict(spec.headers) or None)
            )
            streams = await stack.enter_async_context(streamable_http_client(spec.url, http_client=client))
        else:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            log = stack.enter_context(open(errlog or os.devnull, "a", encoding="utf-8"))  # noqa: SIM115 (closed by the stack)
            # Through _orphan: the server dies with alfred even when alfred is killed.
            params = StdioServerParameters(command=sys.executable, args=["-I", _ORPHAN, *spec.argv],
                                           env=dict(spec.env) or None, cwd=spec.cwd)
            streams = await stack.enter_async_context(stdio_client(params, errlog=log))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        await session.initialize()
        yield session


def _text_of(result: Any) -> str:
    parts = [getattr(item, "text", None) for item in getattr(result, "content", None) or ()]
    return "\n".join(part for part in parts if isinstance(part, str))


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(no message)"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- the cache and the file a stage reads ------------------------------------------------------


class DocsCache:
    """Texts by their sha256 under ``<state dir>/docs``; a file whose content no longer
    hashes to its name is not returned."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.folder = Path(state_dir) / "docs"

    def get(self, sha256: str) -> str | None:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            return None
        try:
            text = (self.folder / sha256).read_bytes().decode("utf-8", "surrogateescape")
        except OSError:
            return None
        return text if sha256_text(text) == sha256 else None

    def put(self, text: str) -> str:
        sha256 = sha256_text(text)
        target = self.folder / sha256
        if self.get(sha256) is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=".docs.", dir=self.folder)
            with open(fd, "wb") as handle:
                handle.write(text.encode("utf-8", "surrogateescape"))
            os.replace(temporary, target)
        return sha256


def docs_text(entries: Sequence[tuple[LockedDoc, str]]) -> str:
    """The file ``$ALFRED_DOCS`` names: each entry's header line, a blank line, its text."""
    parts = []
    for locked, text in entries:
        request = locked.request
        about = f", topic {request.topic}" if request.topic else ""
        version = f" {locked.version}" if locked.version else ""
        header = (f"<!-- alfred docs: {request.library}{version} ({locked.library_id}{about}), "
                  f"sha256 {locked.sha256} -->")
        parts.append(f"{header}\n\n{text.rstrip()}\n")
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class StageDocs:
    path: str
    #: What the log says: where each text came from.
    notes: tuple[str, ...]


def prepare_stage_docs(
    source: str,
    entries: Sequence[Mapping[str, Any]],
    agents: Mapping[str, PlanAgent],
    render: Callable[[Any], Any],
    base_env: Mapping[str, str],
    state_dir: str,
    target: str,
    errlog_folder: str,
) -> StageDocs:
    """Write the docs file of a stage whose ``docs`` are ``entries`` to ``target`` (blocking).

    Pinned entries come from the cache (or are fetched again and must hash as pinned); the
    others are fetched. :class:`DocsError` says why the stage cannot have its docs."""
    from ..compiler._docslock import LOCK_NAME, doc_request

    requests = [r for r in (doc_request(thaw(e)) for e in entries) if r is not None]
    try:
        lock = read_file_lock(source) or FileLock()
    except LockError as exc:
        raise DocsError(f"{exc}; run `alfredc lock {os.path.basename(source)}` to write it again") from exc
    cache = DocsCache(state_dir)
    chosen: dict[DocRequest, tuple[LockedDoc, str]] = {}
    notes: list[str] = []
    missing: dict[str, list[DocRequest]] = {}
    for request in requests:
        locked = lock.doc(request)
        text = cache.get(locked.sha256) if locked is not None else None
        if locked is not None and text is not None:
            chosen[request] = (locked, text)
            notes.append(f"docs {request.library}: pinned {locked.library_id} {locked.version or ''}".rstrip()
                         + f", sha256 {locked.sha256[:12]}, from the cache")
        else:
            missing.setdefault(request.agent, []).append(request)
    for agent_name, wanted in missing.items():
        agent = agents.get(agent_name)
        if agent is None or agent.kind != "mcp":
            raise DocsError(f"no mcp agent `{agent_name}` serves the docs of {wanted[0].describe()}")
        spec = server_spec(agent_name, agent_values(agent), render, base_env, os.path.dirname(source) or ".")
        answer = query_server(spec, wanted, docs_tools_of(agent.options),
                              errlog=os.path.join(errlog_folder, f"mcp-{agent_name}.log"))
        for fetched in answer.docs:
            locked = lock.doc(fetched.request)
            if locked is not None and locked.sha256 != fetched.sha256:
                raise DocsError(
                    f"the documentation of {fetched.request.describe()} changed since {LOCK_NAME} pinned it "
                    f"(sha256 {locked.sha256[:12]}, now {fetched.sha256[:12]}): run `alfredc lock "
                    f"{os.path.basename(source)}` to accept the new text"
                )
            cache.put(fetched.text)
            how = "pinned, fetched again" if locked is not None else f"not pinned by {LOCK_NAME}, fetched"
            chosen[fetched.request] = (locked or fetched.locked(), fetched.text)
            notes.append(
                f"docs {fetched.request.library}: {fetched.library_id} {fetched.version or ''}".rstrip()
                + f", sha256 {fetched.sha256[:12]}, {how} from `{spec.describe()}`"
            )
    text = docs_text([chosen[r] for r in requests])
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with open(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
        handle.write(text)
    return StageDocs(path=target, notes=tuple(notes))



