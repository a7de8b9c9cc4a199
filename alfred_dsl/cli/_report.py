"""``alfredc report``: the HTML report of one run, or the performance report of a period.

- ``alfredc report RUN_ID [--format html] [-o FILE]``: one run (``RUN_ID`` is a run id, a
  unique prefix of one, or ``last``). The page is self-contained (no network); secret
  values named by the run's plan are masked using the environment.
- ``alfredc report [--since 24h] [--format md|html|json] [-o FILE]``: the runs that
  started in the period: metrics, trend, per-agent performance and recommendations
  (printed on stdout unless ``-o`` is given). An empty period says so.

Exit status: 0 written, 2 unknown run or unusable state directory / output path.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .._values import parse_since

if TYPE_CHECKING:
    from ..render._report import RunReport

__all__ = ["load_report", "report"]


@click.command()
@click.argument("run_id", required=False)
@click.option("--format", "fmt", type=click.Choice(("html", "md", "json")), default=None,
              help="html for a run (the default); md (the default), html or json for a period.")
@click.option("--since", "since", default=None, metavar="DURATION",
              help="Without RUN_ID: the period of the performance report (default 24h).")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (- for stdout). Default: report-RUN_ID.html for a run, stdout for a"
                   " period.")
@click.option("--state", "state_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              default=Path(".alfred"),
              help="The state directory (default: .alfred in the current directory).")
def report(
    run_id: str | None, fmt: str | None, since: str | None, output: Path | None, state_dir: Path
) -> int:
    """Write the report of run RUN_ID (or `last`), or without RUN_ID the performance
    report of the runs of the last --since period."""
    if run_id is None:
        return _period_report(fmt or "md", since or "24h", output, state_dir)
    if since is not None:
        raise click.UsageError("--since is for the performance report: give it without RUN_ID")
    if fmt not in (None, "html"):
        raise click.UsageError("the report of one run is HTML (--format md|json are for the period report)")
    from ..render._report import report_to_html

    loaded, problem = load_report(state_dir, run_id)
    if loaded is None:
        raise click.ClickException(problem or f"cannot read run `{run_id}`")
    page = report_to_html(loaded)
    if output is not None and str(output) == "-":
        click.echo(page, nl=False)
        return 0
    target = output or Path(f"report-{loaded.run_id}.html")
    _write(target, page)
    return 0


def _write(target: Path, text: str) -> None:
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from exc
    click.echo(f"wrote {target}", err=True)


def _period_report(fmt: str, since: str, output: Path | None, state_dir: Path) -> int:
    from ..service._perf_report import (
        build_perf_report,
        perf_report_to_html,
        perf_report_to_json,
        perf_report_to_markdown,
    )

    period = parse_since(since)
    if period is None:
        raise click.BadParameter(f"expected a duration such as 30m, 24h or 7d, got {since!r}",
                                 param_hint="'--since'")
    if state_dir.exists() and not state_dir.is_dir():
        raise click.ClickException(f"{state_dir} is not a directory")
    now = time.time()
    built = build_perf_report(state_dir, since=now - period, until=now)
    if fmt == "json":
        text = json.dumps(perf_report_to_json(built), indent=2) + "\n"
    elif fmt == "html":
        text = perf_report_to_html(built)
    else:
        text = perf_report_to_markdown(built)
    if output is None or str(output) == "-":
        click.echo(text, nl=False)
    else:
        _write(output, text)
    return 0


def load_report(
    state_dir: Path, run_ref: str, *, secrets: Iterable[str] = ()
) -> tuple[RunReport | None, str | None]:
    """Read run ``run_ref`` (an id, a unique prefix or ``last``) from ``state_dir`` and build its report.

    Returns the report, or None and a message saying why it cannot be read. The secret
    values masked are ``secrets`` plus the environment values of the secrets the plan names.
    """
    from ..render._report import build_report
    from ..runtime import FINAL_RUN_EVENTS, StateStore, StoreError

    try:
        # Read-only: a report never creates or alters a state directory.
        opened = StateStore.open_readonly(state_dir)
        if opened is None:
            return None, f"no run state in {state_dir} (run `alfredc run` first, or pass --state DIR)"
        with opened as store:
            run_id = store.resolve_run_id(run_ref)
            run = store.run(run_id) if run_id is not None else None
            if run is None:
                return None, f"no run `{run_ref}` in {state_dir}"
            stages = store.stages(run.id)
            attempts = store.attempts(run.id)
            # Why the run failed, when its final event says (a budget stop, the workflow's timeout).
            final = next((e for e in reversed(store.events(run.id)) if e.type in FINAL_RUN_EVENTS), None)
            reason = final.data.get("reason") if final is not None and final.type == "run_failed" else None
    except StoreError as exc:
        return None, str(exc)
    from ..runtime._approval import pending_approvals

    names = run.plan.get("secrets", ()) if isinstance(run.plan, Mapping) else ()
    from_env = [os.environ.get(str(n), "") for n in names] if isinstance(names, list) else []
    return build_report(
        run, stages, attempts, secrets=[*secrets, *from_env], base_dir=state_dir,
        approvals=pending_approvals(state_dir, run.id), reason=str(reason) if reason else None,
    ), None
