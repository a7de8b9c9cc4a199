"""``alfred.lock``: the documentation a workflow file's stages read (``docs``), pinned, and the
tool lists of its MCP servers (docs/agents.md, "Grounding in documentation").

The lock lives beside the workflow file, one section per workflow file of the folder; it is
JSON with sorted keys, so that a diff shows what changed. Each ``docs`` entry of a stage is a
:class:`DocRequest` (agent, library, topic, tokens); the lock says which library id and
version it resolved to and the sha256 of the text, which ``alfredc run`` reads from the
content-addressed cache ``.alfred/docs/<sha256>`` (runtime/_docs.py). This module reads and
writes the file and says, without any network, when it is missing (A508) or stale (A509).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._diagnostics import Diagnostic, warning
from .._source import Span
from ._document import Path as DocPath
from ._mcpcheck import DEFAULT_DOCS_AGENT
from ._view import WorkspaceLike, _Model

__all__ = [
    "DEFAULT_DOCS_AGENT",
    "DEFAULT_DOCS_TOOLS",
    "LOCK_NAME",
    "DocRequest",
    "FileLock",
    "LockError",
    "LockedDoc",
    "LockedTool",
    "StageDocs",
    "docs_tools_of",
    "entry_file",
    "lock_diagnostics",
    "lock_path",
    "read_file_lock",
    "schema_sha256",
    "sha256_text",
    "stage_docs",
    "write_file_lock",
]

LOCK_NAME = "alfred.lock"
#: The version of the lock file's format.
LOCK_FORMAT = 1
#: Context7's tool names; an agent's ``docs_tools`` renames them.
DEFAULT_DOCS_TOOLS: Mapping[str, str] = {"resolve": "resolve-library-id", "get": "get-library-docs"}


class LockError(ValueError):
    """``alfred.lock`` cannot be read, or is not a lock file."""


@dataclass(frozen=True, slots=True, order=True)
class DocRequest:
    """One entry of a stage's ``docs``: what to read, from which agent (``tokens`` 0: the
    server's default)."""

    agent: str
    library: str
    topic: str = ""
    tokens: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"agent": self.agent, "library": self.library, "topic": self.topic, "tokens": self.tokens}

    def describe(self) -> str:
        return f"`{self.library}`" + (f" (topic `{self.topic}`)" if self.topic else "")


def doc_request(entry: Any) -> DocRequest | None:
    """The request of one ``docs`` entry (None for one the schema check already refused)."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("library"), str):
        return None
    agent, topic, tokens = entry.get("agent"), entry.get("topic"), entry.get("tokens")
    return DocRequest(
        agent=agent if isinstance(agent, str) else DEFAULT_DOCS_AGENT,
        library=entry["library"],
        topic=topic if isinstance(topic, str) else "",
        tokens=tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else 0,
    )


def docs_tools_of(agent: Mapping[str, Any] | None) -> dict[str, str]:
    """The resolve and get tool names of a docs agent (its ``docs_tools``, else Context7's)."""
    own = agent.get("docs_tools") if agent is not None else None
    tools = dict(DEFAULT_DOCS_TOOLS)
    if isinstance(own, Mapping):
        tools.update({k: v for k, v in own.items() if k in tools and isinstance(v, str)})
    return tools


@dataclass(frozen=True, slots=True)
class LockedDoc:
    """What a request resolved to when the lock was written."""

    request: DocRequest
    library_id: str
    version: str | None
    sha256: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {**self.request.as_json(), "library_id": self.library_id, "version": self.version,
                "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True, slots=True)
class LockedTool:
    """One tool of a server: its name and input JSON Schema."""

    name: str
    input_schema: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "input_schema": dict(self.input_schema),
                "schema_sha256": schema_sha256(self.input_schema)}


@dataclass(frozen=True, slots=True)
class FileLock:
    """The section of one workflow file: its pinned docs and its mcp agents' tools."""

    docs: tuple[LockedDoc, ...] = ()
    tools: Mapping[str, tuple[LockedTool, ...]] = field(default_factory=dict)

    def doc(self, request: DocRequest) -> LockedDoc | None:
        return next((d for d in self.docs if d.request == request), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "docs": [d.as_json() for d in sorted(self.docs, key=lambda d: d.request)],
            "servers": {agent: {"tools": [t.as_json() for t in sorted(tools, key=lambda t: t.name)]}
                        for agent, tools in sorted(self.tools.items())},
        }


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def schema_sha256(schema: Mapping[str, Any]) -> str:
    return sha256_text(json.dumps(schema, sort_keys=True, separators=(",", ":"), default=str))


def lock_path(workflow_file: str | os.PathLike[str]) -> Path:
    """``alfred.lock`` beside ``workflow_file``."""
    return Path(workflow_file).absolute().parent / LOCK_NAME


def _sections(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError(f"cannot read {path.name}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LockError(f"{path.name} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("alfred_lock") != LOCK_FORMAT or not isinstance(
        data.get("files"), dict
    ):
        raise LockError(f"{path.name} is not an alfred lock file of format {LOCK_FORMAT}")
    files: dict[str, Any] = data["files"]
    return files


def _file_lock(data: Any) -> FileLock:
    try:
        docs = tuple(
            LockedDoc(
                request=DocRequest(agent=str(d["agent"]), library=str(d["library"]),
                                   topic=str(d.get("topic") or ""), tokens=int(d.get("tokens") or 0)),
                library_id=str(d["library_id"]),
                version=None if d.get("version") is None else str(d["version"]),
                sha256=str(d["sha256"]), size=int(d.get("size") or 0),
            )
            for d in data.get("docs", [])
        )
        tools = {
            str(agent): tuple(
                LockedTool(str(t["name"]), dict(t.get("input_schema") or {})) for t in server["tools"]
            )
            for agent, server in (data.get("servers") or {}).items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LockError(f"a section of {LOCK_NAME} is malformed ({type(exc).__name__}: {exc})") from exc
    return FileLock(docs=docs, tools=tools)


def read_file_lock(workflow_file: str | os.PathLike[str]) -> FileLock | None:
    """The section of ``workflow_file`` in the lock beside it; None when there is none."""
    sections = _sections(lock_path(workflow_file))
    if sections is None:
        return None
    section = sections.get(Path(workflow_file).name)
    return None if section is None else _file_lock(section)


def write_file_lock(workflow_file: str | os.PathLike[str], lock: FileLock) -> Path:
    """Replace the section of ``workflow_file`` in the lock beside it (the other files' stay);
    the file is replaced atomically. Returns its path."""
    path = lock_path(workflow_file)
    try:
        sections = _sections(path) or {}
    except LockError:
        sections = {}  # a broken lock is rewritten, as `alfredc lock` is asked to
    sections[Path(workflow_file).name] = lock.as_json()
    text = json.dumps({"alfred_lock": LOCK_FORMAT, "files": sections}, indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"
    fd, temporary = tempfile.mkstemp(prefix=".alfred.lock.", dir=path.parent)
    try:
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


# -- what a workspace asks for ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageDocs:
    """One ``docs`` entry of a stage, where it is written."""

    workflow: str
    stage: str
    index: int
    request: DocRequest
    path: DocPath  # of the entry


def stage_docs(model: _Model) -> Iterator[StageDocs]:
    """Every ``docs`` entry of every stage of every workflow, in declaration order."""
    for workflow in model.workflows:
        for stage_name, stage in model.stages_of(workflow).items():
            entries = stage.get("docs")
            if not isinstance(entries, list):
                continue
            for index, entry in enumerate(entries):
                request = doc_request(entry)
                if request is not None:
                    path: DocPath = ("workflows", workflow, "stages", stage_name, "docs", index)
                    yield StageDocs(workflow, stage_name, index, request, path)


def entry_file(ws: WorkspaceLike) -> Path | None:
    """The file a workspace was loaded from (None: built in Python)."""
    entry = getattr(ws, "entry", None)
    source = getattr(entry, "source", None)
    path = getattr(source, "path", None)
    return Path(path) if path is not None else None


def lock_diagnostics(ws: WorkspaceLike, model: _Model | None = None) -> list[Diagnostic]:
    """A508 when the entry file's stages read docs that no lock pins, A509 for each entry
    the lock does not pin as written (and for a lock that cannot be read); nothing at all
    for a workflow without ``docs``."""
    entry = entry_file(ws)
    if entry is None:
        return []
    model = model or _Model.of(ws)
    wanted = list(stage_docs(model))
    if not wanted:
        return []
    shown = entry.name
    given = getattr(getattr(getattr(ws, "entry", None), "source", None), "name", shown)
    fix = f"run `alfredc lock {given}`"
    try:
        lock = read_file_lock(entry)
    except LockError as exc:
        return [warning("A509", f"{LOCK_NAME} cannot be used: {exc}", model.key_span(wanted[0].path),
                        help=f"{fix} to write it again")]
    if lock is None:
        return [warning(
            "A508", f"no {LOCK_NAME} pins the documentation the stages of `{shown}` read",
            model.key_span(wanted[0].path), "read from the server at each run, unpinned",
            help=f"{fix}: it pins each library's id, version and content hash beside the file",
        )]
    return [
        warning(
            "A509", f"{LOCK_NAME} does not pin {item.request.describe()} from agent `{item.request.agent}`",
            _entry_span(model, item), "the lock is stale: this entry was added or changed since",
            help=fix,
        )
        for item in wanted
        if lock.doc(item.request) is None
    ]


def _entry_span(model: _Model, item: StageDocs) -> Span:
    return model.value_span(item.path)


def requests_of(items: Sequence[StageDocs]) -> list[DocRequest]:
    """The distinct requests, sorted."""
    return sorted({item.request for item in items})
