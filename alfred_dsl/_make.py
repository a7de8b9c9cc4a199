"""Frozen dataclass instances made without their ``__init__``: the one way the package does it.

A frozen dataclass's ``__init__`` sets each field with ``object.__setattr__`` (its own
``__setattr__`` refuses): about 0.2 µs a field, and a large file has millions of syntax
nodes and hundreds of thousands of edges. :func:`maker` gives a function that sets the
slots directly (the slot descriptors' ``__set__``), which is what ``__init__`` does and
nothing else, for a class where that is all ``__init__`` does: slots, every field set by
``__init__``, no ``__post_init__``.

Its users: the parser's most frequent nodes (``compiler/syntax/_builder.py``) and the
resolver's edges (``compiler/_model.new_edge``). Two fast constructors do not use it, for
reasons of their own: ``compiler/_plan.new_stage`` (a stage has defaults and a
``__post_init__``) and ``_source.span_at`` (a span is not a dataclass: it packs its
bounds).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["maker"]

T = TypeVar("T")


def maker(cls: type[T]) -> Callable[..., T]:
    """A function with the signature of ``cls``'s ``__init__`` (without defaults: every field
    is passed) that makes a ``cls``; ``TypeError`` for a class whose ``__init__`` does more
    than set its slots (such a class is made by calling it)."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in vars(cls) or hasattr(cls, "__post_init__"):
        raise TypeError(f"maker({cls.__name__}): not a slotted dataclass without __post_init__")
    fields = dataclasses.fields(cls)
    if any(not field.init for field in fields):
        raise TypeError(f"maker({cls.__name__}): a field is not set by __init__")
    positional = [field.name for field in fields if not field.kw_only]
    keyword = [field.name for field in fields if field.kw_only]
    signature = ", ".join([*positional, *(["*", *keyword] if keyword else [])])
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    body = ["    self = new(cls)\n"]
    for field in fields:
        namespace[f"set_{field.name}"] = vars(cls)[field.name].__set__
        body.append(f"    set_{field.name}(self, {field.name})\n")
    source = f"def make({signature}):\n" + "".join(body) + "    return self\n"
    exec(compile(source, f"<make {cls.__name__}>", "exec"), namespace)  # made from the fields only
    make: Callable[..., T] = namespace["make"]
    return make
