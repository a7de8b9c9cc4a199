# ruff: noqa: E501  (workflows and shell lines read better whole)
"""``alfredc run --cluster``: stages run on the workers of a real Dask ``distributed`` cluster
(a scheduler and 2 worker processes on 127.0.0.1), with alfred's contract and state intact."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from _cluster import LocalCluster, start_cluster
from conftest import ALFREDC

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    # Worker 0 offers resources, worker 1 none: a stage that needs them can only go to w0.
    started = start_cluster(tmp_path_factory.mktemp("cluster"), 2, resources=("cpu=2,memory=4294967296", ""))
    try:
        yield started
    finally:
        started.stop()


def _alfredc(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("ALFRED_CLUSTER", None)
    return subprocess.run([*ALFREDC, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def _project(tmp_path: Path, flow: str) -> Path:
    (tmp_path / ".git").mkdir(parents=True, exist_ok=True)
    (tmp_path / "flow.alfred").write_text(flow)
    return tmp_path


def _attempts(project: Path) -> list[tuple[str, int, str | None, str | None]]:
    with sqlite3.connect(project / ".alfred" / "state.db") as db:
        rows = db.execute("SELECT stage, n, worker, error FROM attempts ORDER BY started").fetchall()
    return [(str(r[0]), int(r[1]), r[2], r[3]) for r in rows]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _wait_for(path: Path, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


CONTRACT = """
agent sh {
  kind = command
  concurrency = 4
}
agent py {
  kind = python
  call = "tools:where"
}
agent here {
  kind = command
  placement = "local"
}
workflow contract {
  param name: string = "world"
  stage cmd {
    agent = sh
    env = { GREETING = "hello" }
    inputs = { who = params.name }
    run = "echo \\"$GREETING $$ $PPID $ALFRED_STAGE $ALFRED_ATTEMPT token=$TOKEN\\"; pwd > cwd.txt; echo $PPID > cmd.ppid; cat \\"$ALFRED_INPUTS\\" > cmd.inputs; echo greeting=$GREETING >> \\"$ALFRED_OUTPUTS\\""
  }
  stage call after cmd {
    agent = py
    inputs = { greeting = "${stages.cmd.outputs.greeting}", token = secrets.TOKEN }
  }
  stage local after call {
    agent = here
    run = "echo $PPID > local.ppid; echo ${stages.call.outputs.greeting} > local.txt"
  }
}
"""

TOOLS = """
import os

def where(inputs):
    print("python pid", os.getpid(), "token", inputs["token"])
    # A python stage runs inside the worker process: its folder is that of the module.
    with open(os.path.join(os.path.dirname(__file__), "call.pid"), "w") as handle:
        handle.write(str(os.getpid()))
    return {"greeting": inputs["greeting"] + "!", "pid": os.getpid()}
"""


def test_stages_run_on_the_workers_with_the_command_contract(cluster: LocalCluster, tmp_path: Path) -> None:
    project = _project(tmp_path, CONTRACT)
    (project / "tools.py").write_text(TOOLS)
    workers = cluster.worker_pids()
    env = dict(os.environ, TOKEN="s3cr3t-value")
    env.pop("ALFRED_CLUSTER", None)
    done = subprocess.run(
        [*ALFREDC, "run", "flow.alfred", "--cluster", cluster.address], cwd=project, capture_output=True,
        text=True, timeout=120, env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The command's shell is a child of a worker process; the python function ran inside one.
    assert int((project / "cmd.ppid").read_text()) in workers.values()
    assert int((project / "call.pid").read_text()) in workers.values()
    # A placement = "local" agent runs here, not on a worker.
    assert int((project / "local.ppid").read_text()) not in workers.values()
    assert (project / "local.txt").read_text() == "hello!\n"
    assert (project / "cwd.txt").read_text().strip() == str(project)
    assert json.loads((project / "cmd.inputs").read_text()) == {"who": "world"}
    logs = {p.name: p.read_text() for p in (project / ".alfred" / "runs").glob("*/*.log")}
    assert logs["cmd.1.log"].startswith("hello ") and logs["cmd.1.log"].endswith(" cmd 1 token=***\n")
    assert "python pid" in logs["call.1.log"] and "token ***" in logs["call.1.log"]
    for text in logs.values():
        assert "s3cr3t-value" not in text
    state = (project / ".alfred" / "state.db").read_bytes()
    assert b"s3cr3t-value" not in state
    rows = {stage: worker for stage, _, worker, _ in _attempts(project)}
    assert rows["cmd"] in workers and rows["call"] in workers and rows["local"] is None
    shown = _alfredc(project, "show", "last")
    assert rows["cmd"] in shown.stdout, shown.stdout


def test_the_demo_gives_the_same_outputs_on_the_cluster_as_here(cluster: LocalCluster, tmp_path: Path) -> None:
    outputs = {}
    for mode in ("local", "cluster"):
        root = tmp_path / mode
        shutil.copytree(DEMO, root / "demo", ignore=shutil.ignore_patterns("out", ".alfred", "__pycache__"))
        extra = ("--cluster", cluster.address) if mode == "cluster" else ()
        done = _alfredc(root, "run", "demo/pipeline.alfred", *extra)
        assert done.returncode == 0, done.stdout + done.stderr
        shown = json.loads(_alfredc(root, "show", "last", "--format", "json").stdout)
        outputs[mode] = {s["name"]: (s["state"], s["outputs"]) for s in shown["stages"]}
        assert (root / "demo" / "out" / "REPORT.md").is_file()
        if mode == "cluster":
            workers = {worker for _, _, worker, _ in _attempts(root)}
            assert workers and workers <= set(cluster.worker_pids())
    assert outputs["cluster"] == outputs["local"]


OUTPUTS = """
agent py {
  kind = python
}
agent sh {
  kind = command
}
workflow outputs {
  stage small {
    agent = py
    call = "values:small"
  }
  stage big {
    agent = py
    call = "values:big"
  }
  stage shell_big {
    agent = sh
    run = "/bin/sh big.sh"
  }
  stage consume after small, big, shell_big {
    agent = py
    call = "values:use"
    inputs = { pair = stages.small.outputs.pair, blob = stages.big.outputs.blob, text = "${stages.shell_big.outputs.text}" }
  }
}
"""

VALUES = """
def small(inputs):
    return {"pair": (1, "two"), "nested": {"x": [1.5, None]}}

def big(inputs):
    return {"blob": "b" * 300_000}

def use(inputs):
    assert inputs["pair"] == (1, "two"), inputs["pair"]
    assert inputs["blob"] == "b" * 300_000
    assert inputs["text"] == "y" * 200_000, len(inputs["text"])
    return {"ok": True}
"""


def test_small_and_large_results_come_back_intact(cluster: LocalCluster, tmp_path: Path) -> None:
    # A small result rides on an event of the client's stream, a large one (over 64 KiB)
    # is fetched from the worker as a Dask result: both give the same values as here.
    project = _project(tmp_path, OUTPUTS)
    (project / "values.py").write_text(VALUES)
    (project / "big.sh").write_text("printf text= >> \"$ALFRED_OUTPUTS\"; head -c 200000 /dev/zero | tr '\\0' y >> \"$ALFRED_OUTPUTS\"\n")
    done = _alfredc(project, "run", "flow.alfred", "--cluster", cluster.address)
    assert done.returncode == 0, done.stdout + done.stderr
    shown = json.loads(_alfredc(project, "show", "last", "--format", "json").stdout)
    outputs = {s["name"]: s["outputs"] for s in shown["stages"]}
    assert outputs["small"] == {"pair": [1, "two"], "nested": {"x": [1.5, None]}}
    assert outputs["big"] == {"blob": "b" * 300_000}
    assert outputs["consume"] == {"ok": True}
    workers = {worker for _, _, worker, _ in _attempts(project)}
    assert workers and workers <= set(cluster.worker_pids())


STREAM = """
agent sh {
  kind = command
}
workflow stream {
  stage talk {
    agent = sh
    timeout = 60s
    run = "echo first line; while [ ! -f go ]; do sleep 0.05; done; echo second line"
  }
}
"""


def test_the_log_streams_back_while_the_stage_runs(cluster: LocalCluster, tmp_path: Path) -> None:
    project = _project(tmp_path, STREAM)
    proc = subprocess.Popen(
        [*ALFREDC, "run", "flow.alfred", "--cluster", cluster.address], cwd=project,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        logs: list[Path] = []
        while time.monotonic() < deadline:
            logs = list((project / ".alfred" / "runs").glob("*/talk.1.log")) if (project / ".alfred").exists() else []
            if logs and logs[0].read_text() == "first line\n":
                break
            time.sleep(0.05)
        assert logs and logs[0].read_text() == "first line\n"
        assert proc.poll() is None  # still running: the line came while the stage ran
        (project / "go").write_text("")
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert logs[0].read_text() == "first line\nsecond line\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


KILLABLE = """
agent sh {
  kind = command
}
workflow slow {
  stage sleepy {
    agent = sh
    timeout = TIMEOUT
    run = "sleep 300 & echo $! > child.pid; echo $$ > shell.pid; wait"
  }
}
"""


def test_a_timeout_kills_the_remote_process_group(cluster: LocalCluster, tmp_path: Path) -> None:
    project = _project(tmp_path, KILLABLE.replace("TIMEOUT", "2s"))
    started = time.monotonic()
    done = _alfredc(project, "run", "flow.alfred", "--cluster", cluster.address, "--grace", "1s")
    assert done.returncode == 1, done.stdout + done.stderr
    assert time.monotonic() - started < 40
    assert "timed out after 2s" in done.stdout
    for name in ("shell.pid", "child.pid"):
        pid = int((project / name).read_text())
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"{name} {pid} survived the timeout"


def test_ctrl_c_kills_the_remote_processes_and_the_run_can_resume(cluster: LocalCluster, tmp_path: Path) -> None:
    project = _project(tmp_path, KILLABLE.replace("TIMEOUT", "5m"))
    proc = subprocess.Popen(
        [*ALFREDC, "run", "flow.alfred", "--cluster", cluster.address, "--grace", "1s"], cwd=project,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        child = int(_wait_for(project / "child.pid"))
        shell = int(_wait_for(project / "shell.pid"))
        assert _alive(child)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    assert not _alive(child) and not _alive(shell)


LOST = """
agent sh {
  kind = command
}
workflow lost {
  stage victim {
    agent = sh
    retries = 1
    run = "echo $PPID >> worker.pids; sleep 300 & echo $! >> child.pids; if [ \\"$ALFRED_ATTEMPT\\" = 1 ]; then wait; fi; echo done=yes >> \\"$ALFRED_OUTPUTS\\""
  }
}
"""


def test_a_killed_worker_loses_the_attempt_and_the_retry_runs_on_another(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    project = _project(tmp_path, LOST)
    workers = cluster.worker_pids()
    proc = subprocess.Popen(
        [*ALFREDC, "run", "flow.alfred", "--cluster", cluster.address], cwd=project,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    first_worker = 0
    try:
        first_worker = int(_wait_for(project / "worker.pids").split()[0])
        first_child = int(_wait_for(project / "child.pids").split()[0])
        assert first_worker in workers.values()
        os.kill(first_worker, signal.SIGKILL)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if first_worker:
            cluster.replace_worker(first_worker)  # the next tests have the same two workers again
    assert proc.returncode == 0, out
    ran_on = [int(p) for p in (project / "worker.pids").read_text().split()]
    assert len(ran_on) == 2 and ran_on[1] != first_worker and ran_on[1] in workers.values()
    rows = _attempts(project)
    dead = next(a for a, p in workers.items() if p == first_worker)
    assert rows[0][:3] == ("victim", 1, dead) and rows[0][3] == f"lost: worker {dead} died"
    assert rows[1][:3] == ("victim", 2, next(a for a, p in workers.items() if p == ran_on[1]))
    assert rows[1][3] is None
    # No orphan: the process the lost attempt started is gone too.
    deadline = time.monotonic() + 5
    while _alive(first_child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(first_child)
    cluster.wait_workers(2)


RESOURCES = """
agent sh {
  kind = command
  concurrency = 2
  resources = { cpu = 1 }
}
workflow res {
  stage big {
    agent = sh
    resources = { cpu = 2, memory = "4GiB" }
    run = "echo $PPID > big.ppid"
  }
  stage gpu {
    agent = sh
    resources = { gpu = 1 }
    run = "echo never > gpu.txt"
  }
}
"""


def test_resources_pick_the_worker_and_unsatisfiable_ones_fail_at_once(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    project = _project(tmp_path, RESOURCES.replace("workflow res {", "workflow res {\n  defaults {\n    on_failure = continue\n  }"))
    plan = _alfredc(project, "plan", "flow.alfred")
    assert plan.returncode == 0, plan.stderr
    assert "cpu = 2, memory = 4GiB" in plan.stdout and "gpu = 1" in plan.stdout
    started = time.monotonic()
    done = _alfredc(project, "run", "flow.alfred", "--cluster", cluster.address, timeout=60)
    assert time.monotonic() - started < 30
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {stage: (worker, error) for stage, _, worker, error in _attempts(project)}
    offering = next(a for a, p in cluster.worker_pids().items() if p == int((project / "big.ppid").read_text()))
    assert rows["big"] == (offering, None)
    assert rows["gpu"][1] is not None and "no worker offers the resources { cpu = 1, gpu = 1 }" in rows["gpu"][1]
    assert not (project / "gpu.txt").exists()


def test_check_refuses_bad_placement_and_resources(tmp_path: Path) -> None:
    project = _project(tmp_path, RESOURCES.replace('"4GiB"', '"4 gigs"').replace("gpu = 1", "gpu = 0")
                       .replace("concurrency = 2", 'concurrency = 2\n  placement = "remote"'))
    done = _alfredc(project, "check", "flow.alfred")
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    for fragment in ("placement", "memory", "gpu"):
        assert fragment in done.stdout, done.stdout


def test_check_and_a_local_run_never_import_dask(tmp_path: Path) -> None:
    project = _project(tmp_path, STREAM.replace("while [ ! -f go ]; do sleep 0.05; done; ", ""))
    code = (
        "import sys\nfrom alfred_dsl.cli import main\n"
        "for args in (['check', 'flow.alfred'], ['run', 'flow.alfred', '-q']):\n"
        "    try:\n        main(args)\n    except SystemExit as exc:\n        assert not exc.code, exc.code\n"
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    project = _project(tmp_path, STREAM)
    done = _alfredc(project, "run", "flow.alfred", "--cluster", "tcp://127.0.0.1:9", timeout=60)
    assert done.returncode == 2
    assert "cannot reach the cluster scheduler at tcp://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr


MISSING = """
agent sh {
  kind = command
}
workflow missing {
  stage drop {
    agent = sh
    run = "rmdir sub"
  }
  stage inside after drop {
    agent = sh
    cwd = "sub"
    run = "echo never > ../never.txt"
  }
}
"""


def test_a_folder_missing_on_the_worker_fails_clearly(cluster: LocalCluster, tmp_path: Path) -> None:
    project = _project(tmp_path, MISSING)
    (project / "sub").mkdir()
    done = _alfredc(project, "run", "flow.alfred", "--cluster", cluster.address)
    assert done.returncode == 1
    rows = {stage: error for stage, _, _, error in _attempts(project)}
    assert rows["inside"] is not None and f"the folder {project / 'sub'} does not exist on worker" in rows["inside"]
    assert "shared file system" in rows["inside"]


GONE = """
agent sh {
  kind = command
}
workflow gone {
  stage first {
    agent = sh
    run = "echo x >> first.runs"
  }
  stage second after first {
    agent = sh
    run = "echo x >> second.runs; if [ ! -f resumed ]; then echo started > second.started; sleep 300; fi"
  }
}
"""


def test_the_scheduler_going_away_fails_the_run_and_resume_finishes_it(tmp_path: Path) -> None:
    project = _project(tmp_path / "project", GONE)
    first = start_cluster(tmp_path / "c1", 1)
    try:
        proc = subprocess.Popen(
            [*ALFREDC, "run", "flow.alfred", "--cluster", first.address], cwd=project,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        _wait_for(project / "second.started")
        os.killpg(first.scheduler.pid, signal.SIGKILL)
        first.scheduler.wait()
        out, _ = proc.communicate(timeout=90)
    finally:
        first.stop()
    assert proc.returncode == 1, out
    assert "Traceback" not in out
    assert "the cluster scheduler at" in out
    (project / "resumed").write_text("")
    second = start_cluster(tmp_path / "c2", 1)
    try:
        done = _alfredc(project, "run", "--resume", "last", "--cluster", second.address)
    finally:
        second.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / "first.runs").read_text() == "x\n"  # succeeded: not run again
    assert (project / "second.runs").read_text() == "x\nx\n"


DASK_LOGS = """
import logging, sys
from distributed.comm.core import CommClosedError
from alfred_dsl.runtime._cluster import connect, disconnect

connect(sys.argv[1])
batched = logging.getLogger("distributed.batched")
try:
    raise CommClosedError("in <TCP (closed) Client->Scheduler>")
except CommClosedError:
    batched.info("Batched Comm Closed %r", "<TCP (closed)>", exc_info=True)
    batched.exception("Error in batched write")
logging.getLogger("tornado.application").error("Exception in callback", exc_info=RuntimeError("boom"))
disconnect()
"""


def test_dask_logs_on_this_machine_are_warnings_and_up_one_line_each(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    # What a scheduler going away logs (distributed/batched.py), at a moment the test
    # above cannot pin down: a traceback among the run's events once broke it in CI.
    done = subprocess.run([sys.executable, "-c", DASK_LOGS, cluster.address], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "Batched Comm Closed" not in done.stderr  # INFO: Dask's chatter
    assert "Error in batched write (CommClosedError: in <TCP (closed) Client->Scheduler>)" in done.stderr
    assert "Exception in callback (RuntimeError: boom)" in done.stderr


def test_a_service_worker_runs_queued_runs_on_the_cluster(cluster: LocalCluster, tmp_path: Path) -> None:
    project = _project(tmp_path, STREAM.replace("while [ ! -f go ]; do sleep 0.05; done; ", "echo $PPID > ppid; "))
    submitted = _alfredc(project, "submit", "flow.alfred")
    assert submitted.returncode == 0, submitted.stderr
    env = dict(os.environ, ALFRED_CLUSTER=cluster.address)
    done = subprocess.run([*ALFREDC, "worker", "--until-empty"], cwd=project, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert int((project / "ppid").read_text()) in cluster.worker_pids().values()
    assert next(worker for _, _, worker, _ in _attempts(project)) in cluster.worker_pids()


GROUNDED = """\
agent context7 {{
  kind      = mcp
  server    = {server}
  placement = "local"
}}

agent sh {{ kind = command }}
agent py {{ kind = python; call = "reader:read" }}

workflow grounded {{
  stage cmd {{
    agent = sh
    run   = "head -n 3 \\"$ALFRED_DOCS\\" | tail -n 1 > cmd.docs"
    docs  = [{{ library = "trio" }}]
  }}
  stage call {{
    agent = py
    docs  = [{{ library = "httpx" }}]
  }}
}}
"""


def test_stages_on_the_workers_read_their_docs(cluster: LocalCluster, tmp_path: Path) -> None:
    pytest.importorskip("mcp")
    fixture = Path(__file__).parent / "data" / "mcp" / "context7_fixture.py"
    project = _project(tmp_path, GROUNDED.format(server=json.dumps([sys.executable, str(fixture)])))
    (project / "reader.py").write_text(
        "from pathlib import Path\n\n"
        "def read(inputs):\n    return {'title': Path(inputs['ALFRED_DOCS']).read_text().splitlines()[2]}\n"
    )
    assert _alfredc(project, "lock", "flow.alfred").returncode == 0
    done = _alfredc(project, "run", "flow.alfred", "--cluster", cluster.address)
    assert done.returncode == 0, done.stdout + done.stderr
    workers = {stage: worker for stage, _, worker, _ in _attempts(project)}
    assert workers["cmd"] in cluster.worker_pids() and workers["call"] in cluster.worker_pids()
    assert (project / "cmd.docs").read_text() == "# trio 0.27: nurseries\n"
    shown = json.loads(_alfredc(project, "show", "last", "--format", "json").stdout)
    assert {s["name"]: s["outputs"] for s in shown["stages"]}["call"] == {"title": "# httpx 0.28: clients"}
