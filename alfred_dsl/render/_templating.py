"""The Jinja2 environments of the docs and report renderers (templates ship in the package).

HTML templates are autoescaped. Markdown templates escape every ``{{ value }}`` through
``finalize`` (table-safe: ``|``, backticks, ``<`` and newlines), except values marked
:class:`markupsafe.Markup` by the renderer (the Mermaid block, for instance).
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from .._values import format_duration, format_seconds

__all__ = ["PRIORITY_NAMES", "html_environment", "markdown_environment", "markdown_escape", "priority_name"]

PRIORITY_NAMES = {0: "low", 1: "medium", 2: "high", 3: "critical"}

_MARKDOWN_ESCAPES = str.maketrans(
    {"\\": "\\\\", "|": "\\|", "`": "\\`", "<": "&lt;", ">": "&gt;", "\r": " ", "\n": " "}
)


def markdown_escape(value: object) -> str:
    """Make ``value`` safe inside a Markdown table cell or paragraph."""
    if isinstance(value, Markup):
        return str(value)
    return ("" if value is None else str(value)).translate(_MARKDOWN_ESCAPES)


def priority_name(priority: int) -> str:
    return PRIORITY_NAMES.get(priority, str(priority))


def _common(env: Environment) -> Environment:
    env.filters["duration"] = format_duration
    env.filters["seconds"] = format_seconds
    env.filters["priority"] = priority_name
    return env


@functools.cache
def html_environment() -> Environment:
    return _common(
        Environment(
            loader=PackageLoader("alfred_dsl", "render/templates"),
            autoescape=select_autoescape(enabled_extensions=("html", "html.j2", "svg"), default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    )


def _finalize(value: Any) -> str:
    return markdown_escape(value)


@functools.cache
def markdown_environment() -> Environment:
    return _common(
        Environment(
            loader=PackageLoader("alfred_dsl", "render/templates"),
            autoescape=False,
            undefined=StrictUndefined,
            finalize=_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
    )
