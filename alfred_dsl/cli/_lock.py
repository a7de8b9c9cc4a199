"""``alfredc lock FILE...``: pin the documentation the stages read (``docs``) in ``alfred.lock``.

For each file: check it (errors stop it, except those about the lock itself), ask each mcp
agent its stages use for its tools and for the documentation of every ``docs`` entry, cache
the texts under ``<state>/docs/<sha256>`` and replace the file's section of the
``alfred.lock`` beside it. Exit status: 0 written, 1 the file has errors or a server did not
answer (the lock is then left as it was), 2 usage or I/O error.
"""

from __future__ import annotations

import click

from ._common import colour_option, emit, print_error

__all__ = ["lock"]

#: Diagnostics about alfred.lock itself (missing, stale, its cached tools): `lock` rewrites it.
_ABOUT_THE_LOCK = frozenset({"A316", "A317", "A508", "A509"})


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--state", "state_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=str),
    help="Where the texts are cached, under docs/ (default: .alfred in the current directory).",
)
@colour_option
def lock(files: tuple[str, ...], state_dir: str | None, colour: str) -> int:
    """Pin the documentation FILE's stages read (their `docs`) in the alfred.lock beside it.

    Starts (or connects to) each MCP server the stages use, lists its tools and fetches
    each library's documentation; writes each library's id, version and sha256, and the
    servers' tools, to alfred.lock, and caches the texts under .alfred/docs/ so that
    `alfredc run` reads the pinned texts, also offline.
    """
    import os
    from pathlib import Path

    from .._render_diag import exit_status
    from ..compiler._docslock import LOCK_NAME, FileLock, write_file_lock
    from ..compiler._pipeline import check_paths
    from ..runtime._docs import DocsCache
    from ._online import ask_servers

    cache = DocsCache(state_dir if state_dir is not None else Path.cwd() / ".alfred")
    status = 0
    for path in files:
        if not os.path.isfile(path):
            print_error(f"cannot read `{path}`: no such file")
            return 2
        # What check says, but for what the lock itself is about: a stale lock or a tool list
        # it cached does not stop its own refresh.
        problems = [d for d in check_paths([path]) if d.code not in _ABOUT_THE_LOCK]
        emit(problems, colour=colour, err=True)
        if exit_status(problems) != 0:
            status = max(status, 1)
            continue
        asked, _ = ask_servers(path)
        if asked is None:
            status = max(status, 1)
            continue
        failed = [a for a in asked.answers if a.problem is not None]
        for answer in failed:
            print_error(f"{path}: agent `{answer.agent}`: {answer.problem}",
                        help=f"{LOCK_NAME} was left as it was")
        if failed:
            status = max(status, 1)
            continue
        docs = []
        for answer in asked.answers:
            for fetched in answer.docs:
                cache.put(fetched.text)
                pinned = fetched.locked()
                docs.append(pinned)
                version = f" {pinned.version}" if pinned.version else ""
                click.echo(f"{path}: {fetched.request.library}"
                           + (f" ({fetched.request.topic})" if fetched.request.topic else "")
                           + f" -> {pinned.library_id}{version}, sha256 {pinned.sha256[:12]}, "
                           f"{pinned.size} bytes")
        tools = {a.agent: a.tools for a in asked.answers}
        written = write_file_lock(path, FileLock(docs=tuple(docs), tools=tools))
        count = sum(len(t) for t in tools.values())
        click.echo(f"wrote {os.path.relpath(written)}: {_count(len(docs), 'document')}, "
                   f"{_count(count, 'tool')} of {_count(len(tools), 'server')}")
    return status


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
