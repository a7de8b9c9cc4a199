"""The engines' venvs for test_export_engines.py: one per engine, built once, kept in .engines/.

``python tests/_engines.py [ENGINE ...]`` builds them outside pytest (what the session fixture
does on first use). A venv holds the pinned engine and this checkout (installed without build
isolation, so nothing but the engine and alfred's own dependencies is downloaded); the tests
put the checkout first on ``PYTHONPATH`` so the code under test is always the current one.
A venv counts as built only when its marker file exists, written after the install and an
import check succeeded; a half-built venv (an interrupted install) is rebuilt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENGINES_DIR = REPO / ".engines"

#: The versions the verification runs on (the newest that ran every test; bump deliberately).
PINS = {
    "airflow": ("apache-airflow==3.3.2", "airflow"),
    "prefect": ("prefect==3.9.1", "prefect"),
    "dagster": ("dagster==1.13.29", "dagster"),
}
MARKER = "alfred-engine-ready"


class EngineUnavailable(Exception):
    """The engine's venv could not be built (offline, registry error); the message says why."""


@dataclass(frozen=True, slots=True)
class EngineEnv:
    engine: str
    requirement: str
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def environ(self, **extra: str) -> dict[str, str]:
        """An environment that runs the venv's tools on the checkout's current code."""
        env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONHOME")}
        env["PYTHONPATH"] = str(REPO)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(extra)
        return env


def env_for(engine: str) -> EngineEnv:
    requirement, _ = PINS[engine]
    version = requirement.split("==", 1)[1]
    return EngineEnv(engine, requirement, ENGINES_DIR / f"{engine}-{version}")


def _healthy(env: EngineEnv) -> bool:
    if not (env.root / MARKER).is_file() or not env.python.exists():
        return False
    module = PINS[env.engine][1]
    check = subprocess.run(
        [str(env.python), "-c", f"import {module}, alfred_dsl.export.runtime"],
        env=env.environ(), capture_output=True, text=True, check=False,
    )
    return check.returncode == 0


def ensure(engine: str, log: object = None) -> tuple[EngineEnv, float]:
    """The engine's venv, built if missing or broken; and the seconds spent building it (0 when
    reused). Raises :class:`EngineUnavailable` when pip fails."""
    env = env_for(engine)
    if _healthy(env):
        return env, 0.0
    started = time.monotonic()
    if env.root.exists():
        shutil.rmtree(env.root)
    env.root.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(env.root)],
        [str(env.python), "-m", "pip", "install", "-q", "--disable-pip-version-check", env.requirement,
         "hatchling>=1.24"],
        [str(env.python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-build-isolation",
         str(REPO)],
    ]
    clean = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    for step in steps:
        done = subprocess.run(step, env=clean, capture_output=True, text=True, check=False, timeout=900)
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise EngineUnavailable(f"`{' '.join(step[-3:])}` failed (exit {done.returncode}):\n{tail}")
    # Built in the checkout: the checkout's build/ must not be mistaken for the package.
    shutil.rmtree(REPO / "build", ignore_errors=True)
    (env.root / MARKER).write_text(env.requirement + "\n", encoding="utf-8")
    if not _healthy(env):
        (env.root / MARKER).unlink()
        raise EngineUnavailable(f"{env.requirement} installed but `import {PINS[engine][1]}` fails")
    return env, time.monotonic() - started


if __name__ == "__main__":
    for name in sys.argv[1:] or list(PINS):
        built, seconds = ensure(name)
        print(f"{name}: {built.root} ({seconds:.0f} s)")
