"""Fan-out: a stage with a ``matrix`` becomes one stage per combination of its values.

``stage test { matrix = { python = ["3.11", "3.12"], shard = [1, 2] } }`` expands, in the
normalized document and before any name check or graph analysis, into the stages
``test[python=3.11,shard=1]``, ``test[python=3.11,shard=2]``, ... Each member has the
``${matrix.KEY}`` of its combination filled in. ``after test`` (in stages, ``use`` and
``order``) names every member, and a stage reading ``stages.test.outputs`` (the map of the
members' outputs by combination key, filled in at run time) waits for all of them.

``exclude`` and ``include`` follow GitHub Actions: an exclude entry removes the
combinations matching all its keys; then each include entry extends every original
combination whose axis values it does not contradict with its other keys, or, when it
extends none, is added as a combination of its own.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .._diagnostics import Diagnostic, error
from .._expr import Literal, Ref, Template, references, substitute, to_text, unparse_template
from .._values import suggest
from ._document import Path as DocPath, SpanIndex

__all__ = [
    "FANOUT_KEY", "GROUPS_KEY", "check_group_ref", "combination_key", "expand", "group_outputs",
    "member_name",
]

#: Stage key (added by :func:`expand`, never written by users: the schema refuses it) that
#: holds a member's group name and combination, for the plan.
FANOUT_KEY = "__fan_out__"
#: Workflow key mapping each fan-out group to its members, for the checks.
GROUPS_KEY = "__fan_out_groups__"

_LIST_KEYS = ("exclude", "include")
#: Stage keys whose strings are names, not templates.
_NAME_KEYS = frozenset({"agent", "requires", "after", "matrix"})


@dataclass(frozen=True, slots=True)
class _Combination:
    values: dict[str, Any]
    named_by: tuple[str, ...]  # the keys its name shows


def combination_key(values: Mapping[str, Any], keys: tuple[str, ...] | list[str]) -> str:
    """``python=3.11,shard=1``: the text between the brackets of a member's name."""
    return ",".join(f"{key}={to_text(values.get(key))}" for key in keys)


def member_name(group: str, key: str) -> str:
    return f"{group}[{key}]"


def _did_you_mean(name: str, candidates: list[str]) -> str | None:
    close = suggest(name, candidates)
    if close:
        return f"did you mean `{close[0]}`?"
    return f"known keys: {', '.join(f'`{c}`' for c in candidates)}" if candidates else None


class _Expander:
    def __init__(self, spans: SpanIndex) -> None:
        self.spans = spans
        self.out: list[Diagnostic] = []

    # -- the combinations --------------------------------------------------------------

    def combinations(self, matrix: Any, path: DocPath) -> list[_Combination] | None:
        if not isinstance(matrix, dict):
            self.out.append(
                error("A311", "`matrix` must be a map of lists", self.spans.value(path),
                      help='write `matrix = { python = ["3.11", "3.12"] }`')
            )
            return None
        axes: dict[str, list[Any]] = {}
        for key, values in matrix.items():
            if key in _LIST_KEYS:
                continue
            at = (*path, key)
            if not isinstance(values, list) or not values:
                what = "an empty list" if isinstance(values, list) else "not a list"
                self.out.append(
                    error("A311", f"matrix axis `{key}` is {what}", self.spans.value(at),
                          help=f"give `{key}` a list of one or more values: `{key} = [1, 2]`")
                )
                return None
            if any(isinstance(v, dict | list) for v in values):
                self.out.append(
                    error("A311", f"the values of matrix axis `{key}` must be strings, numbers or booleans",
                          self.spans.value(at))
                )
                return None
            axes[key] = values
        include = self.entries(matrix, "include", path)
        exclude = self.entries(matrix, "exclude", path)
        if include is None or exclude is None:
            return None
        if not axes and not include:
            self.out.append(
                error("A311", "`matrix` has no axis and no `include`", self.spans.value(path),
                      help='give it at least one axis: `matrix = { shard = [1, 2] }`')
            )
            return None
        names = list(axes)
        for index, entry in enumerate(exclude):
            for key in entry:
                if key not in axes:
                    self.out.append(
                        error("A216", f"`exclude` names `{key}`, which is not a matrix axis",
                              self.spans.key((*path, "exclude", index, key)),
                              help=_did_you_mean(key, names))
                    )
                    return None
        originals: list[dict[str, Any]] = [{}] if axes else []
        for key, values in axes.items():
            originals = [{**combo, key: value} for combo in originals for value in values]
        originals = [
            combo for combo in originals
            if not any(all(combo.get(k) == v for k, v in entry.items()) for entry in exclude)
        ]
        # GitHub Actions: include entries extend the original combinations whose axis values
        # they do not contradict (added keys may be overwritten, axis values never); an entry
        # that extends none is a combination of its own.
        extended = [dict(combo) for combo in originals]
        added: list[dict[str, Any]] = []
        for entry in include:
            matched = False
            for original, combo in zip(originals, extended, strict=True):
                if all(original[k] == v for k, v in entry.items() if k in original):
                    combo.update({k: v for k, v in entry.items() if k not in original})
                    matched = True
            if not matched:
                added.append(dict(entry))
        result = [_Combination(combo, tuple(names)) for combo in extended]
        for combo in added:
            shown = [k for k in names if k in combo] + [k for k in combo if k not in axes]
            result.append(_Combination(combo, tuple(shown)))
        return result

    def entries(self, matrix: dict[str, Any], key: str, path: DocPath) -> list[dict[str, Any]] | None:
        value = matrix.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) and v for v in value):
            self.out.append(
                error("A311", f"matrix `{key}` must be a list of maps", self.spans.value((*path, key)),
                      help=f'write `{key} = [{{ python = "3.11", shard = 1 }}]`')
            )
            return None
        return value

    # -- ${matrix.KEY} -------------------------------------------------------------------

    def fill(self, value: Any, path: DocPath, values: Mapping[str, Any] | None, known: list[str],
             shell: bool = False) -> Any:
        """``value`` with each ``${matrix.KEY}`` replaced (``values`` None: report them)."""
        if isinstance(value, dict):
            return {k: self.fill(v, (*path, k), values, known) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v, (*path, i), values, known) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value or "matrix" not in value:
            return value
        from ._view import parse_string  # lazily: it pulls in the parser

        template = parse_string(value, self.spans.value(path))[0]
        if template is None:
            return value  # does not parse: the checks report it (A108)
        refs = [ref for ref in references(template) if ref.root == "matrix"]
        if not refs:
            return value
        for ref in refs:
            if not self.ref_ok(ref, path, values is not None, known):
                return value
        assert values is not None
        single = template.single
        if isinstance(single, Ref) and single.root == "matrix":
            return values.get(single.parts[1], "")  # one interpolation keeps the value's type
        mapping = {f"matrix.{key}": Literal(value=values.get(key, "")) for key in known}
        parts: list[str | Any] = []
        for part in template.parts:
            if isinstance(part, Ref) and part.root == "matrix" and not shell:
                parts.append(to_text(values.get(part.parts[1], "")))
            elif isinstance(part, str):
                parts.append(part)
            else:
                # In a shell line the value stays an interpolation (of a literal), so that it
                # reaches the shell through the environment like every other value.
                parts.append(substitute(part, mapping))
        merged: list[Any] = []
        for part in parts:
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            else:
                merged.append(part)
        return unparse_template(Template(parts=tuple(merged)))

    def ref_ok(self, ref: Ref, path: DocPath, in_matrix: bool, known: list[str]) -> bool:
        span = ref.span or self.spans.value(path)
        if not in_matrix:
            self.out.append(
                error("A216", f"`{ref}` is used in a stage without a `matrix`", span,
                      help="declare `matrix = { KEY = [...] }` in this stage, or remove the reference")
            )
            return False
        if len(ref.parts) != 2 or ref.parts[1] not in known:
            name = ref.parts[1] if len(ref.parts) > 1 else ""
            self.out.append(
                error("A216", f"`{ref}` names no key of this stage's matrix", span,
                      help=_did_you_mean(name, known) if len(ref.parts) == 2 else "write `matrix.KEY`")
            )
            return False
        return True

    # -- spans -----------------------------------------------------------------------------

    def copy_spans(self, old: DocPath, new: DocPath) -> None:
        size = len(old)
        self.spans.own()
        for table in (self.spans.values, self.spans.keys):
            for path, span in list(table.items()):
                if path[:size] == old:
                    table[(*new, *path[size:])] = span


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _mentions_matrix(stage: Mapping[str, Any]) -> bool:
    """Whether a stage's strings may hold a ``${matrix.*}`` (what :meth:`_Expander.fill` reads)."""
    return any("${" in text and "matrix" in text for key, value in stage.items()
               if key not in _NAME_KEYS for text in _strings(value))


def _reads_group(stage: Mapping[str, Any], group: str) -> bool:
    """Whether a stage's strings mention ``stages.GROUP.outputs`` (then it waits for all members)."""
    needle = f"stages.{group}.outputs"
    return any(needle in text for key, value in stage.items() if key not in _NAME_KEYS
               for text in _strings(value))


def _replace_names(names: Any, groups: Mapping[str, list[str]]) -> Any:
    if not isinstance(names, list):
        return names
    out: list[Any] = []
    for name in names:
        for member in groups.get(name, [name]) if isinstance(name, str) else [name]:
            if member not in out:
                out.append(member)
    return out


def expand(data: dict[str, Any], spans: SpanIndex) -> list[Diagnostic]:
    """Expand every ``matrix`` stage of ``data`` (the merged workspace) in place."""
    expander = _Expander(spans)
    workflows = data.get("workflows")
    if not isinstance(workflows, dict):
        return []
    # The merged map is the loader's own, but the workflows in it are the documents':
    # expanded workflows are new dicts, so that the documents keep what the user wrote.
    for workflow_name, workflow in list(workflows.items()):
        stages = workflow.get("stages") if isinstance(workflow, dict) else None
        if not isinstance(stages, dict):
            continue
        base: DocPath = ("workflows", workflow_name, "stages")
        if not any(isinstance(stage, dict) and "matrix" in stage for stage in stages.values()):
            # Nothing to expand: only `${matrix.*}` outside a matrix stage to report (A216),
            # without a copy of every stage.
            for name, stage in stages.items():
                if isinstance(stage, dict) and _mentions_matrix(stage):
                    for k, v in stage.items():
                        if k not in _NAME_KEYS:
                            expander.fill(v, (*base, name, k), None, [])
            continue
        groups: dict[str, list[str]] = {}
        expanded: dict[str, Any] = {}
        for name, stage in stages.items():
            if not isinstance(stage, dict) or "matrix" not in stage:
                if isinstance(stage, dict):
                    stage = {k: v if k in _NAME_KEYS else expander.fill(v, (*base, name, k), None, [])
                             for k, v in stage.items()}
                expanded[name] = stage
                continue
            combos = expander.combinations(stage["matrix"], (*base, name, "matrix"))
            if combos is None:
                expanded[name] = {k: v for k, v in stage.items() if k != "matrix"}
                continue
            known = list(dict.fromkeys(key for combo in combos for key in combo.values))
            members: list[str] = []
            for combo in combos:
                key = combination_key(combo.values, combo.named_by)
                member = member_name(name, key)
                if member in expanded or member in members:
                    expander.out.append(
                        error("A311", f"two combinations of `{name}`'s matrix are both `{key}`",
                              spans.value((*base, name, "matrix")),
                              help="remove the duplicate `include` entry")
                    )
                    continue
                copied: dict[str, Any] = {}
                for attribute, value in stage.items():
                    if attribute == "matrix":
                        continue
                    if attribute in _NAME_KEYS:
                        copied[attribute] = copy.deepcopy(value)
                        continue
                    shell = attribute == "run" and isinstance(value, str)
                    copied[attribute] = expander.fill(
                        value, (*base, name, attribute), combo.values, known, shell=shell
                    )
                copied[FANOUT_KEY] = {"group": name, "key": key, "values": dict(combo.values)}
                expander.copy_spans((*base, name), (*base, member))
                expanded[member] = copied
                members.append(member)
            groups[name] = members
        if not groups:
            continue
        for stage in expanded.values():
            if not isinstance(stage, dict):
                continue
            if "after" in stage:
                stage["after"] = _replace_names(stage["after"], groups)
            readers = [m for group, ms in groups.items() if _reads_group(stage, group) for m in ms]
            if readers:
                stage["after"] = _replace_names([*stage.get("after", []), *readers], {})
        workflow = dict(workflow, stages=expanded)
        uses = workflow.get("uses")
        if isinstance(uses, dict):
            workflow["uses"] = {
                alias: dict(use, after=_replace_names(use["after"], groups))
                if isinstance(use, dict) and "after" in use else use
                for alias, use in uses.items()
            }
        if "order" in workflow:
            workflow["order"] = _replace_names(workflow["order"], groups)
        workflow[GROUPS_KEY] = groups
        workflows[workflow_name] = workflow
    return expander.out


def group_outputs(stages_scope: dict[str, Any], group: str, key: str, outputs: Mapping[str, Any]) -> None:
    """Record a member's outputs in the run-time scope: ``stages.GROUP.outputs[KEY]``."""
    entry = stages_scope.setdefault(group, {"outputs": {}})
    entry["outputs"][key] = dict(outputs)


def check_group_ref(workflow: Mapping[str, Any], ref: Ref, span: Any, out: list[Diagnostic]) -> bool:
    """Whether ``ref`` (``stages.X...``) names a fan-out group: then it is checked here
    (only ``stages.GROUP.outputs``, the map by combination, is a value) and True."""
    groups = workflow.get(GROUPS_KEY)
    parts = ref.parts
    if not isinstance(groups, dict) or len(parts) < 2 or parts[1] not in groups:
        return False
    if parts[2:] != ("outputs",):
        out.append(
            error("A210", f"`{ref}`: `{parts[1]}` is a matrix stage, whose outputs are one map",
                  span,
                  help=f"write `stages.{parts[1]}.outputs`: a map from each combination "
                       f"(`{next(iter(groups[parts[1]]), parts[1])}` -> its key) to that member's outputs")
        )
    return True
