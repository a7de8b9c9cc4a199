"""Where a resumed run starts from: ``--resume``, a worker taking over a run.

A run that already succeeded with every stage of the plan is returned as it is; otherwise
the run is claimed, what its dead process left running is killed (cgroups, marked and
orphaned processes) and recorded as ended, and the stages that succeeded keep their
outputs and are not run again (at-least-once: a stage that was running runs again).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING

from ._contain import cgroup_populated, kill_cgroup, kill_dead_runner_cgroup, kill_marked, remove_cgroup
from ._foreach import restore as restore_expansions
from ._journal import read_journal
from ._private import scrub_private_dirs
from ._process import kill_orphans
from ._results import SKIPPED, SUCCEEDED, UP_TO_DATE, RunResult, StageResult
from ._store import AttemptRecord, StoreError

if TYPE_CHECKING:
    from ._scheduler import _Run

__all__ = ["already_succeeded", "load_resume"]


def already_succeeded(run: _Run, resume: str) -> RunResult | None:
    """The recorded result of a run that already succeeded with every stage of this plan:
    resuming it runs nothing and writes nothing (its times, events and metrics stay)."""
    record = run.store.run(resume)
    if record is None or record.state != SUCCEEDED or record.workflow != run.plan.workflow:
        return None
    recorded = {s.name: s for s in run.store.stages(resume)}
    if any(
        name not in recorded or recorded[name].state not in (SUCCEEDED, SKIPPED, UP_TO_DATE)
        for name in run.stages
    ):
        return None  # the file gained a stage since: run it
    exit_codes = {a.stage: a.exit_code for a in sorted(run.store.attempts(resume), key=lambda a: a.n)}
    run.run_id = resume
    return RunResult(
        run_id=resume,
        workflow=record.workflow,
        state=SUCCEEDED,
        stages={
            name: StageResult(
                name=name, state=recorded[name].state, agent=recorded[name].agent,
                outputs=dict(recorded[name].outputs), attempts=recorded[name].attempts,
                started=recorded[name].started, finished=recorded[name].finished,
                exit_code=exit_codes.get(name), reused=True,
            )
            for name in run.stages
        },
        started=record.started,
        finished=record.finished if record.finished is not None else record.started,
        state_dir=str(run.store.state_dir),
        already_succeeded=True,
    )


def load_resume(run: _Run, resume: str) -> list[str]:
    record = run.store.run(resume)
    if record is None:
        raise StoreError(f"no run `{resume}` in {run.store.state_dir}")
    if record.workflow != run.plan.workflow:
        raise StoreError(
            f"run `{resume}` is of workflow `{record.workflow}`, not `{run.plan.workflow}`"
        )
    run.store.claim_run(resume)
    run.run_id = resume
    run.work_dir = run.store.run_dir(resume)
    run._mkdir()
    attempts = run.store.attempts(resume)
    known = {(a.stage, a.n) for a in attempts}
    unfinished = [a for a in attempts if a.finished is None]
    last_attempt: dict[str, int] = {}
    for a in attempts:
        last_attempt[a.stage] = max(last_attempt.get(a.stage, 0), a.n)
    for j in read_journal(run.work_dir):  # started, but the database never heard of it
        last_attempt[j.stage] = max(last_attempt.get(j.stage, 0), j.n)
        if (j.stage, j.n) not in known:
            known.add((j.stage, j.n))
            unfinished.append(AttemptRecord(
                run=resume, stage=j.stage, n=j.n, started=j.started, finished=None, exit_code=None,
                error=None, log_path=None, pid=None, cgroup=j.cgroup,
            ))
    kill_leftovers(run, resume, unfinished)
    # Secret-bearing files of the attempts that were running then.
    scrub_private_dirs(resume)
    restore_expansions(run, resume)  # for_each stages: the instances they had
    reused: list[str] = []
    for record_stage in run.store.stages(resume):
        st = run.stages.get(record_stage.name)
        if st is None:
            continue
        st.attempt_base = max(record_stage.attempts, last_attempt.get(record_stage.name, 0))
        if record_stage.state == SUCCEEDED:
            st.state = SUCCEEDED
            st.reused = True
            st.outputs = dict(record_stage.outputs)
            st.agent = record_stage.agent
            st.attempts = record_stage.attempts
            st.started, st.finished = record_stage.started, record_stage.finished
            run.publish(st)
            run.final_count += 1
            run.spend.add(st.outputs)
            reused.append(st.name)
        else:
            run.save(st)  # back to pending
    return reused


def kill_leftovers(run: _Run, run_id: str, unfinished: list[AttemptRecord]) -> None:
    """Kill what the attempts that were running when the earlier process died left:
    their cgroups, the processes whose environment names them, their process groups;
    then record those attempts as ended."""
    if not unfinished:
        return
    for a in unfinished:
        if a.cgroup:
            kill_cgroup(a.cgroup)
            kill_dead_runner_cgroup(a.cgroup)
    kill_marked(run_id, [(a.stage, a.n) for a in unfinished])
    kill_orphans(run_id, [a.pid for a in unfinished if a.pid])
    deadline = time.monotonic() + 2.0
    for a in unfinished:
        if a.cgroup:  # cgroup.kill is asynchronous: the cgroup empties within milliseconds
            while cgroup_populated(a.cgroup) and time.monotonic() < deadline:
                time.sleep(0.005)
            if remove_cgroup(a.cgroup):
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.dirname(a.cgroup))  # the dead run's folder, once empty
        run.store.queue_attempt(
            run_id, a.stage, a.n, started=a.started, finished=time.time(),
            error="the process running it ended (killed or crashed)", log_path=a.log_path, pid=a.pid,
            agent=a.agent, cgroup=a.cgroup,
        )
