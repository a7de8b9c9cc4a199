"""The tools of alfred's own environment, as stages see them.

Started as ``.venv/bin/alfredc`` without activating the venv, alfred would otherwise run
``python`` and ``alfredc`` in a stage from wherever PATH happens to point (or not at all).
Like ``npm run``, tox, nox and pre-commit, alfred puts the ``bin`` folder of the virtual
environment it runs in first on the stages' PATH, and names its interpreter in
``ALFRED_PYTHON`` (docs/runtime.md, "The command contract").
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping


def tool_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with ``ALFRED_PYTHON`` set and, in a virtual environment, its ``bin`` first on PATH."""
    env = dict(base)
    env["ALFRED_PYTHON"] = sys.executable
    if sys.prefix != sys.base_prefix:  # a virtual environment: its scripts folder holds alfredc
        # sysconfig's `venv` scheme ({base}/bin), without loading sysconfig's tables (ms at start-up)
        scripts = os.path.join(sys.prefix, "Scripts" if os.name == "nt" else "bin")
        rest = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p != scripts]
        env["PATH"] = os.pathsep.join([scripts, *rest])
    return env
