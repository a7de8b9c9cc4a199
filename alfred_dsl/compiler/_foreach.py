"""Dynamic fan-out, the compiler's half: ``for_each = stages.X.outputs.KEY``.

A stage with ``for_each`` runs once per item of a list that an earlier stage outputs, like
Airflow's ``expand``: the number of instances is only known when ``X`` has succeeded, so the
stage stays one stage in the plan (``for_each`` in its JSON) and the runtime expands it
(:mod:`alfred_dsl.runtime._foreach`). Reading ``stages.X.outputs.KEY`` implies ``after X``,
as every output reference does. In the stage's strings ``${each.item}`` is its item and
``${each.index}`` its position (0, 1, ...). ``stages.S.outputs`` of such a stage is one map,
from each instance's index (``"0"``, ``"1"``, ...) to its outputs.

The checks here: ``for_each`` is exactly one output reference (A319), not on a ``matrix`` or
approval stage (A319); ``each.*`` only in a ``for_each`` stage and only ``item``/``index``
(A218); ``stages.S.outputs.KEY`` of a ``for_each`` stage is refused (A210): its outputs are
the map. That ``X`` exists and declares ``KEY`` is the ordinary reference check (A202, A204).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._diagnostics import Diagnostic, error
from .._expr import Ref, Template, references
from .._source import Span
from .._values import did_you_mean
from ._fixes import rename_fix

__all__ = ["EACH_KEYS", "FOR_EACH_KEY", "MAX_ITEMS", "check_dynamic_ref", "check_stage", "source_of"]

FOR_EACH_KEY = "for_each"
#: What ``${each.KEY}`` may name.
EACH_KEYS = ("item", "index")
#: The most instances one ``for_each`` stage may expand to (a longer list fails the stage).
MAX_ITEMS = 10_000

_FORM = "`for_each = stages.STAGE.outputs.KEY`"


def source_of(template: Template | None) -> tuple[str, str] | None:
    """(stage, output key) of a ``for_each`` value that is one ``stages.X.outputs.KEY``."""
    single = template.single if template is not None else None
    if not isinstance(single, Ref):
        return None
    parts = single.parts
    if parts[0] != "stages" or len(parts) < 4 or parts[-2] != "outputs":
        return None
    return ".".join(parts[1:-2]), parts[-1]


def _strings(value: Any, path: tuple[Any, ...]) -> list[tuple[str, tuple[Any, ...]]]:
    if isinstance(value, str):
        return [(value, path)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, (*path, k))]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, (*path, i))]
    return []


def check_stage(
    model: Any, stage_name: str, stage: Mapping[str, Any], path: tuple[Any, ...], name_keys: frozenset[str],
    out: list[Diagnostic],
) -> None:
    """The ``for_each`` of one stage and its ``${each.*}`` references."""
    dynamic = FOR_EACH_KEY in stage
    if dynamic:
        _check_source(model, stage_name, stage, path, out)
    for key, value in stage.items():
        if key in name_keys or key == FOR_EACH_KEY:
            continue
        for text, at in _strings(value, (*path, key)):
            if "each" not in text:
                continue
            template = model.template(text, at)
            if template is None:
                continue
            for ref in references(template):
                if ref.root == "each":
                    _check_each_ref(ref, ref.span or model.value_span(at), dynamic, out)


def _check_source(
    model: Any, stage_name: str, stage: Mapping[str, Any], path: tuple[Any, ...], out: list[Diagnostic]
) -> None:
    at = (*path, FOR_EACH_KEY)
    span = model.value_span(at)
    value = stage[FOR_EACH_KEY]
    template = model.template(value, at) if isinstance(value, str) else None
    if template is None and isinstance(value, str) and "${" in value:
        return  # it does not parse: A108 says why
    if source_of(template) is None:
        out.append(
            error("A319", "`for_each` must be one reference to another stage's output", span,
                  help=f"write {_FORM}, e.g. `for_each = stages.list.outputs.files`")
        )
    fan_out = stage.get("__fan_out__")
    if isinstance(fan_out, dict):
        if str(fan_out.get("key", "")) == _first_key(model, path, fan_out):
            out.append(
                error("A319", f"stage `{fan_out.get('group')}` has both `matrix` and `for_each`",
                      model.key_span(at),
                      help="keep one: a `matrix` fans out when compiled, `for_each` over a list at run time")
            )
    elif "approve" in stage:
        out.append(
            error("A319", f"approval stage `{stage_name}` cannot have `for_each`", model.key_span(at),
                  help="approve once, in a stage before or after the `for_each` stage")
        )


def _first_key(model: Any, path: tuple[Any, ...], fan_out: Mapping[str, Any]) -> str:
    """The combination key of a matrix group's first member (report a group's problem once)."""
    workflow = model.workflows.get(path[1], {}) if hasattr(model, "workflows") else {}
    members = (workflow.get("__fan_out_groups__") or {}).get(fan_out.get("group"), [])
    first = members[0] if members else ""
    group = str(fan_out.get("group", ""))
    return first[len(group) + 1 : -1] if first.startswith(group + "[") else str(fan_out.get("key", ""))


def _check_each_ref(ref: Ref, span: Span, dynamic: bool, out: list[Diagnostic]) -> None:
    if not dynamic:
        out.append(
            error("A218", f"`{ref}` is used in a stage without `for_each`", span,
                  help=f"declare {_FORM} in this stage, or remove the reference")
        )
        return
    if len(ref.parts) == 2 and ref.parts[1] in EACH_KEYS:
        return
    name = ref.parts[1] if len(ref.parts) > 1 else ""
    if len(ref.parts) == 2:
        help_text = did_you_mean(name, EACH_KEYS) or "`each` has `item` and `index`"
        fix = rename_fix(span, name, EACH_KEYS)
    else:
        help_text, fix = "write `each.item` (the item) or `each.index` (its position)", ()
    out.append(
        error("A218", f"`{ref}` is neither `each.item` nor `each.index`", span, help=help_text, fix=fix)
    )


def check_dynamic_ref(model: Any, workflow: str, ref: Ref, span: Span, out: list[Diagnostic]) -> bool:
    """Whether ``ref`` (``stages.S...``) names a ``for_each`` stage: then it is checked here
    (only ``stages.S.outputs``, the map by index, is a value) and True."""
    parts = ref.parts
    if len(parts) < 3 or "outputs" not in parts[2:]:
        return False
    at = parts.index("outputs", 2)
    name = ".".join(parts[1:at])
    found = model.flat_stages(workflow).get(name)
    if found is None:
        return False
    stage = model.stages_of(found[0]).get(found[1])
    if not isinstance(stage, dict) or FOR_EACH_KEY not in stage:
        return False
    if at != len(parts) - 1:
        out.append(
            error("A210", f"`{ref}`: `{name}` is a `for_each` stage, whose outputs are one map", span,
                  help=f"write `stages.{name}.outputs`: a map from each instance's index"
                       " (`\"0\"`, `\"1\"`, ...) to that instance's outputs")
        )
    return True
