"""Starting a run: the one wiring of store, event bus, hooks, resume and execution.

``alfredc run`` (``cli/_run``), the Python API (``alfred_dsl.run``, ``Engine.execute``)
and the service's worker all start runs through :func:`start_run`; they differ only in
what they pass (the options, their observers, a queue's run id and control flags).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..compiler._plan import Plan
from ._events import Event, EventBus
from ._limits import AgentSlots
from ._results import RunOptions, RunResult
from ._scheduler import execute
from ._store import RunRecord, StateStore, StoreError

__all__ = ["find_run", "start_run"]


def find_run(store: StateStore, ref: str) -> RunRecord:
    """The run ``ref`` names (an id, a unique prefix of one, or ``last``).

    Raises :class:`StoreError` ("no run `REF` in DIR") when there is none.
    """
    run_id = store.resolve_run_id(ref)
    record = None if run_id is None else store.run(run_id)
    if record is None:
        raise StoreError(f"no run `{ref}` in {store.state_dir}")
    return record


async def start_run(
    plan: Plan,
    store: StateStore,
    options: RunOptions,
    *,
    resume: str | None = None,
    bus: EventBus | None = None,
    on_event: Callable[[Event], object] | None = None,
    hooks: bool = False,
    report: Callable[[str], object] | None = None,
    observers: Sequence[Callable[[EventBus], object]] = (),
    run_id: str | None = None,
    control: Callable[[str], str | None] | None = None,
    control_interval_s: float = 0.5,
    agent_slots: AgentSlots | None = None,
) -> RunResult:
    """Execute ``plan``, recorded in ``store``; see :func:`~alfred_dsl.runtime.execute`.

    ``resume``: the run to continue (an id, a unique prefix or ``last``; :class:`StoreError`
    when there is none). The events go, in this order, to ``bus``'s handlers (a fresh bus
    by default), ``on_event``, the workflow's hooks (with ``hooks``; failures reported with
    ``report``, default a warning on stderr) and each of ``observers`` (called with the bus
    once the others are attached: the CLI's live view, which must see the hooks' effects).
    """
    resume_id = None if resume is None else find_run(store, resume).id
    bus = bus if bus is not None else EventBus()
    if on_event is not None:
        bus.subscribe(on_event)
    if hooks and plan.hooks:  # the hooks' module loads only for a workflow that has some
        from ._hooks import attach as attach_hooks

        if report is None:
            attach_hooks(bus, plan, options=options)
        else:
            attach_hooks(bus, plan, options=options, report=report)
    for observe in observers:
        observe(bus)
    return await execute(
        plan, store=store, options=options, bus=bus, resume=resume_id, run_id=run_id, control=control,
        control_interval_s=control_interval_s, agent_slots=agent_slots,
    )
