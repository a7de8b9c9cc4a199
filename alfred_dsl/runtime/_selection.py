"""Which stages a run runs: ``--force``, ``--force STAGE``, ``--from``, ``--until``, ``--only``.

``--from S``: S and every stage that depends on it, directly or not. ``--until S``: S and
every stage it depends on. ``--only S`` (repeatable): just those. Given together, a stage
must satisfy each. Stages outside the selection do not run: those a selected stage needs
take their outputs from the last run in which they succeeded (``up_to_date``), the others
end ``skipped``. Selected stages still skip when up to date, unless forced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .._diagnostics import AlfredError
from .._values import suggest
from ..compiler._plan import Plan

__all__ = ["Selection", "SelectionError", "select"]


class SelectionError(AlfredError):
    """A stage name given to ``--force``/``--from``/``--until``/``--only`` is not in the plan."""


@dataclass(frozen=True, slots=True)
class Selection:
    """What to run again anyway (``--force``) and which stages run at all (None: every one)."""

    force: bool
    force_stages: frozenset[str]
    selected: frozenset[str] | None


def _known(plan: Plan, name: str, flag: str) -> str:
    names = [s.name for s in plan.stages]
    if name in names:
        return name
    close = suggest(name, names)
    hint = f"; did you mean `{close[0]}`?" if close else f"; its stages: {', '.join(names)}"
    raise SelectionError(f"{flag} {name}: workflow `{plan.workflow}` has no stage `{name}`{hint}")


def _closure(start: str, edges: dict[str, list[str]]) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def select(
    plan: Plan,
    *,
    force: Sequence[str] = (),
    force_all: bool = False,
    from_stage: str | None = None,
    until_stage: str | None = None,
    only: Iterable[str] = (),
) -> Selection:
    """The selection the flags ask for; :class:`SelectionError` for an unknown stage."""
    forced = frozenset(_known(plan, name, "--force") for name in force)
    before: dict[str, list[str]] = {s.name: list(s.after) for s in plan.stages}
    after: dict[str, list[str]] = {}
    for stage in plan.stages:
        for dep in stage.after:
            after.setdefault(dep, []).append(stage.name)
    selected: set[str] | None = None

    def narrow(names: set[str]) -> None:
        nonlocal selected
        selected = names if selected is None else selected & names

    if from_stage is not None:
        narrow(_closure(_known(plan, from_stage, "--from"), after))
    if until_stage is not None:
        narrow(_closure(_known(plan, until_stage, "--until"), before))
    only_names = {_known(plan, name, "--only") for name in only}
    if only_names:
        narrow(only_names)
    return Selection(
        force=force_all, force_stages=forced, selected=None if selected is None else frozenset(selected),
    )
