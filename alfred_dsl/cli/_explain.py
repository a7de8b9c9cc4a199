"""``alfredc explain CODE``: what a diagnostic code means, an example, and how to fix it."""

from __future__ import annotations

import re
from pathlib import Path

import click

from .._codes import CODES, Code, lookup
from .._values import suggest

__all__ = ["example_for", "explain", "explain_text"]

_PACKAGE = Path(__file__).resolve().parent.parent


def _diagnostics_doc() -> str | None:
    """The text of docs/diagnostics.md: shipped in the wheel as _data/diagnostics.md, else the checkout's."""
    for candidate in (_PACKAGE / "_data" / "diagnostics.md", _PACKAGE.parent / "docs" / "diagnostics.md"):
        try:
            return candidate.read_text(encoding="utf-8")
        except OSError:
            continue
    return None


def example_for(code: str, doc: str | None = None) -> str | None:
    """The first fenced code block of the section ``## CODE ...`` of docs/diagnostics.md, if any."""
    text = _diagnostics_doc() if doc is None else doc
    if text is None:
        return None
    section = re.search(rf"^## {re.escape(code)}\b.*?$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    if section is None:
        return None
    block = re.search(r"^```[^\n]*\n(.*?)^```", section.group(1), re.MULTILINE | re.DOTALL)
    return block.group(1).rstrip("\n") if block else None


def explain_text(entry: Code) -> str:
    """The full explanation printed by ``alfredc explain``."""
    parts = [f"{entry.code} ({entry.name}): {entry.summary}", "", entry.explanation]
    example = example_for(entry.code)
    if example:
        parts += ["", "Example:", "", *("    " + line if line else "" for line in example.splitlines())]
    return "\n".join(parts) + "\n"


def _find(query: str) -> Code | None:
    entry = lookup(query)
    if entry is not None:
        return entry
    by_name = {c.name: c for c in CODES.values()}
    return by_name.get(query.strip().lower())


@click.command()
@click.argument("code", required=False)
def explain(code: str | None) -> int:
    """Explain a diagnostic CODE (e.g. A201, or its name, unknown-agent); without CODE, list them all."""
    if code is None:
        for known in CODES.values():
            click.echo(f"{known.code}  {known.name:<22} {known.summary}")
        return 0
    entry = _find(code)
    if entry is None:
        candidates = [*CODES, *(c.name for c in CODES.values())]
        close = suggest(code.strip().upper(), CODES, n=3, cutoff=0.5)
        close += suggest(code.strip().lower(), candidates, n=3, cutoff=0.6)
        message = f"alfredc explain: unknown code `{code}`"
        if close:
            message += f"; did you mean {', '.join(f'`{c}`' for c in dict.fromkeys(close))}?"
        click.echo(message, err=True)
        click.echo("Run 'alfredc explain' without a code to list every code.", err=True)
        return 2
    click.echo(explain_text(entry), nl=False)
    return 0
