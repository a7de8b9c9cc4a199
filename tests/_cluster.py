"""A real Dask ``distributed`` cluster on 127.0.0.1 for the tests: one scheduler and worker
processes started with ``sys.executable -m distributed.cli...`` (so one can be killed -9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LocalCluster", "start_cluster"]


@dataclass
class LocalCluster:
    folder: Path
    scheduler: subprocess.Popen[bytes]
    address: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    worker_args: list[tuple[str, ...]] = field(default_factory=list)

    def add_worker(self, *extra: str, name: str | None = None) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--host", "127.0.0.1",
             "--no-nanny", "--nthreads", "2", "--no-dashboard", "--name", name or f"w{len(self.workers)}",
             *extra],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_env(),
        )
        self.workers.append(worker)
        self.worker_args.append(extra)
        return worker

    def replace_worker(self, pid: int) -> None:
        """Start a worker like the one of ``pid`` (killed by a test), with its resources."""
        index = next(i for i, w in enumerate(self.workers) if w.pid == pid)
        self.workers[index].wait()
        self.add_worker(*self.worker_args[index])

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> pid, of the workers the scheduler knows now."""
        from distributed import Client

        with Client(self.address, timeout=10) as client:
            return {
                address: int(pid)
                for address, pid in client.run(os.getpid).items()  # type: ignore[no-untyped-call]
            }

    def wait_workers(self, count: int, timeout_s: float = 60) -> None:
        from distributed import Client

        with Client(self.address, timeout=10) as client:
            client.wait_for_workers(count, timeout=timeout_s)

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers, self.scheduler]:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["DASK_DISTRIBUTED__WORKER__DAEMON"] = "False"
    env.pop("ALFRED_CLUSTER", None)
    return env


def start_cluster(folder: Path, workers: int = 2, resources: tuple[str, ...] = ()) -> LocalCluster:
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    log = open(folder / "scheduler.log", "wb")  # noqa: SIM115
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(scheduler_file)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_env(),
    )
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() or not scheduler_file.read_text():
        if time.monotonic() > deadline or scheduler.poll() is not None:
            raise RuntimeError((folder / "scheduler.log").read_text())
        time.sleep(0.1)
    time.sleep(0.1)
    address = json.loads(scheduler_file.read_text())["address"]
    assert address.startswith("tcp://127.0.0.1:")
    cluster = LocalCluster(folder=folder, scheduler=scheduler, address=address)
    for index in range(workers):
        extra = ("--resources", resources[index]) if index < len(resources) and resources[index] else ()
        cluster.add_worker(*extra)
    cluster.wait_workers(workers)
    return cluster
