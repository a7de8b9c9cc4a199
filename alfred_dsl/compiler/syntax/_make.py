"""Frozen dataclass instances made without their ``__init__``, for the nodes the parser makes most.

A frozen dataclass's ``__init__`` sets each field with ``object.__setattr__`` (its own
``__setattr__`` refuses): about 0.2 µs a field, and a large file's tree has millions of
spans and nodes. :func:`maker` gives a function that sets the slots directly (the slot
descriptors' ``__set__``), which is what ``__init__`` does and nothing else, for a class
where that is all ``__init__`` does: slots, every field set by ``__init__``, no
``__post_init__``. For any other class it gives the class itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def maker(cls: type[T]) -> Callable[..., T]:
    """A function with the signature of ``cls``'s ``__init__`` (without defaults) that makes a ``cls``."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in vars(cls) or hasattr(cls, "__post_init__"):
        return cls
    fields = dataclasses.fields(cls)
    if any(not field.init for field in fields):
        return cls
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
