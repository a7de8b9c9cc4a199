"""Checks of one workflow, second part: does every value have the right type?

Params and their defaults, the typed fields of stages and ``defaults`` (durations,
priorities, values written as one ``${params.x}``), the bindings of a ``use`` and the
schedule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._cron import cron_problem
from .._diagnostics import Diagnostic, error
from .._expr import (
    check_types,
)
from .._source import Span
from .._values import PRIORITIES, did_you_mean, parse_duration, value_type
from ._check_refs import _a, _Checker
from ._document import Path as DocPath
from ._fixes import rename_fix
from ._view import (
    _DURATION_FIELDS,
    _content_offset,
    _fits,
)


def _invalid_duration(value: Any, span: Span) -> Diagnostic:
    shown = value if isinstance(value, str) else json.dumps(value)
    return error(
        "A304",
        f"invalid duration `{shown}`",
        span,
        help="write a duration such as `500ms`, `30s`, `5m`, `2h`, `1d` or `1h30m`",
    )


class _TypeChecks(_Checker):
    """The types of a workflow's values."""

    def _check_schedule(self) -> None:
        schedule = self.workflow.get("schedule")
        if schedule is None:
            return
        problem = cron_problem(schedule)
        if problem is None:
            return
        message, start, end = problem
        path = (*self.path, "schedule")
        span = self.model.value_span(path)
        offset = _content_offset(schedule, span)
        if offset is not None:
            span = span.source.span(offset + start, offset + end)
        self.out.append(
            error(
                "A310",
                f"invalid cron schedule `{schedule}`: {message}",
                span,
                help='five fields: minute hour day-of-month month day-of-week, e.g. "0 9 * * 1-5"',
            )
        )

    def _check_params(self) -> None:
        for param, spec in self.params.items():
            if "default" not in spec:
                continue
            type_name = self.param_types.get(param, "any")
            default = spec["default"]
            path = (*self.path, "params", param, "default")
            if type_name == "duration" and isinstance(default, str) and parse_duration(default) is None:
                self.out.append(_invalid_duration(default, self.model.value_span(path)))
            elif not _fits(default, type_name):
                self.out.append(
                    error(
                        "A302",
                        f"the default of param `{param}` is {_a(value_type(default))}, "
                        f"but the param is declared {type_name}",
                        self.model.value_span(path),
                        f"expected {_a(type_name)}",
                    )
                )

    def _check_defaults(self) -> None:
        defaults = self.workflow.get("defaults")
        if defaults is not None:
            self._check_typed_fields(defaults, (*self.path, "defaults"))

    def _check_typed_fields(self, block: Mapping[str, Any], path: DocPath) -> None:
        valid = self.valid_durations
        for key in _DURATION_FIELDS:
            if key in block:
                value = block[key]
                if type(value) is str and "${" not in value:
                    # The same few texts (`30m`, `1h`) come back in stage after stage.
                    known = valid.get(value)
                    if known is None:
                        known = valid[value] = parse_duration(value) is not None
                    if known:
                        continue
                self._check_duration(value, (*path, key))
        if "priority" in block:
            self._check_priority(block["priority"], (*path, "priority"))
        if isinstance(block.get("retries"), str):
            self._check_param_valued(block["retries"], (*path, "retries"), ("int",), "an integer")

    def _check_duration(self, value: Any, path: DocPath) -> None:
        if isinstance(value, str) and "${" in value:
            self._check_param_valued(value, path, ("duration", "int", "float"), "a duration")
        elif parse_duration(value) is None:
            self.out.append(_invalid_duration(value, self.model.value_span(path)))

    def _check_priority(self, value: Any, path: DocPath) -> None:
        if isinstance(value, str) and "${" in value:
            self._check_param_valued(value, path, ("int", "string"), "a priority")
            return
        if (isinstance(value, int) and not isinstance(value, bool)) or value in PRIORITIES:
            return
        shown = json.dumps(value) if not isinstance(value, str) else value
        self.out.append(
            error(
                "A305",
                f"invalid priority `{shown}`: expected low, medium, high, critical or an integer",
                self.model.value_span(path),
                help=did_you_mean(value, PRIORITIES) if isinstance(value, str) else None,
                fix=rename_fix(self.model.value_span(path), value, PRIORITIES) if isinstance(value, str)
                else (),
            )
        )

    def _check_param_valued(self, text: str, path: DocPath, types: tuple[str, ...], what: str) -> None:
        """A field written as an expression: it must be one interpolation of a suitable type."""
        template = self._check_strings(text, path)
        if template is None:
            return
        single = template.single
        kind = "string" if single is None else check_types(single, self.param_types)[0]
        if kind not in (*types, "any"):
            self.out.append(
                error(
                    "A302",
                    f"expected {what}, but `{text}` is {_a(kind)}",
                    self.model.value_span(path),
                )
            )

    def _check_binding_type(self, key: str, value: Any, type_name: str, path: DocPath) -> None:
        if isinstance(value, str) and "${" in value:
            template = self.model.template(value, path)
            if template is None:
                return  # it does not parse: A108 says why
            single = template.single
            kind = "string" if single is None else check_types(single, self.param_types)[0]
            ok = kind == "any" or type_name == "any" or kind == type_name or (
                type_name in ("float", "duration") and kind in ("int", "float", "duration")
            )
        else:
            kind = value_type(value)
            ok = _fits(value, type_name)
        if not ok:
            self.out.append(
                error(
                    "A302",
                    f"param `{key}` is declared {type_name}, but the value given is {_a(kind)}",
                    self.model.value_span(path),
                    f"expected {_a(type_name)}",
                )
            )
