"""Executors: how one attempt of a stage runs (``command``, ``python``, ``http``).

Each executor implements the :class:`Executor` protocol, one async method, so that new
back ends (Dask, Kubernetes, ...) plug in with :func:`register_executor`. An executor
never raises for a failure of the stage: it returns an :class:`AttemptOutcome`. Timeouts
and cancellation arrive as Trio cancellation; an executor cleans up (kills its process
group) and lets ``Cancelled`` propagate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
import json
import math
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import trio

from ..compiler._plan import PlanAgent, PlanStage
from ._capture import AttemptLog, capture_output
from ._mcp import McpExecutor, McpValues
from ._process import SpawnError, child_bytes, child_env, run_in_group, signal_name
from ._resolve import Masker

__all__ = [
    "EXECUTORS",
    "AttemptContext",
    "AttemptOutcome",
    "CommandExecutor",
    "Executor",
    "HttpExecutor",
    "OutputsFileError",
    "PythonExecutor",
    "append_log",
    "read_outputs_file",
    "register_executor",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptContext:
    """Everything one attempt needs, with every ``${...}`` already resolved."""

    run_id: str
    stage: PlanStage
    agent: PlanAgent
    attempt: int                                # 1-based
    inputs: Mapping[str, Any]
    run: str | tuple[str, ...] | None = None    # str: a shell line; tuple: argv
    #: The ``ALFRED_VALUE_n`` variables the shell line's references read (values never in its text).
    shell_values: Mapping[str, str] = field(default_factory=dict)
    call: str | None = None
    url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # full environment of a command stage
    cwd: Path
    log_path: Path
    work_dir: Path                              # where the attempt's inputs/outputs files go
    #: ``work_dir`` was created empty by this run (False: it may hold files of unrecorded attempts).
    fresh_work_dir: bool = False
    timeout_s: float | None = None
    kill_grace_s: float = 5.0
    kill_now: trio.Event | None = None
    on_spawn: Callable[[int], None] | None = None
    masker: Masker = field(default_factory=Masker)
    #: A folder only this user can read, outside the state directory (the run has secrets):
    #: where ``$ALFRED_INPUTS`` and ``$ALFRED_OUTPUTS`` live while the attempt runs.
    private_dir: Path | None = None
    #: Gets the number of bytes dropped when the log reached the stage's ``max_log``.
    on_log_truncated: Callable[[int], None] | None = None
    #: The attempt's cgroup v2 directory (cgroup containment, command stages), or None.
    cgroup: str | None = None
    #: An mcp stage's tool, arguments and headers, resolved (runtime/_mcp.py).
    mcp: McpValues | None = None
    #: The file of the stage's ``docs`` (runtime/_docs.py): ``$ALFRED_DOCS``, or None.
    docs_path: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptOutcome:
    """How an attempt ended: its success, outputs, exit code, error and log."""

    ok: bool
    outputs: Mapping[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    error: str | None = None
    log_path: str | None = None
    #: Why another attempt cannot do better (the stage then fails without its retries).
    permanent: str | None = None
    #: The address of the cluster worker that ran it (``--cluster``), else None.
    worker: str | None = None


class Executor(Protocol):
    async def run(self, ctx: AttemptContext) -> AttemptOutcome:
        """Run one attempt; return its outcome (never raise for a failure of the stage)."""
        ...


class OutputsFileError(ValueError):
    """``$ALFRED_OUTPUTS`` holds a line that is neither ``key=value`` nor ``key<<DELIMITER``."""


def read_outputs_file(path: Path | str, *, private: bool = False) -> dict[str, str]:
    """The outputs a command wrote: ``key=value`` lines and GitHub-style blocks
    (``key<<DELIM``, the value's lines, then a line ``DELIM``). Blank lines are ignored and
    later keys win; a missing file is no outputs. Anything else raises
    :class:`OutputsFileError` naming the line: a value is never silently dropped.
    ``private``: make the file readable by its owner only (the command created it with its
    umask's mode), on the open descriptor: one system call less than a ``chmod`` by name.
    """
    try:
        fd = _open_outputs(path, private)
        with open(fd, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise OutputsFileError(f"cannot read $ALFRED_OUTPUTS: {exc.strerror or exc}") from exc
    outputs: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        number = index + 1
        index += 1
        if not line.strip():
            continue
        # As GitHub Actions reads it: whichever of `=` and `<<` comes first decides.
        equals, heredoc = line.find("="), line.find("<<")
        if equals >= 0 and (heredoc < 0 or equals < heredoc):
            key, value = line[:equals].strip(), line[equals + 1:]
        elif heredoc >= 0:
            key, delimiter = line[:heredoc].strip(), line[heredoc + 2:]
            if not delimiter.strip():
                raise OutputsFileError(
                    f"$ALFRED_OUTPUTS line {number}: `{_shorten(line)}` has no delimiter after `<<`"
                )
            try:
                end = lines.index(delimiter, index)
            except ValueError:
                raise OutputsFileError(
                    f"$ALFRED_OUTPUTS line {number}: `{_shorten(line)}` is never closed by a line "
                    f"`{_shorten(delimiter)}`"
                ) from None
            value = "\n".join(lines[index:end])
            index = end + 1
        else:
            raise OutputsFileError(
                f"$ALFRED_OUTPUTS line {number}: `{_shorten(line)}` is neither `key=value` "
                "nor `key<<DELIMITER`"
            )
        if not key:
            raise OutputsFileError(f"$ALFRED_OUTPUTS line {number}: `{_shorten(line)}` has no key")
        outputs[key] = value
    return outputs


def _open_outputs(path: Path | str, private: bool) -> int:
    flags = os.O_RDONLY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except PermissionError:
        if not private:
            raise
        os.chmod(path, 0o600)  # created unreadable (umask 0777): its owner may read it now
        return os.open(path, flags)
    if private:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)
    return fd


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_status(status: int, shell: bool) -> str:
    if status < 0:
        return f"killed by {signal_name(-status)}"
    if shell and status == 127:
        return "exit status 127 (command not found)"
    if shell and status == 126:
        return "exit status 126 (command not executable)"
    return f"exit status {status}"


#: Put before a shell line that runs in a cgroup: the shell writes its pid to the cgroup's
#: cgroup.procs (the path comes in the environment, never in the text), then forgets it.
_ENTER_CGROUP = '{ echo $$ >"$ALFRED_CGROUP_PROCS"; } 2>/dev/null; unset ALFRED_CGROUP_PROCS; '


class CommandExecutor:
    """A process: argv without a shell, or a string under ``/bin/sh -c``; its own process group."""

    def __init__(self) -> None:
        # The environment of most stages is the run's base environment, the same object
        # every time: encode it once (Popen would encode ~100 strings per process).
        self._encoded_for: Mapping[str, str] | None = None
        self._encoded: dict[bytes, bytes] = {}
        self._empty_inputs_written: set[str] = set()

    def _encode_env(self, env: Mapping[str, str]) -> dict[bytes, bytes]:
        if env is self._encoded_for:
            return self._encoded
        encoded = child_env(env)
        self._encoded_for, self._encoded = env, encoded
        return encoded

    async def run(self, ctx: AttemptContext) -> AttemptOutcome:
        if ctx.run is None:
            return AttemptOutcome(ok=False, error="nothing to run: the stage and its agent have no `run`")
        shell = isinstance(ctx.run, str)
        argv: list[str] = ["/bin/sh", "-c", ctx.run] if isinstance(ctx.run, str) else list(ctx.run)
        if shell and ctx.cgroup is not None:
            # The shell enters the attempt's cgroup before it runs a word of the line (and on
            # the same line, so the line's numbers in its error messages stay): nothing it
            # starts can be forked outside, which a move by the parent after the spawn allows.
            argv[2] = _ENTER_CGROUP + argv[2]
        if not argv or not argv[0]:
            return AttemptOutcome(ok=False, error="empty command")
        work_dir = str(ctx.work_dir)
        stem = f"{work_dir}{os.sep}{ctx.stage.name}.{ctx.attempt}"
        if ctx.private_dir is not None:
            return await self._run_private(ctx, argv, shell, stem, ctx.private_dir)
        outputs_path = f"{stem}.outputs"
        inputs_text: str | None = None
        if ctx.inputs:
            inputs_path = f"{stem}.inputs.json"
            inputs_text = json.dumps(dict(ctx.inputs), default=str)
        else:
            # Stages without inputs share one `{}` file: a file creation less per process.
            inputs_path = f"{work_dir}{os.sep}no.inputs.json"
            if inputs_path not in self._empty_inputs_written:
                inputs_text = "{}"
                self._empty_inputs_written.add(inputs_path)

        stale_outputs = not ctx.fresh_work_dir

        def prepare() -> None:  # runs in the spawning thread: file I/O off the event loop
            try:
                if inputs_text is not None:
                    _write_private(inputs_path, inputs_text)
                if stale_outputs:  # left by an attempt of this number that was not recorded
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(outputs_path)
            except OSError as exc:
                if not ctx.inputs:
                    self._empty_inputs_written.discard(inputs_path)
                raise SpawnError(f"cannot write {exc.filename}: {exc.strerror}") from exc

        return await self._spawn(ctx, argv, shell, prepare, inputs_path, outputs_path)

    async def _run_private(
        self, ctx: AttemptContext, argv: list[str], shell: bool, stem: str, private_dir: Path
    ) -> AttemptOutcome:
        """The run has secrets: the command's inputs and outputs files live in ``private_dir``
        and are removed when the attempt ends; the state directory gets masked copies."""
        private_stem = f"{private_dir}{os.sep}{ctx.stage.name}.{ctx.attempt}"
        inputs_path, outputs_path = f"{private_stem}.inputs.json", f"{private_stem}.outputs"
        kept_inputs, kept_outputs = f"{stem}.inputs.json", f"{stem}.outputs"
        inputs = dict(ctx.inputs)
        inputs_text = json.dumps(inputs, default=str)
        masked_text = json.dumps(ctx.masker.data(inputs), default=str)
        stale_outputs = not ctx.fresh_work_dir

        def prepare() -> None:
            try:
                _write_private(inputs_path, inputs_text)
                _write_private(kept_inputs, masked_text)
                if stale_outputs:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(kept_outputs)
            except OSError as exc:
                raise SpawnError(f"cannot write {exc.filename}: {exc.strerror}") from exc

        try:
            outcome = await self._spawn(ctx, argv, shell, prepare, inputs_path, outputs_path)
        finally:
            # Also when cancelled: the real values leave no file behind.
            with contextlib.suppress(OSError):
                os.unlink(inputs_path)
            _keep_masked(outputs_path, kept_outputs, ctx.masker)
        return outcome

    async def _spawn(
        self,
        ctx: AttemptContext,
        argv: list[str],
        shell: bool,
        prepare: Callable[[], None],
        inputs_path: str,
        outputs_path: str,
    ) -> AttemptOutcome:
        env = dict(self._encode_env(ctx.env))
        env[b"ALFRED_RUN_ID"] = child_bytes(ctx.run_id)
        env[b"ALFRED_STAGE"] = child_bytes(ctx.stage.name)
        env[b"ALFRED_ATTEMPT"] = str(ctx.attempt).encode()
        env[b"ALFRED_INPUTS"] = child_bytes(inputs_path)
        env[b"ALFRED_OUTPUTS"] = child_bytes(outputs_path)
        if ctx.docs_path is not None:
            env[b"ALFRED_DOCS"] = child_bytes(ctx.docs_path)
        env.update(child_env(ctx.shell_values))
        if shell and ctx.cgroup is not None:
            env[b"ALFRED_CGROUP_PROCS"] = child_bytes(f"{ctx.cgroup}/cgroup.procs")
        log = str(ctx.log_path)
        private = ctx.private_dir is not None
        try:
            status = await run_in_group(
                argv,
                cwd=ctx.cwd,
                env=env,
                log_path=log,
                kill_grace_s=ctx.kill_grace_s,
                kill_now=ctx.kill_now,
                on_spawn=ctx.on_spawn,
                before_spawn=prepare,
                mask=ctx.masker.stream() if ctx.masker else None,
                max_log=ctx.stage.max_log,
                on_log_truncated=ctx.on_log_truncated,
                cgroup=ctx.cgroup,
                child_moves_itself=shell,
                marker=(ctx.run_id, ctx.stage.name, ctx.attempt),
            )
        except SpawnError as exc:
            return AttemptOutcome(ok=False, error=str(exc), log_path=append_log(ctx, f"alfred: {exc}\n"))
        except BaseException:  # cancelled: what the attempt wrote is not read
            if not private:
                _restrict(outputs_path)
                ctx.masker.file(outputs_path)
            raise
        finally:
            if not private and ctx.masker and ctx.inputs:
                ctx.masker.file(inputs_path)
        if status != 0:
            if not private:
                _restrict(outputs_path)
                ctx.masker.file(outputs_path)
            error = _describe_status(status, shell)
            return AttemptOutcome(ok=False, exit_code=status, error=error, log_path=log)
        try:
            outputs = read_outputs_file(outputs_path, private=not private)
        except OutputsFileError as exc:
            if not private:
                ctx.masker.file(outputs_path)
            return AttemptOutcome(
                ok=False, exit_code=0, error=str(exc), log_path=append_log(ctx, f"alfred: {exc}\n")
            )
        if not private:
            # The real values go on to later stages; the file in the state directory keeps none.
            ctx.masker.file(outputs_path)
        return AttemptOutcome(ok=True, exit_code=0, outputs=outputs, log_path=log)


def _restrict(path: str) -> None:
    """The outputs file of an attempt readable by its owner only (the command created it
    with its umask's mode)."""
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)


def _write_private(path: str, text: str) -> None:
    """Write ``path`` readable by this user only, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with open(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _keep_masked(private_path: str, kept_path: str, masker: Masker) -> None:
    """Move the outputs file of an attempt out of the private folder, secrets masked."""
    try:
        with open(private_path, "rb") as handle:
            raw = handle.read()
    except OSError:
        return
    with contextlib.suppress(OSError):
        os.unlink(private_path)
    masked = masker.text(raw.decode("utf-8", errors="surrogateescape"))
    with contextlib.suppress(OSError, UnicodeEncodeError):
        fd = os.open(kept_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as out:
            out.write(masked.encode("utf-8", errors="surrogateescape"))


def append_log(ctx: AttemptContext, text: str) -> str | None:
    """Append ``text``, masked, to the attempt's log; its path, or None when it cannot be written."""
    try:
        fd = os.open(ctx.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        with open(fd, "a", encoding="utf-8") as handle:
            handle.write(ctx.masker.text(text))
    except OSError:
        return None
    return str(ctx.log_path)


class _ImportFailure(Exception):
    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        #: False when the module's own code raised while importing: that may be transient.
        self.permanent = permanent


def _prefer_folder(module_name: str, cwd: Path) -> None:
    """Put ``cwd`` first on ``sys.path``; forget a same-named module imported from elsewhere.

    A worker runs workflows of several projects in one process: without this, the first
    project's ``agents`` module would answer every other project's ``agents:...`` call.
    """
    folder = str(cwd)
    if sys.path[:1] != [folder]:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
        sys.path.insert(0, folder)
    top = module_name.partition(".")[0]
    loaded = sys.modules.get(top)
    if loaded is None or (not (cwd / top).is_dir() and not (cwd / f"{top}.py").is_file()):
        return
    origin = getattr(loaded, "__file__", None)
    if origin is not None and Path(origin).resolve().is_relative_to(cwd.resolve()):
        return
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]  # callables already resolved keep their own module alive
    importlib.invalidate_caches()


class PythonExecutor:
    """``module:function``: a plain function runs in a worker thread, an ``async def`` on Trio.

    It gets the stage's inputs dict and returns its outputs dict (or None). The stage's
    ``cwd`` is put on ``sys.path`` so project modules import.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[Callable[[dict[str, Any]], Any], bool]] = {}

    def resolve(self, call: str, cwd: Path) -> tuple[Callable[[dict[str, Any]], Any], bool]:
        """The callable of ``call`` and whether it is an ``async def``."""
        key = (call, str(cwd))
        found = self._cache.get(key)
        if found is not None:
            return found
        module_name, sep, attribute = call.partition(":")
        if not sep or not module_name or not attribute:
            raise _ImportFailure(f"invalid call `{call}`: expected `module:function`")
        _prefer_folder(module_name, cwd)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or module_name
            raise _ImportFailure(f"cannot import `{call}`: no module named `{missing}`") from exc
        except (ImportError, SyntaxError) as exc:  # the module is broken: report, do not crash
            raise _ImportFailure(f"cannot import `{call}`: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # its top-level code raised (a network call?): may pass
            raise _ImportFailure(
                f"cannot import `{call}`: {type(exc).__name__}: {exc}", permanent=False
            ) from exc
        target: Any = module
        for part in attribute.split("."):
            if not hasattr(target, part):
                raise _ImportFailure(
                    f"cannot import `{call}`: module `{module_name}` has no attribute `{part}`"
                )
            target = getattr(target, part)
        if not callable(target):
            raise _ImportFailure(f"cannot import `{call}`: `{attribute}` is not callable")
        function: Callable[[dict[str, Any]], Any] = target
        resolved = (function, inspect.iscoroutinefunction(function))
        self._cache[key] = resolved
        return resolved

    async def run(self, ctx: AttemptContext) -> AttemptOutcome:
        if not ctx.call:
            return AttemptOutcome(ok=False, error="nothing to call: the stage and its agent have no `call`")
        # print() and logging of the module (at import too) and of the call: the attempt's log.
        output = AttemptLog(ctx.log_path, ctx.masker)
        try:
            with capture_output(output):
                outcome = await self._call(ctx, ctx.call)
        finally:
            output.close()
        if outcome.log_path is None and output.written:
            return dataclasses.replace(outcome, log_path=str(ctx.log_path))
        return outcome

    async def _call(self, ctx: AttemptContext, call: str) -> AttemptOutcome:
        try:
            function, is_async = self.resolve(call, ctx.cwd)
        except _ImportFailure as exc:
            return AttemptOutcome(
                ok=False, error=str(exc), log_path=append_log(ctx, f"alfred: {exc}\n"),
                permanent="retrying cannot make it importable" if exc.permanent else None,
            )
        inputs = dict(ctx.inputs)
        if ctx.docs_path is not None:
            inputs.setdefault("ALFRED_DOCS", ctx.docs_path)
        try:
            if is_async:
                result = await function(inputs)
            else:
                result = await trio.to_thread.run_sync(
                    function, inputs, abandon_on_cancel=True, limiter=_unlimited_threads()
                )
                if inspect.isawaitable(result):  # a sync wrapper that returned a coroutine
                    result = await _await(result)
        except trio.Cancelled:
            raise
        except Exception as exc:
            log = append_log(ctx, "".join(traceback.format_exception(exc)))
            return AttemptOutcome(ok=False, error=f"{type(exc).__name__}: {exc}", log_path=log)
        if result is None:
            return AttemptOutcome(ok=True)
        if not isinstance(result, Mapping):
            return AttemptOutcome(
                ok=False, error=f"`{call}` returned {type(result).__name__}, expected a dict of outputs"
            )
        return AttemptOutcome(ok=True, outputs={str(k): v for k, v in result.items()})


_THREADS: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("alfred_python_threads")


def _unlimited_threads() -> trio.CapacityLimiter:
    """Threads for plain python stages: the scheduler already enforces the run's and each
    agent's concurrency; Trio's default limiter (40) would silently cap it lower."""
    try:
        return _THREADS.get()
    except LookupError:
        limiter = trio.CapacityLimiter(math.inf)
        _THREADS.set(limiter)
        return limiter


async def _await(value: Awaitable[Any]) -> Any:
    return await value


class HttpExecutor:
    """POST the inputs as JSON to the agent's ``url``; a JSON object back becomes the outputs.

    A non-2xx status, an unreachable server or a body that is not a JSON object is a
    failed attempt. ``headers`` (a map) in the agent block are sent too. The request
    runs in a worker thread (urllib).
    """

    async def run(self, ctx: AttemptContext) -> AttemptOutcome:
        url = ctx.url
        if not url:
            return AttemptOutcome(ok=False, error="the http agent has no `url`")
        if not url.startswith(("http://", "https://")):
            return AttemptOutcome(ok=False, error=f"unsupported URL {url!r}: expected http:// or https://")
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-Alfred-Run-Id": ctx.run_id,
            "X-Alfred-Stage": ctx.stage.name,
            "X-Alfred-Attempt": str(ctx.attempt),
        }
        extra = ctx.agent.options.get("headers")
        if isinstance(extra, Mapping):
            headers.update({str(k): str(v) for k, v in extra.items()})
        body = json.dumps(dict(ctx.inputs), default=str).encode()
        import urllib.error  # here, not at the top: ~15 ms of imports that only http stages need
        import urllib.request

        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        timeout = ctx.timeout_s if ctx.timeout_s else 300.0

        def send() -> tuple[int, str, bytes]:
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return int(response.status), str(response.reason), response.read()
            except urllib.error.HTTPError as exc:
                return exc.code, str(exc.reason), exc.read() if exc.fp is not None else b""

        try:
            status, reason, payload = await trio.to_thread.run_sync(send, abandon_on_cancel=True)
        except urllib.error.URLError as exc:
            error = ctx.masker.text(f"cannot reach {url}: {exc.reason}")
            return AttemptOutcome(ok=False, error=error, log_path=append_log(ctx, f"alfred: {error}\n"))
        except (OSError, ValueError) as exc:
            error = ctx.masker.text(f"request to {url} failed: {exc}")
            return AttemptOutcome(ok=False, error=error, log_path=append_log(ctx, f"alfred: {error}\n"))
        text = payload.decode("utf-8", errors="replace")
        log = append_log(ctx, f"POST {url}\nHTTP {status} {reason}\n{text}\n")
        if not 200 <= status < 300:
            return AttemptOutcome(ok=False, exit_code=status, error=f"HTTP {status} {reason}", log_path=log)
        if not text.strip():
            return AttemptOutcome(ok=True, exit_code=status, log_path=log)
        try:
            outputs = json.loads(text)
        except ValueError:
            return AttemptOutcome(ok=False, exit_code=status, error="the response is not JSON", log_path=log)
        if not isinstance(outputs, dict):
            return AttemptOutcome(
                ok=False, exit_code=status, error="the response is not a JSON object", log_path=log
            )
        return AttemptOutcome(ok=True, exit_code=status, outputs=outputs, log_path=log)


#: kind -> executor. ``register_executor`` adds more.
EXECUTORS: dict[str, Executor] = {
    "command": CommandExecutor(),
    "python": PythonExecutor(),
    "http": HttpExecutor(),
    "mcp": McpExecutor(),
}


def register_executor(kind: str, executor: Executor) -> None:
    """Make agents of ``kind`` run on ``executor``."""
    EXECUTORS[kind] = executor
