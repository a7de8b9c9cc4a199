"""Dynamic fan-out at run time: a ``for_each`` stage becomes one instance per item.

When a ``for_each = stages.X.outputs.KEY`` stage is ready (X has succeeded), the value of
X's output KEY is read as a list (a JSON array in an ``$ALFRED_OUTPUTS`` line, or a list a
python stage returned), at most :data:`MAX_ITEMS` items, each a string, number, boolean or
null. The items are recorded in the ``expansions`` table and committed before any instance
starts; a resumed run takes them from there and never reads X's outputs again, so it has the
same instances, and those that succeeded are not run again.

Instance ``i`` is the stage named ``STAGE[i]`` with every ``${each.item}`` and
``${each.index}`` of its values bound to its item and ``i`` (as literals: in a shell line
they still reach the shell through the environment, see :mod:`._shell`). It has the stage's
agent, limits, retries, priority and ``when``. The stage itself waits for its instances:
it succeeds when none failed, with the outputs ``{"0": {...}, "1": {...}}`` (an instance
skipped by its ``when`` is absent); it ends ``upstream_failed`` when one failed. An empty
list: the stage succeeds with no instance and the outputs ``{}``.

Two hooks in ``_scheduler._Run.process_settle``: :func:`settle_expanded` decides the stage
once its instances are final, :func:`expand` expands it when it is ready; one in
``_recovery.load_resume``: :func:`restore` rebuilds the instances of a resumed run.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

from .._expr import Interpolated, Literal, references, substitute_template, unparse_template
from ..compiler._foreach import MAX_ITEMS
from ..compiler._plan import FrozenMap, PlanStage, interpolated
from . import _events as ev
from ._results import CANCELLED, FAILED, SUCCEEDED, UP_TO_DATE, UPSTREAM_FAILED

if TYPE_CHECKING:
    from ._scheduler import _Run, _Stage

__all__ = ["MAX_ITEMS", "expand", "instance_name", "items_of", "restore", "settle_expanded"]

#: How many items the ``stage_expanded`` event shows (``count`` says how many there are).
_SHOWN = 100
#: The fields of a stage whose ``${each.*}`` are bound for each instance.
_BOUND_FIELDS = ("run", "inputs", "env", "when", "mcp", "description")


def instance_name(stage: str, index: int) -> str:
    return f"{stage}[{index}]"


class ItemsError(Exception):
    """The value a ``for_each`` stage reads is not a list it can expand to."""


def items_of(value: Any, source: str) -> list[Any]:
    """The items of an output value: a list, or text holding a JSON array."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            shown = value if len(value) <= 60 else value[:57] + "..."
            raise ItemsError(
                f"`for_each`: {source} is not a list: {shown!r} is not a JSON array"
                " (write it as `KEY=[\"a\", \"b\"]`)"
            ) from None
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        kind = "an object" if isinstance(value, dict) else type(value).__name__
        raise ItemsError(f"`for_each`: {source} is not a list but {kind} (write a JSON array)")
    if len(value) > MAX_ITEMS:
        raise ItemsError(f"`for_each`: {source} has {len(value)} items, more than the {MAX_ITEMS} allowed")
    for index, item in enumerate(value):
        if isinstance(item, dict | list):
            kind = "an object" if isinstance(item, dict) else "a list"
            raise ItemsError(
                f"`for_each`: item {index} of {source} is {kind}; items are strings, numbers or booleans"
            )
    return value


def settle_expanded(run: _Run, st: _Stage) -> bool:
    """A ``for_each`` stage whose instances are all final: decide it (and return True).
    False when it has not been expanded yet (the ordinary checks and :func:`expand` follow)."""
    instances = run.expanded.get(st.name)
    if instances is None:
        return False
    states = [run.stages[name] for name in instances]
    broken = next((i for i in states if i.state in (FAILED, UPSTREAM_FAILED)), None)
    if broken is not None:
        run.finalize(st, UPSTREAM_FAILED, upstream=broken.name)
        return True
    if any(i.state == CANCELLED for i in states):
        run.finalize(st, CANCELLED, reason="its instances were cancelled")
        return True
    st.outputs = {
        name[len(st.name) + 1 : -1]: dict(i.outputs) for name, i in zip(instances, states, strict=True)
        if i.state in (SUCCEEDED, UP_TO_DATE)
    }
    run.finalize(st, SUCCEEDED)
    return True


def expand(run: _Run, st: _Stage) -> None:
    """Expand a ready ``for_each`` stage: read its list, record it, start its instances."""
    stage, key = st.spec.for_each[0], st.spec.for_each[1]
    source = f"stages.{stage}.outputs.{key}"
    outputs = run.scope_base["stages"].get(stage, {}).get("outputs", {})
    if key not in outputs:
        upstream = run.stages.get(stage)
        state = upstream.state if upstream is not None else "unknown"
        how = "succeeded without" if state in (SUCCEEDED, UP_TO_DATE) else f"ended {state}, with no"
        st.error = f"`for_each`: stage `{stage}` {how} output `{key}`"
        run.finalize(st, FAILED)
        return
    try:
        items = items_of(outputs[key], source)
    except ItemsError as exc:
        st.error = str(exc)
        run.finalize(st, FAILED)
        return
    # Durable before any instance starts: a resumed run expands to exactly these.
    run.store.queue_expansion(run.run_id, st.name, run.masker.data(items))
    run.store.flush()
    _instantiate(run, st, items, source)


def restore(run: _Run, run_id: str) -> None:
    """A resumed run: rebuild the instances of the ``for_each`` stages that were expanded."""
    for name, items in run.store.expansions(run_id).items():
        st = run.stages.get(name)
        if st is not None and st.spec.for_each and name not in run.expanded:
            _instantiate(run, st, items, None)


def _instantiate(run: _Run, st: _Stage, items: list[Any], source: str | None) -> None:
    from ._scheduler import _Stage  # the scheduler imports this module

    names = [instance_name(st.name, index) for index in range(len(items))]
    run.expanded[st.name] = names
    for index, (name, item) in enumerate(zip(names, items, strict=True)):
        spec = _instance_spec(st.spec, name, index, item)
        instance = _Stage(spec=spec, name=spec.name, index=st.index, deps=st.deps, cwd=st.cwd)
        instance.dependents.append(st.name)
        run.stages[name] = instance
        for dep in st.deps:
            run.stages[dep].dependents.append(name)
    st.deps = (*st.deps, *names)
    if source is None:
        return  # restored: the run's start settles them with the rest
    run.emit(
        ev.STAGE_EXPANDED, st.name, source=source, count=len(items), instances=names[:_SHOWN],
        items=items[:_SHOWN],
    )
    st.waiting = len(names)
    st.started = time.time()
    for name in names:
        run.save(run.stages[name])
        run.settle.append(name)
    if not names:
        run.settle.append(st.name)  # nothing to wait for: it succeeds with no instance


def _instance_spec(spec: PlanStage, name: str, index: int, item: Any) -> PlanStage:
    bindings = {"each.item": Literal(value=item), "each.index": Literal(value=index)}
    changes: dict[str, Any] = {
        field: _bound(getattr(spec, field), bindings) for field in _BOUND_FIELDS
    }
    changes = {k: v for k, v in changes.items() if v is not getattr(spec, k)}
    return dataclasses.replace(
        spec, name=name, for_each=(), fan_out=spec.name, group=(*spec.group, spec.name), **changes,
    )


def _bound(value: Any, bindings: dict[str, Any]) -> Any:
    """``value`` with ``${each.item}`` and ``${each.index}`` bound (itself when it has none)."""
    if isinstance(value, Interpolated):
        template = value.template
        if template is None or not any(ref.root == "each" for ref in references(template)):
            return value
        bound = substitute_template(template, bindings)
        return Interpolated(unparse_template(bound), bound)
    if isinstance(value, str):
        return _bound(interpolated(value), bindings) if "${" in value and "each" in value else value
    if isinstance(value, FrozenMap):
        items = {key: _bound(item, bindings) for key, item in value.items()}
        return FrozenMap(items) if any(items[k] is not v for k, v in value.items()) else value
    if isinstance(value, tuple):
        parts = tuple(_bound(item, bindings) for item in value)
        return parts if any(a is not b for a, b in zip(parts, value, strict=True)) else value
    return value
