"""What ``alfredc check`` does beyond finding problems: which warnings a project wants
(``# alfred: ignore[...]`` comments, ``alfred.toml`` ``[check] select/ignore``), applying
the fixes diagnostics carry (``--fix``), and counting codes (``--statistics``).

Errors are never suppressed: a file with an error cannot be compiled, whatever a comment
or the configuration says. Suppression chooses among warnings only.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._codes import CODES
from .._diagnostics import Diagnostic, Edit, Severity, error
from .._source import SourceFile, Span
from ._fixes import closest

if TYPE_CHECKING:  # tomllib loads only for a project that has an alfred.toml
    import tomllib

__all__ = [
    "CONFIG_CODE",
    "CheckConfig",
    "FixedFile",
    "Statistic",
    "check_and_fix",
    "check_with_config",
    "is_suppressed_by_comment",
    "load_config",
    "statistics",
]

#: The code of a problem in ``alfred.toml`` (exit status 2: nothing was checked as configured).
CONFIG_CODE = "A004"
CONFIG_NAME = "alfred.toml"
#: ``--fix`` checks and fixes at most this many times (a fix may reveal another, like ruff).
MAX_FIX_ROUNDS = 10

#: ``# alfred: ignore`` or ``# alfred: ignore[A501, A503]`` anywhere on a line.
_IGNORE_COMMENT = re.compile(r"#\s*alfred:\s*ignore\b(?:\[([^\]]*)\])?")
_CODE_PREFIX = re.compile(r"A[0-9]{0,3}")


# -- which warnings a project wants -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckConfig:
    """``[check] select`` and ``ignore`` of ``alfred.toml``: code prefixes, as in ruff.

    A warning is reported when the longest prefix matching its code is a ``select`` one
    (an ``ignore`` one wins a tie); with no ``select``, every code is selected.
    """

    select: tuple[str, ...] = ("",)
    ignore: tuple[str, ...] = ()

    def wants(self, code: str) -> bool:
        chosen = max((len(p) for p in self.select if code.startswith(p)), default=-1)
        dropped = max((len(p) for p in self.ignore if code.startswith(p)), default=-1)
        return chosen > dropped


def is_suppressed_by_comment(diagnostic: Diagnostic) -> bool:
    """Whether the line of the warning's primary span carries an ignore comment naming its code
    (or a bare ``# alfred: ignore``, which suppresses every warning on its line)."""
    if diagnostic.severity is Severity.ERROR or diagnostic.primary is None:
        return False
    span = diagnostic.primary.span
    found = _IGNORE_COMMENT.search(span.source.line_text(span.line))
    if found is None:
        return False
    listed = found.group(1)
    if listed is None:
        return True
    return diagnostic.code in {code.strip() for code in listed.split(",")}


def _wanted(diagnostic: Diagnostic, config: CheckConfig) -> bool:
    if diagnostic.severity is Severity.ERROR:
        return True
    return config.wants(diagnostic.code) and not is_suppressed_by_comment(diagnostic)


def load_config(root: Path) -> tuple[CheckConfig, list[Diagnostic]]:
    """The ``[check]`` table of ``root/alfred.toml`` (the default when there is none), and
    A004 for each problem in it."""
    path = root / CONFIG_NAME
    if not path.is_file():
        return CheckConfig(), []
    name = _shown(path)
    try:
        text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeDecodeError) as exc:
        return CheckConfig(), [_config_error(f"cannot read `{name}`: {exc}", None, file=name)]
    source = SourceFile(name, text, path)
    import tomllib

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = _config_error(f"`{name}` is not valid TOML: {exc}", _toml_error_span(source, exc))
        return CheckConfig(), [problem]
    table = document.get("check", {})
    if not isinstance(table, dict):
        problem = _config_error("`check` must be a table (`[check]`)", _key_span(source, "check"))
        return CheckConfig(), [problem]
    problems: list[Diagnostic] = []
    for key in table:
        if key not in ("select", "ignore"):
            suggestion = closest(key, ("select", "ignore"))
            problems.append(
                _config_error(
                    f"unknown key `{key}` in `[check]`",
                    _key_span(source, key),
                    help=f"did you mean `{suggestion}`?" if suggestion else "use `select` or `ignore`",
                )
            )
    select = _prefixes(table, "select", source, problems)
    ignore = _prefixes(table, "ignore", source, problems)
    return CheckConfig(select=select if select is not None else ("",), ignore=ignore or ()), problems


def _shown(path: Path) -> str:
    """A path as diagnostics name it: relative to the current folder when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _prefixes(
    table: dict[str, Any], key: str, source: SourceFile, problems: list[Diagnostic]
) -> tuple[str, ...] | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(
            _config_error(
                f"`{key}` must be a list of code prefixes such as [\"A5\", \"A201\"]", _key_span(source, key)
            )
        )
        return None
    prefixes: list[str] = []
    for item in value:
        if not _CODE_PREFIX.fullmatch(item) or not any(code.startswith(item) for code in CODES):
            problems.append(
                _config_error(
                    f"`{item}` in `{key}` is not a diagnostic code or a prefix of one",
                    _key_span(source, key),
                    help="codes look like A503; a prefix such as A5 means every A5xx code "
                    "(`alfredc explain` lists them)",
                )
            )
        else:
            prefixes.append(item)
    return tuple(prefixes)


def _config_error(
    message: str, span: Span | None, *, help: str | None = None, file: str | None = None
) -> Diagnostic:
    return error(CONFIG_CODE, message, span, help=help or "fix `alfred.toml` (see docs/cli.md)", file=file)


def _key_span(source: SourceFile, key: str) -> Span:
    """Where ``key = ...`` (or ``[key]``) is written; else the start of the file."""
    found = re.search(rf"(?m)^[ \t]*\[?[ \t]*({re.escape(key)})\b", source.text)
    if found is None:
        return source.span(0, 0)
    return source.span(found.start(1), found.end(1))


def _toml_error_span(source: SourceFile, exc: tomllib.TOMLDecodeError) -> Span:
    found = re.search(r"at line (\d+), column (\d+)", str(exc))
    if found is None:
        return source.span(0, 0)
    start = source.offset(int(found.group(1)), int(found.group(2)))
    return source.span(start, min(start + 1, len(source.text)))


def check_with_config(paths: Sequence[str]) -> list[Diagnostic]:
    """:func:`check_paths`, then the warnings each file's project does not want removed;
    problems of an ``alfred.toml`` come first (A004)."""
    from ._pipeline import check_paths, finish
    from .load import find_root

    configs: dict[Path, tuple[CheckConfig, list[Diagnostic]]] = {}
    found: list[Diagnostic] = []
    config_problems: list[Diagnostic] = []
    for path in paths:
        root = find_root(Path(path))
        if root not in configs:
            configs[root] = load_config(root)
            config_problems.extend(configs[root][1])
        config = configs[root][0]
        found.extend(d for d in check_paths([path]) if _wanted(d, config))
    return [*config_problems, *finish(found)]


# -- --fix --------------------------------------------------------------------------------


@dataclass(slots=True)
class FixedFile:
    """What ``--fix`` changed in one file: how many problems, of which codes."""

    file: str
    codes: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.codes)

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "count": self.count, "codes": sorted(self.codes)}


def _overlaps(edit: Edit, taken: Iterable[tuple[int, int]]) -> bool:
    start, end = edit.span.start, edit.span.end
    return any((start < b and a < end) or start == a for a, b in taken)


def _fixes_by_file(diagnostics: Sequence[Diagnostic]) -> dict[SourceFile, list[Diagnostic]]:
    """The fixable diagnostics of each file whose every edit lies in that one file."""
    by_file: dict[SourceFile, list[Diagnostic]] = {}
    for diagnostic in diagnostics:
        if not diagnostic.fix:
            continue
        sources = {id(edit.span.source) for edit in diagnostic.fix}
        source = diagnostic.fix[0].span.source
        if len(sources) == 1 and source.path is not None:
            by_file.setdefault(source, []).append(diagnostic)
    return by_file


def _apply(text: str, edits: Sequence[Edit]) -> str:
    for edit in sorted(edits, key=lambda e: (e.span.start, e.span.end), reverse=True):
        text = text[: edit.span.start] + edit.replacement + text[edit.span.end :]
    return text


def _fix_file(source: SourceFile, diagnostics: Sequence[Diagnostic]) -> tuple[list[str], str | None]:
    """Apply the non-overlapping fixes of ``diagnostics`` to ``source``'s file: the codes
    fixed, or a reason the file was left alone."""
    from .load import load_document

    assert source.path is not None
    taken: list[tuple[int, int]] = []
    chosen: list[Diagnostic] = []
    for diagnostic in sorted(diagnostics, key=lambda d: min(e.span.start for e in d.fix)):
        if any(_overlaps(edit, taken) for edit in diagnostic.fix):
            continue  # the next round fixes it, on the text this round leaves
        chosen.append(diagnostic)
        taken.extend((edit.span.start, edit.span.end) for edit in diagnostic.fix)
    try:
        raw = source.path.read_bytes()
        bom = raw.startswith(b"\xef\xbb\xbf")
        on_disk = raw.decode("utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeDecodeError) as exc:
        return [], f"cannot read it again: {exc}"
    if on_disk != source.text:
        return [], "it changed while it was being checked"
    fixed = _apply(source.text, [edit for d in chosen for edit in d.fix])
    _document, problems = load_document(SourceFile(source.name, fixed, source.path))
    if any(p.is_error and p.code[:2] in ("A0", "A1") for p in problems):
        return [], "the fixed text would not parse (please report this)"
    try:
        _write(source.path, ("\ufeff" if bom else "") + fixed)
    except OSError as exc:
        return [], f"cannot write it: {exc}"
    return [d.code for d in chosen], None


def _write(path: Path, text: str) -> None:
    """Replace ``path`` in one step (a reader never sees half a file), keeping its mode."""
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_and_fix(paths: Sequence[str]) -> tuple[list[Diagnostic], list[FixedFile], list[str]]:
    """Check, apply every fix that applies, check again, until nothing more applies (at most
    MAX_FIX_ROUNDS times): the problems left, what was fixed in each file, and a note for
    each file that had fixes but was left alone."""
    fixed: dict[str, FixedFile] = {}
    skipped: dict[str, str] = {}
    diagnostics = check_with_config(paths)
    for _round in range(MAX_FIX_ROUNDS):
        if any(d.code == CONFIG_CODE for d in diagnostics):
            break  # the project's configuration decides what to fix: fix nothing without it
        changed = False
        for source, fixable in _fixes_by_file(diagnostics).items():
            if source.name in skipped:
                continue
            codes, reason = _fix_file(source, fixable)
            if reason is not None:
                skipped[source.name] = reason
            if codes:
                fixed.setdefault(source.name, FixedFile(source.name)).codes.extend(codes)
                changed = True
        if not changed:
            break
        diagnostics = check_with_config(paths)
    notes = [f"not fixed: {name}: {reason}" for name, reason in skipped.items()]
    return diagnostics, list(fixed.values()), notes


# -- --statistics -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statistic:
    """How often one code was reported, and how many of those carry a fix."""

    code: str
    name: str
    count: int
    fixable: int

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "count": self.count, "fixable": self.fixable}


def statistics(diagnostics: Sequence[Diagnostic]) -> list[Statistic]:
    """One line per code: the most frequent first, then by code."""
    counts: dict[str, list[int]] = {}
    for diagnostic in diagnostics:
        count = counts.setdefault(diagnostic.code, [0, 0])
        count[0] += 1
        count[1] += 1 if diagnostic.fix else 0
    rows = [
        Statistic(code, CODES[code].name if code in CODES else "", count, fixable)
        for code, (count, fixable) in counts.items()
    ]
    return sorted(rows, key=lambda row: (-row.count, row.code))
