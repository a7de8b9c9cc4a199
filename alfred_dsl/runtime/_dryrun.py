"""``alfredc run --dry-run``: what would run, in which order, with which command, running nothing.

Each stage's command is resolved exactly as the runtime would resolve it (a shell line
reads each interpolated value from an ``ALFRED_VALUE_n`` variable, shown with its value;
argv parts are the values), except for what
only exists at run time: a stage output reads ``<stages.X.outputs.K>``, a ``for_each``
stage's item ``<each.item>`` and a secret reads ``***`` (its value is never looked up, let alone shown).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from .._expr import ExprError, references, to_text, unparse, unparse_template
from ..compiler._plan import Plan, PlanAgent, PlanStage, thaw
from ._resolve import ShellLine, parse, render_shell, render_value, render_when

__all__ = ["DryRunStage", "dry_run", "dry_run_json", "dry_run_stages", "dry_run_text"]

#: The variables every command stage gets from the runtime (spec section 6).
RUNTIME_ENV = ("ALFRED_RUN_ID", "ALFRED_STAGE", "ALFRED_ATTEMPT", "ALFRED_INPUTS", "ALFRED_OUTPUTS")


class _Placeholders(Mapping[str, Any]):
    """Has every key; each value is a readable stand-in for what the run will know."""

    __slots__ = ("_leaf", "_names", "_prefix")

    def __init__(self, prefix: str, *, leaf: bool, names: frozenset[str] | None = None) -> None:
        self._prefix = prefix
        self._leaf = leaf  # True: values are text; False: values are nested placeholders
        self._names = names  # the keys that exist (None: every key)

    def __getitem__(self, key: str) -> Any:
        if self._leaf:
            return f"<{self._prefix}.{key}>" if self._prefix != "secrets" else "***"
        return {"outputs": _Placeholders(f"stages.{key}.outputs", leaf=True)}

    def __contains__(self, key: object) -> bool:
        # Stage names must be exact: `lookup` tries `a.outputs` before `a` for dotted names.
        return isinstance(key, str) and (self._names is None or key in self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DryRunStage:
    name: str
    layer: int
    agent: str                              # the agent, or "any of a, b" for `requires`
    kind: str
    command: str                            # the shell line, argv joined with quoting, or module:function
    values: Mapping[str, str]               # the ALFRED_VALUE_n variables a shell line reads
    inputs: Mapping[str, Any]
    env_keys: tuple[str, ...]
    cwd: str
    after: tuple[str, ...]
    timeout_s: float | None
    retries: int
    backoff_s: float
    #: "always", "true", "false", or the expression when it depends on what only the run knows
    when: str
    error: str | None = None                # a value that cannot be resolved even now


def _agent_of(plan: Plan, stage: PlanStage) -> PlanAgent | None:
    for name in stage.agents:
        try:
            return plan.agent(name)
        except KeyError:
            continue
    return None


def _command(stage: PlanStage, agent: PlanAgent | None, scope: Mapping[str, Any]) -> str | ShellLine:
    run = stage.run if stage.run is not None else (agent.run if agent else None)
    if isinstance(run, str):
        return render_shell(run, scope, check=False)  # the text that runs, and its values
    if run is not None:
        return shlex.join(to_text(render_value(part, scope)) for part in run)
    call = stage.call or (agent.call if agent else None)
    if call:
        return f"call {call}(inputs)"
    if agent is not None and agent.url:
        return f"POST {to_text(render_value(agent.url, scope))} (inputs as JSON)"
    return "(nothing to run)"


#: Roots whose values only the run knows: a `when` that reads one is decided then.
_RUN_TIME_ROOTS = frozenset({"stages", "secrets"})


def _when(stage: PlanStage, scope: Mapping[str, Any]) -> str:
    if stage.when is True:
        return "always"
    if isinstance(stage.when, str):
        try:
            template = parse(stage.when)
        except ExprError:
            return stage.when
        if any(ref.root in _RUN_TIME_ROOTS for ref in references(template)):
            # A placeholder compared with a value would read `false`: show the expression.
            single = template.single
            return unparse(single) if single is not None else unparse_template(template)
    try:
        return "true" if render_when(stage.when, scope) else "false"
    except ExprError:
        return str(stage.when)


def dry_run_stages(plan: Plan, *, env: Mapping[str, str] | None = None) -> list[DryRunStage]:
    """Every stage of ``plan``, layer by layer, with its command resolved as far as possible."""
    environ = dict(os.environ if env is None else env)
    scope: dict[str, Any] = {
        "params": thaw(plan.params),
        "stages": _Placeholders("stages", leaf=False, names=frozenset(s.name for s in plan.stages)),
        "env": environ,
        "secrets": _Placeholders("secrets", leaf=True),
        "each": _Placeholders("each", leaf=True),  # a for_each stage's item: known at run time
    }
    layers = plan.layers or tuple((s.name,) for s in plan.stages)
    result: list[DryRunStage] = []
    for layer_index, layer in enumerate(layers):
        for name in layer:
            stage = plan.stage(name)
            agent = _agent_of(plan, stage)
            error: str | None = None
            inputs: Mapping[str, Any] = {}
            command = ""
            values: Mapping[str, str] = {}
            try:
                inputs = render_value(thaw(stage.inputs), scope)
                resolved = _command(stage, agent, {**scope, "inputs": inputs})
                if isinstance(resolved, ShellLine):
                    command, values = resolved.text, resolved.values
                else:
                    command = resolved
            except ExprError as exc:
                error = str(exc)
            runtime_env = RUNTIME_ENV if stage.kind == "command" else ()
            env_keys = tuple(dict.fromkeys([*(agent.env if agent else {}), *stage.env, *runtime_env]))
            result.append(
                DryRunStage(
                    name=name,
                    layer=layer_index,
                    agent=stage.agents[0] if len(stage.agents) == 1 else "any of " + ", ".join(stage.agents),
                    kind=stage.kind,
                    command=command,
                    values=values,
                    inputs=inputs,
                    env_keys=env_keys,
                    cwd=stage.cwd,
                    after=stage.after,
                    timeout_s=stage.timeout_s,
                    retries=stage.retries,
                    backoff_s=stage.backoff_s,
                    when=_when(stage, scope),
                    error=error,
                )
            )
    return result


def _seconds(value: float | None) -> str:
    """A duration as the file writes it: ``2m``, ``1h30m``, ``1.5s`` (not ``120s``)."""
    if value is None:
        return "none"
    from .._values import duration_text

    return duration_text(value)


def dry_run_text(
    plan: Plan,
    *,
    env: Mapping[str, str] | None = None,
    max_concurrency: int | None = None,
    colour: bool = False,
) -> str:
    """The human form: one block per layer, one indented block per stage."""
    stages = dry_run_stages(plan, env=env)

    def bold(text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if colour else text

    at_once = f", at most {max_concurrency} at once" if max_concurrency else ""
    lines = [f"dry run of workflow {plan.workflow} ({len(stages)} stages{at_once}): nothing is executed"]
    current = -1
    for item in stages:
        if item.layer != current:
            current = item.layer
            lines.append("")
            lines.append(bold(f"layer {current}:"))
        lines.append(f"  {bold(item.name)}")
        lines.append(f"    agent    {item.agent} ({item.kind})")
        lines.append(f"    command  {item.command}" if item.error is None else f"    error    {item.error}")
        if item.values:
            shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in item.values.items())
            lines.append(f"    values   {shown}")
        if item.after:
            lines.append(f"    after    {', '.join(item.after)}")
        if item.inputs:
            shown = ", ".join(f"{k}={to_text(v)}" for k, v in item.inputs.items())
            lines.append(f"    inputs   {shown}")
        if item.env_keys:
            lines.append(f"    env      {' '.join(item.env_keys)}")
        lines.append(f"    cwd      {item.cwd}")
        retry = "no retries"
        if item.retries:
            retry = f"{item.retries} retries, backoff {_seconds(item.backoff_s)}"
        lines.append(f"    timeout  {_seconds(item.timeout_s)}, {retry}")
        if item.when in ("true", "false"):
            lines.append(f"    when     {item.when}")
        elif item.when != "always":
            lines.append(f"    when     decided at run time: {item.when}")
    return "\n".join(lines) + "\n"


def dry_run(
    plan: Plan,
    *,
    max_concurrency: int | None = None,
    colour: bool = False,
    stream: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """``alfredc run --dry-run``: write :func:`dry_run_text` to ``stream`` (default stdout).

    Returns the exit status: 0, or 1 when a stage's command cannot be resolved even
    before the run (an ``env.X`` that is not set, an ill-typed expression).
    """
    out = stream if stream is not None else sys.stdout
    out.write(dry_run_text(plan, env=env, max_concurrency=max_concurrency, colour=colour))
    out.flush()
    return 1 if any(s.error for s in dry_run_stages(plan, env=env)) else 0


def dry_run_json(plan: Plan, *, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The machine form: ``{"workflow", "layers", "stages": [...]}``."""
    stages = dry_run_stages(plan, env=env)
    return {
        "workflow": plan.workflow,
        "layers": [list(layer) for layer in plan.layers] or [[s.name] for s in stages],
        "stages": [
            {
                "name": s.name,
                "layer": s.layer,
                "agent": s.agent,
                "kind": s.kind,
                "command": s.command,
                "values": dict(s.values),
                "inputs": thaw(s.inputs),
                "env": list(s.env_keys),
                "cwd": s.cwd,
                "after": list(s.after),
                "timeout_s": s.timeout_s,
                "retries": s.retries,
                "backoff_s": s.backoff_s,
                "when": s.when,
                "error": s.error,
            }
            for s in stages
        ],
    }
