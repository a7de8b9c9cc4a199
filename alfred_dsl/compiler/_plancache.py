"""The compiled-plan cache: a plan compiled from the same inputs is read back, not compiled.

As Python reuses a ``.pyc``, ``run``, ``plan``, ``graph``, ``submit`` (and the other commands
that compile one workflow) and the worker reuse the plan of an earlier compile from
``cache/`` in the state directory (``.alfred/cache/``). An entry is found by a key hashing
what the compile depends on besides the files' contents (the path as given and its absolute
form, the current and home directories, the project root, the workflow, the params, alfred's
version and code, the Python version); it holds the plan, the diagnostics the compile
reported (warnings and notes: a cached plan prints the same ones) and, for each file read
(the entry and every imported file), its path and the hash of its text. It is used only
when every file still has that text, and when each python stage's module is still found
(or still missing) as it was (A504 depends on the Python path, not on the files).

Only compiles that made a plan are stored; errors are compiled again each time. A workflow
written in Python (``flows.py:feature``) is not cached: its file may read anything.

An entry is ``alfred-plan-cache/FORMAT``, the SHA-256 of the body, then the body: JSON in a
tagged form of the plan's dataclasses (:func:`encode`/:func:`decode`). Reading one never
runs code: a corrupt, truncated, foreign (another format, version or key) or edited entry
is ignored and the file compiled. Writes go to a temporary file renamed into place, so a
reader sees a whole entry or none; the folder keeps the :data:`MAX_ENTRIES` most recently
used entries within :data:`MAX_BYTES`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from .._diagnostics import Diagnostic, Edit, Label, Severity
from .._expr import Interpolated
from .._source import SourceFile, Span
from .._version import __version__
from ._plan import FrozenMap, Hook, Plan, PlanAgent, PlanStage, _field_default, interpolated, new_stage

__all__ = ["MAX_BYTES", "MAX_ENTRIES", "CacheResult", "compile_cached", "decode", "encode"]

#: The entry format; an entry of another format is ignored.
FORMAT = 1
_MAGIC = f"alfred-plan-cache/{FORMAT}\n".encode("ascii")
_SUFFIX = ".plan"
#: The folder keeps the most recently used entries, at most this many and this many bytes.
MAX_ENTRIES = 64
MAX_BYTES = 256 * 1024 * 1024
#: A temporary file older than this was left by a process that died while writing.
_STALE_TEMP_S = 3600.0
_ROOT_MARKERS = ("alfred.toml", ".git")  # as compiler.load.find_root

Outcome = Literal["hit", "stored", "compiled", "off"]


@dataclasses.dataclass(frozen=True, slots=True)
class CacheResult:
    """A compile through the cache: the plan (None on errors), the diagnostics, and what the
    cache did: ``hit`` (read back), ``stored`` (compiled and written), ``compiled`` (compiled,
    not storable: errors, a Python workflow, an unwritable folder), ``off`` (not asked)."""

    plan: Plan | None
    diagnostics: list[Diagnostic]
    outcome: Outcome
    entry: Path | None = None


def compile_cached(
    path: str, workflow: str | None, params: Mapping[str, str], cache_dir: Path | None
) -> CacheResult:
    """:func:`~alfred_dsl.compiler._pipeline.compile_path` through the cache in ``cache_dir``
    (None: no cache). Same plan, same diagnostics."""
    material = None if cache_dir is None else _key_material(path, workflow, params)
    if cache_dir is None or material is None:
        plan, diagnostics = _compile(path, workflow, params)
        return CacheResult(plan, diagnostics, "off" if cache_dir is None else "compiled")
    entry = cache_dir / (_digest(json.dumps(material, sort_keys=True).encode("utf-8")) + _SUFFIX)
    found = _read_entry(entry, material)
    if found is not None:
        with contextlib.suppress(OSError):
            os.utime(entry)  # most recently used: the last one pruned
        return CacheResult(found[0], found[1], "hit", entry)
    from ._pipeline import compile_loaded
    from .load import load

    workspace, loaded = load(path)
    plan, diagnostics = compile_loaded(workspace, loaded, workflow, params)
    if plan is None or workspace is None:
        return CacheResult(plan, diagnostics, "compiled")
    sources = [document.source for document in workspace.documents]
    body = _entry_body(material, sources, plan, diagnostics)
    if body is None or not _write_entry(cache_dir, entry, body):
        return CacheResult(plan, diagnostics, "compiled")
    return CacheResult(plan, diagnostics, "stored", entry)


def _compile(
    path: str, workflow: str | None, params: Mapping[str, str]
) -> tuple[Plan | None, list[Diagnostic]]:
    from ._pipeline import compile_path

    return compile_path(path, workflow, params)


# -- the key ------------------------------------------------------------------------------

def _key_material(path: str, workflow: str | None, params: Mapping[str, str]) -> dict[str, Any] | None:
    """What the compile depends on besides the files' text (None: not cacheable)."""
    text = os.fspath(path)
    if text.endswith(".py") or ".py:" in text:
        return None  # a workflow built by Python code: the code may read anything
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
        return None
    absolute = os.path.abspath(text)
    return {
        "format": FORMAT,
        "alfred": __version__,
        "code": _code_fingerprint(),
        "python": sys.version,
        "entry": text,
        "absolute": absolute,
        "cwd": os.getcwd(),
        "home": os.path.expanduser("~"),  # a stage's `cwd = "~/..."`
        "root": _project_root(absolute),
        "workflow": workflow,
        "params": sorted([k, v] for k, v in params.items()),
    }


def _project_root(absolute: str) -> str:
    """The folder ``compiler.load.find_root`` finds (imports may not leave it)."""
    folder = os.path.dirname(absolute)
    candidate = folder
    while True:
        if any(os.path.exists(os.path.join(candidate, marker)) for marker in _ROOT_MARKERS):
            return candidate
        parent = os.path.dirname(candidate)
        if parent == candidate:
            return folder
        candidate = parent


_CODE: list[str] = []


def _code_fingerprint() -> str:
    """alfred's own code as loaded: the size and time of each compiler and shared module, the
    grammar and the schema, so an edited checkout (same version) never reads an old plan."""
    if _CODE:
        return _CODE[0]
    from .._resources import grammar_path, schema_path

    package = Path(__file__).resolve().parent.parent
    files = [*_python_files(package, recurse=False), *_python_files(package / "compiler", recurse=True)]
    files += [str(grammar_path()), str(schema_path())]
    stats = []
    for name in sorted(files):
        with contextlib.suppress(OSError):
            info = os.stat(name)
            stats.append(f"{name}:{info.st_size}:{info.st_mtime_ns}")
    _CODE.append(_digest("\n".join(stats).encode("utf-8")))
    return _CODE[0]


def _python_files(folder: Path, *, recurse: bool) -> Iterator[str]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for item in entries:
        if item.name.endswith(".py") and item.is_file():
            yield item.path
        elif recurse and item.is_dir() and item.name != "__pycache__":
            yield from _python_files(Path(item.path), recurse=True)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _text_digest(raw: bytes) -> str:
    """The hash of a file's text as the loader reads it (UTF-8, no byte-order mark)."""
    return _digest(raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw)


# -- reading an entry ------------------------------------------------------------------------

class _Unusable(Exception):
    """An entry, or a plan, that the cache cannot use."""


def _read_entry(entry: Path, material: dict[str, Any]) -> tuple[Plan, list[Diagnostic]] | None:
    """The plan and diagnostics of ``entry`` when it is whole, ours, for ``material`` and
    every file it was compiled from still has the same text; None otherwise."""
    try:
        with open(entry, "rb") as handle:
            data = handle.read()
        header, _, rest = data.partition(b"\n")
        checksum, _, body = rest.partition(b"\n")
        if header + b"\n" != _MAGIC or checksum.decode("ascii") != _digest(body):
            return None
        content = json.loads(body)
        if not isinstance(content, dict) or content.get("key") != material:
            return None
        sources = _current_sources(content["files"])
        if sources is None or not _modules_as_they_were(content["modules"]):
            return None
        plan = decode(content["plan"], sources)
        diagnostics = decode(content["diagnostics"], sources)
        if not isinstance(plan, Plan) or not isinstance(diagnostics, tuple):
            return None
        if not all(isinstance(d, Diagnostic) for d in diagnostics):
            return None
        return plan, list(diagnostics)
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, _Unusable):
        return None  # missing, unreadable, corrupt or foreign: compile


def _current_sources(files: Any) -> list[SourceFile] | None:
    """The files an entry was compiled from, read again; None when one changed or moved."""
    if not isinstance(files, list):
        raise _Unusable("files")
    sources = []
    for name, path, absolute, real, digest in files:
        try:
            with open(absolute, "rb") as handle:
                raw = handle.read()
        except OSError:
            return None
        if _text_digest(raw) != digest or os.path.realpath(absolute) != real:
            return None
        text = raw.decode("utf-8")
        sources.append(SourceFile(name, text[1:] if text.startswith("\ufeff") else text,
                                  None if path is None else Path(path)))
    return sources


def _modules_as_they_were(modules: Any) -> bool:
    """Whether each python stage's module is found, or missing, as at the compile (A504)."""
    if not modules:
        return True
    from ._check_stages import _module_not_found

    return all(_module_not_found(call, folder) == missing for call, folder, missing in modules)


# -- writing an entry ------------------------------------------------------------------------

def _entry_body(
    material: dict[str, Any], sources: list[SourceFile], plan: Plan, diagnostics: list[Diagnostic]
) -> bytes | None:
    """The entry's body, or None when the plan holds what an entry cannot carry."""
    files = []
    for source in sources:
        if source.path is None:
            return None
        absolute = os.path.abspath(source.path)
        files.append([source.name, str(source.path), absolute, os.path.realpath(absolute),
                      _digest(source.text.encode("utf-8"))])
    index = {id(source): number for number, source in enumerate(sources)}
    try:
        encoded_plan = encode(plan, index)
        encoded_diagnostics = encode(tuple(diagnostics), index)
    except _Unusable:
        return None
    content = {"key": material, "files": files, "modules": _python_modules(plan),
               "plan": encoded_plan, "diagnostics": encoded_diagnostics}
    try:
        body = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # text that is not UTF-8, nesting too deep
        return None
    return body


def _python_modules(plan: Plan) -> list[list[Any]]:
    """(call, folder, missing module) of each python stage, as A504 checks them now."""
    if not any(stage.kind == "python" for stage in plan.stages):
        return []
    from ._check_stages import _module_not_found

    calls = {agent.name: agent.call for agent in plan.agents}
    seen: dict[tuple[str, str], str | None] = {}
    for stage in plan.stages:
        if stage.kind != "python":
            continue
        for call in (stage.call, *(calls.get(name) for name in stage.agents)):
            if isinstance(call, str) and "${" not in call and (call, stage.cwd) not in seen:
                seen[call, stage.cwd] = _module_not_found(call, stage.cwd)
    return [[call, folder, missing] for (call, folder), missing in seen.items()]


def _write_entry(cache_dir: Path, entry: Path, body: bytes) -> bool:
    """Write ``entry`` whole or not at all (a temporary file renamed over it), then prune."""
    import tempfile

    try:
        _private_folder(cache_dir)
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=cache_dir)  # 0600
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(_MAGIC + _digest(body).encode("ascii") + b"\n" + body)
            os.replace(temporary, entry)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError:
        return False  # a read-only or full disk: the plan is used all the same
    _prune(cache_dir, keep=entry)
    return True


def _private_folder(folder: Path) -> None:
    """``folder`` and missing parents, 0700 (the state directory's rule, docs/runtime.md)."""
    if not folder.parent.is_dir():
        _private_folder(folder.parent)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        if not folder.is_dir():
            raise


def _prune(cache_dir: Path, *, keep: Path) -> None:
    """Keep the most recently used entries within :data:`MAX_ENTRIES` and :data:`MAX_BYTES`;
    remove temporary files that a dead process left."""
    import time

    now = time.time()
    entries: list[tuple[float, int, str]] = []
    try:
        listing = list(os.scandir(cache_dir))
    except OSError:
        return
    for item in listing:
        with contextlib.suppress(OSError):
            info = item.stat(follow_symlinks=False)
            if item.name.startswith(".tmp-"):
                if now - info.st_mtime > _STALE_TEMP_S:
                    os.unlink(item.path)
            elif item.name.endswith(_SUFFIX) and item.path != str(keep):
                entries.append((info.st_mtime, info.st_size, item.path))
    entries.sort(reverse=True)  # newest first
    total = sum(size for _, size, _ in entries)
    with contextlib.suppress(OSError):
        total += keep.stat().st_size
    count = len(entries) + 1
    while entries and (count > MAX_ENTRIES or total > MAX_BYTES):
        _, size, oldest = entries.pop()
        with contextlib.suppress(OSError):
            os.unlink(oldest)  # another process may have removed it: fine
        count -= 1
        total -= size



# -- the encoding ---------------------------------------------------------------------------
#
# JSON scalars stand for themselves (a ``str`` that is exactly a str); everything else is a
# list whose first item says what it is: ["T", ...] tuple, ["L", ...] list, ["M", {..}] a
# FrozenMap, ["J", {..}] a dict, ["I", text] an interpolating string (its template parsed
# again, as the plan does on construction), ["S", file, start, end] a span, ["V", name,
# value] an enum member, ["D", class, {field: value}] one of the dataclasses below.
#
# Both directions dispatch on the exact type (or tag) through tables made once, and a scalar
# inside a container or a field is passed through without a call: a 2,000-stage plan has
# some 60,000 values. The encoding is exact by construction (only the exact types above are
# written, each read back as itself); tests/test_plancache_encoding.py checks that every example and
# a plan of every kind of stage come back equal, so no write reads its entry back.

_CLASSES: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (Plan, PlanStage, PlanAgent, Hook, Diagnostic, Label, Edit)
}
_ENUMS: dict[str, type[enum.Enum]] = {"Severity": Severity}
_FIELDS: dict[type[Any], frozenset[str]] = {
    cls: frozenset(f.name for f in dataclasses.fields(cls)) for cls in _CLASSES.values()
}
#: What JSON holds as itself (and ``encode``/``decode`` pass through).
_PLAIN = frozenset({str, int, float, bool, type(None)})


def encode(value: Any, files: Mapping[int, int]) -> Any:
    """``value`` (a plan, diagnostics, what they hold) as JSON data; ``files`` numbers the
    source files by ``id``. Raises :class:`_Unusable` for anything it cannot carry."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    encoder = _ENCODERS.get(kind)
    if encoder is not None:
        return encoder(value, files)
    if isinstance(value, enum.Enum) and _ENUMS.get(kind.__name__) is kind:
        return ["V", kind.__name__, value.value]
    raise _Unusable(f"a {kind.__name__}")


def _encode_items(tag: str) -> Callable[[Any, Mapping[int, int]], Any]:
    def encode_items(value: Any, files: Mapping[int, int]) -> Any:
        plain = _PLAIN
        return [tag, *[item if type(item) in plain else encode(item, files) for item in value]]
    return encode_items


def _encode_map(tag: str) -> Callable[[Any, Mapping[int, int]], Any]:
    def encode_map(value: Any, files: Mapping[int, int]) -> Any:
        plain = _PLAIN
        encoded = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusable("a key that is not text")
            encoded[key] = item if type(item) in plain else encode(item, files)
        return [tag, encoded]
    return encode_map


def _encode_span(value: Span, files: Mapping[int, int]) -> Any:
    number = files.get(id(value.source))
    if number is None:
        raise _Unusable("a span outside the files read")
    return ["S", number, value.start, value.end]


def _class_encoder(cls: type[Any]) -> Callable[[Any, Mapping[int, int]], Any]:
    """The encoder of one dataclass: its fields but those that hold their default (same
    type, equal), which are left out of an entry."""
    name = cls.__name__
    fields = tuple((f.name, getattr(cls, f.name).__get__, _field_default(f)) for f in dataclasses.fields(cls))

    def encode_instance(value: Any, files: Mapping[int, int]) -> Any:
        plain = _PLAIN
        encoded = {}
        for field, get, default in fields:
            item = get(value)
            if item is default or (type(item) is type(default) and item == default):
                continue
            encoded[field] = item if type(item) in plain else encode(item, files)
        return ["D", name, encoded]
    return encode_instance


_ENCODERS: dict[type[Any], Callable[[Any, Mapping[int, int]], Any]] = {
    Interpolated: lambda value, files: ["I", str(value)],
    tuple: _encode_items("T"),
    list: _encode_items("L"),
    FrozenMap: _encode_map("M"),
    dict: _encode_map("J"),
    Span: _encode_span,
    **{cls: _class_encoder(cls) for cls in _CLASSES.values()},
}


def decode(data: Any, sources: list[SourceFile]) -> Any:
    """The inverse of :func:`encode`, the spans pointing into ``sources``. Builds only the
    types above (a stage as :func:`~alfred_dsl.compiler._plan.new_stage` does, the others
    through their constructors); raises :class:`_Unusable` (or ``ValueError``,
    ``TypeError``...) on data that :func:`encode` would not have written."""
    kind = type(data)
    if kind in _PLAIN:
        return data
    if kind is not list or not data or type(data[0]) is not str:
        raise _Unusable("not an encoded value")
    return _DECODERS[data[0]](data, sources)


def _decode_tuple(data: list[Any], sources: list[SourceFile]) -> Any:
    plain = _PLAIN
    return tuple([item if type(item) in plain else decode(item, sources) for item in data[1:]])


def _decode_list(data: list[Any], sources: list[SourceFile]) -> Any:
    plain = _PLAIN
    return [item if type(item) in plain else decode(item, sources) for item in data[1:]]


def _decoded_fields(items: Any, sources: list[SourceFile]) -> dict[str, Any]:
    if type(items) is not dict:
        raise _Unusable("a map that is not an object")
    plain = _PLAIN
    return {key: item if type(item) in plain else decode(item, sources) for key, item in items.items()}


def _decode_map(data: list[Any], sources: list[SourceFile]) -> Any:
    tag, items = data
    decoded = _decoded_fields(items, sources)
    return FrozenMap(decoded) if tag == "M" else decoded


def _decode_span(data: list[Any], sources: list[SourceFile]) -> Span:
    _, number, start, end = data
    if type(number) is not int or type(start) is not int or type(end) is not int:
        raise _Unusable("a span")
    if not 0 <= number < len(sources):
        raise _Unusable("a span")
    return Span(sources[number], start, end)


def _decode_class(data: list[Any], sources: list[SourceFile]) -> Any:
    _, name, items = data
    cls = _CLASSES[name]
    fields = _decoded_fields(items, sources)
    if cls is PlanStage:
        return new_stage(fields)  # as PlanStage(**fields), at half the cost; checks the names
    if not _FIELDS[cls].issuperset(fields):
        raise _Unusable(f"fields of {name}")
    return cls(**fields)


def _decode_interpolated(data: list[Any], sources: list[SourceFile]) -> Interpolated:
    _, text = data
    if type(text) is not str:
        raise _Unusable("an interpolating string")
    return interpolated(text)


_DECODERS: dict[str, Callable[[list[Any], list[SourceFile]], Any]] = {
    "T": _decode_tuple,
    "L": _decode_list,
    "M": _decode_map,
    "J": _decode_map,
    "I": _decode_interpolated,
    "S": _decode_span,
    "V": lambda data, sources: _ENUMS[data[1]](data[2]),
    "D": _decode_class,
}
