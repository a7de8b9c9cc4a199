"""Locate the files shipped beside the code: the grammar, the schema and the templates.

In a wheel they live in ``alfred_dsl/_data/``; in a source checkout (editable install)
they are read from the top-level ``grammar/``, ``schemas/`` and ``examples/`` folders.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["grammar_path", "schema_path", "template_path"]

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str, checkout_dir: str) -> Path:
    shipped = _PACKAGE / "_data" / name
    if shipped.is_file():
        return shipped
    return _PACKAGE.parent / checkout_dir / name


def grammar_path() -> Path:
    return _find("alfred.lark", "grammar")


def schema_path() -> Path:
    return _find("workflow.schema.json", "schemas")


def template_path(name: str) -> Path:
    """A bundled template (``feature_development.alfred``...): examples/ in a checkout."""
    return _find(name, "examples")
