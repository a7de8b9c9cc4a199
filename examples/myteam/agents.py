"""Stand-ins for the agents of feature_development.alfred and bug_fix.alfred.

Each takes the stage's ``inputs`` dict and returns its outputs; ``print()`` and ``logging``
go to the stage's log (``alfredc logs last STAGE``).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def plan_work(inputs: dict[str, Any]) -> dict[str, Any]:
    log.warning("planning from %s", inputs.get("spec"))
    return {"task_list": "tasks.md"}


def implement(inputs: dict[str, Any]) -> dict[str, Any]:
    print(f"implementing {inputs.get('tasks')} of {inputs.get('spec')}")
    return {"changelog": "CHANGELOG.md"}


def write_docs(inputs: dict[str, Any]) -> dict[str, Any]:
    print(f"documenting {inputs.get('feature')}")
    return {"docs": "docs/index.md"}


def analyse_issue(inputs: dict[str, Any]) -> dict[str, Any]:
    return {"summary": f"issue {inputs.get('issue')} ({inputs.get('severity')})"}


def write_fix(inputs: dict[str, Any]) -> dict[str, Any]:
    return {"patch": f"fix-{inputs.get('issue')}.diff"}
