"""Approval stages at compile time: their checks and their form in the plan.

A stage with ``approve = { by = [...], timeout = 24h, on_timeout = reject }`` has no agent:
the runtime waits for a decision recorded with ``alfredc approve`` / ``alfredc reject``.
``by`` names roles of the workflow's ``approvers`` map (``approvers = { lead = ["alice"] }``)
or user names listed in it; the plan carries the resolved user names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._diagnostics import Diagnostic, Label, error, warning
from .._source import Span
from ._plan import FrozenMap, Plan, PlanStage

__all__ = ["approval_of", "check_approval_stage", "rejection_warnings"]

#: What runs an approval stage, in the plan's ``kind`` (no executor: the runtime itself).
APPROVAL_KIND = "approval"
ON_TIMEOUT = ("reject", "approve")

Suggest = Callable[[str, Iterable[str]], "str | None"]
SpanOf = Callable[[tuple[Any, ...]], Span]


def _roles(workflow: Mapping[str, Any]) -> dict[str, list[str]]:
    approvers = workflow.get("approvers")
    if not isinstance(approvers, dict):
        return {}
    return {
        role: [u for u in users if isinstance(u, str)]
        for role, users in approvers.items()
        if isinstance(users, list)
    }


def _by(approve: Mapping[str, Any]) -> list[str]:
    by = approve.get("by")
    return [b for b in by if isinstance(b, str)] if isinstance(by, list) else []


def approval_of(
    workflow: Mapping[str, Any], stage: Mapping[str, Any], seconds: Callable[[Any], float | None]
) -> FrozenMap | None:
    """The plan form of a stage's ``approve`` block (None for other stages): ``by`` as
    written, ``users`` (roles expanded to their members, sorted), ``timeout_s`` and
    ``on_timeout``."""
    approve = stage.get("approve")
    if not isinstance(approve, dict):
        return None
    roles = _roles(workflow)
    users: set[str] = set()
    for name in _by(approve):
        users.update(roles.get(name, [name]))
    on_timeout = approve.get("on_timeout", "reject")
    return FrozenMap({
        "by": _by(approve),
        "users": sorted(users),
        "timeout_s": seconds(approve.get("timeout")),
        "on_timeout": on_timeout if on_timeout in ON_TIMEOUT else "reject",
    })


def check_approval_stage(
    workflow_name: str,
    workflow: Mapping[str, Any],
    stage_name: str,
    stage: Mapping[str, Any],
    path: tuple[Any, ...],
    key_span: SpanOf,
    value_span: SpanOf,
    suggest: Suggest,
) -> list[Diagnostic]:
    """A306 (an approval stage names what runs it), A217 (an approver that the workflow's
    ``approvers`` does not list) and A312 (no ``timeout``)."""
    out: list[Diagnostic] = []
    approve = stage.get("approve")
    if not isinstance(approve, dict):
        return out  # the schema reports it
    for key in ("agent", "requires", "run", "call"):
        if key in stage:
            out.append(error(
                "A306",
                f"approval stage `{stage_name}` has `{key}`: alfred itself waits for the decision",
                key_span((*path, key)),
                "an approval stage runs nothing",
                help=f"remove `{key}`, or move the work to a stage after `{stage_name}`",
            ))
            break
    roles = _roles(workflow)
    members = {user for users in roles.values() for user in users}
    for index, name in enumerate(_by(approve)):
        if name in roles or name in members:
            continue
        where = value_span((*path, "approve", "by", index))
        if not roles:
            out.append(error(
                "A217",
                f"approver `{name}` is not declared: workflow `{workflow_name}` has no `approvers`",
                where,
                "unknown approver",
                help="declare who may approve in the workflow: "
                f'`approvers = {{ {_identifier(name)} = ["USER"] }}`',
            ))
            continue
        hint = suggest(name, [*roles, *members])
        known = ", ".join(f"`{r}`" for r in sorted(roles))
        out.append(error(
            "A217",
            f"unknown approver `{name}`: neither a role of `approvers` nor a user listed there",
            where,
            "unknown approver",
            help=hint or f"known roles: {known}; add `{name}` to a role of `approvers`",
        ))
    if "timeout" not in approve:
        out.append(error(
            "A312",
            f"approval stage `{stage_name}` has no `timeout`: the run could wait forever",
            key_span((*path, "approve")),
            "no `timeout` here",
            help="add `timeout = 24h` (and `on_timeout = reject` or `approve`) to `approve`",
        ))
    return out


def _identifier(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name) else "reviewers"


def _reads(stage: PlanStage, approval: str) -> bool:
    """Whether ``stage``'s ``when`` reads the outputs of stage ``approval``."""
    return isinstance(stage.when, str) and f"stages.{approval}.outputs" in stage.when


def handles_rejection(stage: PlanStage, failed: str) -> bool:
    """A dependent of a rejected approval that still runs: its ``when`` reads the approval's
    outputs (``decision``), so it is evaluated instead of ending ``upstream_failed``."""
    return _reads(stage, failed)


def rejection_warnings(plan: Plan) -> list[Diagnostic]:
    """A505: an approval that stages depend on, whose rejection nothing handles: no stage
    after it has a ``when`` that reads its outputs, or one has but the approval's
    ``on_failure = stop`` stops the run first."""
    out: list[Diagnostic] = []
    for stage in plan.stages:
        if stage.approve is None or stage.span is None:
            continue
        after = [s for s in plan.stages if stage.name in s.after]
        handlers = [s for s in after if _reads(s, stage.name)]
        if not after:  # it gates nothing: a rejection only fails the run
            continue
        if not handlers:
            out.append(warning(
                "A505",
                f"nothing handles a rejection of approval `{stage.name}`",
                stage.span,
                "a rejection fails this stage and every stage after it",
                help=f"add `on_failure = continue` here and a stage with "
                f'`when = stages.{stage.name}.outputs.decision == "rejected"`',
            ))
        elif stage.on_failure == "stop":
            out.append(warning(
                "A505",
                f"a rejection of approval `{stage.name}` stops the run "
                f"before `{handlers[0].name}` can handle it",
                stage.span,
                "`on_failure` is `stop` here",
                help="add `on_failure = continue` to this stage",
                secondary=[Label(handlers[0].span, "reads the decision")] if handlers[0].span else [],
            ))
    return out
