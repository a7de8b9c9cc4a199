"""A real state store filled with a hand-written run (the runtime's writer API, no executor)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from _report_plans import make_plan

from alfred_dsl.render._plan import plan_to_json
from alfred_dsl.runtime._store import StateStore

T0 = 1_800_000_000.0
SCRIPT = "<script>alert(1)</script>"
ALFREDC = [sys.executable, "-m", "alfred_dsl"]


def write_run(state_dir: Path, *, secret: str = "hunter2-token", hostile: bool = False) -> str:
    """A finished run: `build` fails twice then succeeds, `test` and `lint` run on another agent.

    With ``hostile``, a stage name and an output value carry a ``<script>`` tag.
    """
    evil = f"x{SCRIPT}" if hostile else "lint"
    plan = make_plan(
        "release",
        [("fetch", [], 2), ("build", ["fetch"], 5), (evil, ["fetch"], 1), ("test", ["build"], 3)],
    )
    store = StateStore(state_dir)
    run_id = "20260101-000000-abcdef"
    store.create_run(
        run_id=run_id, workflow="release", source="release.alfred", entry="release.alfred",
        params={"version": "1.2"}, cli_params={}, plan=plan_to_json(plan),
        stages=[s.name for s in plan.stages], started=T0,
    )

    def attempt(stage: str, n: int, start: float, end: float, code: int, text: str) -> None:
        log = store.log_path(run_id, stage, n)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(text, encoding="utf-8")
        store.queue_attempt(run_id, stage, n, started=T0 + start, finished=T0 + end, exit_code=code,
                            error=None if code == 0 else f"exit status {code}", log_path=str(log))

    attempt("fetch", 1, 0.0, 2.0, 0, "fetched\n")
    attempt("build", 1, 2.1, 3.0, 1, f"using token {secret}\nerror: flaky\n")
    attempt("build", 2, 3.5, 4.0, 1, "error: flaky again\n")
    attempt("build", 3, 4.6, 9.0, 0, "built ok\n" + "".join(f"line {i}\n" for i in range(100)))
    attempt(evil, 1, 2.1, 2.9, 0, f"{SCRIPT}\n" if hostile else "clean\n")
    attempt("test", 1, 9.1, 12.0, 0, "3 passed\n")
    for name, agent, start, end, tries in (
        ("fetch", "net", 0.0, 2.0, 1), ("build", "worker", 2.1, 9.0, 3),
        (evil, "linter", 2.1, 2.9, 1), ("test", "worker", 9.1, 12.0, 1),
    ):
        store.queue_stage(run_id, name, state="succeeded", agent=agent, started=T0 + start,
                          finished=T0 + end, attempts=tries,
                          outputs={"artifact": SCRIPT if hostile else f"{name}.tar"})
    store.queue_run_state(run_id, "succeeded", T0 + 12.0)
    store.flush()
    store.close()
    return run_id


#: A workflow whose `flaky` stage fails its first attempt and passes its second (a marker
#: file remembers the first try), then `report` runs once: three attempts in all.
RETRY_FLOW = """\
agent sh {
  kind = command
  run  = ["true"]
}

workflow retry {
  stage flaky {
    agent   = sh
    run     = "echo attempt $ALFRED_ATTEMPT; test -f tried || { touch tried; echo flaky >&2; exit 3; }"
    retries = 2
    backoff = 50ms
  }
  stage report after flaky {
    agent = sh
    run   = "echo done"
  }
}
"""


def real_run_report(workdir: Path) -> tuple[Path, list[tuple[str, int, int | None]]]:
    """``alfredc run`` of RETRY_FLOW then ``alfredc report last --format html -o FILE``, both as
    real subprocesses in ``workdir``; returns the report and the (stage, attempt, exit code)
    of every attempt the run recorded."""
    env = {**os.environ, "NO_COLOR": "1"}
    (workdir / "retry.alfred").write_text(RETRY_FLOW, encoding="utf-8")
    ran = subprocess.run([*ALFREDC, "run", "retry.alfred"], cwd=workdir, capture_output=True, text=True,
                         timeout=60, env=env, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = workdir / "report.html"
    made = subprocess.run([*ALFREDC, "report", "last", "--format", "html", "-o", str(report)], cwd=workdir,
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert made.returncode == 0, made.stderr
    with StateStore(workdir / ".alfred") as store:
        (run,) = store.runs()
        attempts = [(a.stage, a.n, a.exit_code) for a in store.attempts(run.id)]
    return report, attempts


_SPEND = "import os; open(os.environ['ALFRED_OUTPUTS'], 'a').write('cost_usd=2.10\\\\ntokens=500\\\\n')"
#: A workflow that spends (each `model` stage writes cost_usd and tokens to $ALFRED_OUTPUTS),
#: waits for an approval, and stops on its budget before `polish`.
GATED_SPEND_FLOW = """\
agent model {{
  kind = command
  run  = ["{py}", "-c", "{spend}"]
  cost = {{ usd = 2.5 }}
}}

workflow review {{
  approvers = {{ lead = ["alice", "bob"] }}
  budget    = {{ usd = 5 }}

  stage draft {{ agent = model }}
  stage gate after draft {{
    approve = {{ by = ["lead"], timeout = 1h }}
  }}
  stage edit after gate {{ agent = model }}
  stage polish after edit {{ agent = model }}
}}
"""


def gated_spending_run_report(workdir: Path, comment: str) -> Path:
    """``alfredc run`` of GATED_SPEND_FLOW, its gate approved by alice with ``comment`` from
    another process (``alfredc approve``), then ``alfredc report last``: the report's path."""
    env = {**os.environ, "NO_COLOR": "1"}
    flow = GATED_SPEND_FLOW.format(py=sys.executable, spend=_SPEND)
    (workdir / "review.alfred").write_text(flow, encoding="utf-8")
    run = subprocess.Popen([*ALFREDC, "run", "review.alfred"], cwd=workdir, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            approve = subprocess.run(
                [*ALFREDC, "approve", "last", "gate", "--as", "alice", "--comment", comment], cwd=workdir,
                capture_output=True, text=True, timeout=60, env=env, check=False,
            )
            if approve.returncode == 0:
                break
            assert time.monotonic() < deadline and run.poll() is None, approve.stderr
            time.sleep(0.2)  # the run has not reached its gate yet
        out, _ = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 1 and "budget exceeded: usd 6.70 > 5" in out, out
    report = workdir / "report.html"
    made = subprocess.run([*ALFREDC, "report", "last", "-o", str(report)], cwd=workdir,
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert made.returncode == 0, made.stderr
    return report
