"""The one printer of diagnostics: rustc-like text, JSON and SARIF 2.1.0.

Every command prints diagnostics through :func:`render_text`, :func:`render_json` or
:func:`render_sarif`; nothing else in the library formats them. Text excerpts measure
what a terminal shows (tabs, wide and combining characters), so carets land under the
span; control characters from the input are made visible, never sent to the terminal.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath, PureWindowsPath
from typing import Any

import click

from ._diagnostics import Diagnostic, Label, Severity
from ._source import SourceFile, Span

__all__ = [
    "FORMAT_VERSION",
    "IO_CODES",
    "exit_status",
    "render",
    "render_github",
    "render_json",
    "render_sarif",
    "render_text",
    "summary",
]

#: Bumped when a field of the JSON output changes meaning (new fields do not bump it).
FORMAT_VERSION = 1
TAB_WIDTH = 4
#: Longest stretch of a source line shown in an excerpt; longer lines are cut around the span.
MAX_EXCERPT_WIDTH = 120
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/alfred-dsl/alfred"

Styler = Callable[..., str]


# -- summary ----------------------------------------------------------------------


def summary(diags: Sequence[Diagnostic]) -> tuple[int, int]:
    """(errors, warnings) among ``diags``."""
    errors = sum(1 for d in diags if d.severity is Severity.ERROR)
    warnings = sum(1 for d in diags if d.severity is Severity.WARNING)
    return errors, warnings


#: Codes that mean the input could not be read at all: exit status 2, like a usage error.
IO_CODES = frozenset({"A001"})


def exit_status(diags: Sequence[Diagnostic], *, strict: bool = False) -> int:
    """The exit status of a command that reports ``diags``.

    2 when a file named on the command line could not be read (A001 without a place in
    another file), 1 when there are errors (or warnings and ``strict``), else 0. An
    unreadable *import* is pointed at in the importing file: an error of that file (1).
    """
    if any(d.code in IO_CODES and d.primary is None for d in diags):
        return 2
    errors, warnings = summary(diags)
    if errors or (strict and warnings):
        return 1
    return 0


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# -- measuring what a terminal shows ---------------------------------------------------


def _cell(char: str) -> tuple[str, int]:
    """How one source character is displayed in an excerpt, and its width in columns."""
    if char == "\t":
        return " " * TAB_WIDTH, TAB_WIDTH
    category = unicodedata.category(char)
    if category in ("Cc", "Cs") or char in "\u2028\u2029":
        # Never send control characters (escape sequences!) of the input to a terminal.
        return "\ufffd", 1
    if unicodedata.combining(char) or category in ("Mn", "Me", "Cf"):
        return char, 0
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return char, 2
    return char, 1


#: Longest message, label or note printed; longer ones (quoting a huge token) are cut.
MAX_MESSAGE_LENGTH = 1000


def _shorten(text: str) -> str:
    if len(text) <= MAX_MESSAGE_LENGTH:
        return text
    return f"{text[:MAX_MESSAGE_LENGTH]}… ({len(text) - MAX_MESSAGE_LENGTH} more characters)"


def _clean(text: str) -> str:
    """A message or label, shortened, with control characters escaped (they come from user input)."""
    text = _shorten(text)
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode() for ch in text
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Marker:
    """Carets (primary) or dashes (secondary) under part of one displayed line."""

    start: int  # character offset within the line
    end: int  # exclusive; may equal start for an empty span
    primary: bool
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Excerpt:
    """One source line and the markers under it."""

    line: int
    markers: tuple[_Marker, ...]


def _window(length: int, markers: Sequence[_Marker]) -> tuple[int, int]:
    """The character range of a long line to show: around the markers, at most MAX_EXCERPT_WIDTH."""
    if length <= MAX_EXCERPT_WIDTH:
        return 0, length
    first = min(m.start for m in markers)
    lo = max(0, first - MAX_EXCERPT_WIDTH // 4)
    return lo, min(length, lo + MAX_EXCERPT_WIDTH)


# -- text ---------------------------------------------------------------------------


class _TextWriter:
    def __init__(self, colour: bool) -> None:
        self.colour = colour
        self.lines: list[str] = []

    def style(self, text: str, **styles: Any) -> str:
        return click.style(text, **styles) if self.colour and text else text

    def severity_style(self, severity: Severity) -> dict[str, Any]:
        colour = {"error": "red", "warning": "yellow"}.get(severity.value, "cyan")
        return {"fg": colour, "bold": True}

    def diagnostic(self, diag: Diagnostic) -> None:
        sev_style = self.severity_style(diag.severity)
        primary = diag.primary
        location = diag.filename if primary is None else str(primary.span)
        head = self.style(f"{diag.severity.value}[{diag.code}]", **sev_style)
        self.lines.append(f"{self.style(_clean(location) + ':', bold=True)} {head}: {_clean(diag.message)}")

        notes: list[str] = []
        help_text = diag.help
        if primary is not None:
            excerpts, other_files, extra_notes = self._excerpts(diag, primary)
            # The help goes beside the carets when the primary label has no text of its own.
            if help_text and not primary.text:
                excerpts = self._attach_help(excerpts, help_text)
                help_text = None
            notes.extend(extra_notes)
            width = max([len(str(e.line)) for e in excerpts] + [len(str(s.line)) for s, _ in other_files])
            self._excerpt_block(excerpts, primary.span.source, width, sev_style)
            for label, ex in other_files:
                arrow = self.style(" ::: ", fg="blue", bold=True)
                self.lines.append(" " * width + arrow + _clean(str(label)))
                self._excerpt_block([ex], label.source, width, sev_style)
        else:
            width = 1
        for note in diag.notes:
            self.lines.append(" " * width + self.style(" = note: ", bold=True) + _clean(note))
        for note in notes:
            self.lines.append(" " * width + self.style(" = note: ", bold=True) + _clean(note))
        if help_text:
            self.lines.append(" " * width + self.style(" = help: ", bold=True) + _clean(help_text))
        self.lines.append("")

    @staticmethod
    def _attach_help(excerpts: list[_Excerpt], help_text: str) -> list[_Excerpt]:
        out: list[_Excerpt] = []
        for ex in excerpts:
            markers = tuple(
                _Marker(start=m.start, end=m.end, primary=True, text=help_text) if m.primary else m
                for m in ex.markers
            )
            out.append(_Excerpt(line=ex.line, markers=markers))
        return out

    def _excerpts(
        self, diag: Diagnostic, primary: Label
    ) -> tuple[list[_Excerpt], list[tuple[Span, _Excerpt]], list[str]]:
        """Excerpts in the primary's file (by line), excerpts of other files, and extra notes."""
        source = primary.span.source
        by_line: dict[int, list[_Marker]] = {}
        other_files: list[tuple[Span, _Excerpt]] = []
        notes: list[str] = []
        labels = [(primary, True), *((label, False) for label in diag.secondary)]
        for label, is_primary in labels:
            marker, line, continues_to = self._marker(label, is_primary)
            if continues_to is not None and is_primary:
                notes.append(f"the span continues to line {continues_to}")
            if label.span.source is source:
                by_line.setdefault(line, []).append(marker)
            else:
                other_files.append((label.span, _Excerpt(line=line, markers=(marker,))))
        excerpts = [_Excerpt(line=line, markers=tuple(by_line[line])) for line in sorted(by_line)]
        return excerpts, other_files, notes

    @staticmethod
    def _marker(label: Label, primary: bool) -> tuple[_Marker, int, int | None]:
        span = label.span
        source = span.source
        line, column = span.line, span.column
        line_len = len(source.line_text(line))
        start = min(column - 1, line_len)
        end_line = span.end_line
        if end_line > line:
            end = line_len
            # A span ending at column 1 of the next line only covers its newline.
            continues_to: int | None = end_line if span.end_column > 1 or end_line > line + 1 else None
        else:
            end = max(start, min(span.end_column - 1, line_len))
            continues_to = None
        if span.end <= span.start:
            end = start
        return _Marker(start=start, end=end, primary=primary, text=label.text), line, continues_to

    def _excerpt_block(
        self, excerpts: Sequence[_Excerpt], source: SourceFile, width: int, sev_style: dict[str, Any]
    ) -> None:
        gutter = self.style(" " * width + " |", fg="blue", bold=True)
        self.lines.append(gutter)
        previous: int | None = None
        for ex in excerpts:
            if previous is not None and ex.line > previous + 1:
                self.lines.append(self.style("..." if width < 3 else "." * width, fg="blue", bold=True))
            previous = ex.line
            text = source.line_text(ex.line)
            lo, hi = _window(len(text), ex.markers)
            cells = [_cell(ch) for ch in text[lo:hi]]
            prefix = "..." if lo > 0 else ""
            suffix = "..." if hi < len(text) else ""
            shown = prefix + "".join(c for c, _ in cells) + suffix
            number = self.style(f"{ex.line:>{width}} |", fg="blue", bold=True)
            self.lines.append(f"{number} {shown}".rstrip())
            # Primary markers first, then secondary, each on its own line when several.
            ordered = sorted(ex.markers, key=lambda m: (not m.primary, m.start))
            for marker in ordered:
                s = max(marker.start, lo) - lo
                e = max(s, min(marker.end, hi) - lo)
                pad = len(prefix) + sum(w for _, w in cells[:s])
                span_width = sum(w for _, w in cells[s:e])
                if marker.end > hi:
                    span_width += len(suffix)
                glyph = "^" if marker.primary else "-"
                marks = glyph * max(1, span_width)
                marker_style = sev_style if marker.primary else {"fg": "blue", "bold": True}
                styled = self.style(marks, **marker_style)
                text_part = ""
                if marker.text:
                    label_text = _clean(marker.text)
                    text_part = " " + (self.style(label_text, **sev_style) if marker.primary else label_text)
                self.lines.append(f"{gutter} {' ' * pad}{styled}{text_part}")


def render_text(diags: Sequence[Diagnostic], *, colour: bool = False) -> str:
    """Diagnostics as a human reads them (spec section 4), with a summary and an explain hint.

    Returns "" when there is nothing to report. ANSI colour only when ``colour`` is true.
    """
    if not diags:
        return ""
    writer = _TextWriter(colour)
    for diag in diags:
        writer.diagnostic(diag)
    errors, warnings = summary(diags)
    if errors:
        head = writer.style("error", fg="red", bold=True)
        writer.lines.append(f"{head}: {_plural(errors, 'error')}, {_plural(warnings, 'warning')}")
    elif warnings:
        head = writer.style("warning", fg="yellow", bold=True)
        writer.lines.append(f"{head}: {_plural(warnings, 'warning')}")
    from ._codes import CODES  # the table of codes: only when there is something to print

    first = next((d for d in diags if d.is_error), diags[0])
    if first.code in CODES:
        writer.lines.append(f"run 'alfredc explain {first.code}' for more")
    return "\n".join(writer.lines) + "\n"


def _dumps(document: Any) -> str:
    text = json.dumps(document, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from the input: escape everything instead
        text = json.dumps(document, indent=2)
    return text + "\n"


# -- JSON ---------------------------------------------------------------------------


def _position(span: Span) -> dict[str, int]:
    return {
        "line": span.line,
        "column": span.column,
        "end_line": span.end_line,
        "end_column": span.end_column,
    }


def _json_diagnostic(diag: Diagnostic) -> dict[str, Any]:
    primary = diag.primary
    notes: list[str] = []
    if primary is not None and primary.text:
        notes.append(_shorten(primary.text))
    notes.extend(_shorten(note) for note in diag.notes)
    if diag.help:
        notes.append(_shorten(diag.help))
    from ._codes import CODES

    entry = CODES.get(diag.code)
    out: dict[str, Any] = {
        "code": diag.code,
        "severity": diag.severity.value,
        "message": _shorten(diag.message),
        "file": diag.filename,
        "line": None,
        "column": None,
        "end_line": None,
        "end_column": None,
        "notes": notes,
        "name": entry.name if entry else None,
        "help": None if diag.help is None else _shorten(diag.help),
        "related": [
            {"file": s.span.file, **_position(s.span), "message": _shorten(s.text)} for s in diag.secondary
        ],
        "fix": [{"file": e.span.file, **_position(e.span), "replacement": e.replacement} for e in diag.fix],
    }
    if primary is not None:
        out.update(_position(primary.span))
    return out


def render_json(diags: Sequence[Diagnostic], *, fixed: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The JSON document of spec section 4 (``diagnostics`` and ``summary``), plus a few extra fields.

    A diagnostic without a place in a file (e.g. A001, a file that cannot be read) has
    ``line``/``column``/``end_line``/``end_column`` set to null. ``fixed`` (what
    ``check --fix`` changed, one entry per file) is added as ``fixed`` when given.
    """
    errors, warnings = summary(diags)
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "diagnostics": [_json_diagnostic(d) for d in diags],
        "summary": {"errors": errors, "warnings": warnings},
    }
    if fixed is not None:
        document["fixed"] = [dict(entry) for entry in fixed]
    return _dumps(document)


# -- GitHub Actions -------------------------------------------------------------------


def _github_data(text: str) -> str:
    """Escape a workflow command's message (GitHub's rules: %, CR and LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    """Escape a workflow command's property value: a message's escapes, and `:` and `,`."""
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(diags: Sequence[Diagnostic]) -> str:
    """One GitHub Actions annotation per diagnostic (``::error file=..,line=..::message``);
    warnings are ``::warning``, notes ``::notice``. Nothing when there is nothing to report."""
    from ._codes import CODES

    commands = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}
    lines: list[str] = []
    for diag in diags:
        entry = CODES.get(diag.code)
        properties = [("file", diag.filename)]
        if diag.primary is not None:
            span = diag.primary.span
            properties += [
                ("line", str(span.line)),
                ("col", str(span.column)),
                ("endLine", str(span.end_line)),
                ("endColumn", str(span.end_column)),
            ]
        properties.append(("title", f"{diag.code} {entry.name}" if entry else diag.code))
        text = diag.message
        if diag.primary is not None and diag.primary.text:
            text += f"\n{diag.primary.text}"
        text += "".join(f"\nnote: {note}" for note in diag.notes)
        if diag.help:
            text += f"\nhelp: {diag.help}"
        shown = ",".join(f"{key}={_github_property(value)}" for key, value in properties)
        lines.append(f"::{commands[diag.severity]} {shown}::{_github_data(_shorten(text))}\n")
    return "".join(lines)


# -- SARIF --------------------------------------------------------------------------


def _uri(filename: str) -> str:
    """A SARIF artifact URI: relative paths stay relative (with '/'), absolute ones become file: URIs."""
    from urllib.parse import quote

    path: PurePath = PureWindowsPath(filename) if "\\" in filename else PurePosixPath(filename)
    if path.is_absolute():
        return path.as_uri()
    return quote(path.as_posix(), safe="/._-~")


def _region(span: Span) -> dict[str, int]:
    # SARIF columns are 1-based and endColumn is exclusive, like ours.
    return {
        "startLine": span.line,
        "startColumn": max(1, span.column),
        "endLine": span.end_line,
        "endColumn": max(1, span.end_column),
    }


def _location(span: Span | None, filename: str, message: str = "") -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(span.file if span else filename)}}
    if span is not None:
        physical["region"] = _region(span)
    location: dict[str, Any] = {"physicalLocation": physical}
    if message:
        location["message"] = {"text": message}
    return location


def _unwrap(text: str) -> str:
    """Hard-wrapped paragraphs as single lines (viewers wrap SARIF text themselves)."""
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))


def render_sarif(diags: Sequence[Diagnostic]) -> str:
    """SARIF 2.1.0: one run, a rule for every code used, one result per diagnostic."""
    from ._codes import CODES
    from ._version import __version__

    used = sorted({d.code for d in diags})
    rules: list[dict[str, Any]] = []
    for code in used:
        entry = CODES.get(code)
        rule: dict[str, Any] = {"id": code}
        if entry is not None:
            explanation = _unwrap(entry.explanation)
            rule.update(
                name=entry.name,
                shortDescription={"text": entry.summary},
                fullDescription={"text": explanation},
                help={"text": f"{explanation}\n\nRun 'alfredc explain {code}' for more."},
            )
        rules.append(rule)
    index = {code: i for i, code in enumerate(used)}
    levels = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}
    results: list[dict[str, Any]] = []
    for diag in diags:
        text = diag.message
        extra = [diag.primary.text] if diag.primary and diag.primary.text else []
        extra += list(diag.notes) + ([diag.help] if diag.help else [])
        if extra:
            text += "\n" + "\n".join(extra)
        text = _shorten(text)
        span = diag.primary.span if diag.primary else None
        result: dict[str, Any] = {
            "ruleId": diag.code,
            "ruleIndex": index[diag.code],
            "level": levels[diag.severity],
            "message": {"text": text},
            "locations": [_location(span, diag.filename)],
        }
        if diag.secondary:
            result["relatedLocations"] = [
                {"id": i, **_location(label.span, diag.filename, _shorten(label.text))}
                for i, label in enumerate(diag.secondary)
            ]
        if diag.fix:
            result["fixes"] = [
                {
                    **({"description": {"text": _unwrap(diag.help)}} if diag.help else {}),
                    "artifactChanges": [
                        {
                            "artifactLocation": {"uri": _uri(edit.span.file)},
                            "replacements": [
                                {
                                    "deletedRegion": _region(edit.span),
                                    "insertedContent": {"text": edit.replacement},
                                }
                            ],
                        }
                        for edit in diag.fix
                    ]
                }
            ]
        results.append(result)
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "alfredc",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return _dumps(document)


def render(diags: Sequence[Diagnostic], fmt: str, *, colour: bool = False) -> str:
    """Dispatch on an output format name: ``text``, ``json``, ``sarif`` or ``github``."""
    if fmt == "json":
        return render_json(diags)
    if fmt == "sarif":
        return render_sarif(diags)
    if fmt == "github":
        return render_github(diags)
    return render_text(diags, colour=colour)
