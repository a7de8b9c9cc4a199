"""``alfredc export FILE --to airflow|prefect|dagster``: the workflow as an engine's Python module.

Exit statuses as ``plan``: 1 when the file has errors (nothing is written), when the workflow
has a stage no engine can run (an approval, pinned ``docs``), or, with ``--strict``, when
something does not translate exactly (A6xx); 2 for usage or I/O errors.
"""

from __future__ import annotations

import os

import click

from ._common import compile_for_cli, emit, param_option, print_error

__all__ = ["export"]


@click.command()
@click.argument("file", type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "--to", "target", required=True, type=click.Choice(("airflow", "prefect", "dagster")),
    help="The engine: an Airflow 3 DAG, a Prefect 3 flow or a Dagster job.",
)
@param_option
@click.option(
    "--output", "-o", metavar="PATH",
    help="Write the module here (a folder: FOLDER/WORKFLOW.py); default: stdout.",
)
@click.option("--strict", is_flag=True, help="Treat what does not translate exactly (A6xx) as errors.")
def export(
    file: str, target: str, workflow: str | None, params: tuple[str, ...], colour: str,
    output: str | None, strict: bool,
) -> int:
    """Compile FILE and write its workflow as a Python module for TARGET.

    The module runs the workflow on the engine with alfred's command contract; run as a
    script (`python MODULE.py`) it runs the workflow once locally and exits 0 on success,
    1 on failure. What the engine cannot do exactly as `alfredc run` does is reported as an
    A6xx warning (an error with --strict). See docs/exports.md.
    """
    compiled = compile_for_cli(file, workflow, params, colour)
    if isinstance(compiled, int):
        return compiled
    from ..export import ExportError, export_plan
    from ..export._compiler import Severity

    try:
        exported = export_plan(compiled, target)
    except ExportError as exc:
        print_error(str(exc))
        return 1
    diagnostics = list(exported.diagnostics)
    if strict:
        from dataclasses import replace

        diagnostics = [replace(d, severity=Severity.ERROR) for d in diagnostics]
    emit(diagnostics, colour=colour, err=True)
    if strict and diagnostics:
        return 1
    if output is None:
        click.echo(exported.text, nl=False)
        return 0
    path = os.path.join(output, f"{compiled.workflow}.py") if os.path.isdir(output) else output
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(exported.text)
    except OSError as exc:
        click.echo(f"alfredc: cannot write {path}: {exc.strerror}", err=True)
        return 2
    click.echo(f"wrote {path}", err=True)
    return 0
