"""Checks of one workflow, first part: does every reference name something?

:class:`_Checker` holds what all the parts of a workflow's checks share (the workflow, its
stages, uses, params and the diagnostics found); its methods check the strings holding
``${...}``, the references in them, ``after`` targets and ``when`` conditions.
"""

from __future__ import annotations

from typing import Any

from .._diagnostics import Diagnostic, error
from .._expr import (
    Binary,
    Ref,
    Template,
    Unary,
    check_types,
    check_when,
    references,
)
from .._source import Span
from .._values import did_you_mean, value_type
from . import _fanout
from ._document import Path as DocPath
from ._fixes import rename_fix
from ._foreach import check_dynamic_ref
from ._view import (
    _PARAM_MENTION,
    ROOTS,
    _known,
    _map,
    _Model,
    _strings,
)


def _unknown_root(ref: Ref, where: Span) -> Diagnostic:
    return error(
        "A210",
        f"unknown reference `{ref}`: references start with params, stages, inputs, env or secrets",
        ref.span or where,
        help=did_you_mean(ref.root, ROOTS),
        fix=rename_fix(ref.span or where, ref.root, ROOTS),
    )


def _a(kind: str) -> str:
    return ("an " if kind[:1] in "aeiou" else "a ") + kind


class _Checker:
    """The state of one workflow's checks, and its references."""

    def __init__(self, model: _Model, name: str, out: list[Diagnostic]) -> None:
        self.model = model
        self.name = name
        self.out = out
        self.path: DocPath = ("workflows", name)
        self.workflow: dict[str, Any] = model.workflows[name]
        self.stages = model.stages_of(name)
        self.uses = model.uses_of(name)
        self.params = _map(self.workflow.get("params"))
        self.param_types = model.param_types(name)
        self.used_params: set[str] = set()
        #: Whether each duration text met so far is valid (see ``_check_typed_fields``).
        self.valid_durations: dict[str, bool] = {}

    def _check_strings(self, value: Any, path: DocPath) -> Template | None:
        """Check every reference in the strings of ``value``; the template of ``value`` if a string."""
        last: Template | None = None
        for text, at in _strings(value, path):
            template = self.model.template(text, at)
            last = template
            if template is None:
                if "${" in text:  # it does not parse (A108): count the params it seems to name
                    self.used_params.update(_PARAM_MENTION.findall(text))
                continue
            # The string's span only for a reference without one of its own, or an operator.
            for ref in references(template):
                self._check_ref(ref, ref.span or self.model.value_span(at))
            for part in template.parts:
                if isinstance(part, Binary | Unary):
                    self.out.extend(check_types(part, self.param_types, self.model.value_span(at))[1])
        return last if isinstance(value, str) else None

    def _check_ref(self, ref: Ref, where: Span) -> None:
        span = ref.span or where
        parts = ref.parts
        root = parts[0]
        if root not in ROOTS:
            self.out.append(_unknown_root(ref, where))
            return
        if len(parts) < 2:
            self.out.append(error("A210", f"incomplete reference `{ref}`", span, help=f"write `{root}.NAME`"))
            return
        if root == "params":
            name = parts[1]
            self.used_params.add(name)
            if name not in self.params:
                self.out.append(
                    error(
                        "A203",
                        f"unknown param `{name}` in workflow `{self.name}`",
                        span,
                        help=did_you_mean(name, self.params) or _known(self.params, "param"),
                        fix=rename_fix(span, name, self.params),
                    )
                )
        elif root == "stages":
            self._check_stage_ref(ref, span)
        elif root in ("env", "secrets") and len(parts) != 2:
            self.out.append(
                error("A210", f"`{ref}` has too many parts", span, help=f"write `{root}.NAME`")
            )

    def _check_stage_ref(self, ref: Ref, span: Span) -> None:
        parts = ref.parts
        if _fanout.check_group_ref(self.model.workflows[self.name], ref, span, self.out):
            return
        if check_dynamic_ref(self.model, self.name, ref, span, self.out):
            return
        if "outputs" not in parts[2:] or parts.index("outputs", 2) != len(parts) - 2:
            self.out.append(
                error(
                    "A210",
                    f"`{ref}` is not a stage output reference",
                    span,
                    help="write `stages.NAME.outputs.KEY`",
                )
            )
            return
        stage = ".".join(parts[1:-2])
        key = parts[-1]
        flat = self.model.flat_stages(self.name)
        if stage not in flat:
            if stage in self.uses:
                inner = [n for n in flat if n.startswith(stage + ".")]
                self.out.append(
                    error(
                        "A202",
                        f"`{stage}` is a `use` alias, not a stage: name one of its stages",
                        span,
                        help=_known(inner, "stage"),
                    )
                )
                return
            self.out.append(
                error(
                    "A202",
                    f"unknown stage `{stage}` in workflow `{self.name}`",
                    span,
                    help=did_you_mean(stage, flat) or _known(flat, "stage"),
                    fix=rename_fix(span, stage, flat),
                )
            )
            return
        origin_workflow, origin_stage = flat[stage]
        declared = self.model.declared_outputs(origin_workflow, origin_stage)
        if declared is not None and key not in declared:
            self.out.append(
                error(
                    "A204",
                    f"stage `{stage}` has no output `{key}`",
                    span,
                    help=did_you_mean(key, declared) or _known(declared, "output"),
                    fix=rename_fix(span, key, declared),
                )
            )

    def _check_target(self, name: str, path: DocPath) -> None:
        """A name in `after`: a stage or a `use` alias of this workflow."""
        if name in self.stages or name in self.uses:
            return
        candidates = [*self.stages, *self.uses]
        if "." in name:  # `ALIAS.STAGE` or a nested alias, included by `use`
            flat = self.model.flat_stages(self.name)
            aliases = {
                stage.rsplit(".", depth)[0] for stage in flat for depth in range(1, stage.count(".") + 1)
            }
            if name in flat or name in aliases:
                return
            candidates = [*candidates, *flat, *sorted(aliases - set(candidates))]
        self.out.append(
            error(
                "A202",
                f"unknown stage `{name}` in workflow `{self.name}`",
                self.model.value_span(path),
                help=did_you_mean(name, candidates) or _known(candidates, "stage"),
                fix=rename_fix(self.model.value_span(path), name, candidates),
            )
        )

    def _check_when(self, when: Any, path: DocPath) -> None:
        span = self.model.value_span(path)
        if isinstance(when, bool):
            return
        if not isinstance(when, str):
            kind = _a(value_type(when))
            self.out.append(error("A303", f"`when` must be a boolean, not {kind}", span))
            return
        template = self._check_strings(when, path)
        if template is None and "${" in when:
            return  # it does not parse: A108 says why
        single = None if template is None else template.single
        if single is None:
            self.out.append(
                error(
                    "A303",
                    "`when` must be a boolean, but this is a string",
                    span,
                    help="write the condition without quotes, or as one `${...}`",
                )
            )
            return
        # check_types' A309s were reported with the references; only A303 is new here.
        self.out.extend(d for d in check_when(single, self.param_types, span) if d.code == "A303")
