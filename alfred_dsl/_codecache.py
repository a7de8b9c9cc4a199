"""The code that ``dataclasses`` and ``attrs`` generate for each class, compiled once per install.

Defining a dataclass makes its ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``,
``__setattr__``... as source text that the ``dataclasses`` module compiles, in every process,
each time the class is defined; ``attrs`` does the same for trio's classes. A cached 1-stage
``alfredc run`` compiles ~200 such snippets for alfred's ~40 dataclasses and ~100 for trio's
~50 attrs classes: about 20-30 ms of its CPU, for the same code every time (bench/README.md).

As Python keeps a module's bytecode in ``__pycache__``, the ``alfredc`` process (only it:
:func:`enable` is called by ``cli.entry``) keeps these compiled snippets in one file beside
alfred's own bytecode, keyed by their whole source text, file name and compiler flags: a
snippet is found only when it is exactly the text that would be compiled, and the code is
what that compile makes (the same Python: the file is named after the interpreter's cache tag
and holds its bytecode magic number). A snippet not found is compiled as before and the file
rewritten at exit. Python's own rules for bytecode apply: nothing is written under
``PYTHONDONTWRITEBYTECODE`` (``sys.dont_write_bytecode``), ``PYTHONPYCACHEPREFIX`` moves the
file, and a folder that cannot be written, or a file that cannot be read, costs only the compiles.

One thing in attrs' text changes from process to process: the number it writes into a class's
``__hash__``, the hash of the class's name (PYTHONHASHSEED varies it). That number is kept as a
mark in the key, and this process's number is put in the code's constants when it is read.

How: the ``dataclasses`` module compiles with ``exec(text, ...)``, attrs with
``compile(text, filename, "exec")``; each module looks those names up in its globals first, so
a module-level ``exec``/``compile`` that consults the cache stands in for the builtin there and
nowhere else. Both inherit the ``__future__`` flags of the code that calls them, as the builtins
would.
"""

from __future__ import annotations
import __future__

import builtins
import contextlib
import importlib.util
import marshal
import os
import sys
from types import CodeType
from typing import Any

__all__ = ["cache_file", "cover_attrs", "cover_dataclasses", "enable"]

#: The compiler flags a compile inherits from the code calling it (``__future__`` features).
_FUTURE_FLAGS = 0
for _feature in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _feature).compiler_flag

#: Past this many snippets the file keeps only those the writing process used (another
#: attrs or alfred version's snippets are dropped rather than kept forever).
MAX_SNIPPETS = 4000

_Key = tuple[str, str, int]

#: The snippets of the file, each marshalled on its own (loaded when used: `check` does not
#: pay for trio's), and those compiled by this process.
_found: dict[_Key, bytes] = {}
_compiled: dict[_Key, bytes] = {}
_used: set[_Key] = set()
#: The file names of the snippets found, but "<string>" (every dataclass snippet's name).
_found_files: set[str] = set()
#: How many classes of a known file name had another text: in this process, and in the one
#: that wrote the file (those that change at each start do not make each process write it).
_changed: list[str] = []
_changed_before: list[int] = [0]
_enabled: list[bool] = []
_covered: set[str] = set()


def cache_file() -> str | None:
    """Where the snippets are kept: beside this module's bytecode (``__pycache__``, or under
    ``sys.pycache_prefix``), named after the interpreter and the optimisation level; None
    when Python keeps no bytecode files (no cache tag)."""
    try:
        return importlib.util.cache_from_source(__file__).removesuffix(".pyc") + ".generated"
    except NotImplementedError:
        return None


def _header() -> tuple[bytes, int]:
    return importlib.util.MAGIC_NUMBER, sys.flags.optimize


def _code(source: str, filename: str, flags: int) -> CodeType:
    number = _attrs_type_hash(source, filename)
    if number is not None:  # kept with a mark in its place: the same snippet in every process
        source = source.replace(str(number), _TYPE_HASH_MARK)
    key = (source, filename, flags)
    _used.add(key)
    stored = _found.get(key)
    if stored is not None:
        with contextlib.suppress(ValueError, EOFError, TypeError):
            found = _as_code(marshal.loads(stored), number)
            if found is not None:
                return found
    if number is not None:
        source = source.replace(_TYPE_HASH_MARK, str(number))
    code: CodeType = builtins.compile(source, filename, "exec", flags, True)
    _compiled[key] = marshal.dumps((number, code))
    if filename in _found_files:
        # A class whose text changed (an upgrade of attrs or trio), or changes at each start.
        _changed.append(filename)
    return code


#: Where the number of :func:`_attrs_type_hash` stood in a snippet's text.
_TYPE_HASH_MARK = "__alfred_type_hash__"
_ATTRS_FILE = "<attrs generated "


def _attrs_type_hash(source: str, filename: str) -> int | None:
    """The number attrs writes into a class's ``__hash__``, ``hash("<attrs generated hash
    MODULE.CLASS>")``, when ``source`` holds it once: it is per process (PYTHONHASHSEED), so
    the class's text would differ at each start. None for any other snippet."""
    if not filename.startswith(_ATTRS_FILE) or not filename.endswith(">"):
        return None
    _, _, name = filename[len(_ATTRS_FILE):-1].partition(" ")
    number = hash(f"{_ATTRS_FILE}hash {name}>")
    text = str(number)
    at = source.find(text)
    if at < 0 or source.find(text, at + 1) >= 0 or _TYPE_HASH_MARK in source:
        return None
    before, after = source[at - 1:at], source[at + len(text):at + len(text) + 1]
    if before.isdigit() or before == "-" or after.isdigit():
        return None  # part of another number
    return number


def _as_code(stored: object, number: int | None) -> CodeType | None:
    """A stored snippet's code, with this process's number of :func:`_attrs_type_hash` in
    place of the writer's (the only difference between the two compiles but the end column of
    the constant, which nothing reads: loading a constant cannot fail)."""
    if not (isinstance(stored, tuple) and len(stored) == 2 and isinstance(stored[1], CodeType)):
        return None
    written = stored[0]
    code: CodeType = stored[1]
    if written == number:
        return code
    if number is None or not isinstance(written, int):
        return None
    replaced = _with_constant(code, written, number)
    return replaced if replaced is not code else None


def _with_constant(code: CodeType, old: int, new: int) -> CodeType:
    """``code`` (and the code nested in it) with the int constant ``old`` made ``new``, also
    inside the tuples the compiler folded (``hash((N,))``); the same object when there is none."""
    consts = tuple(_replaced(value, old, new) for value in code.co_consts)
    if all(a is b for a, b in zip(consts, code.co_consts, strict=True)):
        return code
    return code.replace(co_consts=consts)


def _replaced(value: object, old: int, new: int) -> object:
    if type(value) is int:
        return new if value == old else value
    if isinstance(value, CodeType):
        return _with_constant(value, old, new)
    if type(value) is tuple:
        items = tuple(_replaced(item, old, new) for item in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def _exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    """``exec`` for the ``dataclasses`` module: text is compiled through the cache."""
    if isinstance(source, str):
        source = _code(source, "<string>", sys._getframe(1).f_code.co_flags & _FUTURE_FLAGS)
    builtins.exec(source, globals, locals)


def _compile(
    source: Any, filename: Any, mode: str, flags: int = 0, dont_inherit: bool = False, optimize: int = -1
) -> Any:
    """``compile`` for attrs: a whole module of text, compiled through the cache."""
    if isinstance(source, str) and isinstance(filename, str) and mode == "exec" and optimize == -1:
        if not dont_inherit:
            flags |= sys._getframe(1).f_code.co_flags & _FUTURE_FLAGS
        return _code(source, filename, flags)
    return builtins.compile(source, filename, mode, flags, dont_inherit, optimize)


def enable() -> None:
    """Let :func:`cover_dataclasses` and :func:`cover_attrs` act in this process (the
    ``alfredc`` process: ``cli.entry``); the file is written at exit when it gained snippets."""
    if _enabled:
        return
    _enabled.append(True)
    import atexit

    atexit.register(_save)


def cover_dataclasses() -> None:
    """Once :func:`enable` ran: compile what ``dataclasses`` generates through the cache
    (called before a command's modules load; ``--version`` loads none)."""
    if _enabled and "dataclasses" not in _covered:
        _load_once()
        _covered.add("dataclasses")
        # A module-level name the module does not define: its calls find it before the builtin.
        setattr(importlib.import_module("dataclasses"), "exec", _exec)  # noqa: B010


def cover_attrs() -> None:
    """Once :func:`enable` ran: attrs' classes too (called before the runtime imports trio,
    whose classes are attrs classes; a process that never runs anything never loads attrs).
    attrs makes classes of its own while it loads: when it is not loaded yet, its module
    gets the name before its code runs."""
    if _enabled and "attr._make" not in _covered:
        _load_once()
        _covered.add("attr._make")
        module = sys.modules.get("attr._make")
        if module is not None:
            setattr(module, "compile", _compile)  # noqa: B010
        else:
            sys.meta_path.insert(0, _SeedOnImport("attr._make", "compile", _compile))


def _load_once() -> None:
    if not _covered:
        _found.update(_load())
        _found_files.update(filename for _, filename, _ in _found if filename != "<string>")


class _SeedOnImport:
    """A finder for one module, once: the spec the other finders give, whose loader sets
    ``name`` in the module's namespace before it runs the module's code."""

    def __init__(self, module_name: str, name: str, value: object) -> None:
        self.module_name, self.name, self.value = module_name, name, value

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.module_name:
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = None if find is None else find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        exec_module = getattr(spec.loader, "exec_module", None)
        if exec_module is not None:
            def seeded(module: Any) -> None:
                setattr(module, self.name, self.value)
                exec_module(module)

            spec.loader.exec_module = seeded
        return spec


def _load() -> dict[_Key, bytes]:
    """The file's snippets (and the count of changed texts its writer saw); none when it is
    missing, unreadable, damaged or another Python's."""
    path = cache_file()
    if path is None:
        return {}
    try:
        with open(path, "rb") as handle:
            content = marshal.loads(handle.read())
    except (OSError, ValueError, EOFError, TypeError):
        return {}  # missing, unreadable or damaged: compiled as without the cache
    if not (isinstance(content, tuple) and len(content) == 4 and content[:2] == _header()):
        return {}  # another Python's bytecode, or another optimisation level
    changed, snippets = content[2:]
    if not isinstance(changed, int) or not isinstance(snippets, dict):
        return {}
    _changed_before[0] = changed
    return snippets


def _save() -> None:
    """Rewrite the file when this process compiled snippets it did not hold: a new class, or
    more changed texts than its writer saw (an upgrade). Atomically, as Python writes
    bytecode: a temporary file renamed over it."""
    new = len(_compiled) - len(_changed)
    if sys.dont_write_bytecode or (new == 0 and len(_changed) <= _changed_before[0]):
        return
    stale = set(_changed)
    snippets = {key: code for key, code in _found.items() if key[1] not in stale}
    snippets.update(_compiled)
    if len(snippets) > MAX_SNIPPETS:
        snippets = {key: code for key, code in snippets.items() if key in _used}
    path = cache_file()
    if path is None:
        return
    temporary = f"{path}.{os.getpid()}"
    with contextlib.suppress(OSError, ValueError):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        descriptor = os.open(temporary, os.O_EXCL | os.O_CREAT | os.O_WRONLY, 0o666)
        try:
            with open(descriptor, "wb") as handle:
                handle.write(marshal.dumps((*_header(), len(_changed), snippets)))
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
