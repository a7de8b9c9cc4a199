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
    docs = inputs.get("ALFRED_DOCS")  # the stage's `docs`, pinned by alfred.lock
    if not docs:
        return {"changelog": "CHANGELOG.md"}
    with open(docs, encoding="utf-8") as handle:
        text = handle.read()
    titles = [line for line in text.splitlines() if line.startswith("# ")]
    print(f"grounded in {', '.join(titles)}")
    # What a model would report spending; the workflow's `budget` adds it up.
    return {"changelog": "CHANGELOG.md", "cost_usd": 0.8, "tokens": 12000 + len(text) // 4}


def write_docs(inputs: dict[str, Any]) -> dict[str, Any]:
    print(f"documenting {inputs.get('feature')}")
    return {"docs": "docs/index.md"}


def analyse_issue(inputs: dict[str, Any]) -> dict[str, Any]:
    return {"summary": f"issue {inputs.get('issue')} ({inputs.get('severity')})"}


def write_fix(inputs: dict[str, Any]) -> dict[str, Any]:
    return {"patch": f"fix-{inputs.get('issue')}.diff"}
