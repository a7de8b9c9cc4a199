"""Run-time values: ``${...}`` templates rendered against params, outputs, inputs, env, secrets.

The plan's strings come parsed (:class:`~alfred_dsl._expr.Interpolated`, made by the
compiler): evaluation is ``_expr.render``, and the runtime never loads the parser.
Secret values are masked (``***``) by :class:`Masker` wherever they would be shown or stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _expr
from .._expr import ExprError, Interpolated, Template
from ..compiler._plan import PlanAgent, PlanStage, interpolated, thaw
from ._mcp import McpValues, resolve_mcp
from ._shell import ShellLine, nul_error, render_shell as render_shell_parts

__all__ = [
    "AttemptValues", "ExprError", "Masker", "ShellLine", "StreamMasker", "check_process_text", "parse",
    "render_shell", "render_value", "render_when", "resolve_attempt",
]


def parse(text: str) -> Template:
    """The template of a plan's string: parsed by the compiler (:class:`Interpolated`), or the
    string's own literal text when it holds no ``${``. A bare string holding ``${`` (given
    to these functions directly, not through a plan) becomes a plan value first."""
    if isinstance(text, Interpolated):
        return text.parsed()
    if "${" not in text:
        return Template(parts=(text,))
    return interpolated(text).parsed()


def render_value(value: Any, scope: Mapping[str, Any], *, quote: Callable[[str], str] | None = None) -> Any:
    """Render every string in ``value`` (recursively through maps and lists)."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        return _expr.render(parse(value), scope, quote=quote)
    if isinstance(value, Mapping):
        return {k: render_value(v, scope, quote=quote) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, scope, quote=quote) for v in value]
    return value


def render_shell(line: str, scope: Mapping[str, Any], *, check: bool = True) -> ShellLine:
    """A shell command line whose interpolated values reach the shell only through
    ``ALFRED_VALUE_n`` environment variables (see :mod:`._shell`)."""
    if "${" not in line:
        return render_shell_parts((line,), scope, check=check)
    return render_shell_parts(parse(line).parts, scope, check=check)


def check_process_text(template: str, rendered: str, scope: Mapping[str, Any]) -> str:
    """``rendered`` (an argv word or an environment value), or :class:`ExprError` naming the
    value that brought a NUL byte, which no process can receive."""
    if "\x00" not in rendered:
        return rendered
    for part in parse(template).parts:
        if not isinstance(part, str) and "\x00" in _expr.to_text(_expr.evaluate(part, scope)):
            raise nul_error(part)
    raise ExprError(f"{template!r} contains a NUL byte, which no process can receive")


def render_when(when: bool | str, scope: Mapping[str, Any]) -> bool:
    """The value of a stage's ``when``; :class:`ExprError` if it is not a boolean."""
    if isinstance(when, bool):
        return when
    value = render_value(when, scope)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    raise ExprError(f"`when` must be a boolean, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptValues:
    """What one attempt of a stage runs, every ``${...}`` resolved (see :func:`resolve_attempt`)."""

    inputs: dict[str, Any]
    run: str | tuple[str, ...] | None           # str: a shell line; tuple: argv
    shell_values: Mapping[str, str] = field(default_factory=dict)
    #: The full environment of a command; ``base_env`` itself when neither agent nor stage set one.
    env: Mapping[str, str] = field(default_factory=dict)
    call: str | None = None
    url: str | None = None
    mcp: McpValues | None = None


def resolve_attempt(
    stage: PlanStage,
    agent: PlanAgent,
    scope_base: Mapping[str, Any],
    base_env: Mapping[str, str],
    *,
    static_argv: tuple[str, ...] | None = None,
) -> AttemptValues:
    """The values of one attempt of ``stage`` on ``agent`` against ``scope_base`` (params,
    stages, env, secrets); :class:`ExprError` when one cannot be rendered.

    Shared by the runtime and the exported modules' run-time shim, so that a stage gets the
    same argv, shell line, environment and inputs on every engine. ``static_argv`` is the
    caller's cache of an argv without ``${...}`` (returned as it is, not scanned again).
    """
    scope = dict(scope_base)
    inputs = render_value(thaw(stage.inputs), scope) if stage.inputs else {}
    scope["inputs"] = inputs
    run = stage.run if stage.run is not None else agent.run
    resolved_run: str | tuple[str, ...] | None
    shell_values: Mapping[str, str] = {}
    if run is not None and run is static_argv:
        resolved_run = run
    elif isinstance(run, str):
        line = render_shell(run, scope)
        resolved_run, shell_values = line.text, line.values
    elif run is not None:
        if any("${" in part for part in run):
            resolved_run = tuple(
                check_process_text(part, _expr.to_text(render_value(part, scope)), scope) for part in run
            )
        else:
            resolved_run = tuple(run)
    else:
        resolved_run = None
    env: Mapping[str, str] = {}
    if agent.env or stage.env:
        own = dict(base_env)
        for source in (agent.env, stage.env):
            for key, value in source.items():
                own[key] = check_process_text(value, _expr.to_text(render_value(value, scope)), scope)
        env = own
    elif agent.kind == "command":
        env = base_env  # shared, read-only: the command executor encodes it once
    url = agent.url
    return AttemptValues(
        inputs=inputs,
        run=resolved_run,
        shell_values=shell_values,
        env=env,
        call=stage.call or agent.call,
        url=_expr.to_text(render_value(url, scope)) if url else None,
        mcp=resolve_mcp(stage, agent, lambda value: render_value(value, scope)),
    )


class Masker:
    """Replaces secret values by ``***`` in text and in JSON-like data."""

    __slots__ = ("_secrets",)

    def __init__(self, secret_values: Mapping[str, str] | None = None) -> None:
        values = {v for v in (secret_values or {}).values() if isinstance(v, str) and v}
        # Longest first, so a secret containing another is masked whole.
        self._secrets = tuple(sorted(values, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self._secrets)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values masked, longest first."""
        return self._secrets

    def text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def data(self, value: Any) -> Any:
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value

    def stream(self) -> StreamMasker:
        """A masker for one stream of bytes (a log written as it is read)."""
        return StreamMasker(self._secrets)

    def file(self, path: Any) -> None:
        """Mask a small file in place (a no-op without secrets or without the file).

        Only for files of bounded size (inputs and outputs files); logs are masked as they
        are written (:class:`StreamMasker`), never read whole.
        """
        if not self._secrets:
            return
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError:
            return
        masked = raw
        for secret in self._secrets:
            masked = masked.replace(secret.encode("utf-8", "surrogateescape"), b"***")
        if masked != raw:
            with open(path, "wb") as handle:
                handle.write(masked)


class StreamMasker:
    """Masks secret values in a byte stream that arrives in chunks of any size.

    :meth:`feed` returns what can be written now; it holds back the last
    ``len(longest secret) - 1`` bytes (the carry-over), since a secret may continue in the
    next chunk, and :meth:`flush` returns them at the end. A secret split across two reads
    is therefore masked whole; memory stays one chunk plus the carry-over.
    """

    __slots__ = ("_carry", "_hold", "_pattern")

    def __init__(self, secrets: tuple[str, ...]) -> None:
        encoded = sorted({s.encode("utf-8", "surrogateescape") for s in secrets if s}, key=len, reverse=True)
        # Longest first: at one position the longest secret wins, as in Masker.text.
        self._pattern = re.compile(b"|".join(re.escape(s) for s in encoded)) if encoded else None
        self._hold = max((len(s) for s in encoded), default=1) - 1
        self._carry = b""

    def feed(self, data: bytes) -> bytes:
        if self._pattern is None:
            return data
        buffer = self._carry + data if self._carry else data
        # A match starting before `limit` lies wholly in `buffer`; later ones may go on.
        limit = len(buffer) - self._hold
        out: list[bytes] = []
        position = 0
        for match in self._pattern.finditer(buffer):
            if match.start() >= limit:
                break
            out.append(buffer[position : match.start()])
            out.append(b"***")
            position = match.end()
        cut = max(position, limit)
        out.append(buffer[position:cut])
        self._carry = buffer[cut:]
        return b"".join(out)

    def flush(self) -> bytes:
        """The bytes held back, masked (the stream has ended)."""
        rest, self._carry = self._carry, b""
        if self._pattern is None or not rest:
            return rest
        return self._pattern.sub(b"***", rest)
