"""A python agent: writes a Markdown page of a package's public functions from their docstrings.

alfred calls :func:`write_api_doc` with the stage's resolved inputs and records the dict it
returns as the stage's outputs (``stages.docs.outputs.functions`` and ``.doc_path``).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

#: The demo project's folder: relative inputs are read from here, whatever the process cwd.
DEMO_DIR = Path(__file__).resolve().parent.parent


def write_api_doc(inputs: dict[str, Any]) -> dict[str, Any]:
    """Import ``inputs["package"]`` from ``inputs["source"]`` and write ``inputs["out"]``."""
    source = DEMO_DIR / str(inputs.get("source", "sample"))
    out = DEMO_DIR / str(inputs.get("out", "out/API.md"))
    package_name = str(inputs["package"])
    sys.path.insert(0, str(source))
    try:
        package = importlib.import_module(package_name)
    finally:
        sys.path.remove(str(source))
    names = getattr(package, "__all__", [n for n in dir(package) if not n.startswith("_")])
    lines = [f"# `{package_name}` API", "", inspect.getdoc(package) or "", ""]
    documented = 0
    for name in sorted(names):
        member = getattr(package, name)
        if not inspect.isfunction(member):
            continue
        documented += 1
        signature = inspect.signature(member, eval_str=True)
        lines += [f"## `{name}{signature}`", "", inspect.getdoc(member) or "(undocumented)", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    return {"functions": documented, "doc_path": str(out.relative_to(DEMO_DIR))}
