"""Diagnostics are data: every stage of the pipeline returns them, one printer renders them."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from ._source import Span

__all__ = [
    "AlfredError",
    "Diagnostic",
    "DiagnosticError",
    "Edit",
    "Label",
    "Severity",
]


class Severity(enum.Enum):
    """How bad a diagnostic is: errors fail ``alfredc check`` (exit 1), warnings only with ``--strict``."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Label:
    """A span of source with an optional short text printed under its carets."""

    span: Span
    text: str = ""


@dataclass(frozen=True, slots=True)
class Edit:
    """A mechanical fix: replace the text of ``span`` with ``replacement``."""

    span: Span
    replacement: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """One problem found in the input.

    ``primary`` is where the problem is; ``secondary`` labels point at related places
    (the other end of a duplicate, each edge of a cycle). ``notes`` are printed after the
    excerpt (``= note: ...``); ``help`` holds a suggestion such as "did you mean ...".
    ``file`` is used when there is no span (a file that cannot be read at all).
    """

    code: str
    severity: Severity
    message: str
    primary: Label | None = None
    secondary: tuple[Label, ...] = ()
    notes: tuple[str, ...] = ()
    help: str | None = None
    fix: tuple[Edit, ...] = ()
    file: str | None = None

    @property
    def filename(self) -> str:
        if self.primary is not None:
            return self.primary.span.file
        return self.file or "<input>"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        if self.primary is None:
            return (self.filename, 0, 0, self.code)
        span = self.primary.span
        return (span.file, span.line, span.column, self.code)


def _diagnostic(
    severity: Severity,
    code: str,
    message: str,
    span: Span | None,
    label: str,
    *,
    help: str | None,
    notes: Iterable[str],
    secondary: Iterable[Label],
    fix: Iterable[Edit],
    file: str | None,
) -> Diagnostic:
    return Diagnostic(
        code=code,
        severity=severity,
        message=message,
        primary=None if span is None else Label(span, label),
        secondary=tuple(secondary),
        notes=tuple(notes),
        help=help,
        fix=tuple(fix),
        file=file,
    )


def error(
    code: str,
    message: str,
    span: Span | None,
    label: str = "",
    *,
    help: str | None = None,
    notes: Iterable[str] = (),
    secondary: Iterable[Label] = (),
    fix: Iterable[Edit] = (),
    file: str | None = None,
) -> Diagnostic:
    """Shorthand for an error diagnostic with a primary label."""
    return _diagnostic(
        Severity.ERROR, code, message, span, label,
        help=help, notes=notes, secondary=secondary, fix=fix, file=file,
    )


def warning(
    code: str,
    message: str,
    span: Span | None,
    label: str = "",
    *,
    help: str | None = None,
    notes: Iterable[str] = (),
    secondary: Iterable[Label] = (),
    fix: Iterable[Edit] = (),
    file: str | None = None,
) -> Diagnostic:
    """Shorthand for a warning diagnostic with a primary label."""
    return _diagnostic(
        Severity.WARNING, code, message, span, label,
        help=help, notes=notes, secondary=secondary, fix=fix, file=file,
    )


class AlfredError(Exception):
    """Base class of the exceptions alfred raises to its API users."""


class DiagnosticError(AlfredError):
    """Raised by API entry points (``compile``, ``run``) when the input has errors.

    ``diagnostics`` holds every problem found, in source order.
    """

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        first = next((d for d in self.diagnostics if d.is_error), None)
        summary = "no errors" if first is None else f"{first.filename}: {first.code}: {first.message}"
        more = sum(1 for d in self.diagnostics if d.is_error) - 1
        super().__init__(summary + (f" (and {more} more)" if more > 0 else ""))
