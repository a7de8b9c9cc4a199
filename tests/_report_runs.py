"""A real state store filled with a hand-written run (the runtime's writer API, no executor)."""

from __future__ import annotations

import os
import subprocess
import sys
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
