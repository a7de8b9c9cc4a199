"""``alfredc doctor``: what this machine gives the runtime (process containment, versions).

Exit status: 0.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from typing import Any

import click

from .._version import __version__

__all__ = ["doctor"]


@click.command()
@click.option(
    "--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
    help="Output format.",
)
@click.option(
    "--state", "state_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=str),
    help="The state directory to report (default: .alfred in the current directory).",
)
def doctor(fmt: str, state_dir: str | None) -> int:
    """Show how stages' processes are contained here (a cgroup per attempt, or the runner
    as child subreaper, and why), the kernel, Python, trio and the state directory."""
    import trio

    from ..runtime._contain import containment
    from ..runtime._store import default_state_dir

    mode = containment()
    state = os.path.abspath(state_dir) if state_dir is not None else str(default_state_dir())
    data: dict[str, Any] = {
        "alfred": __version__,
        "containment": {
            "mode": mode.mode,
            "reason": mode.reason,
            "cgroup": mode.cgroup_root,
            "switch": "ALFRED_NO_CGROUP" + (" (set)" if os.environ.get("ALFRED_NO_CGROUP") else " (not set)"),
        },
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "trio": trio.__version__,
        "state_dir": state,
    }
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return 0
    contain = data["containment"]
    click.echo(f"alfred       {data['alfred']}")
    click.echo(f"containment  {contain['mode']}: {contain['reason']}")
    if contain["cgroup"] is not None:
        click.echo(f"cgroups      {contain['cgroup']}/RUN_ID/STAGE.ATTEMPT (this process)")
    click.echo(f"kernel       {data['kernel']}")
    click.echo(f"python       {data['python']}")
    click.echo(f"trio         {data['trio']}")
    click.echo(f"state dir    {data['state_dir']}")
    return 0
