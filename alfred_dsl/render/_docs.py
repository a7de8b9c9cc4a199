"""Workflow documentation: one page per workflow plus an index, as Markdown or a static HTML site.

:func:`collect` compiles every workflow declared in each given file (templates with
required params are compiled with placeholder values, and say so); :func:`write_markdown`
and :func:`write_html` render the pages with the Jinja2 templates in ``templates/``.
The HTML pages draw the graph as inline SVG (no JavaScript); the Markdown pages carry a
Mermaid block with the critical path highlighted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from .._values import format_duration
from ..compiler._plan import Plan
from ._svg import plan_to_svg
from ._templating import html_environment, markdown_environment

__all__ = [
    "AgentDoc",
    "ParamDoc",
    "WorkflowDoc",
    "doc_from_plan",
    "index_html",
    "index_markdown",
    "params_of",
    "placeholder_values",
    "workflow_doc",
    "workflow_html",
    "workflow_markdown",
    "write_html",
    "write_markdown",
]

#: A value of each declared type that any check accepts, for templates with required params.
_PLACEHOLDERS = {
    "int": "0",
    "float": "0",
    "bool": "false",
    "duration": "0s",
    "list": "[]",
    "map": "{}",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamDoc:
    name: str
    type: str
    default: str | None = None         # JSON text of the default, None when required
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDoc:
    name: str
    kind: str
    capabilities: tuple[str, ...] = ()
    concurrency: int = 1
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowDoc:
    name: str
    source: str                          # the file that declares the workflow, as given
    slug: str                            # file name stem of its page, unique in the site
    description: str = ""
    schedule: str | None = None
    params: tuple[ParamDoc, ...] = ()
    agents: tuple[AgentDoc, ...] = ()
    plan: Plan | None = None             # None when the workflow does not compile
    #: Params given placeholder values so that the template could be compiled.
    placeholders: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _params(spec: Mapping[str, Any]) -> tuple[ParamDoc, ...]:
    out: list[ParamDoc] = []
    for name, raw in spec.items():
        entry = raw if isinstance(raw, Mapping) else {}
        out.append(
            ParamDoc(
                name=str(name),
                type=str(entry.get("type", "string")),
                default=_json_text(entry["default"]) if "default" in entry else None,
                description=str(entry.get("description", "")),
            )
        )
    return tuple(out)


def _agents_of_plan(plan: Plan) -> tuple[AgentDoc, ...]:
    used = {name for stage in plan.stages for name in stage.agents}
    return tuple(
        AgentDoc(
            name=agent.name,
            kind=agent.kind,
            capabilities=agent.capabilities,
            concurrency=agent.concurrency,
            description=str(agent.options.get("description", "")),
        )
        for agent in plan.agents
        if agent.name in used
    )


def _agents_of_data(workflow: Mapping[str, Any], agents: Mapping[str, Any]) -> tuple[AgentDoc, ...]:
    stages = workflow.get("stages")
    names = {str(s.get("agent")) for s in stages.values() if isinstance(s, Mapping)} if isinstance(
        stages, Mapping
    ) else set()
    out: list[AgentDoc] = []
    for name, raw in agents.items():
        if name in names and isinstance(raw, Mapping):
            capabilities = raw.get("capabilities")
            concurrency = raw.get("concurrency", 1)
            out.append(
                AgentDoc(
                    name=str(name),
                    kind=str(raw.get("kind", "command")),
                    capabilities=tuple(map(str, capabilities)) if isinstance(capabilities, list) else (),
                    concurrency=concurrency if isinstance(concurrency, int) else 1,
                    description=str(raw.get("description", "")),
                )
            )
    return tuple(out)


def _slugify(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)


def _unique_slug(name: str, taken: set[str], source: str = "") -> str:
    """A page name for workflow ``name``, unique (case-insensitively) among ``taken``.

    A name already taken by another file's workflow gets that file's name appended
    (``release_train-release-yaml``), so the page says where it comes from; a number
    is the last resort.
    """
    base = _slugify(name) or "workflow"
    if base.lower() == "index":
        base = "workflow-index"
    slug = base
    if slug.lower() in taken and source:
        base = slug = f"{base}-{_slugify(Path(source).name)}"
    n = 2
    while slug.lower() in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug.lower())
    return slug


def _display_path(path: Path, root: Path) -> str:
    """``path`` relative to the project root, with ``/``: the same page wherever it is built from."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (OSError, ValueError):
        return path.as_posix()


def doc_from_plan(plan: Plan, *, params: Sequence[ParamDoc] = (), slug: str | None = None) -> WorkflowDoc:
    """A page for a plan compiled elsewhere (the API, or tests)."""
    return WorkflowDoc(
        name=plan.workflow,
        source=plan.source,
        slug=slug or plan.workflow,
        description=plan.description,
        schedule=plan.schedule,
        params=tuple(params),
        agents=_agents_of_plan(plan),
        plan=plan,
    )


def params_of(spec: Mapping[str, Any]) -> tuple[ParamDoc, ...]:
    """The declared params of a workflow (its ``params`` mapping)."""
    return _params(spec)


def placeholder_values(params: Sequence[ParamDoc]) -> dict[str, str]:
    """A ``--param`` value of the declared type for each required param: a template's plan
    can be computed with these."""
    return {p.name: _PLACEHOLDERS.get(p.type, f"<{p.name}>") for p in params if p.required}


def workflow_doc(
    name: str,
    workflow: Mapping[str, Any],
    agents: Mapping[str, Any],
    *,
    path: Path,
    root: Path,
    plan: Plan | None,
    params: tuple[ParamDoc, ...],
    placeholders: Mapping[str, str],
    taken: set[str],
) -> WorkflowDoc:
    """The page of workflow ``name`` (its declaration ``workflow``) of the file ``path``.

    ``plan`` is None when the workflow does not compile: the page keeps the declared parts
    (description, params, agents) with a note instead of the plan figures. ``taken``: the
    page names used so far (this one is added).
    """
    notes: list[str] = []
    if plan is None:
        notes.append("This workflow does not compile (see `alfredc check`); no plan figures.")
    elif placeholders:
        notes.append(
            "This workflow is a template; its plan was computed with placeholder values for "
            + ", ".join(sorted(placeholders))
            + "."
        )
    description = workflow.get("description", "")
    schedule = workflow.get("schedule")
    source = _display_path(path, root)
    return WorkflowDoc(
        name=name,
        source=source,
        slug=_unique_slug(name, taken, source),
        description=str(description) if description else "",
        schedule=str(schedule) if schedule else None,
        params=params,
        agents=_agents_of_plan(plan) if plan is not None else _agents_of_data(workflow, agents),
        plan=plan,
        placeholders=tuple(sorted(placeholders)),
        notes=tuple(notes),
    )


def _mermaid(plan: Plan) -> Markup:
    from ._graph import to_mermaid

    return Markup(to_mermaid(plan).rstrip("\n"))


def _context(doc: WorkflowDoc) -> dict[str, Any]:
    plan = doc.plan
    return {
        "doc": doc,
        "plan": plan,
        "stages": plan.stages if plan is not None else (),
        "critical_path": " → ".join(plan.critical_path) if plan is not None else "",
        "duration": format_duration(plan.duration_s) if plan is not None else "",
    }


def workflow_markdown(doc: WorkflowDoc) -> str:
    context = _context(doc)
    context["mermaid"] = _mermaid(doc.plan) if doc.plan is not None else Markup("")
    return markdown_environment().get_template("workflow.md.j2").render(context)


def index_markdown(docs: Sequence[WorkflowDoc], *, title: str = "Workflows") -> str:
    return markdown_environment().get_template("index.md.j2").render(docs=docs, title=title)


def workflow_html(doc: WorkflowDoc) -> str:
    context = _context(doc)
    context["svg"] = Markup(plan_to_svg(doc.plan, id_prefix=doc.slug)) if doc.plan is not None else None
    return html_environment().get_template("workflow.html.j2").render(context)


def index_html(docs: Sequence[WorkflowDoc], *, title: str = "Workflows") -> str:
    return html_environment().get_template("index.html.j2").render(docs=docs, title=title)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_markdown(docs: Sequence[WorkflowDoc], out_dir: Path, *, title: str = "Workflows") -> list[Path]:
    """Write ``index.md`` and one ``SLUG.md`` per workflow into ``out_dir``; returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_write(out_dir / f"{doc.slug}.md", workflow_markdown(doc)) for doc in docs]
    written.insert(0, _write(out_dir / "index.md", index_markdown(docs, title=title)))
    return written


def write_html(docs: Sequence[WorkflowDoc], out_dir: Path, *, title: str = "Workflows") -> list[Path]:
    """Write ``index.html`` and one ``SLUG.html`` per workflow into ``out_dir``; returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_write(out_dir / f"{doc.slug}.html", workflow_html(doc)) for doc in docs]
    written.insert(0, _write(out_dir / "index.html", index_html(docs, title=title)))
    return written
