"""``alfredc report RUN_ID --format html -o FILE``: the HTML report of one run.

``RUN_ID`` is a run id, a unique prefix of one, or ``last``. The page is self-contained
(no network); secret values named by the run's plan are masked using the environment.
Exit status: 0 written, 2 unknown run or unusable state directory / output path.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["report"]


@click.command()
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(("html",)), default="html", show_default=True,
              help="Output format (html: one self-contained page).")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: report-RUN_ID.html in the current directory; - for stdout).")
@click.option("--state", "state_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path(".alfred"), show_default=True, help="The run state directory.")
def report(run_id: str, fmt: str, output: Path | None, state_dir: Path) -> int:
    """Write the report of run RUN_ID (or `last`)."""
    from ..render._report import load_report, report_to_html

    loaded, problem = load_report(state_dir, run_id)
    if loaded is None:
        raise click.ClickException(problem or f"cannot read run `{run_id}`")
    page = report_to_html(loaded)
    if output is not None and str(output) == "-":
        click.echo(page, nl=False)
        return 0
    target = output or Path(f"report-{loaded.run_id}.html")
    try:
        target.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from exc
    click.echo(f"wrote {target}", err=True)
    return 0
