"""Incremental runs: a stage's fingerprint, its products, and whether it is up to date.

A stage that declares ``sources`` or ``produces`` is *incremental*. Its fingerprint is the
SHA-256 of a canonical JSON of what decides its result: its resolved command (argv, or the
shell text and its ``ALFRED_VALUE_n`` values), its ``call``, its resolved inputs, the
workflow's params, the environment its agent and the stage declare (secrets replaced by
their names, so rotating a secret does not re-run anything) and the content hash of every
file its ``sources`` globs match in its folder. Only content counts, never a timestamp.

When the stage succeeds, the fingerprint, the source hashes, the products' hashes and the
outputs are recorded (table ``fingerprints`` of the state database, one row per stage of a
workflow: the last success). Next time, the stage is ``up_to_date`` (not run; its recorded
outputs are handed downstream) when the fingerprint is the same and every recorded product
still has its recorded content.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..compiler._plan import PlanAgent, PlanStage, thaw
from ._resolve import resolve_attempt

__all__ = [
    "Decision", "Fingerprint", "FingerprintRecord", "decide", "fingerprint", "hash_files", "is_incremental",
    "missing_products", "record_from_row",
]

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A stage's fingerprint: the whole (``value``) and its parts, to explain a change."""

    value: str
    config: str                                   # hash of everything but the sources
    sources: Mapping[str, str] = field(default_factory=dict)   # relative path -> sha256


@dataclass(frozen=True, slots=True, kw_only=True)
class FingerprintRecord:
    """What the last successful attempt of a stage left: see the module docstring."""

    fingerprint: str
    config: str
    sources: Mapping[str, str]
    products: Mapping[str, str]
    outputs: Mapping[str, Any]
    run: str
    recorded: float


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a stage runs, and why, as ``plan --explain-skips`` prints it."""

    run: bool
    reason: str


def is_incremental(stage: PlanStage) -> bool:
    return bool(stage.sources or stage.produces)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(cwd: str | os.PathLike[str], patterns: Sequence[str]) -> dict[str, str]:
    """Relative path -> SHA-256 of every regular file the globs match under ``cwd`` (``**``
    spans folders; hidden files match only a pattern that names the dot). Sorted by path."""
    found: dict[str, str] = {}
    root = os.fspath(cwd)
    for pattern in patterns:
        for relative in glob.glob(pattern, root_dir=root, recursive=True):
            path = os.path.join(root, relative)
            key = os.path.normpath(relative)
            if key not in found and os.path.isfile(path):
                try:
                    found[key] = _sha256(path)
                except OSError:  # vanished or unreadable: as if not there
                    continue
    return dict(sorted(found.items()))


def missing_products(cwd: str | os.PathLike[str], patterns: Sequence[str]) -> list[str]:
    """The ``produces`` globs that match no file under ``cwd``."""
    root = os.fspath(cwd)
    return [pattern for pattern in patterns if not hash_files(root, [pattern])]


def _names_for_secrets(value: Any, secrets: Mapping[str, str]) -> Any:
    """``value`` with each secret's value replaced by ``${secrets.NAME}``: by name only."""
    if isinstance(value, str):
        for name, secret in sorted(secrets.items(), key=lambda item: len(item[1]), reverse=True):
            if secret and secret in value:
                value = value.replace(secret, "${secrets." + name + "}")
        return value
    if isinstance(value, Mapping):
        return {k: _names_for_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_names_for_secrets(v, secrets) for v in value]
    return value


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def fingerprint(
    stage: PlanStage,
    agent: PlanAgent,
    scope_base: Mapping[str, Any],
    base_env: Mapping[str, str],
    secrets: Mapping[str, str],
) -> Fingerprint:
    """The fingerprint of ``stage`` as it would run now on ``agent`` (see the module docstring).
    Raises ``ExprError`` when a value cannot be resolved yet."""
    values = resolve_attempt(stage, agent, scope_base, base_env)
    declared = {*agent.env, *stage.env}
    config = {
        "run": list(values.run) if isinstance(values.run, tuple) else values.run,
        "shell_values": dict(values.shell_values),
        "call": values.call,
        "url": values.url,
        "inputs": values.inputs,
        "params": thaw(scope_base.get("params", {})),
        "env": {k: v for k, v in values.env.items() if k in declared},
        "kind": agent.kind,
        "sources": list(stage.sources),
        "produces": list(stage.produces),
    }
    config_hash = _digest(_names_for_secrets(config, secrets))
    sources = hash_files(stage.cwd, stage.sources)
    whole = _digest({"config": config_hash, "sources": sources})
    return Fingerprint(value=whole, config=config_hash, sources=sources)


def _changed(before: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    return sorted(p for p in {*before, *now} if before.get(p) != now.get(p))


def _listed(paths: Sequence[str], most: int = 3) -> str:
    shown = ", ".join(paths[:most])
    return shown + (f" and {len(paths) - most} more" if len(paths) > most else "")


def decide(stage: PlanStage, now: Fingerprint, record: FingerprintRecord | None) -> Decision:
    """Whether an incremental stage must run, given the record of its last success."""
    if record is None:
        return Decision(True, "no earlier successful run")
    if record.config != now.config:
        return Decision(True, "its command, inputs, params or env changed")
    changed = _changed(record.sources, now.sources)
    if changed:
        return Decision(True, f"sources changed ({_listed(changed)})")
    if record.fingerprint != now.value:  # same parts, different whole: an older record format
        return Decision(True, "its fingerprint changed")
    products = hash_files(stage.cwd, list(record.products))
    for path, digest in record.products.items():
        if path not in products:
            return Decision(True, f"product {path} missing")
        if products[path] != digest:
            return Decision(True, f"product {path} changed")
    return Decision(False, f"up to date (fingerprint {now.value[:12]})")


def record_from_row(row: Sequence[Any]) -> FingerprintRecord:
    """A row of the ``fingerprints`` table (fingerprint, config, sources, products, outputs,
    run, recorded) as a record."""
    return FingerprintRecord(
        fingerprint=str(row[0]), config=str(row[1]), sources=json.loads(row[2]), products=json.loads(row[3]),
        outputs=json.loads(row[4]), run=str(row[5]), recorded=float(row[6]),
    )


def explain_skips(plan: Any, store: Any, env: Mapping[str, str]) -> list[tuple[str, Decision]]:
    """For ``plan --explain-skips``: per stage, in declaration order, whether ``alfredc run``
    would run it now and why. ``store``: the state store (read-only) or None. The outputs
    of upstream stages are those of their last success, as an up-to-date run would see them."""
    from ._toolenv import tool_environment

    base_env = tool_environment(env)
    secrets = {n: base_env[n] for n in plan.secrets if n in base_env}
    scope: dict[str, Any] = {"params": thaw(plan.params), "stages": {}, "env": base_env, "secrets": secrets}
    agents = {a.name: a for a in plan.agents}
    out: list[tuple[str, Decision]] = []
    for stage in plan.stages:
        record: FingerprintRecord | None = None
        if store is not None:
            row = store.fingerprint_row(plan.source, plan.workflow, stage.name)
            record = None if row is None else record_from_row(row)
            last = store.last_success(plan.workflow, stage.name)
            if record is not None:
                scope["stages"][stage.name] = {"outputs": dict(record.outputs)}
            elif last is not None:
                scope["stages"][stage.name] = {"outputs": dict(last[1])}
        if not is_incremental(stage):
            out.append((stage.name, Decision(True, "not incremental (no `sources` or `produces`)")))
            continue
        agent = next((agents[a] for a in stage.agents if a in agents), None)
        if agent is None:
            out.append((stage.name, Decision(True, "no agent to run it")))
            continue
        try:
            now = fingerprint(stage, agent, scope, base_env, secrets)
        except Exception as exc:  # an upstream output it needs was never recorded
            out.append((stage.name, Decision(True, f"cannot tell before the run ({exc})")))
            continue
        out.append((stage.name, decide(stage, now, record)))
    return out
