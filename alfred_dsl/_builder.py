"""Authoring workflows in Python: :class:`Workflow`, :class:`Agent`, :class:`Stage`, :func:`agent`.

(About 670 lines: the public builder classes with their documented, typed signatures belong
together; the document and span work they share is small.)

The builder writes the normalized document (docs/design.md), the same data a ``.alfred``
or YAML file lowers to, and records for every value the span of the Python expression
that gave it (``_callsite``). Compiling feeds that document to the loader as an entry
file that is already parsed (``compiler.load.load_built``); from there the schema, name, type
and graph checks are the compiler's own, so a mistake is reported at the caller's line.
(Over 600 lines: the public classes and the loading of a ``flows.py`` reference; their
docstrings are the Python API's reference, docs/python.md.)

>>> spec = Agent("spec-builder", run=["python", "tools/spec.py"], capabilities=["requirements"])
>>> wf = Workflow("feature_development", params={"feature": str})
>>> _ = wf.add_stage("specification", spec, estimate="30m")
>>> print(wf.to_alfred().splitlines()[0])
agent spec-builder {
"""

from __future__ import annotations

import copy
import datetime
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ._callsite import CallSite, call_site
from ._diagnostics import Diagnostic, DiagnosticError, Label, error
from ._source import SourceFile, Span
from .compiler._document import Document, SpanIndex

if TYPE_CHECKING:
    from .compiler._plan import Plan
    from .compiler.load import Workspace

__all__ = ["Agent", "Stage", "Workflow", "agent", "is_reference", "load_reference"]

#: Python types accepted as param types, and their names in the language.
_PARAM_TYPES: dict[Any, str] = {
    str: "string", int: "int", float: "float", bool: "bool", list: "list", dict: "map",
    datetime.timedelta: "duration",
}
F = TypeVar("F", bound=Callable[..., Any])


def _plain(value: Any) -> Any:
    """A Python value as document data: tuples are lists, a timedelta is seconds, a Stage its name."""
    if isinstance(value, Stage):
        return value.name
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
        return int(seconds) if seconds.is_integer() else seconds
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if callable(value):
        return _call_of(value)
    return str(value)  # the schema reports it as a value of the wrong type, at the caller's line


def _call_of(function: Callable[..., Any]) -> str:
    """``module:qualified.name`` of a function (what a python agent's ``call`` holds)."""
    module = getattr(function, "__module__", None) or "__main__"
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", "")
    return f"{module}:{name}"


def _param_type(kind: Any) -> str:
    if isinstance(kind, str):
        return kind
    name = _PARAM_TYPES.get(kind)
    if name is not None:
        return name
    return str(getattr(kind, "__name__", kind))  # refused by the schema, which lists the types


class Agent:
    """An agent: who runs a stage (``command``, ``python`` or ``http``) and what it can do.

    ``kind`` defaults to ``python`` when ``call`` is given, ``http`` with ``url``, else
    ``command``. ``call`` may be the function itself. Agents join a workflow when a stage
    uses them (or with :meth:`Workflow.add_agent`); diagnostics about one point at the
    line that created it.
    """

    def __init__(
        self,
        name: str,
        *,
        kind: str | None = None,
        run: str | Sequence[str] | None = None,
        call: str | Callable[..., Any] | None = None,
        url: str | None = None,
        capabilities: Iterable[str] = (),
        concurrency: int | None = None,
        env: Mapping[str, str] | None = None,
        outputs: Sequence[str] | None = None,
        cwd: str | None = None,
        description: str | None = None,
    ) -> None:
        self._site = call_site()
        if kind is None:
            kind = "python" if call is not None else "http" if url is not None else "command"
        given: dict[str, Any] = {
            "kind": kind, "run": run, "call": call, "url": url, "capabilities": list(capabilities),
            "concurrency": concurrency, "env": env, "outputs": outputs, "cwd": cwd,
            "description": description,
        }
        self.name = name
        self._data = {key: _plain(value) for key, value in given.items() if value is not None}
        self._spans = SpanIndex(self._site.source)
        path = ("agents", name)
        self._spans.set(path, self._site.span, self._site.arg(0, "name"))
        for key, value in self._data.items():
            self._site.record(self._spans, (*path, key), value, key)

    @property
    def data(self) -> dict[str, Any]:
        """The agent's declaration in the normalized document (a copy)."""
        return copy.deepcopy(self._data)

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, kind={self._data.get('kind')!r})"


def agent(
    name: str | None = None,
    *,
    capabilities: Iterable[str] = (),
    concurrency: int | None = None,
    env: Mapping[str, str] | None = None,
    outputs: Sequence[str] | None = None,
    cwd: str | None = None,
    description: str | None = None,
) -> Callable[[F], F]:
    """Decorate a function to make it a python agent whose ``call`` is that function.

    The function keeps working as a function; its agent is ``function.agent``
    (named after the function, ``_`` as ``-``, unless ``name`` is given). The function's
    module must be importable from the workflow's folder, as for any ``call``.
    """
    site = call_site()

    def decorate(function: F) -> F:
        made = Agent.__new__(Agent)
        made._site = site
        made.name = name or function.__name__.replace("_", "-")
        given: dict[str, Any] = {
            "kind": "python", "call": _call_of(function), "capabilities": list(capabilities),
            "concurrency": concurrency, "env": env, "outputs": outputs, "cwd": cwd,
            "description": description or (inspect.getdoc(function) or "").split("\n")[0] or None,
        }
        made._data = {key: _plain(value) for key, value in given.items() if value is not None}
        made._spans = SpanIndex(site.source)
        path = ("agents", made.name)
        made._spans.set(path, site.span, site.arg(0, "name"))
        for key, value in made._data.items():
            site.record(made._spans, (*path, key), value, key)
        function.agent = made  # type: ignore[attr-defined]
        return function

    return decorate


class Stage:
    """A stage added by :meth:`Workflow.add_stage` (or a ``use`` alias): its name, and
    references to its outputs for the inputs of later stages."""

    def __init__(self, workflow: Workflow, name: str) -> None:
        self.workflow = workflow
        self.name = name

    def output(self, name: str) -> str:
        """The expression ``${stages.NAME.outputs.OUTPUT}``, for ``inputs`` and ``when``."""
        return "${stages." + self.name + ".outputs." + name + "}"

    def __repr__(self) -> str:
        return f"Stage({self.name!r})"


def _agent_of(value: Any) -> Agent | None:
    if isinstance(value, Agent):
        return value
    made = getattr(value, "agent", None)
    return made if isinstance(made, Agent) else None


class Workflow:
    """A workflow written in Python; compiles to the same :class:`~alfred_dsl.Plan` as ``.alfred``.

    ``params`` maps names to a type (``str``, ``int``, ``float``, ``bool``, ``list``,
    ``dict``, ``datetime.timedelta`` or a type name such as ``"duration"``), or to a dict
    ``{"type": ..., "default": ...}``. Mistakes are not raised where they are made: they
    are reported, all together and at the caller's lines, by :meth:`check`,
    :meth:`compile` and everything that compiles (:class:`~alfred_dsl.Engine`,
    :func:`~alfred_dsl.run`, ``alfredc plan flows.py:wf``).
    """

    def __init__(
        self,
        name: str,
        *,
        params: Mapping[str, Any] | None = None,
        description: str | None = None,
        schedule: str | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        site = call_site()
        self._source = site.source
        self._origin = site.path
        #: The folder stages run in; None: the project root of ``_origin``.
        self._folder: Path | None = None
        self._spans = SpanIndex(site.source)
        self._problems: list[Diagnostic] = []
        self._agents: dict[str, Agent] = {}
        self.name = name
        self._data: dict[str, Any] = {"agents": {}, "workflows": {name: {}}}
        path = ("workflows", name)
        self._spans.set(path, site.span, site.arg(0, "name"))
        body = self._body
        for key, value in (("description", description), ("schedule", schedule)):
            if value is not None:
                body[key] = _plain(value)
                site.record(self._spans, (*path, key), body[key], key)
        for param_name, spec in (params or {}).items():
            self._param(site, str(param_name), spec)
        if params:
            site.record(self._spans, (*path, "params"), self._body["params"], "params")
            for param_name, spec in params.items():
                if not isinstance(spec, Mapping):  # `{"feature": str}`: the type is the value
                    param_path = (*path, "params", str(param_name))
                    self._spans.set((*param_path, "type"), self._spans.value(param_path))
        if defaults is not None:
            body["defaults"] = _plain(defaults)
            site.record(self._spans, (*path, "defaults"), body["defaults"], "defaults")
        body["stages"] = {}
        body["order"] = []

    # -- building -----------------------------------------------------------------------
    @property
    def _body(self) -> dict[str, Any]:
        workflows = self._data.setdefault("workflows", {})
        body: dict[str, Any] = workflows.setdefault(self.name, {})
        return body

    def _param(
        self, site: CallSite, name: str, spec: Any, default: Any = None, has_default: bool = False
    ) -> None:
        params = self._body.setdefault("params", {})
        path = ("workflows", self.name, "params", name)
        if isinstance(spec, Mapping):
            declared = {str(k): _plain(v) for k, v in spec.items()}
            if "type" in declared:
                declared["type"] = _param_type(spec["type"])
        else:
            declared = {"type": _param_type(spec)}
        if has_default:
            declared["default"] = _plain(default)
        if name in params:
            self._duplicate("param", name, site.arg(0, "name"), path)
            return
        params[name] = declared
        if site.arguments.get("params") is None:  # add_param (Workflow(params=...) records them all)
            self._spans.set(path, site.span, site.arg(0, "name"))
            self._spans.set((*path, "type"), site.arg(1, "type"))
            if has_default:
                site.record(self._spans, (*path, "default"), declared["default"], 2, "default")

    def add_param(self, name: str, type: Any, default: Any = ..., /) -> None:
        """Declare a param (``default`` omitted: it is required)."""
        self._param(call_site(), name, type, default, default is not ...)

    def set_param_defaults(self, **values: Any) -> Workflow:
        """Give declared params these default values (a template instantiated from Python)."""
        site = call_site()
        params = self._body.setdefault("params", {})
        for name, value in values.items():
            path = ("workflows", self.name, "params", name)
            declared = params.get(name)
            if not isinstance(declared, dict):  # not declared: the checker says "unknown param"
                declared = params[name] = {"type": "string"}
                self._spans.set(path, site.arg(name), site.key(name))
            declared["default"] = _plain(value)
            site.record(self._spans, (*path, "default"), declared["default"], name)
        return self

    def _duplicate(self, what: str, name: str, span: Span, first: tuple[str | int, ...]) -> None:
        self._problems.append(
            error(
                "A208",
                f"{what} `{name}` is declared twice",
                span,
                "declared again here",
                secondary=(Label(self._spans.key(first), "first declared here"),),
                help="rename or remove one of them (the first one is used)",
            )
        )

    def add_agent(self, agent: Agent | Callable[..., Any], *, replace: bool = False) -> Agent:
        """Declare an agent in this workflow's document (stages declare theirs themselves).

        An agent of the same name made elsewhere is A208, unless ``replace`` (to swap an
        agent of a template loaded from a file).
        """
        made = _agent_of(agent)
        if made is None:
            raise TypeError(f"expected an Agent or a function decorated with @agent, got {agent!r}")
        agents: dict[str, Any] = self._data.setdefault("agents", {})
        known = self._agents.get(made.name)
        if known is made:
            return made
        if made.name in agents and not replace:
            self._duplicate("agent", made.name, made._spans.key(("agents", made.name)), ("agents", made.name))
            return made
        for table in (self._spans.values, self._spans.keys):
            for path in [p for p in table if p[:2] == ("agents", made.name)]:
                del table[path]
        agents[made.name] = made.data
        self._agents[made.name] = made
        self._spans.update(made._spans)
        return made

    def add_stage(
        self,
        name: str,
        agent: Agent | str | Callable[..., Any] | None = None,
        *,
        depends_on: Iterable[str | Stage] = (),
        requires: Sequence[str] | None = None,
        run: str | Sequence[str] | None = None,
        call: str | Callable[..., Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        estimate: str | float | datetime.timedelta | None = None,
        priority: str | int | None = None,
        timeout: str | float | datetime.timedelta | None = None,
        retries: int | None = None,
        backoff: str | float | datetime.timedelta | None = None,
        max_backoff: str | float | datetime.timedelta | None = None,
        when: bool | str | None = None,
        description: str | None = None,
        on_failure: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        outputs: Sequence[str] | None = None,
    ) -> Stage:
        """Add a stage run by ``agent`` (an :class:`Agent`, an ``@agent`` function or an
        agent's name) or by any agent with the capabilities in ``requires``.

        ``depends_on`` names stages (or ``use`` aliases) that must finish first. Durations
        are strings (``"30m"``, ``"1h30m"``), seconds, or ``timedelta``.
        """
        site = call_site()
        path = ("workflows", self.name, "stages", name)
        stages: dict[str, Any] = self._body.setdefault("stages", {})
        if name in stages or name in self._body.get("uses", {}):
            where = path if name in stages else ("workflows", self.name, "uses", name)
            self._duplicate("stage", name, site.arg(0, "name"), where)
            return Stage(self, name)
        body: dict[str, Any] = {}
        after = [_plain(item) for item in depends_on]
        if after:
            body["after"] = after
        made = _agent_of(agent)
        if made is not None:
            self.add_agent(made)
            body["agent"] = made.name
        elif agent is not None:
            body["agent"] = _plain(agent)
        given = {
            "requires": requires, "run": run, "call": call, "inputs": inputs, "estimate": estimate,
            "priority": priority, "timeout": timeout, "retries": retries, "backoff": backoff,
            "max_backoff": max_backoff, "when": when, "description": description,
            "on_failure": on_failure, "cwd": cwd, "env": env, "outputs": outputs,
        }
        body.update({key: _plain(value) for key, value in given.items() if value is not None})
        stages[name] = body
        self._body.setdefault("order", []).append(name)
        self._spans.set(path, site.span, site.arg(0, "name"))
        for key, value in body.items():
            argument: int | str = 1 if key == "agent" else "depends_on" if key == "after" else key
            site.record(self._spans, (*path, key), value, argument, "depends_on" if key == "after" else key)
        return Stage(self, name)

    def use(
        self,
        template: str | Workflow,
        alias: str,
        *,
        params: Mapping[str, Any] | None = None,
        depends_on: Iterable[str | Stage] = (),
    ) -> Stage:
        """Include the stages of another workflow of this document under ``alias.``
        (``use TEMPLATE(params) as ALIAS after ...``). A :class:`Workflow` given as the
        template is copied into this document first."""
        site = call_site()
        if isinstance(template, Workflow):
            self._adopt(template)
            template = template.name
        path = ("workflows", self.name, "uses", alias)
        uses: dict[str, Any] = self._body.setdefault("uses", {})
        if alias in uses or alias in self._body.get("stages", {}):
            where = path if alias in uses else ("workflows", self.name, "stages", alias)
            self._duplicate("use alias", alias, site.arg(1, "alias"), where)
            return Stage(self, alias)
        body: dict[str, Any] = {"template": template, "params": _plain(params or {})}
        after = [_plain(item) for item in depends_on]
        if after:
            body["after"] = after
        uses[alias] = body
        self._body.setdefault("order", []).append(alias)
        self._spans.set(path, site.span, site.arg(1, "alias"))
        site.record(self._spans, (*path, "template"), template, 0, "template")
        site.record(self._spans, (*path, "params"), body["params"], "params")
        if after:
            site.record(self._spans, (*path, "after"), after, "depends_on")
        return Stage(self, alias)

    def _adopt(self, other: Workflow) -> None:
        """Copy another builder's workflows and agents into this document (for ``use``)."""
        for section in ("agents", "workflows"):
            mine: dict[str, Any] = self._data.setdefault(section, {})
            for name, value in other._data.get(section, {}).items():
                if name not in mine:
                    mine[name] = copy.deepcopy(value)
                    for table, target in ((other._spans.values, self._spans.values),
                                          (other._spans.keys, self._spans.keys)):
                        for path, span in table.items():
                            if path[:2] == (section, name):
                                target[path] = span

    def on(self, event: str, run: str | Sequence[str]) -> None:
        """A workflow hook: run a command on ``failure``, ``success`` or ``stage_failed``."""
        site = call_site()
        path = ("workflows", self.name, "on", event)
        hooks: dict[str, Any] = self._body.setdefault("on", {})
        hooks[event] = {"run": _plain(run)}
        self._spans.set(path, site.span, site.arg(0, "event"))
        site.record(self._spans, (*path, "run"), hooks[event]["run"], 1, "run")

    @staticmethod
    def param(name: str) -> str:
        """The expression ``${params.NAME}``, for ``inputs``, ``run`` and ``when``."""
        return "${params." + name + "}"

    # -- compiling ----------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        """The normalized document this builder wrote (a copy; see docs/design.md)."""
        return copy.deepcopy(self._data)

    def _workspace(self) -> tuple[Workspace | None, list[Diagnostic]]:
        from .compiler.load import load_built

        imports = tuple(
            (item, self._spans.value(("imports", index)))
            for index, item in enumerate(self._data.get("imports") or ())
            if isinstance(item, str) and item
        )
        spans = SpanIndex(self._spans.source, dict(self._spans.values), dict(self._spans.keys))
        if () not in spans.values:
            spans.set((), self._spans.value(("workflows", self.name)))
        data = copy.deepcopy(self._data)
        workflows = data.get("workflows")
        if isinstance(workflows, dict) and self.name in workflows:  # this one is the default to compile
            data["workflows"] = {self.name: workflows[self.name], **workflows}
        document = Document(self._source, data, spans, imports)
        origin = self._origin or Path(os.getcwd()) / "<python>"
        return load_built(document, origin, list(self._problems), self._folder)

    def check(self) -> list[Diagnostic]:
        """Everything ``alfredc check`` would report about this workflow (never raises)."""
        from .compiler._pipeline import check_loaded

        workspace, diagnostics = self._workspace()
        return check_loaded(workspace, diagnostics)

    def compile(self, params: Mapping[str, Any] | None = None) -> Plan:
        """The :class:`~alfred_dsl.Plan`; raises :class:`~alfred_dsl.DiagnosticError` on errors."""
        from ._values import param_strings
        from .compiler._pipeline import compile_loaded

        workspace, diagnostics = self._workspace()
        plan, diagnostics = compile_loaded(workspace, diagnostics, self.name, param_strings(params))
        if plan is None or any(d.is_error for d in diagnostics):
            raise DiagnosticError(diagnostics)
        return plan

    def to_alfred(self) -> str:
        """This document as formatted ``.alfred`` text (what ``alfredc fmt`` writes)."""
        from ._emit import document_to_alfred

        return document_to_alfred(self._data)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], workflow: str | None = None) -> Workflow:
        """Load an ``.alfred``, YAML or JSON file for editing in Python.

        ``workflow`` picks the workflow that :meth:`add_stage` and friends change (default:
        the first one no other workflow uses as a template); the file's other workflows and
        agents stay in the document. Diagnostics keep pointing into the file. Raises
        :class:`~alfred_dsl.DiagnosticError` when the file cannot be read or parsed.
        """
        from .compiler.load import load_document, read_source

        source, diagnostics = read_source(path)
        document = None
        if source is not None:
            document, found = load_document(source)
            diagnostics.extend(found)
        if document is None or any(d.is_error for d in diagnostics):
            raise DiagnosticError(diagnostics)
        workflows = document.data.get("workflows")
        names = [str(n) for n in workflows] if isinstance(workflows, dict) else []
        if workflow is None:
            templates = {
                use.get("template")
                for body in (workflows or {}).values() if isinstance(body, dict)
                for use in (body.get("uses") or {}).values() if isinstance(use, dict)
            }
            workflow = next((n for n in names if n not in templates), names[0] if names else None)
        if workflow is None or workflow not in names:
            known = ", ".join(f"`{n}`" for n in names) or "none"
            raise DiagnosticError([error("A205", f"no workflow `{workflow}` in `{source and source.name}`",
                                         None, help=f"the file declares: {known}", file=str(path))])
        made = cls.__new__(cls)
        made._source = document.source
        made._origin = Path(os.path.abspath(path))
        made._folder = made._origin.parent  # as `alfredc run FILE` does
        made._spans = document.spans
        made._problems = [d for d in diagnostics if d.is_error]
        made._agents = {}
        made.name = workflow
        made._data = document.data
        made._data.setdefault("agents", {})
        return made

    def __repr__(self) -> str:
        stages = list(self._body.get("stages", {}))
        return f"Workflow({self.name!r}, stages={stages!r})"


# -- `alfredc plan flows.py:workflow` --------------------------------------------------------

_REFERENCE = re.compile(
    r"^(?P<file>.+\.py)(?::(?P<object>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*))?$"
)


def is_reference(text: str) -> bool:
    """Whether a path argument names a Python file (``flows.py`` or ``flows.py:feature``)."""
    return _REFERENCE.match(text) is not None


def _fail(text: str, message: str, label: str = "", help: str | None = None,
          at: Span | None = None) -> tuple[None, list[Diagnostic]]:
    return None, [error("A001", message, at, label, help=help, file=text)]


def _module_name(file: Path, root: Path) -> str | None:
    """The dotted name of ``file`` below ``root`` (``team/flows.py`` -> ``team.flows``)."""
    try:
        parts = file.relative_to(root).with_suffix("").parts
    except ValueError:
        return None
    return ".".join(parts) if parts and all(p.isidentifier() for p in parts) else None


def _import_file(file: Path, root: Path) -> Any:
    """Import ``file`` as the module its path below the project root names; the root and
    the file's folder are on ``sys.path`` meanwhile so that its own imports work."""
    name = _module_name(file, root)
    loaded = sys.modules.get(name) if name else None
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() == file.resolve():
        return loaded
    if name is None or loaded is not None:  # a name taken by another module: a private one
        name = "_alfred_workflow_" + re.sub(r"\W", "_", str(file.resolve()))
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import `{file}`")
    module = importlib.util.module_from_spec(spec)
    added = [str(p) for p in dict.fromkeys((root, file.parent)) if str(p) not in sys.path]
    sys.path[:0] = added
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        for folder in added:
            if folder in sys.path:
                sys.path.remove(folder)
    return module


def _where_raised(exc: BaseException, file: Path) -> Span | None:
    """The span of the innermost line of ``file`` in the traceback (the line that failed)."""
    import traceback

    if isinstance(exc, SyntaxError) and exc.lineno is not None and exc.filename == str(file):
        frames = [(exc.filename, exc.lineno)]
    else:
        frames = [(f.filename, f.lineno or 0) for f in traceback.extract_tb(exc.__traceback__)]
    for filename, line in reversed(frames):
        if filename and Path(filename).resolve() == file.resolve() and line:
            text = file.read_text(encoding="utf-8", errors="replace")
            relative = os.path.relpath(file)
            source = SourceFile(str(file) if relative.startswith("..") else relative, text, file)
            start = source.offset(line, 1)
            line_text = source.line_text(line)
            indent = len(line_text) - len(line_text.lstrip())
            return source.span(start + indent, start + len(line_text))
    return None


def load_reference(text: str) -> tuple[Workspace | None, list[Diagnostic]]:
    """Load the workflow object named by ``flows.py:name`` (or the only one in ``flows.py``).

    The module is imported (it is the user's code, as with ``python flows.py``); every
    problem - a missing file, an exception while importing, a missing or wrong object -
    is an A001 diagnostic, never a traceback.
    """
    from .compiler.load import find_root

    match = _REFERENCE.match(text)
    assert match is not None
    file = Path(match["file"])
    wanted = match["object"]
    if not file.is_file():
        return _fail(text, f"no such file `{match['file']}`", "no such file")
    root = find_root(file)
    try:
        module = _import_file(Path(os.path.abspath(file)), Path(os.path.abspath(root)))
    except Exception as exc:  # the user's module is broken: report where
        at = _where_raised(exc, Path(os.path.abspath(file)))
        return _fail(text, f"cannot import `{match['file']}`: {type(exc).__name__}: {exc}",
                     "raised here", help="fix the module; it must import without errors", at=at)
    except SystemExit as exc:
        return _fail(text, f"cannot import `{match['file']}`: it called sys.exit({exc.code!r})",
                     help="guard the script part with `if __name__ == \"__main__\":`")
    found = [n for n, v in vars(module).items() if isinstance(v, Workflow) and not n.startswith("_")]
    if wanted is None:
        if len(found) != 1:
            listed = ", ".join(f"`{match['file']}:{n}`" for n in found)
            hint = f"for example {listed}" if found else "assign a `Workflow(...)` to a module-level name"
            return _fail(text, f"`{match['file']}` holds {len(found) or 'no'} workflow objects; name one",
                         help=hint)
        wanted = found[0]
    target: Any = module
    for part in wanted.split("."):
        if not hasattr(target, part):
            from ._values import did_you_mean

            close = did_you_mean(part, found) if target is module else None
            return _fail(text, f"`{match['file']}` has no attribute `{wanted}`", help=close)
        target = getattr(target, part)
    if inspect.isfunction(target):
        try:
            target = target()  # a factory function: `flows.py:make_pipeline`
        except Exception as exc:
            return _fail(text, f"calling `{wanted}` raised {type(exc).__name__}: {exc}",
                         at=_where_raised(exc, Path(os.path.abspath(file))))
    if not isinstance(target, Workflow):
        kind = type(target).__name__
        return _fail(text, f"`{match['file']}:{wanted}` is a {kind}, not an alfred_dsl.Workflow",
                     help="name a `Workflow(...)` object (or a function returning one)")
    return target._workspace()
