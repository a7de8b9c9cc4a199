"""``alfredc fmt FILE...``: rewrite ``.alfred`` files in the canonical layout.

Exit status: 0 nothing to do (or files rewritten), 1 a file has syntax errors or, with
``--check``, a file would change, 2 a file cannot be read or written.
Directories are searched for ``*.alfred`` files; ``-`` formats standard input to
standard output.
"""

from __future__ import annotations

import difflib
import os
import sys
import tempfile
from pathlib import Path

import click

from ._common import emit, print_error

__all__ = ["fmt"]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
_DATA_SUFFIXES = frozenset({".yaml", ".yml", ".json"})


def _expand(arguments: tuple[str, ...]) -> list[str]:
    """Files to format: each argument, with directories replaced by their .alfred files."""
    files: list[str] = []
    for argument in arguments:
        path = Path(argument)
        if argument != "-" and path.is_dir():
            files.extend(str(p) for p in sorted(path.rglob("*.alfred")) if p.is_file())
        else:
            files.append(argument)
    return files


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically: a crash never leaves a half-written file."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--check", is_flag=True, help="Write nothing; list the files that would change, exit 1 if any.")
@click.option("--diff", is_flag=True, help="Write nothing; print a unified diff of the changes.")
def fmt(files: tuple[str, ...], check: bool, diff: bool) -> int:
    """Format FILE... (.alfred files, or directories of them) in the canonical layout.

    Two-space indentation, one attribute per line with `=` aligned in each run of
    attributes, a blank line between blocks, short lists and maps inline, comments kept.
    Files are rewritten in place unless --check or --diff is given. Exit status: 0 done,
    1 syntax errors (or, with --check, files that would change), 2 unreadable files.
    """
    from ..compiler._format import format_source
    from ..compiler.load import read_source

    status = EXIT_OK
    changed: list[str] = []
    for name in _expand(files):
        if name == "-":
            text = sys.stdin.read()
            display = "<stdin>"
        elif Path(name).suffix.lower() in _DATA_SUFFIXES:
            # The normalized document in YAML/JSON has its own formatters; never rewrite it as DSL.
            kind = Path(name).suffix
            print_error(f"{name}: only .alfred files are formatted (this is {kind})")
            status = max(status, EXIT_USAGE)
            continue
        else:
            source, problems = read_source(name)
            if source is None:
                emit(problems, err=True)
                status = max(status, EXIT_USAGE)
                continue
            text, display = source.text, name
        formatted, diags = format_source(text, display)
        if formatted is None:
            emit(diags, err=True)
            status = max(status, EXIT_ERRORS)
            continue
        if name == "-" and not (check or diff):
            click.echo(formatted, nl=False)
            continue
        if formatted == text:
            continue
        changed.append(display)
        if diff:
            lines = difflib.unified_diff(
                text.splitlines(keepends=True),
                formatted.splitlines(keepends=True),
                fromfile=f"a/{display}",
                tofile=f"b/{display}",
            )
            click.echo("".join(line if line.endswith("\n") else line + "\n" for line in lines), nl=False)
        elif check:
            click.echo(f"would reformat {display}")
        else:
            try:
                _write(Path(name), formatted)
            except OSError as exc:
                print_error(f"cannot write {display}: {exc.strerror or exc}")
                status = max(status, EXIT_USAGE)
                continue
            click.echo(f"reformatted {display}", err=True)
    if check and changed:
        status = max(status, EXIT_ERRORS)
    return status
