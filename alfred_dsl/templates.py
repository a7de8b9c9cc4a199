"""The seed's pipeline templates, from Python: ``feature_development``, ``bug_fix``, ``code_review``.

Each function loads the bundled ``.alfred`` file (``examples/<name>.alfred`` in a checkout,
``alfred_dsl/_data/`` in a wheel) into a :class:`~alfred_dsl.Workflow` and gives the
params passed as keywords as their default values:

>>> from alfred_dsl import templates
>>> wf = templates.feature_development(feature_name="dark-mode")
>>> [stage.name for stage in wf.compile().stages][:2]
['specification', 'planning']

The workflow's stages run in the caller's project (the project root of the file that
called the function), where the agents' tools live; replace an agent with
``wf.add_agent(Agent(...), replace=True)``. Diagnostics about the template's own parts
point into the bundled file; those about the params given point at the call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._builder import Workflow
from ._callsite import call_site
from ._resources import template_path
from .compiler.load import find_root

__all__ = ["NAMES", "bug_fix", "code_review", "feature_development", "load", "path"]

#: The bundled templates.
NAMES: tuple[str, ...] = ("feature_development", "bug_fix", "code_review")


def path(name: str) -> Path:
    """The bundled ``.alfred`` file of template ``name`` (ValueError for an unknown one)."""
    if name not in NAMES:
        from ._values import did_you_mean

        hint = did_you_mean(name, NAMES)
        listed = f" (there are {', '.join(NAMES)})"
        raise ValueError(f"no template `{name}`" + (f"; {hint}" if hint else listed))
    return template_path(f"{name}.alfred")


def load(name: str, /, **params: Any) -> Workflow:
    """Template ``name`` as a :class:`~alfred_dsl.Workflow`, with ``params`` as param defaults."""
    site = call_site()
    workflow = Workflow.from_file(path(name), name)
    caller = site.path or Path(os.getcwd()) / "<python>"
    workflow._origin = Path(os.path.abspath(caller))
    workflow._folder = find_root(workflow._origin)
    if params:
        workflow.set_param_defaults(**params)
    return workflow


def feature_development(**params: Any) -> Workflow:
    """Specification, planning, implementation (grounded in pinned ``docs``), testing,
    documentation, an approval before the merge, optional deployment; under a ``budget``.

    Params: ``feature_name`` (required), ``coverage`` (80), ``auto_deploy`` (false),
    ``environment`` ("staging").
    """
    return load("feature_development", **params)


def bug_fix(**params: Any) -> Workflow:
    """Analysis, root cause, fix, verification. Params: ``issue`` (required), ``last_good``, ``severity``."""
    return load("bug_fix", **params)


def code_review(**params: Any) -> Workflow:
    """Review a pull request for security, performance and coverage.

    Params: ``pull_request`` (required), ``min_coverage`` (85), ``benchmark_budget`` (10m).
    """
    return load("code_review", **params)
