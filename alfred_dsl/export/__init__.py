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

__all__ = ["TARGETS", "Exported", "export_plan"]

_GENERATORS: dict[str, Callable[[Plan], str]] = {
    "airflow": to_airflow,
    "prefect": to_prefect,
    "dagster": to_dagster,
}
#: The engines a plan exports to.
TARGETS = tuple(ENGINES)


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
    return Exported(generate(plan), tuple(losses(plan, target)))
