"""Reading input files: text, YAML/JSON with positions, imports, and the merged workspace.

``read_source`` turns a path into a :class:`SourceFile` (or A001/A002/A003).
``load_document`` turns one file into a :class:`Document`: ``.alfred`` through the parser,
``.yaml``/``.yml``/``.json`` through the position-keeping readers below.
``load`` follows imports from an entry file inside the project root and merges the agents
and workflows of every file into one :class:`Workspace`.

YAML is read from PyYAML's event stream (CSafeLoader when libyaml is there) rather than
from composed nodes: the composer recurses once per nesting level, and libyaml's composer
crashes the interpreter on deeply nested input. Building the data from events with an
explicit stack keeps a span for every key and value, enforces the nesting limit, and
catches duplicate keys. Plain scalars follow the YAML 1.2 core schema (the one JSON and
editors use): only ``true``/``false`` are booleans, so ``on:`` and ``yes`` stay strings.
"""

from __future__ import annotations

from ._file import load_document
from ._json import parse_json
from ._read import MAX_DEPTH, MAX_FILE_SIZE, overlay, read_source
from ._workspace import Workspace, find_root, load, load_built
from ._yaml import parse_yaml

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_SIZE",
    "Workspace",
    "find_root",
    "load",
    "load_built",
    "load_document",
    "overlay",
    "parse_json",
    "parse_yaml",
    "read_source",
]
