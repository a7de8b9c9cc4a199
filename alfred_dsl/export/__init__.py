"""Exporters: a compiled plan as an Airflow 3 DAG, a Prefect 3 flow or a Dagster job.

:func:`export_plan` writes one self-contained Python module and reports, as A6xx warnings,
whatever the engine cannot do exactly as ``alfredc run`` does (docs/exports.md). The module's
tasks call the run-time shim :mod:`alfred_dsl.export.runtime`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._airflow import to_airflow
from ._compiler import Diagnostic, Plan
from ._dagster import to_dagster
from ._losses import ENGINES, losses
from ._prefect import to_prefect

__all__ = ["TARGETS", "ExportError", "Exported", "export_plan"]

_GENERATORS: dict[str, Callable[[Plan], str]] = {
    "airflow": to_airflow,
    "prefect": to_prefect,
    "dagster": to_dagster,
}
#: The engines a plan exports to.
TARGETS = tuple(ENGINES)


class ExportError(ValueError):
    """The plan holds a stage no engine can run as ``alfredc run`` does."""


@dataclass(frozen=True, slots=True)
class Exported:
    """The module's text and the A6xx warnings of what it does differently."""

    text: str
    diagnostics: tuple[Diagnostic, ...]


def export_plan(plan: Plan, target: str) -> Exported:
    """``plan`` as a Python module for ``target`` (one of :data:`TARGETS`)."""
    generate = _GENERATORS.get(target)
    if generate is None:
        raise ValueError(f"unknown export target {target!r}: expected one of {', '.join(TARGETS)}")
    _refuse_what_cannot_run(plan, target)
    return Exported(generate(plan), tuple(losses(plan, target)))


def _refuse_what_cannot_run(plan: Plan, target: str) -> None:
    """:class:`ExportError` for an approval stage (an engine cannot wait for ``alfredc approve``)
    and for a stage with ``docs`` (their pinned texts live in alfred's cache): exporting them
    as something else would change what the workflow does."""
    engine = ENGINES[target]
    for stage in plan.stages:
        if stage.kind == "approval":
            raise ExportError(
                f"stage `{stage.name}` waits for a person's approval, which {engine} cannot ask for "
                "`alfredc approve`: run this workflow with `alfredc run`, or export one without approvals"
            )
    for stage in plan.stages:
        if stage.mcp is not None and stage.mcp.get("docs"):
            raise ExportError(
                f"stage `{stage.name}` reads documentation pinned by alfred.lock (`docs`), which an "
                f"exported {engine} task cannot read: run it with `alfredc run`"
            )
