"""Names, types and templates: the semantic checks, and resolution of one workflow.

:func:`check_workspace` walks every agent and workflow of a loaded workspace and reports
every problem in one pass (A2xx names and references, A3xx types, A5xx unused names).
:func:`resolve` picks one workflow, reads its ``--param`` values, expands ``use``
templates and returns a :class:`~alfred_dsl._model.ResolvedWorkflow` for the graph
analysis. Both are defensive: the document may also be schema-invalid, and a bad value is
skipped (the schema or the checks report it) rather than raising.
"""

from __future__ import annotations

import difflib
import importlib.machinery
import importlib.util
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import _fanout
from ._approvals import APPROVAL_KIND, approval_of, check_approval_stage
from ._budget import budget_of, cost_of
from ._cron import cron_problem
from ._diagnostics import Diagnostic, Label, error, warning
from ._document import Document, Path as DocPath, SpanIndex
from ._expr import (
    Binary,
    Expr,
    ExprError,
    Literal,
    Ref,
    Template,
    Unary,
    check_types,
    check_when,
    evaluate,
    references,
    render,
    substitute,
    to_text,
    unparse_template,
)
from ._fixes import rename_fix
from ._mcpcheck import MCP_STAGE_KEYS, check_mcp_agent, check_mcp_stage, mcp_of
from ._model import Edge, ResolvedWorkflow
from ._plan import DEFAULT_MAX_LOG, FrozenMap, Hook, PlanAgent, PlanStage
from ._runif import run_if_of, unreachable_failure_stages
from ._source import Span
from ._units import parse_size

__all__ = [
    "PARAM_TYPES",
    "PRIORITIES",
    "ROOTS",
    "WorkspaceLike",
    "check_workspace",
    "cron_problem",
    "parse_duration",
    "parse_param",
    "parse_string",
    "resolve",
    "templates_of",
    "workflows_to_analyse",
]

ROOTS = ("params", "stages", "inputs", "env", "secrets", "matrix")  # matrix: checked by _fanout
PRIORITIES = {"low": 0, "medium": 1, "high": 2, "critical": 3}
PARAM_TYPES = ("string", "int", "float", "bool", "duration", "list", "map")
EXECUTOR_NEEDS = {"command": "run", "python": "call", "http": "url"}
_DURATION_FIELDS = ("estimate", "timeout", "backoff", "max_backoff")
_DEFAULTABLE = (
    "retries", "backoff", "max_backoff", "timeout", "priority", "on_failure", "estimate", "max_log",
)
#: Stage keys whose values are names or lists of names, not text that may interpolate.
_NAME_KEYS = frozenset({"agent", "requires", "after", "outputs"})


class WorkspaceLike(Protocol):
    """What the checks need of ``_loader.Workspace``: the merged document and its spans."""

    @property
    def root(self) -> Path: ...
    @property
    def entry(self) -> Document: ...
    @property
    def documents(self) -> tuple[Document, ...]: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def spans(self) -> SpanIndex: ...
    @property
    def base_dirs(self) -> dict[str, Path]: ...


# -- small helpers ---------------------------------------------------------------------------


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _names(value: Any) -> list[str]:
    """The strings of a list (non-strings skipped: the schema reports them)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def _known(candidates: Iterable[str], what: str) -> str:
    names = sorted(candidates)
    if not names:
        return f"no {what} is declared"
    shown = ", ".join(f"`{n}`" for n in names[:8])
    return f"known {what}s: {shown}" + (", ..." if len(names) > 8 else "")


_DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?")


def parse_duration(value: Any) -> float | None:
    """Seconds of a duration (``"1h30m"``, ``"500ms"`` or a number of seconds); None if invalid.

    Whole numbers of seconds come back as ``int`` so that JSON output reads ``1200``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not (math.isfinite(value) and value >= 0):
            return None
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if not isinstance(value, str) or not value:
        return None
    match = _DURATION_RE.fullmatch(value)
    if match is None or not any(match.groups()):
        return None
    days, hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    total_ms = (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000 + millis
    return total_ms // 1000 if total_ms % 1000 == 0 else total_ms / 1000


def parse_param(raw: str, type_name: str) -> tuple[Any, str | None]:
    """A ``--param`` string read as its declared type: ``(value, None)`` or ``(None, problem)``."""
    text = raw.strip()
    if type_name == "string":
        return raw, None
    if type_name == "int":
        if re.fullmatch(r"[+-]?\d{1,4300}", text):
            return int(text), None
        return None, "expected an integer such as `80`"
    if type_name == "float":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and text.lower() not in ("inf", "nan"):
            return number, None
        return None, "expected a number such as `0.5`"
    if type_name == "bool":
        if text.lower() in ("true", "false"):
            return text.lower() == "true", None
        return None, "expected `true` or `false`"
    if type_name == "duration":
        seconds = parse_duration(text)
        if seconds is None and re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = parse_duration(float(text))
        if seconds is not None:
            return seconds, None
        return None, "expected a duration such as `30s`, `5m` or `1h30m`"
    if type_name in ("list", "map"):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        wanted = list if type_name == "list" else dict
        if isinstance(value, wanted):
            return value, None
        example = '`["a", "b"]`' if type_name == "list" else '`{"key": "value"}`'
        return None, f"expected a JSON {type_name} such as {example}"
    return raw, None


def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return "null"


def _fits(value: Any, type_name: str) -> bool:
    """Whether a literal document value can be a param of ``type_name``."""
    kind = _value_type(value)
    if type_name == "float":
        return kind in ("int", "float")
    if type_name == "duration":
        return parse_duration(value) is not None
    if type_name not in PARAM_TYPES:
        return True
    return kind == type_name


def _convert_default(value: Any, type_name: str) -> Any:
    if type_name == "duration":
        seconds = parse_duration(value)
        return value if seconds is None else seconds
    if type_name == "float" and _value_type(value) == "int":
        return float(value)
    return value


# -- strings holding ${...} ------------------------------------------------------------------

_PARAM_MENTION = re.compile(r"\bparams\.([A-Za-z_][A-Za-z0-9_-]*)")
_SIMPLE_REF = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)+)\s*")
_KEYWORDS = frozenset({"true", "false", "and", "or", "not", "null"})


def _content_offset(text: str, span: Span | None) -> int | None:
    """Where ``text[0]`` is in the source, when the source spells the string without escapes."""
    if span is None:
        return None
    written = span.source.text[span.start : span.end]
    if written == text:
        return span.start
    if len(written) >= 2 and written[0] == written[-1] and written[0] in "\"'" and written[1:-1] == text:
        return span.start + 1
    # A bare DSL expression (`when = params.x`) is lowered to "${params.x}".
    if text.startswith("${") and text.endswith("}") and text[2:-1] == written:
        return span.start - 2
    return None


def _fast_template(text: str, span: Span | None, offset: int | None) -> Template | None:
    """Split a string whose interpolations are all plain references, without the parser."""
    parts: list[str | Expr] = []
    literal: list[str] = []
    pos = 0
    while True:
        found = text.find("${", pos)
        if found == -1:
            literal.append(text[pos:])
            break
        if found > 0 and text[found - 1] == "$":
            return None  # `$${` escapes: leave them to the real parser
        close = text.find("}", found + 2)
        if close == -1:
            return None
        match = _SIMPLE_REF.fullmatch(text, found + 2, close)
        if match is None:
            return None
        parts_text = match.group(1).split(".")
        if parts_text[0] in _KEYWORDS:
            return None
        literal.append(text[pos:found])
        if any(literal):
            parts.append("".join(literal))
        literal = []
        ref_span = span
        if offset is not None and span is not None:
            ref_span = span.source.span(offset + match.start(1), offset + match.end(1))
        parts.append(Ref(parts=tuple(parts_text), span=ref_span))
        pos = close + 1
    if any(literal):
        parts.append("".join(literal))
    return Template(parts=tuple(parts), span=span)


def parse_string(text: str, span: Span | None) -> tuple[Template | None, list[Diagnostic]]:
    """The template of a document string, or None when it holds no ``${``.

    Plain references are split here; anything else goes through ``_syntax.parse_template``.
    """
    if "${" not in text:
        return None, []
    offset = _content_offset(text, span)
    fast = _fast_template(text, span, offset)
    if fast is not None:
        return fast, []
    if span is None:
        return None, []
    from ._syntax import parse_template  # the Lark parser is only loaded when needed

    template: Template | None
    template, diagnostics = parse_template(text, span, offset)
    return template, list(diagnostics)


def _strings(value: Any, path: DocPath) -> Iterator[tuple[str, DocPath]]:
    """Every string inside a value, with its document path."""
    if isinstance(value, str):
        yield value, path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


# -- the workspace view shared by check and resolve ------------------------------------------


@dataclass(slots=True)
class _Model:
    """The merged document with lookups and per-workflow caches."""

    ws: WorkspaceLike
    agents: dict[str, Any]
    workflows: dict[str, Any]
    templates: dict[DocPath, Template | None] = field(default_factory=dict)
    parse_diagnostics: list[Diagnostic] = field(default_factory=list)
    flat: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    _stages: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    _uses: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, ws: WorkspaceLike) -> _Model:
        data = ws.data if isinstance(ws.data, dict) else {}
        agents = {k: v for k, v in _map(data.get("agents")).items() if isinstance(v, dict)}
        workflows = {k: v for k, v in _map(data.get("workflows")).items() if isinstance(v, dict)}
        return cls(ws=ws, agents=agents, workflows=workflows)

    def value_span(self, path: DocPath) -> Span:
        spans = self.ws.spans
        return spans.values.get(path) or spans.value(path)

    def key_span(self, path: DocPath) -> Span:
        return self.ws.spans.key(path)

    def template(self, text: str, path: DocPath) -> Template | None:
        """The parsed template of the string at ``path`` (parsed once; diagnostics kept)."""
        if "${" not in text:
            return None
        if path in self.templates:
            return self.templates[path]
        parsed, diagnostics = parse_string(text, self.value_span(path))
        self.templates[path] = parsed
        self.parse_diagnostics.extend(diagnostics)
        return parsed

    def uses_of(self, workflow: str) -> dict[str, dict[str, Any]]:
        found = self._uses.get(workflow)
        if found is None:
            uses = _map(self.workflows[workflow].get("uses"))
            found = self._uses[workflow] = {k: v for k, v in uses.items() if isinstance(v, dict)}
        return found

    def stages_of(self, workflow: str) -> dict[str, dict[str, Any]]:
        found = self._stages.get(workflow)
        if found is None:
            stages = _map(self.workflows[workflow].get("stages"))
            found = self._stages[workflow] = {k: v for k, v in stages.items() if isinstance(v, dict)}
        return found

    def flat_stages(self, workflow: str, stack: tuple[str, ...] = ()) -> dict[str, tuple[str, str]]:
        """Stage names of a workflow with its templates expanded (``auth.spec``) ->
        (declaring workflow, stage name). Recursive uses are cut off (reported elsewhere)."""
        cached = self.flat.get(workflow)
        if cached is not None:
            return cached
        result: dict[str, tuple[str, str]] = {name: (workflow, name) for name in self.stages_of(workflow)}
        for alias, use in self.uses_of(workflow).items():
            template = use.get("template")
            if not isinstance(template, str) or template not in self.workflows:
                continue
            if template in stack or template == workflow:
                continue
            for name, origin in self.flat_stages(template, (*stack, workflow)).items():
                result[f"{alias}.{name}"] = origin
        if not stack:
            self.flat[workflow] = result
        return result

    def used_as_template(self) -> set[str]:
        return {
            use["template"]
            for name in self.workflows
            for use in self.uses_of(name).values()
            if isinstance(use.get("template"), str)
        }

    def matching_agents(self, capabilities: Sequence[str]) -> list[str]:
        wanted = set(capabilities)
        return [
            name
            for name, agent in self.agents.items()
            if wanted <= set(_names(agent.get("capabilities")))
        ]

    def stage_agents(self, stage: Mapping[str, Any]) -> list[str]:
        agent = stage.get("agent")
        if isinstance(agent, str):
            return [agent] if agent in self.agents else []
        if "requires" in stage:
            return self.matching_agents(_names(stage.get("requires")))
        return []

    def declared_outputs(self, workflow: str, stage_name: str) -> list[str] | None:
        stage = self.stages_of(workflow).get(stage_name, {})
        if isinstance(stage.get("outputs"), list):
            return _names(stage["outputs"])
        agents = self.stage_agents(stage)
        declared = [self.agents[a].get("outputs") for a in agents]
        if agents and all(isinstance(d, list) for d in declared):
            return sorted({name for d in declared for name in _names(d)})
        return None

    def param_types(self, workflow: str) -> dict[str, str]:
        types: dict[str, str] = {}
        for name, spec in _map(self.workflows[workflow].get("params")).items():
            declared = spec.get("type") if isinstance(spec, dict) else None
            types[name] = declared if isinstance(declared, str) else "any"
        return types


# -- check_workspace -------------------------------------------------------------------------


def check_workspace(ws: WorkspaceLike) -> list[Diagnostic]:
    """Every name, type and template problem of every agent and workflow, in one pass."""
    model = _Model.of(ws)
    out: list[Diagnostic] = []
    for name, agent in model.agents.items():
        _check_agent(model, name, agent, out)
    for name in model.workflows:
        _WorkflowChecker(model, name, out).run()
    out.extend(_template_cycles(model))
    out.extend(_unused_agents(model))
    out.extend(model.parse_diagnostics)
    return out


def _check_ref_roots(model: _Model, value: Any, path: DocPath, out: list[Diagnostic]) -> None:
    for text, at in _strings(value, path):
        template = model.template(text, at)
        if template is None:
            continue
        for ref in references(template):
            if ref.root not in ROOTS:
                out.append(_unknown_root(ref, model.value_span(at)))


def _unknown_root(ref: Ref, where: Span) -> Diagnostic:
    return error(
        "A210",
        f"unknown reference `{ref}`: references start with params, stages, inputs, env or secrets",
        ref.span or where,
        help=_did_you_mean(ref.root, ROOTS),
        fix=rename_fix(ref.span or where, ref.root, ROOTS),
    )


def _check_agent(model: _Model, name: str, agent: dict[str, Any], out: list[Diagnostic]) -> None:
    path: DocPath = ("agents", name)
    kind = agent.get("kind", "command")
    need = EXECUTOR_NEEDS.get(kind) if isinstance(kind, str) else None
    if kind == "http" and need is not None and not agent.get(need):
        out.append(
            error(
                "A307",
                f"http agent `{name}` has no `url`",
                model.key_span(path),
                help='add `url = "https://..."` to the agent',
            )
        )
    out.extend(check_mcp_agent(name, agent, path, model.key_span))
    for key, value in agent.items():
        if key in ("run", "call", "url", "env", "cwd", "server", "headers"):
            _check_ref_roots(model, value, (*path, key), out)


def _unused_agents(model: _Model) -> list[Diagnostic]:
    used: set[str] = set()
    for workflow in model.workflows:
        for stage in model.stages_of(workflow).values():
            agent = stage.get("agent")
            if isinstance(agent, str):
                used.add(agent)
            elif "requires" in stage:
                used.update(model.matching_agents(_names(stage.get("requires"))))
    out: list[Diagnostic] = []
    entry_agents = _map(model.ws.entry.data.get("agents"))
    for name in entry_agents:
        if name not in used:
            out.append(
                warning(
                    "A501",
                    f"agent `{name}` is never used",
                    model.ws.entry.spans.key(("agents", name)),
                    "no stage names it and no `requires` selects it",
                )
            )
    return out


def _stage_folder(model: _Model, workflow: str, stage: Mapping[str, Any], agents: list[str]) -> str:
    """The absolute folder a stage runs in: its `cwd`, else its only agent's, else the
    folder of the file that declares the workflow."""
    ws = model.ws
    base = ws.base_dirs.get(f"workflows/{workflow}", ws.root)
    cwd = stage.get("cwd")
    if not isinstance(cwd, str) and len(agents) == 1:
        agent_cwd = model.agents[agents[0]].get("cwd")
        if isinstance(agent_cwd, str):
            base, cwd = ws.base_dirs.get(f"agents/{agents[0]}", ws.root), agent_cwd
    target = os.path.join(base, os.path.expanduser(cwd)) if isinstance(cwd, str) else str(base)
    return os.path.normpath(os.path.abspath(target))


def _module_not_found(call: str, folder: str) -> str | None:
    """The top-level module of ``module:function`` when neither ``folder`` (first on
    ``sys.path`` at run time) nor Python's own path has it; None when it is there, or when
    the call is not a plain ``module:function`` (the runtime reports that). Nothing is
    imported: the module's code does not run at check time."""
    module, sep, _ = call.partition(":")
    top = module.partition(".")[0].strip()
    if not sep or not top.isidentifier():
        return None
    try:
        if importlib.machinery.PathFinder.find_spec(top, [folder]) is not None:
            return None
        if top in sys.modules or importlib.util.find_spec(top) is not None:
            return None
    except (ImportError, ValueError):  # a broken finder or package: not this check's business
        return None
    return top


def _shown_folder(folder: str) -> str:
    """``folder`` relative to the current directory when it is inside it (stable in goldens)."""
    try:
        relative = os.path.relpath(folder)
    except ValueError:
        return folder
    return folder if relative.startswith("..") else ("./" if relative == "." else "./" + relative + "/")


class _WorkflowChecker:
    """The checks of one workflow; appends to ``out``."""

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

    # -- entry point ----------------------------------------------------------------------

    def run(self) -> None:
        self._check_schedule()
        self._check_params()
        self._check_defaults()
        for stage_name, stage in self.stages.items():
            self._check_stage(stage_name, stage)
        for alias, use in self.uses.items():
            self._check_use(alias, use)
        # Incremental runs, cleanup stages and run-level controls (alfred_dsl._runif).
        if "concurrency_group" in self.workflow:
            self._check_strings(self.workflow["concurrency_group"], (*self.path, "concurrency_group"))
        is_template = any(use.get("template") == self.name for w in self.model.workflows
                          for use in self.model.uses_of(w).values())
        self.out.extend(unreachable_failure_stages(self.name, self.stages, is_template, self.model.key_span))
        hooks = self.workflow.get("on")
        if isinstance(hooks, dict):
            self._check_strings(hooks, (*self.path, "on"))
        if "description" in self.workflow:
            self._check_strings(self.workflow["description"], (*self.path, "description"))
        for param in self.params:
            if param not in self.used_params:
                self.out.append(
                    warning(
                        "A502",
                        f"param `{param}` of workflow `{self.name}` is never used",
                        self.model.key_span((*self.path, "params", param)),
                        "no expression refers to it",
                        help=f"remove it, or refer to it as `params.{param}`",
                    )
                )

    # -- workflow level -------------------------------------------------------------------

    def _check_schedule(self) -> None:
        schedule = self.workflow.get("schedule")
        if not isinstance(schedule, str):
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
            if not isinstance(spec, dict) or "default" not in spec:
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
                        f"the default of param `{param}` is {_a(_value_type(default))}, "
                        f"but the param is declared {type_name}",
                        self.model.value_span(path),
                        f"expected {_a(type_name)}",
                    )
                )

    def _check_defaults(self) -> None:
        defaults = self.workflow.get("defaults")
        if isinstance(defaults, dict):
            self._check_typed_fields(defaults, (*self.path, "defaults"))

    def _check_typed_fields(self, block: Mapping[str, Any], path: DocPath) -> None:
        for key in _DURATION_FIELDS:
            if key in block:
                self._check_duration(block[key], (*path, key))
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
                help=_did_you_mean(value, PRIORITIES) if isinstance(value, str) else None,
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

    # -- stages ---------------------------------------------------------------------------

    def _check_stage(self, stage_name: str, stage: dict[str, Any]) -> None:
        path: DocPath = (*self.path, "stages", stage_name)
        model = self.model
        if stage_name in self.uses:
            self.out.append(
                error(
                    "A208",
                    f"`{stage_name}` names both a stage and a `use` alias in workflow `{self.name}`",
                    model.key_span(path),
                    "stage declared here",
                    secondary=[Label(model.key_span((*self.path, "uses", stage_name)), "alias here")],
                )
            )
        has_agent, has_requires = "agent" in stage, "requires" in stage
        agents: list[str] = []
        if "approve" in stage:  # an approval stage has no agent (_approvals.py)
            self.out.extend(check_approval_stage(
                self.name, self.workflow, stage_name, stage, path, model.key_span, model.value_span,
                _did_you_mean,
            ))
        elif has_agent == has_requires:
            self.out.append(
                error(
                    "A306",
                    f"stage `{stage_name}` has both `agent` and `requires`"
                    if has_agent
                    else f"stage `{stage_name}` has neither `agent` nor `requires`",
                    model.key_span(path),
                    help="keep exactly one: `agent = NAME` or `requires = [capabilities]`",
                )
            )
        if has_agent:
            agents = self._check_agent_name(stage.get("agent"), (*path, "agent"))
        elif has_requires:
            agents = self._check_requires(stage.get("requires"), (*path, "requires"))
        if agents and not (has_agent and has_requires):
            self._check_runnable(stage_name, stage, agents, path)
            self.out.extend(
                check_mcp_stage(stage_name, stage, {a: model.agents[a] for a in agents}, path, model.key_span)
            )
        for index, name in enumerate(_names(stage.get("after"))):
            self._check_target(name, (*path, "after", index))
        self._check_typed_fields(stage, path)
        if "when" in stage:
            self._check_when(stage["when"], (*path, "when"))
        for key, value in stage.items():
            if key not in _NAME_KEYS and key != "when":
                self._check_strings(value, (*path, key))

    def _check_agent_name(self, agent: Any, path: DocPath) -> list[str]:
        if not isinstance(agent, str):
            return []
        if agent in self.model.agents:
            return [agent]
        self.out.append(
            error(
                "A201",
                f"unknown agent `{agent}`",
                self.model.value_span(path),
                help=_did_you_mean(agent, self.model.agents) or _known(self.model.agents, "agent"),
                fix=rename_fix(self.model.value_span(path), agent, self.model.agents),
            )
        )
        return []

    def _check_requires(self, requires: Any, path: DocPath) -> list[str]:
        capabilities = _names(requires)
        matching = self.model.matching_agents(capabilities)
        if matching or not isinstance(requires, list):
            return matching
        everywhere = {c for agent in self.model.agents.values() for c in _names(agent.get("capabilities"))}
        unknown = [(i, c) for i, c in enumerate(requires) if isinstance(c, str) and c not in everywhere]
        if unknown:
            index, capability = unknown[0]
            self.out.append(
                error(
                    "A207",
                    f"no agent has the capability `{capability}`",
                    self.model.value_span((*path, index)),
                    help=_did_you_mean(capability, everywhere) or _known(everywhere, "capabilitie"),
                    fix=rename_fix(self.model.value_span((*path, index)), capability, everywhere),
                )
            )
        else:
            shown = ", ".join(f"`{c}`" for c in capabilities)
            self.out.append(
                error(
                    "A207",
                    f"no agent has all of the capabilities {shown}",
                    self.model.value_span(path),
                    "each is offered by some agent, but none offers them all",
                )
            )
        return []

    def _check_runnable(
        self, stage_name: str, stage: Mapping[str, Any], agents: list[str], path: DocPath
    ) -> None:
        for agent_name in agents:
            agent = self.model.agents[agent_name]
            kind = agent.get("kind", "command")
            need = EXECUTOR_NEEDS.get(kind) if isinstance(kind, str) else None
            if need is None or need == "url":  # http agents are checked once, on the agent
                continue
            if stage.get(need) or agent.get(need):
                if kind == "python":
                    self._check_importable(stage_name, stage, agent_name, agents, path)
                continue
            self.out.append(
                error(
                    "A307",
                    f"stage `{stage_name}` has nothing to run: {kind} agent `{agent_name}` "
                    f"has no `{need}` and neither has the stage",
                    self.model.key_span(path),
                    help=f"add `{need} = ...` to the stage or to agent `{agent_name}`",
                )
            )
            return

    def _check_importable(
        self, stage_name: str, stage: Mapping[str, Any], agent_name: str, agents: list[str], path: DocPath
    ) -> None:
        """A504: the module of a python `call` cannot be found from the stage's folder."""
        own = isinstance(stage.get("call"), str)
        call = stage.get("call") if own else self.model.agents[agent_name].get("call")
        if not isinstance(call, str) or "${" in call:
            return
        folder = _stage_folder(self.model, self.name, stage, agents)
        missing = _module_not_found(call, folder)
        if missing is None:
            return
        where: DocPath = (*path, "call") if own else ("agents", agent_name, "call")
        self.out.append(
            warning(
                "A504",
                f"python module `{missing}` cannot be imported from the folder of stage `{stage_name}`",
                self.model.value_span(where),
                f"no `{missing}.py` or `{missing}/` there, and not installed",
                notes=[f"the stage runs in {_shown_folder(folder)}"],
                help=f"put `{missing}.py` in that folder, set the stage's `cwd` to the folder that holds "
                f"it, or install `{missing}`",
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
                help=_did_you_mean(name, candidates) or _known(candidates, "stage"),
                fix=rename_fix(self.model.value_span(path), name, candidates),
            )
        )

    def _check_when(self, when: Any, path: DocPath) -> None:
        span = self.model.value_span(path)
        if isinstance(when, bool):
            return
        if not isinstance(when, str):
            kind = _a(_value_type(when))
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

    # -- references -----------------------------------------------------------------------

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
            where = self.model.value_span(at)
            for ref in references(template):
                self._check_ref(ref, where)
            for part in template.parts:
                if isinstance(part, Binary | Unary):
                    self.out.extend(check_types(part, self.param_types, where)[1])
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
                        help=_did_you_mean(name, self.params) or _known(self.params, "param"),
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
                    help=_did_you_mean(stage, flat) or _known(flat, "stage"),
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
                    help=_did_you_mean(key, declared) or _known(declared, "output"),
                    fix=rename_fix(span, key, declared),
                )
            )

    # -- uses -----------------------------------------------------------------------------

    def _check_use(self, alias: str, use: dict[str, Any]) -> None:
        path: DocPath = (*self.path, "uses", alias)
        model = self.model
        template = use.get("template")
        for index, name in enumerate(_names(use.get("after"))):
            self._check_target(name, (*path, "after", index))
        bindings = _map(use.get("params"))
        for key, value in bindings.items():
            self._check_strings(value, (*path, "params", key))
        if not isinstance(template, str):
            return
        if template not in model.workflows:
            self.out.append(
                error(
                    "A205",
                    f"unknown workflow `{template}` in `use`",
                    model.value_span((*path, "template")),
                    help=_did_you_mean(template, model.workflows) or _known(model.workflows, "workflow"),
                    fix=rename_fix(model.value_span((*path, "template")), template, model.workflows),
                )
            )
            return
        if _template_cycle(model, self.name, alias) is not None:
            return  # reported once per cycle (A215) by _template_cycles
        declared = _map(model.workflows[template].get("params"))
        types = model.param_types(template)
        for key, value in bindings.items():
            binding_path = (*path, "params", key)
            if key not in declared:
                self.out.append(
                    error(
                        "A203",
                        f"workflow `{template}` has no param `{key}`",
                        model.key_span(binding_path),
                        help=_did_you_mean(key, declared) or _known(declared, "param"),
                        fix=rename_fix(model.key_span(binding_path), key, declared),
                    )
                )
                continue
            self._check_binding_type(key, value, types.get(key, "any"), binding_path)
        for param, spec in declared.items():
            if param not in bindings and not (isinstance(spec, dict) and "default" in spec):
                self.out.append(
                    error(
                        "A213",
                        f"`use {template}(...) as {alias}` does not set the required param `{param}`",
                        model.key_span(path),
                        help=f"add `{param} = ...` to the `use`",
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
            kind = _value_type(value)
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


def _template_cycle(model: _Model, workflow: str, alias: str) -> list[tuple[str, str]] | None:
    """The `use` edges (workflow, alias) of a cycle through ``use ... as alias`` of ``workflow``.

    The first edge is that use; the last one uses ``workflow`` again. None when the use's
    template does not (transitively) include ``workflow``.
    """
    seen: set[str] = set()

    def walk(name: str, chain: list[tuple[str, str]]) -> list[tuple[str, str]] | None:
        if name == workflow:
            return chain
        if name in seen or name not in model.workflows:
            return None
        seen.add(name)
        for inner_alias, use in model.uses_of(name).items():
            inner = use.get("template")
            if isinstance(inner, str):
                found = walk(inner, [*chain, (name, inner_alias)])
                if found is not None:
                    return found
        return None

    template = model.uses_of(workflow).get(alias, {}).get("template")
    if not isinstance(template, str):
        return None
    return walk(template, [(workflow, alias)])


def _template_cycles(model: _Model) -> list[Diagnostic]:
    """A215 once per cycle of `use`s, found from the first workflow (in declaration order) on it."""
    out: list[Diagnostic] = []
    reported: set[frozenset[tuple[str, str]]] = set()
    for workflow in model.workflows:
        for alias in model.uses_of(workflow):
            cycle = _template_cycle(model, workflow, alias)
            if cycle is None or frozenset(cycle) in reported:
                continue
            reported.add(frozenset(cycle))
            names = [name for name, _ in cycle]
            labels = [
                Label(
                    model.value_span(("workflows", name, "uses", used_as, "template")),
                    f"`{name}` uses `{model.uses_of(name)[used_as]['template']}` here",
                )
                for name, used_as in cycle
            ]
            out.append(
                error(
                    "A215",
                    "template cycle: " + " -> ".join([*names, names[0]]),
                    labels[0].span,
                    labels[0].text,
                    secondary=labels[1:],
                    help="a template cannot include itself, directly or through another template",
                )
            )
    return out


def _invalid_duration(value: Any, span: Span) -> Diagnostic:
    shown = value if isinstance(value, str) else json.dumps(value)
    return error(
        "A304",
        f"invalid duration `{shown}`",
        span,
        help="write a duration such as `500ms`, `30s`, `5m`, `2h`, `1d` or `1h30m`",
    )


def _a(kind: str) -> str:
    return ("an " if kind[:1] in "aeiou" else "a ") + kind


# -- resolve ---------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class _Context:
    """Where a stage instance comes from: its workflow, its `use` prefix and param bindings."""

    workflow: str
    prefix: str = ""  # "auth." for the stages of `use ... as auth`
    group: tuple[str, ...] = ()
    #: template param -> value in the top workflow's terms; None in the top workflow itself.
    bindings: dict[str, Any] | None = None
    parent: _Context | None = None
    stack: tuple[str, ...] = ()

    @property
    def plain(self) -> bool:
        return self.bindings is None and not self.prefix


@dataclass(frozen=True, slots=True)
class _Unit:
    """The stages a local name stands for: one stage, or every stage of a `use` alias."""

    members: tuple[str, ...]
    sources: tuple[str, ...]
    sinks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Instance:
    ctx: _Context
    stage: str  # the name in its declaring workflow
    name: str  # the full name, prefixed by the `use` aliases


def _spanless(text: str) -> Template | None:
    """The template of a string that has no place in a file (a binding after substitution)."""
    from ._source import SourceFile

    source = SourceFile("<expression>", text)
    return parse_string(text, source.span(0, len(text)))[0]


def _as_expr(value: Any) -> Expr | None:
    """A bound value as an expression node, when it can be one."""
    if isinstance(value, str):
        if "${" not in value:
            return Literal(value=value)
        template = _spanless(value)
        return None if template is None else template.single
    if isinstance(value, bool | int | float):
        return Literal(value=value)
    return None


class _Resolver:
    def __init__(self, model: _Model, params: Mapping[str, Any]) -> None:
        self.model = model
        self.params = params
        self.instances: list[_Instance] = []
        self.edges: list[Edge] = []
        self.secrets: dict[str, None] = {}
        self._defaults: dict[int, dict[str, Any]] = {}
        # Every stage and alias by its prefixed name (`auth.build`, `auth.docs`), for `after`.
        self._units: dict[str, _Unit] = {}
        self._cwds: dict[tuple[str, str | None, str | None], str] = {}

    # -- template expansion and edges ----------------------------------------------------

    def expand(self, ctx: _Context) -> list[str]:
        model = self.model
        workflow = model.workflows[ctx.workflow]
        stages, uses = model.stages_of(ctx.workflow), model.uses_of(ctx.workflow)
        order = [n for n in _names(workflow.get("order")) if n in stages or n in uses]
        listed = set(order)
        order += [n for n in (*stages, *uses) if n not in listed]
        units: dict[str, _Unit] = {}
        members: list[str] = []
        local: list[_Instance] = []
        for item in dict.fromkeys(order):
            if item in stages:
                instance = _Instance(ctx, item, ctx.prefix + item)
                local.append(instance)
                self.instances.append(instance)
                units[item] = _Unit((instance.name,), (instance.name,), (instance.name,))
                self._units[instance.name] = units[item]
                members.append(instance.name)
                continue
            use = uses[item]
            template = use.get("template")
            if not isinstance(template, str) or template not in model.workflows or template in ctx.stack:
                units[item] = _Unit((), (), ())
                continue
            inner = _Context(
                workflow=template,
                prefix=f"{ctx.prefix}{item}.",
                group=(*ctx.group, item),
                bindings=self._bind(ctx, template, use, ("workflows", ctx.workflow, "uses", item)),
                parent=ctx,
                stack=(*ctx.stack, template),
            )
            start = len(self.edges)
            inner_members = self.expand(inner)
            inside = set(inner_members)
            inner_edges = [e for e in self.edges[start:] if e.before in inside and e.after in inside]
            has_before = {e.after for e in inner_edges}
            has_after = {e.before for e in inner_edges}
            units[item] = _Unit(
                tuple(inner_members),
                tuple(m for m in inner_members if m not in has_before),
                tuple(m for m in inner_members if m not in has_after),
            )
            self._units[ctx.prefix + item] = units[item]
            members.extend(inner_members)
        known = set(members)
        base: DocPath = ("workflows", ctx.workflow)
        for instance in local:
            stage_path = (*base, "stages", instance.stage)
            self._stage_edges(instance, stages[instance.stage], units, known, stage_path)
        for alias, use in uses.items():
            unit = units.get(alias)
            if unit is None:
                continue
            for index, name in enumerate(_names(use.get("after"))):
                dependency = units.get(name) or self._units.get(ctx.prefix + name)
                if dependency is None:
                    continue
                span = model.value_span((*base, "uses", alias, "after", index))
                for before in dependency.sinks:
                    for source in unit.sources:
                        self.edges.append(Edge(before=before, after=source, span=span, kind="use"))
        return members

    def _stage_edges(
        self,
        instance: _Instance,
        stage: Mapping[str, Any],
        units: Mapping[str, _Unit],
        known: set[str],
        path: DocPath,
    ) -> None:
        model = self.model
        for index, name in enumerate(_names(stage.get("after"))):
            unit = units.get(name) or self._units.get(instance.ctx.prefix + name)
            if unit is None:
                continue
            span = model.value_span((*path, "after", index))
            for before in unit.sinks:
                self.edges.append(Edge(before=before, after=instance.name, span=span, kind="after"))
        for key, value in stage.items():
            if key in _NAME_KEYS:
                continue
            for text, at in _strings(value, (*path, key)):
                template = model.template(text, at)
                if template is None:
                    continue
                for ref in references(template):
                    parts = ref.parts
                    if parts[0] != "stages" or len(parts) < 4 or parts[-2] != "outputs":
                        continue
                    target = instance.ctx.prefix + ".".join(parts[1:-2])
                    if target in known:
                        span = ref.span or model.value_span(at)
                        self.edges.append(Edge(before=target, after=instance.name, span=span, kind="ref"))

    def _bind(self, ctx: _Context, template: str, use: Mapping[str, Any], path: DocPath) -> dict[str, Any]:
        """The values of a template's params for one `use`, in the top workflow's terms."""
        given = _map(use.get("params"))
        types = self.model.param_types(template)
        bindings: dict[str, Any] = {}
        for param, spec in _map(self.model.workflows[template].get("params")).items():
            if param in given:
                value = self.materialize(given[param], ctx, (*path, "params", param))
            elif isinstance(spec, dict) and "default" in spec:
                value = spec["default"]
            else:
                continue  # missing: check_workspace reports A213
            if not (isinstance(value, str) and "${" in value):
                value = _convert_default(value, types.get(param, "any"))
            bindings[param] = value
        return bindings

    # -- values ---------------------------------------------------------------------------

    def materialize(self, value: Any, ctx: _Context, path: DocPath) -> Any:
        """A document value as seen from the top workflow: template params replaced by their
        bindings, `stages.X` references prefixed by the `use` aliases."""
        if ctx.plain:
            return value
        if isinstance(value, dict):
            return {k: self.materialize(v, ctx, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.materialize(v, ctx, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        template = self.model.template(value, path)
        if template is None:
            return value
        return self._rewrite(template, ctx)

    def _rewrite(self, template: Template, ctx: _Context) -> Any:
        bindings = ctx.bindings or {}
        single = template.single
        if (
            isinstance(single, Ref)
            and single.root == "params"
            and len(single.parts) == 2
            and single.parts[1] in bindings
        ):
            return bindings[single.parts[1]]  # one interpolation keeps the bound value's type
        mapping: dict[str, Expr] = {}
        for name, bound in bindings.items():
            as_expr = _as_expr(bound)
            if as_expr is not None:
                mapping[f"params.{name}"] = as_expr
        if ctx.prefix:
            mapping["stages"] = Ref(parts=("stages", *ctx.prefix[:-1].split(".")))
        parts: list[str | Expr] = []
        for part in template.parts:
            if isinstance(part, str):
                parts.append(part)
                continue
            if isinstance(part, Ref) and part.root == "params" and len(part.parts) == 2:
                bound = bindings.get(part.parts[1], _MISSING)
                if isinstance(bound, str) and "${" in bound:
                    spliced = _spanless(bound)
                    if spliced is not None:
                        parts.extend(spliced.parts)
                        continue
                if bound is not _MISSING and not isinstance(bound, str):
                    parts.append(to_text(bound))
                    continue
            parts.append(substitute(part, mapping))
        merged: list[str | Expr] = []
        for part in parts:
            if isinstance(part, Literal) and not isinstance(part.value, type(None)):
                part = to_text(part.value) if len(parts) > 1 else part
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            else:
                merged.append(part)
        if len(merged) == 1 and isinstance(merged[0], Literal):
            return merged[0].value
        return unparse_template(Template(parts=tuple(merged)))

    def field(self, instance: _Instance, stage: Mapping[str, Any], key: str) -> Any:
        """A stage attribute, else the nearest enclosing workflow's `defaults`."""
        if key in stage:
            path: DocPath = ("workflows", instance.ctx.workflow, "stages", instance.stage, key)
            return self.materialize(stage[key], instance.ctx, path)
        return self.defaults(instance.ctx).get(key)

    def defaults(self, ctx: _Context) -> dict[str, Any]:
        """The `defaults` in force in a context: its workflow's over the enclosing ones'."""
        found = self._defaults.get(id(ctx))
        if found is None:
            found = dict(self.defaults(ctx.parent)) if ctx.parent is not None else {}
            own = _map(self.model.workflows[ctx.workflow].get("defaults"))
            for key, value in own.items():
                found[key] = self.materialize(value, ctx, ("workflows", ctx.workflow, "defaults", key))
            self._defaults[id(ctx)] = found
        return found

    def evaluate_now(self, value: Any) -> Any:
        """The value of a one-interpolation string over the params known now (else the value)."""
        if not isinstance(value, str) or "${" not in value:
            return value
        template = _spanless(value)
        single = None if template is None else template.single
        if single is None:
            return value
        if any(ref.root != "params" for ref in references(single)):
            return value
        try:
            return evaluate(single, {"params": self.params})
        except ExprError:
            return value

    def text(self, value: Any) -> str:
        """A description as users read it: params filled in, `$${` shown as `${`.

        Text that refers to anything only known at run time is kept as written.
        """
        if not isinstance(value, str):
            return ""
        template = _spanless(value) if "${" in value else None
        if template is None or any(ref.root != "params" for ref in references(template)):
            return value
        try:
            return to_text(render(template, {"params": self.params}))
        except ExprError:
            return value

    def seconds(self, value: Any) -> float | None:
        return None if value is None else parse_duration(self.evaluate_now(value))

    def max_log(self, instance: _Instance, stage: Mapping[str, Any], agents: list[str]) -> int:
        """The stage's ``max_log`` in bytes: its own, else its agents' (the smallest), else the
        workflow's ``defaults``, else 100MB."""
        if "max_log" in stage:
            found = parse_size(self.evaluate_now(self.field(instance, stage, "max_log")))
            return DEFAULT_MAX_LOG if found is None else found
        own = [parse_size(self.model.agents[a].get("max_log")) for a in agents if a in self.model.agents]
        sizes = [size for size in own if size is not None]
        if sizes:
            return min(sizes)
        found = parse_size(self.evaluate_now(self.defaults(instance.ctx).get("max_log")))
        return DEFAULT_MAX_LOG if found is None else found

    def priority(self, value: Any) -> int:
        value = self.evaluate_now(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            return PRIORITIES.get(value.strip().lower(), 0)
        return 0

    def when(self, value: Any) -> bool | str:
        if value is None:
            return True
        folded = self.evaluate_now(value)
        if isinstance(folded, bool):
            return folded
        if isinstance(folded, str) and folded.strip().lower() in ("true", "false") and folded != value:
            return folded.strip().lower() == "true"
        return value if isinstance(value, str) else True

    def collect_secrets(self, value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                self.collect_secrets(item)
        elif isinstance(value, list | tuple):
            for item in value:
                self.collect_secrets(item)
        elif isinstance(value, str) and "secrets." in value and "${" in value:
            template = _spanless(value)
            for ref in references(template) if template is not None else ():
                if ref.root == "secrets" and len(ref.parts) >= 2:
                    self.secrets.setdefault(ref.parts[1], None)

    # -- stages ---------------------------------------------------------------------------

    def stage(self, instance: _Instance, after: tuple[str, ...]) -> PlanStage:
        model = self.model
        ctx = instance.ctx
        stage = model.stages_of(ctx.workflow)[instance.stage]
        path: DocPath = ("workflows", ctx.workflow, "stages", instance.stage)
        agents = model.stage_agents(stage)
        first = model.agents[agents[0]] if agents else {}
        kind = first.get("kind", "command") if isinstance(first.get("kind", "command"), str) else "command"
        # The stage's own command, else its agent's when there is only one to choose from.
        only = first if len(agents) == 1 else {}
        run = self.field(instance, stage, "run") if "run" in stage else only.get("run")
        call = self.field(instance, stage, "call") if "call" in stage else only.get("call")
        inputs = _map(self.field(instance, stage, "inputs"))
        env = _map(self.field(instance, stage, "env"))
        retries = self.evaluate_now(self.field(instance, stage, "retries"))
        on_failure = self.field(instance, stage, "on_failure")
        description = self.field(instance, stage, "description")
        when = self.when(self.field(instance, stage, "when"))
        for value in (run, call, inputs, env, when, stage.get("arguments")):
            self.collect_secrets(value)
        outputs = model.declared_outputs(ctx.workflow, instance.stage) or []
        fan_out = _map(stage.get(_fanout.FANOUT_KEY))
        approve = approval_of(model.workflows[ctx.workflow], stage, self.seconds)
        if approve is not None:
            kind = APPROVAL_KIND
        return PlanStage(
            name=instance.name,
            group=(*ctx.group, fan_out["group"]) if fan_out else ctx.group,
            fan_out=ctx.prefix + fan_out["group"] if fan_out else "",
            matrix=FrozenMap(_map(fan_out.get("values"))),
            agents=tuple(agents),
            kind=kind,
            run=_command(run),
            call=call if isinstance(call, str) else None,
            inputs=FrozenMap(inputs),
            env=FrozenMap(env),
            cwd=self._cwd(ctx.workflow, stage, agents),
            after=after,
            outputs=tuple(outputs),
            estimate_s=self.seconds(self.field(instance, stage, "estimate")) or 0,
            priority=self.priority(self.field(instance, stage, "priority")),
            timeout_s=self.seconds(self.field(instance, stage, "timeout")),
            retries=retries if isinstance(retries, int) and not isinstance(retries, bool) else 0,
            backoff_s=self.seconds(self.field(instance, stage, "backoff")) or 0,
            max_backoff_s=self.seconds(self.field(instance, stage, "max_backoff")),
            max_log=self.max_log(instance, stage, agents),
            resources=FrozenMap(stage["resources"] if isinstance(stage.get("resources"), dict) else {}),
            when=when,
            on_failure="continue" if on_failure == "continue" else "stop",
            description=self.text(description),
            approve=approve,
            cost=cost_of(stage, [model.agents[a] for a in agents]),
            mcp=mcp_of(kind, {key: self.field(instance, stage, key) for key in MCP_STAGE_KEYS}),
            sources=tuple(_names(self.field(instance, stage, "sources"))),
            produces=tuple(_names(self.field(instance, stage, "produces"))),
            run_if=run_if_of(stage.get("run_if")),
            span=model.key_span(path),
        )

    def _cwd(self, workflow: str, stage: Mapping[str, Any], agents: list[str]) -> str:
        cwd = stage.get("cwd")
        key = (workflow, cwd if isinstance(cwd, str) else None, agents[0] if len(agents) == 1 else None)
        found = self._cwds.get(key)
        if found is None:
            found = self._cwds[key] = self._compute_cwd(workflow, stage, agents)
        return found

    def _compute_cwd(self, workflow: str, stage: Mapping[str, Any], agents: list[str]) -> str:
        return _stage_folder(self.model, workflow, stage, agents)

    def agent(self, name: str) -> PlanAgent:
        agent = self.model.agents[name]
        known = {"kind", "run", "call", "url", "capabilities", "concurrency", "env", "max_log"}
        concurrency = agent.get("concurrency", 1)
        for key in ("run", "call", "url", "env", "headers"):
            self.collect_secrets(agent.get(key))
        return PlanAgent(
            name=name,
            kind=agent.get("kind", "command") if isinstance(agent.get("kind", "command"), str) else "command",
            run=_command(agent.get("run")),
            call=agent.get("call") if isinstance(agent.get("call"), str) else None,
            url=agent.get("url") if isinstance(agent.get("url"), str) else None,
            capabilities=tuple(_names(agent.get("capabilities"))),
            concurrency=concurrency if isinstance(concurrency, int) and concurrency >= 1 else 1,
            env=FrozenMap(_map(agent.get("env"))),
            options=FrozenMap({k: v for k, v in agent.items() if k not in known}),
            span=self.model.key_span(("agents", name)),
        )


_MISSING = object()


def _command(value: Any) -> str | tuple[str, ...] | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return tuple(to_text(v) for v in value)
    return None


def _choose_workflow(model: _Model, workflow: str | None) -> tuple[str | None, list[Diagnostic]]:
    entry = model.ws.entry
    file = entry.source.name
    if workflow is not None:
        if workflow in model.workflows:
            return workflow, []
        return None, [
            error(
                "A209",
                f"no workflow named `{workflow}` in {file}",
                None,
                help=_did_you_mean(workflow, model.workflows) or _known(model.workflows, "workflow"),
                file=file,
            )
        ]
    declared = [name for name in _map(entry.data.get("workflows")) if name in model.workflows]
    if not declared:
        return None, [error("A209", f"{file} declares no workflow", None, file=file)]
    templates = model.used_as_template()
    return next((name for name in declared if name not in templates), declared[0]), []


def workflows_to_analyse(ws: WorkspaceLike) -> list[str]:
    """The entry file's workflows that are not only templates (used by no other workflow)."""
    model = _Model.of(ws)
    templates = model.used_as_template()
    return [
        name
        for name in _map(ws.entry.data.get("workflows"))
        if name in model.workflows and name not in templates
    ]


def templates_of(ws: WorkspaceLike, workflow: str) -> set[str]:
    """``workflow`` and every workflow it includes through `use`, directly or not."""
    model = _Model.of(ws)
    found: set[str] = set()
    pending = [workflow]
    while pending:
        name = pending.pop()
        if name in found or name not in model.workflows:
            continue
        found.add(name)
        for use in model.uses_of(name).values():
            template = use.get("template")
            if isinstance(template, str):
                pending.append(template)
    return found


def _read_params(
    model: _Model, workflow: str, given: Mapping[str, str], require_all: bool
) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Param values: `--param` strings read as their declared types, else the defaults."""
    file = model.ws.entry.source.name
    declared = _map(model.workflows[workflow].get("params"))
    types = model.param_types(workflow)
    values: dict[str, Any] = {}
    out: list[Diagnostic] = []
    for name, raw in given.items():
        if name not in declared:
            out.append(
                error(
                    "A203",
                    f"workflow `{workflow}` has no param `{name}` (given with --param)",
                    None,
                    help=_did_you_mean(name, declared) or _known(declared, "param"),
                    file=file,
                )
            )
            continue
        value, problem = parse_param(str(raw), types.get(name, "string"))
        if problem is not None:
            out.append(
                error(
                    "A308",
                    f"--param {name}={raw}: `{name}` is declared {types.get(name)}, {problem}",
                    None,
                    file=file,
                )
            )
            continue
        values[name] = value
    for name, spec in declared.items():
        if name in values or name in given:
            continue
        if isinstance(spec, dict) and "default" in spec:
            values[name] = _convert_default(spec["default"], types.get(name, "any"))
        elif require_all:
            out.append(
                error(
                    "A213",
                    f"missing required param `{name}` of workflow `{workflow}`",
                    model.key_span(("workflows", workflow, "params", name)),
                    f"declared here without a default ({types.get(name)})",
                    help=f"pass `--param {name}=VALUE`",
                )
            )
    ordered = {name: values[name] for name in declared if name in values}  # declaration order
    return ordered, out


def resolve(
    ws: WorkspaceLike,
    workflow: str | None,
    params: Mapping[str, str],
    *,
    require_all: bool = True,
) -> tuple[ResolvedWorkflow | None, list[Diagnostic]]:
    """Bind one workflow: params read, templates expanded, agents chosen, dependencies as edges.

    ``workflow=None`` picks the first workflow of the entry file that no other workflow
    uses as a template. ``require_all=False`` (``alfredc check``) leaves required params
    without a value unreported. Problems that :func:`check_workspace` reports (unknown
    names, bad durations) are skipped here, not reported twice. Returns None only when
    the workflow cannot be chosen or a param is wrong.
    """
    model = _Model.of(ws)
    name, diagnostics = _choose_workflow(model, workflow)
    if name is None:
        return None, diagnostics
    values, problems = _read_params(model, name, params, require_all)
    diagnostics.extend(problems)
    if any(d.is_error for d in diagnostics):
        return None, diagnostics
    resolver = _Resolver(model, values)
    resolver.expand(_Context(workflow=name, stack=(name,)))
    edges: dict[tuple[str, str], Edge] = {}
    for edge in resolver.edges:
        edges.setdefault((edge.before, edge.after), edge)
    after: dict[str, list[str]] = {}
    for before, target in edges:
        after.setdefault(target, []).append(before)
    stages = tuple(resolver.stage(i, tuple(after.get(i.name, ()))) for i in resolver.instances)
    used = {agent for stage in stages for agent in stage.agents}
    agents = tuple(resolver.agent(a) for a in model.agents if a in used)
    declaration = model.workflows[name]
    hooks: list[Hook] = []
    for event, hook in _map(declaration.get("on")).items():
        run = _command(_map(hook).get("run"))
        if run is not None:
            resolver.collect_secrets(run)
            hooks.append(Hook(event=event, run=run, span=model.key_span(("workflows", name, "on", event))))
    description = declaration.get("description")
    schedule = declaration.get("schedule")
    span = model.key_span(("workflows", name))
    return (
        ResolvedWorkflow(
            name=name,
            source=span.file,
            description=resolver.text(description),
            params=FrozenMap(values),
            secrets=tuple(resolver.secrets),
            agents=agents,
            stages=stages,
            edges=tuple(edges.values()),
            hooks=tuple(hooks),
            schedule=schedule if isinstance(schedule, str) else None,
            budget=budget_of(declaration, resolver.seconds),
            timeout_s=resolver.seconds(declaration.get("timeout")),
            concurrency_group=resolver.text(declaration.get("concurrency_group")) or None,
            cancel_in_progress=declaration.get("cancel_in_progress") is True,
            span=span,
        ),
        diagnostics,
    )
