"""Helpers of the service tests: workflow files, the CLI in a subprocess, waiting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from conftest import run_alfredc

ALFREDC = [sys.executable, "-m", "alfred_dsl"]
#: Short leases and polls keep the tests fast.
FAST = ["--poll", "50ms", "--control-interval", "50ms", "--grace", "0.5"]


def env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}


def alfredc(
    *args: str, cwd: Path, check: bool = False, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*ALFREDC, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env()
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"alfredc {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def start_worker(cwd: Path, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
    """`alfredc worker` in the background; stderr goes to ``log`` (read it with read_log)."""
    handle = open(log or cwd / "worker.log", "a", encoding="utf-8")  # noqa: SIM115 - the child keeps it
    try:
        return subprocess.Popen(
            [*ALFREDC, "worker", *FAST, *args], cwd=cwd, stdout=handle, stderr=handle, text=True, env=env(),
            start_new_session=True,
        )
    finally:
        handle.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def submit(cwd: Path, file: str = "flow.alfred", *args: str) -> str:
    result = alfredc("submit", file, *args, cwd=cwd, check=True)
    return result.stdout.strip()


def status(cwd: Path, run_id: str) -> dict[str, Any]:
    """`alfredc status RUN_ID --format json`, in-process: it only reads the database the
    worker processes write, and polling it through a new interpreter each time is slow."""
    result = run_alfredc("status", run_id, "--format", "json", cwd=cwd)
    assert result.status == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def flow(stages: Sequence[tuple[str, str, Sequence[str]]], *, name: str = "flow", extra: str = "") -> str:
    """An .alfred file: one command agent `sh` (concurrency 4) and stages (name, shell line, after)."""
    parts = [
        'agent sh {\n  kind = command\n  run = ["true"]\n  concurrency = 4\n}\n',
        f"workflow {name} {{\n{extra}",
    ]
    for stage_name, run, after in stages:
        header = f"  stage {stage_name}" + (f" after {', '.join(after)}" if after else "")
        parts.append(f'{header} {{\n    agent = sh\n    run = {json.dumps(run)}\n  }}\n')
    parts.append("}\n")
    return "".join(parts)
