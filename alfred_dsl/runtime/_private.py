"""Private places: the state directory's modes, and a run's folder for secret-bearing files.

The state directory and its run folders are 0700, the files alfred writes there 0600,
whatever the umask. A run with secrets gives its commands ``$ALFRED_INPUTS`` and
``$ALFRED_OUTPUTS`` in a folder outside the state directory, 0700, on a memory file system
when there is one (``$XDG_RUNTIME_DIR``, else ``/dev/shm``), named after the run so that
``--resume`` finds and removes what a killed ``alfredc`` left there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .._statedb import private_mkdir

__all__ = ["make_private_dir", "private_dir_bases", "private_mkdir", "scrub_private_dirs"]


def private_dir_bases() -> list[Path]:
    """Where a run's private folder may go, best first: memory file systems, then the temp dir."""
    bases: list[Path] = []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    for candidate in (runtime, "/dev/shm", tempfile.gettempdir()):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            path = Path(candidate)
            if path not in bases:
                bases.append(path)
    return bases


def _prefix(run_id: str) -> str:
    return f"alfred-{run_id}."


def _is_private_dir_of(name: str, run_id: str) -> bool:
    # mkdtemp's random part has no dot: run `a` never matches the folder of run `a.b`.
    prefix = _prefix(run_id)
    return name.startswith(prefix) and "." not in name[len(prefix) :]


def make_private_dir(run_id: str) -> Path:
    """A new folder (0700) for the secret-bearing files of run ``run_id``."""
    error: OSError | None = None
    for base in private_dir_bases():
        try:
            return Path(tempfile.mkdtemp(prefix=_prefix(run_id), dir=base))
        except OSError as exc:
            error = exc
    raise error or OSError(f"no writable temporary folder for run {run_id}")


def scrub_private_dirs(run_id: str) -> list[Path]:
    """Remove the private folders of run ``run_id`` (left by a killed ``alfredc``); returns them."""
    removed: list[Path] = []
    for base in private_dir_bases():
        with contextlib.suppress(OSError):
            for entry in base.iterdir():
                if not _is_private_dir_of(entry.name, run_id):
                    continue
                with contextlib.suppress(OSError):
                    if entry.is_dir() and not entry.is_symlink() and entry.stat().st_uid == os.getuid():
                        shutil.rmtree(entry)
                        removed.append(entry)
    return removed
