"""Running ``command`` and ``python`` stages on a Dask ``distributed`` cluster.

``alfredc run FILE --cluster tcp://HOST:PORT`` keeps everything that decides and records a
run on this machine (the plan, the scheduler's choices, the SQLite state, the logs) and
sends each attempt of a cluster-placed stage to one Dask worker as one task:

- the worker spawns the command in its own process group, with the environment, ``cwd``
  (which must exist on the worker: a shared project folder), ``ALFRED_*`` variables and an
  inputs/outputs file pair in a private temporary folder of the worker, streams the
  output back (masked on the worker: a secret never leaves it unmasked) as Dask events of
  the topic ``alfred-log``, and returns the exit status and the outputs;
- a timeout, a cancellation or Ctrl-C here asks every worker (``Client.run``) to kill the
  attempt's process group (SIGTERM, then SIGKILL after the grace): cancelling a Dask
  future alone leaves a subprocess running;
- a worker that dies makes the attempt ``lost`` (Dask's own retries are turned off on the
  scheduler: alfred's retry policy is the one); before the retry, the processes that carry
  the attempt's ``ALFRED_*`` markers are killed on every worker still alive;
- a scheduler that goes away fails the attempt permanently (the run fails, exit 1, and can
  be resumed once a cluster is back).

Dask is imported only here, and this module only when a cluster is asked for: ``check``
and a local ``run`` never pay for it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from ..compiler._plan import PlanAgent, PlanStage
from ._executors import (
    AttemptContext,
    AttemptOutcome,
    Executor,
    OutputsFileError,
    PythonExecutor,
    append_log,
    read_outputs_file,
)
from ._resolve import StreamMasker

__all__ = [
    "LOG_TOPIC",
    "ClusterError",
    "ClusterExecutor",
    "cluster_executor",
    "connect",
    "disconnect",
    "stage_resources",
]

#: The Dask event topic that carries the attempts' output back to the submitting machine.
LOG_TOPIC = "alfred-log"
#: The topic that carries an attempt's result back (``[key, pickled result]``), when small:
#: it arrives on the client's stream just before the task's completion, so no request for
#: the task's result (a gather: client -> scheduler -> worker and back) is needed.
RESULT_TOPIC = "alfred-result"
#: Larger results stay with the task and are fetched from the worker as Dask results are.
RESULT_EVENT_MAX = 64 * 1024
#: Kinds of agents whose stages can run on a worker (``http`` calls are made from here).
CLUSTER_KINDS = frozenset({"command", "python"})
_MEMORY_UNITS = {
    "": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}


class ClusterError(Exception):
    """The cluster cannot be used (unreachable scheduler, distributed not installed)."""


# -- resources ---------------------------------------------------------------------------

def parse_memory(value: Any) -> int | None:
    """Bytes of ``4GiB``, ``512MB``, ``2e9`` or an int; None when it is not a size."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace(" ", "")
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number):]
    if unit not in _MEMORY_UNITS or not number:
        return None
    try:
        amount = float(number)
    except ValueError:
        return None
    return int(amount * _MEMORY_UNITS[unit]) if amount >= 0 else None


def stage_resources(stage: PlanStage, agent: PlanAgent) -> dict[str, float]:
    """The Dask resources one attempt of ``stage`` on ``agent`` holds (the stage's win)."""
    merged: dict[str, Any] = {}
    for declared in (agent.options.get("resources"), stage.resources):
        if isinstance(declared, Mapping):
            merged.update(declared)
    resources: dict[str, float] = {}
    for name, value in merged.items():
        amount = parse_memory(value) if name == "memory" else value
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            resources[str(name)] = float(amount)
    return resources


def placement(agent: PlanAgent) -> str:
    value = agent.options.get("placement")
    return value if isinstance(value, str) else "cluster"


# -- on the worker -----------------------------------------------------------------------

#: On a worker process: attempt key -> the leader of its process group, while it runs.
_RUNNING: dict[str, subprocess.Popen[bytes]] = {}
_RUNNING_LOCK = threading.Lock()
_PYTHON = PythonExecutor()


def _worker_address() -> tuple[Any, str]:
    from distributed import get_worker

    worker = get_worker()
    return worker, str(worker.address)


def _missing_folder(cwd: str, address: str) -> str:
    return (
        f"the folder {cwd} does not exist on worker {address}: a cluster stage runs in the "
        "project folder, which every worker must see at the same path (a shared file system)"
    )


class _Sender:
    """Sends an attempt's output, masked, as events of :data:`LOG_TOPIC`: ``[key, seq, bytes]``."""

    def __init__(self, worker: Any, key: str, secrets: tuple[str, ...]) -> None:
        self.worker, self.key = worker, key
        self.masker = StreamMasker(secrets)
        self.sent = 0

    def send(self, data: bytes, *, last: bool = False) -> None:
        data = self.masker.feed(data) + (self.masker.flush() if last else b"")
        if data:
            self.sent += 1
            self.worker.log_event(LOG_TOPIC, [self.key, self.sent, data])


def _deliver(worker: Any, key: str, result: dict[str, Any]) -> dict[str, Any] | None:
    """Send a small result as an event of :data:`RESULT_TOPIC` (None: sent), else return it."""
    try:
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # not picklable here: Dask's own serialization says why
        return result
    if len(data) > RESULT_EVENT_MAX:
        return result
    worker.log_event(RESULT_TOPIC, [key, data])
    return None


def remote_command(
    key: str, argv: list[str], env: dict[str, str], cwd: str, inputs_json: str,
    secrets: tuple[str, ...], max_log: int | None,
) -> dict[str, Any] | None:
    """On a worker: run one command attempt; its status, outputs and worker address (sent
    as an event when small: then the task's own result is None)."""
    worker, address = _worker_address()
    result = _command(worker, address, key, argv, env, cwd, inputs_json, secrets, max_log)
    return _deliver(worker, key, result)


def _command(
    worker: Any, address: str, key: str, argv: list[str], env: dict[str, str], cwd: str,
    inputs_json: str, secrets: tuple[str, ...], max_log: int | None,
) -> dict[str, Any]:
    if not os.path.isdir(cwd):
        return {"worker": address, "error": _missing_folder(cwd, address), "permanent": True}
    folder = tempfile.mkdtemp(prefix="alfred-")  # 0700: the inputs may hold secrets
    inputs_path = os.path.join(folder, "inputs.json")
    outputs_path = os.path.join(folder, "outputs")
    sender = _Sender(worker, key, secrets)
    try:
        fd = os.open(inputs_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(inputs_json)
        child_env = dict(env, ALFRED_INPUTS=inputs_path, ALFRED_OUTPUTS=outputs_path)
        try:
            proc = subprocess.Popen(
                argv, cwd=cwd, env=child_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            return {"worker": address, "error": f"cannot start {argv[0]!r} on worker {address}: "
                                                f"{exc.strerror or exc}"}
        with _RUNNING_LOCK:
            _RUNNING[key] = proc
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, sender, max_log), daemon=True)
        reader.start()
        try:
            # The leader's exit ends the attempt, as here: a background child that keeps the
            # pipe open does not hold the stage, it is killed with the group.
            status = proc.wait()
        finally:
            with _RUNNING_LOCK:
                _RUNNING.pop(key, None)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # what the command left in its group
            reader.join(2.0)
            proc.stdout.close()
        result: dict[str, Any] = {"worker": address, "pid": proc.pid, "status": status, "chunks": sender.sent}
        if status == 0:
            try:
                result["outputs"] = read_outputs_file(outputs_path)
            except OutputsFileError as exc:
                result["error"] = str(exc)
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _pump(stream: Any, sender: _Sender, max_log: int | None) -> None:
    kept = 0
    read_fd = stream.fileno()
    with contextlib.suppress(OSError, ValueError):
        while chunk := os.read(read_fd, 65536):
            if max_log is not None:
                chunk = chunk[: max(max_log - kept, 0)]
            kept += len(chunk)
            sender.send(chunk)
    sender.send(b"", last=True)


class _EventLog:
    """What a python stage prints on a worker, sent line by line as log events."""

    def __init__(self, sender: _Sender) -> None:
        self.sender = sender
        self.lock = threading.Lock()
        self.written = False

    def write(self, text: str) -> None:
        with self.lock:
            self.written = True
            self.sender.send(text.encode("utf-8", errors="replace"))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        with self.lock:
            self.sender.send(b"", last=True)


def remote_python(
    key: str, call: str, inputs: dict[str, Any], cwd: str, secrets: tuple[str, ...]
) -> dict[str, Any] | None:
    """On a worker: call ``module:function`` of the project folder with the inputs (the
    result is sent as an event when small, as for :func:`remote_command`)."""
    worker, address = _worker_address()
    return _deliver(worker, key, _python(worker, address, key, call, inputs, cwd, secrets))


def _python(
    worker: Any, address: str, key: str, call: str, inputs: dict[str, Any], cwd: str,
    secrets: tuple[str, ...],
) -> dict[str, Any]:
    from pathlib import Path

    from ._capture import capture_output

    if not os.path.isdir(cwd):
        return {"worker": address, "error": _missing_folder(cwd, address), "permanent": True}
    sender = _Sender(worker, key, secrets)
    log = _EventLog(sender)
    try:
        with capture_output(log):  # type: ignore[arg-type]  # duck-typed AttemptLog
            try:
                function, is_async = _PYTHON.resolve(call, Path(cwd))
            except Exception as exc:
                print(f"alfred: {exc}")
                return {"worker": address, "error": str(exc), "permanent": True}
            try:
                result = trio.run(function, inputs) if is_async else function(inputs)
            except Exception as exc:
                print("".join(traceback.format_exception(exc)), end="")
                return {"worker": address, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        log.close()
    if result is None:
        return {"worker": address, "outputs": {}, "chunks": sender.sent}
    if not isinstance(result, Mapping):
        return {"worker": address, "error": f"`{call}` returned {type(result).__name__}, "
                                            "expected a dict of outputs", "chunks": sender.sent}
    return {"worker": address, "outputs": {str(k): v for k, v in result.items()}, "chunks": sender.sent}


async def remote_kill(key: str, grace_s: float) -> bool:
    """On every worker (``Client.run``): SIGTERM the attempt's process group, SIGKILL after
    ``grace_s``. True when this worker ran it."""
    import asyncio

    with _RUNNING_LOCK:
        proc = _RUNNING.get(key)
    if proc is None:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return True


def remote_kill_marked(run_id: str, attempts: list[tuple[str, int]]) -> list[int]:
    """On every worker: kill what a lost attempt left (processes with its ALFRED_* markers)."""
    from ._contain import kill_marked

    return kill_marked(run_id, [(s, n) for s, n in attempts])


# -- on the submitting machine ------------------------------------------------------------

class _RemoteLog:
    """The attempt's log file here, appended to as the worker's chunks arrive."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.received = 0
        self.written = False
        self.lock = threading.Lock()

    def add(self, data: bytes) -> None:
        with self.lock:
            self.received += 1
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
                with open(fd, "ab") as handle:
                    handle.write(data)
                self.written = True
            except OSError:
                pass


@dataclass(slots=True)
class _Cluster:
    address: str
    client: Any
    logs: dict[str, _RemoteLog]
    #: Attempt key -> what to call with its result when it arrives as an event.
    waiters: dict[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)
    #: Attempt key -> its future, held until Dask says it is done (releasing a task that a
    #: worker still finishes would make the scheduler cancel it there).
    pending: dict[str, Any] = field(default_factory=dict)
    workers_at: float = 0.0
    workers: dict[str, dict[str, float]] | None = None

    def on_result(self, event: Any) -> None:  # Dask's IO loop thread
        _, message = event
        try:
            key, data = message
            waiter = self.waiters.get(key)
            if waiter is not None:
                waiter(pickle.loads(data))
        except Exception:  # a malformed event is not ours to crash on: the future still ends
            return

    def on_log(self, event: Any) -> None:
        _, message = event
        try:
            key, _seq, data = message
        except (TypeError, ValueError):
            return
        log = self.logs.get(key)
        if log is not None and isinstance(data, bytes | bytearray):
            log.add(bytes(data))

    def worker_resources(self) -> dict[str, dict[str, float]]:
        """Worker address -> the resources it offers (looked up at most once a second)."""
        now = time.monotonic()
        if self.workers is None or now - self.workers_at > 1.0:
            info = self.client.scheduler_info(n_workers=-1)
            self.workers = {
                address: {str(k): float(v) for k, v in (w.get("resources") or {}).items()}
                for address, w in info.get("workers", {}).items()
            }
            self.workers_at = now
        return self.workers

    def threads(self) -> int:
        """Threads over every worker: how many attempts the cluster runs at once."""
        info = self.client.scheduler_info(n_workers=-1)
        return sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())

    @property
    def connected(self) -> bool:
        return str(getattr(self.client, "status", "")) == "running"


_CLUSTERS: dict[str, _Cluster] = {}


def connect(address: str, *, timeout_s: float = 10.0) -> _Cluster:
    """The client of the scheduler at ``address`` (one per process); raises ClusterError."""
    found = _CLUSTERS.get(address)
    if found is not None and found.connected:
        return found
    try:
        from distributed import Client
    except ImportError as exc:
        raise ClusterError(
            "--cluster needs Dask's `distributed`: pip install 'alfred-dsl[cluster]'"
        ) from exc
    _quiet_dask_logging()
    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the cluster scheduler at {address}: {exc}") from exc
    # A task whose worker died is otherwise run again by Dask (allowed-failures, 3 by
    # default) behind alfred's back: the attempt is `lost` and alfred's retries decide.
    # A lambda travels by value: the scheduler need not import alfred (~1 s there).
    client.run_on_scheduler(  # type: ignore[no-untyped-call]
        lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", 0)
    )
    cluster = _Cluster(address=address, client=client, logs={})
    client.subscribe_topic(LOG_TOPIC, cluster.on_log)  # type: ignore[no-untyped-call]
    client.subscribe_topic(RESULT_TOPIC, cluster.on_result)  # type: ignore[no-untyped-call]
    _CLUSTERS[address] = cluster
    return cluster


class _OneLine(logging.Filter):
    """A record's traceback folded into its message: one line in the run's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            record.msg = f"{record.getMessage()} ({detail})"
            record.args = None
        record.exc_info = record.exc_text = record.stack_info = None
        return True


def _quiet_dask_logging() -> None:
    """Dask's log lines on this machine: warnings and up, one line each.

    alfred's own events say what became of each attempt; a scheduler that goes away
    otherwise prints Dask's INFO lines and tracebacks (a closed connection's) among them.
    A Dask ``logging`` configuration of the user's keeps its levels.
    """
    import dask

    if dask.config.get("logging", default=None) is None:
        logging.getLogger("distributed").setLevel(logging.WARNING)
    for name in ("distributed", "distributed.client", "tornado", "tornado.application"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, _OneLine) for f in handler.filters):
                handler.addFilter(_OneLine())


def disconnect() -> None:
    """Close every client (the end of ``alfredc run``)."""
    for cluster in list(_CLUSTERS.values()):
        with contextlib.suppress(Exception):
            cluster.client.close(timeout=5)
    _CLUSTERS.clear()


def cluster_executor(address: str | None, agent: PlanAgent) -> Executor | None:
    """The executor of ``agent``'s stages when the run has a cluster, None to run them here."""
    if address is None or agent.kind not in CLUSTER_KINDS or placement(agent) == "local":
        return None
    return ClusterExecutor(address)


def _describe(status: int) -> str:
    from ._process import signal_name

    return f"killed by {signal_name(-status)} on the worker" if status < 0 else f"exit status {status}"


class ClusterExecutor:
    """One attempt as one Dask task on a worker of the cluster at ``address``."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def run(self, ctx: AttemptContext) -> AttemptOutcome:
        try:
            cluster = connect(self.address)
        except ClusterError as exc:
            return AttemptOutcome(ok=False, error=f"lost: {exc}", permanent="the cluster is gone")
        key = f"alfred-{ctx.stage.name}-{ctx.attempt}-{uuid.uuid4().hex[:12]}"
        resources = stage_resources(ctx.stage, ctx.agent)
        if resources:
            refused = await trio.to_thread.run_sync(_unsatisfiable, cluster, resources)
            if refused is not None:
                return AttemptOutcome(ok=False, error=refused, permanent="no worker offers these resources")
        secrets = ctx.masker.secrets
        if ctx.agent.kind == "python":
            if not ctx.call:
                error = "nothing to call: the stage and its agent have no `call`"
                return AttemptOutcome(ok=False, error=error)
            inputs = dict(ctx.inputs)
            if ctx.docs_path is not None:  # the run's folder is shared with the workers
                inputs.setdefault("ALFRED_DOCS", ctx.docs_path)
            args: tuple[Any, ...] = (key, ctx.call, inputs, str(ctx.cwd), secrets)
            function: Any = remote_python
        else:
            if ctx.run is None:
                return AttemptOutcome(ok=False, error="nothing to run: the stage and its agent have no `run`")
            argv = ["/bin/sh", "-c", ctx.run] if isinstance(ctx.run, str) else list(ctx.run)
            env = dict(ctx.env)
            env.update(ctx.shell_values)
            env.update(ALFRED_RUN_ID=ctx.run_id, ALFRED_STAGE=ctx.stage.name, ALFRED_ATTEMPT=str(ctx.attempt))
            if ctx.docs_path is not None:
                env["ALFRED_DOCS"] = ctx.docs_path
            inputs_json = json.dumps(dict(ctx.inputs), default=str)
            args = (key, argv, env, str(ctx.cwd), inputs_json, secrets, ctx.stage.max_log)
            function = remote_command
        log = _RemoteLog(str(ctx.log_path))
        cluster.logs[key] = log
        try:
            return await self._submit(cluster, ctx, key, function, args, resources, log)
        finally:
            cluster.logs.pop(key, None)

    async def _submit(
        self, cluster: _Cluster, ctx: AttemptContext, key: str, function: Any, args: tuple[Any, ...],
        resources: dict[str, float], log: _RemoteLog,
    ) -> AttemptOutcome:
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        box: list[Any] = []  # the first (kind, value) settles the attempt

        def settle(kind: str, value: Any) -> None:  # Dask's IO loop or callback thread
            box.append((kind, value))
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        def finished(future: Any) -> None:  # Dask's callback thread
            cluster.pending.pop(key, None)
            if box:  # the result came as an event, before the task's completion
                return
            try:
                value = future.result()
            except BaseException as exc:
                settle("error", exc)
                return
            if value is None:  # sent as an event that never came (a worker of another version?)
                value = {"error": "the attempt's result did not reach alfred"}
            settle("ok", value)

        cluster.waiters[key] = lambda result: settle("ok", result)
        try:
            try:
                future = cluster.client.submit(
                    function, *args, key=key, pure=False, retries=0, resources=resources or None,
                )
            except Exception as exc:
                return self._gone(cluster, exc)
            cluster.pending[key] = future
            future.add_done_callback(finished)
            try:
                await done.wait()
            except BaseException:  # timeout, cancellation, Ctrl-C: the remote group dies too
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self._kill, cluster, future, key, ctx.kill_grace_s)
                raise
        finally:
            cluster.waiters.pop(key, None)
        kind, value = box[0]
        if kind == "error":
            return await self._failed(cluster, ctx, value)
        result: dict[str, Any] = value
        # The last chunks travel beside the result: wait a little for them to be written.
        deadline = time.monotonic() + 2.0
        while log.received < int(result.get("chunks", 0)) and time.monotonic() < deadline:
            await trio.sleep(0.01)
        worker = str(result.get("worker") or "")
        log_path = str(ctx.log_path) if log.written else None
        error = result.get("error")
        if error is not None:
            log_path = append_log(ctx, f"alfred: {error}\n") or log_path
            return AttemptOutcome(
                ok=False, error=str(error), log_path=log_path, worker=worker,
                exit_code=result.get("status"),
                permanent="the folder is missing on the worker" if result.get("permanent") else None,
            )
        status = result.get("status")
        if status not in (None, 0):
            return AttemptOutcome(
                ok=False, exit_code=int(status), error=_describe(int(status)), log_path=log_path,
                worker=worker,
            )
        return AttemptOutcome(
            ok=True, exit_code=status, outputs=dict(result.get("outputs") or {}), log_path=log_path,
            worker=worker,
        )

    def _kill(self, cluster: _Cluster, future: Any, key: str, grace_s: float) -> None:
        with contextlib.suppress(Exception):
            cluster.client.run(remote_kill, key, grace_s, wait=True, on_error="ignore")
        with contextlib.suppress(Exception):
            future.cancel()

    async def _failed(self, cluster: _Cluster, ctx: AttemptContext, exc: BaseException) -> AttemptOutcome:
        from distributed import KilledWorker

        if isinstance(exc, KilledWorker) or "CommClosed" in type(exc).__name__:
            last = getattr(exc, "last_worker", None)
            address = str(getattr(last, "address", None) or last or "")
            error = f"lost: worker {address} died" if address else "lost: its worker died"
            # What the attempt started may live on: kill it wherever a worker still runs.
            with contextlib.suppress(Exception):
                await trio.to_thread.run_sync(
                    lambda: cluster.client.run(
                        remote_kill_marked, ctx.run_id, [(ctx.stage.name, ctx.attempt)], on_error="ignore"
                    )
                )
            log = append_log(ctx, f"alfred: {error}\n")
            return AttemptOutcome(ok=False, error=error, worker=address or None, log_path=log)
        if not cluster.connected or "cancel" in type(exc).__name__.lower():
            return self._gone(cluster, exc)
        error = f"{type(exc).__name__}: {exc}"
        return AttemptOutcome(ok=False, error=error, log_path=append_log(ctx, f"alfred: {error}\n"))

    def _gone(self, cluster: _Cluster, exc: BaseException) -> AttemptOutcome:
        _CLUSTERS.pop(cluster.address, None)
        return AttemptOutcome(
            ok=False,
            error=f"lost: the cluster scheduler at {cluster.address} is gone ({type(exc).__name__})",
            permanent="the cluster is gone; resume the run once it is back",
        )


def _unsatisfiable(cluster: _Cluster, wanted: Mapping[str, float]) -> str | None:
    workers = cluster.worker_resources()
    for offered in workers.values():
        if all(offered.get(name, 0.0) >= amount for name, amount in wanted.items()):
            return None
    asked = ", ".join(f"{k} = {v:g}" for k, v in wanted.items())
    if not workers:
        return f"no worker offers the resources {{ {asked} }}: the cluster has no worker"
    offers = "; ".join(
        f"{address}: " + (", ".join(f"{k} = {v:g}" for k, v in sorted(r.items())) or "none")
        for address, r in sorted(workers.items())
    )
    return (
        f"no worker offers the resources {{ {asked} }} (workers offer {offers}); start a worker "
        "with `--resources`, or lower the stage's `resources`"
    )
