"""Stand-in for ``myteam.agents:implement`` of tests/data/check/feature.*."""

from __future__ import annotations

from typing import Any


def implement(inputs: dict[str, Any]) -> dict[str, Any]:
    return {"changelog": "CHANGELOG.md"}
