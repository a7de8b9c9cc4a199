"""The python agent and the argv tool of focused.alfred (tests/test_export_engines.py)."""

from __future__ import annotations

import os
import sys
from typing import Any


def summarise(inputs: dict[str, Any]) -> dict[str, Any]:
    """Write what the stage was given to work/summary.txt and return it."""
    line = f"{inputs['greeting']} {inputs['who']} x{inputs['n']}"
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "work", "summary.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return {"line": line}


if __name__ == "__main__":
    # argv: FILE VALUE -> appends "GREETING VALUE" to FILE; the output `word` is VALUE reversed
    path, value = sys.argv[1], sys.argv[2]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{os.environ['GREETING']} {value} cwd={os.path.basename(os.getcwd())}\n")
    with open(os.environ["ALFRED_OUTPUTS"], "a", encoding="utf-8") as handle:
        handle.write(f"word={value[::-1]}\n")
