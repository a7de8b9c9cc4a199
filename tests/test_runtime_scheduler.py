"""The scheduler on real processes: retries, timeouts, concurrency, priorities, failures, resume."""

from __future__ import annotations

import os
import time
from pathlib import Path

from _runtime_plans import agent, plan, run_plan, stage
from conftest import ALFREDC

from alfred_dsl.runtime import StateStore


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def test_a_stage_that_fails_twice_then_succeeds_takes_exactly_three_attempts(tmp_path: Path) -> None:
    script = 'echo "$ALFRED_ATTEMPT" >> attempts; n=$(wc -l < attempts); [ "$n" -ge 3 ]'
    flaky = stage("flaky", tmp_path, run=["sh", "-c", script], retries=5, backoff_s=0.01)
    result, events = run_plan(plan([flaky]), tmp_path / "state")
    assert result.state == "succeeded" and result.exit_status == 0
    assert result.stages["flaky"].attempts == 3
    assert (tmp_path / "attempts").read_text().split() == ["1", "2", "3"]
    assert [e.attempt for e in events if e.type == "stage_retrying"] == [1, 2]
    with StateStore(tmp_path / "state") as store:
        attempts = store.attempts(result.run_id, "flaky")
        assert [(a.n, a.exit_code) for a in attempts] == [(1, 1), (2, 1), (3, 0)]
        assert all(Path(a.log_path or "").name == f"flaky.{a.n}.log" for a in attempts)


def test_retries_exhausted_fail_the_stage_with_backoff_between_attempts(tmp_path: Path) -> None:
    failing = stage("failing", tmp_path, run=["false"], retries=2, backoff_s=0.1, max_backoff_s=0.15)
    started = time.monotonic()
    result, events = run_plan(plan([failing]), tmp_path / "state")
    elapsed = time.monotonic() - started
    assert result.exit_status == 1 and result.stages["failing"].state == "failed"
    assert result.stages["failing"].attempts == 3
    delays = [e.data["delay_s"] for e in events if e.type == "stage_retrying"]
    assert delays == [0.1, 0.15]  # 0.1, then 0.2 capped by max_backoff
    assert elapsed >= 0.25


def test_timeout_kills_the_stage_and_its_grandchildren(tmp_path: Path) -> None:
    # The grandchild ignores SIGTERM: only the SIGKILL after the grace period ends it.
    script = (
        "(trap '' TERM; sleep 30) & echo $! > grandchild.pid; "
        "sleep 30 & echo $! > sleeper.pid; echo $$ > child.pid; wait"
    )
    slow = stage("slow", tmp_path, run=["sh", "-c", script], timeout_s=0.5)
    started = time.monotonic()
    result, _ = run_plan(plan([slow]), tmp_path / "state", kill_grace_s=0.5)
    elapsed = time.monotonic() - started
    assert result.stages["slow"].state == "failed"
    assert result.stages["slow"].error == "timed out after 0.5s"
    assert elapsed < 5
    pids = [int((tmp_path / f).read_text()) for f in ("child.pid", "grandchild.pid", "sleeper.pid")]
    deadline = time.monotonic() + 2
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)


def _intervals(directory: Path) -> list[tuple[int, int]]:
    spans = []
    for path in directory.iterdir():
        start, end = (int(x) for x in path.read_text().split())
        spans.append((start, end))
    return spans


def _max_overlap(spans: list[tuple[int, int]]) -> int:
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda p: (p[0], p[1]))
    best = current = 0
    for _, delta in points:
        current += delta
        best = max(best, current)
    return best


TIMED = 'mkdir -p spans; s=$(date +%s%N); sleep 0.2; echo "$s $(date +%s%N)" > "spans/$ALFRED_STAGE"'


def test_agent_concurrency_is_never_exceeded(tmp_path: Path) -> None:
    pair = agent("pair", concurrency=2)
    stages = [stage(f"s{i}", tmp_path, agents=["pair"], run=["sh", "-c", TIMED]) for i in range(6)]
    result, _ = run_plan(plan(stages, [pair]), tmp_path / "state", max_concurrency=8)
    assert result.ok
    assert _max_overlap(_intervals(tmp_path / "spans")) <= 2
    assert len(_intervals(tmp_path / "spans")) == 6


def test_global_max_concurrency_is_never_exceeded(tmp_path: Path) -> None:
    wide = agent("wide", concurrency=10)
    stages = [stage(f"s{i}", tmp_path, agents=["wide"], run=["sh", "-c", TIMED]) for i in range(5)]
    result, _ = run_plan(plan(stages, [wide]), tmp_path / "state", max_concurrency=3)
    assert result.ok
    assert 2 <= _max_overlap(_intervals(tmp_path / "spans")) <= 3


def test_ready_stages_start_by_priority_then_slack_then_declaration(tmp_path: Path) -> None:
    stages = [
        stage("low", tmp_path, run=["true"], priority=0),
        stage("late_slack", tmp_path, run=["true"], priority=2, slack_s=50),
        stage("first_declared", tmp_path, run=["true"], priority=2),
        stage("second_declared", tmp_path, run=["true"], priority=2),
        stage("critical", tmp_path, run=["true"], priority=3),
    ]
    result, events = run_plan(plan(stages), tmp_path / "state", max_concurrency=1)
    assert result.ok
    order = [e.stage for e in events if e.type == "stage_started"]
    assert order == ["critical", "first_declared", "second_declared", "late_slack", "low"]


def test_requires_goes_to_the_least_busy_matching_agent(tmp_path: Path) -> None:
    agents = [agent("a1", concurrency=2), agent("a2", concurrency=2)]
    stages = [stage(f"s{i}", tmp_path, agents=["a1", "a2"], run=["sleep", "0.2"]) for i in range(4)]
    result, _ = run_plan(plan(stages, agents), tmp_path / "state", max_concurrency=4)
    assert result.ok
    used = [str(result.stages[f"s{i}"].agent) for i in range(4)]
    assert sorted(used) == ["a1", "a1", "a2", "a2"]


def test_a_retry_moves_to_another_free_matching_agent_and_each_attempt_records_its_agent(
    tmp_path: Path,
) -> None:
    import json
    import subprocess

    agents = [agent("a1", env={"AGENT": "a1"}), agent("a2", env={"AGENT": "a2"})]
    # Fails on a1 (broken there), succeeds on a2.
    picky = stage("picky", tmp_path, agents=["a1", "a2"], retries=2, backoff_s=0.01,
                  run=["sh", "-c", 'echo "$AGENT" >> seen; [ "$AGENT" = a2 ]'])
    result, events = run_plan(plan([picky], agents), tmp_path / "state")
    assert result.ok and result.stages["picky"].attempts == 2
    assert (tmp_path / "seen").read_text().split() == ["a1", "a2"]
    assert result.stages["picky"].agent == "a2"
    assert [e.data["agent"] for e in events if e.type == "stage_started"] == ["a1", "a2"]
    with StateStore(tmp_path / "state") as store:
        assert [(a.n, a.agent, a.exit_code) for a in store.attempts(result.run_id)] == [
            (1, "a1", 1), (2, "a2", 0),
        ]
    shown = subprocess.run(
        [*ALFREDC, "show", "last", "--state", str(tmp_path / "state"), "--format", "json"],
        capture_output=True, text=True, timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    details = json.loads(shown.stdout)["stages"][0]["attempt_details"]
    assert [(d["n"], d["agent"]) for d in details] == [(1, "a1"), (2, "a2")]


def test_when_false_skips_the_stage_and_its_dependents_and_the_run_succeeds(tmp_path: Path) -> None:
    stages = [
        stage("build", tmp_path, run=["true"]),
        stage("deploy", tmp_path, run=["touch", "deployed"], after=["build"], when=False),
        stage("announce", tmp_path, run=["touch", "announced"], after=["deploy"]),
    ]
    result, events = run_plan(plan(stages), tmp_path / "state")
    assert result.state == "succeeded" and result.exit_status == 0
    states = [result.stages[n].state for n in ("build", "deploy", "announce")]
    assert states == ["succeeded", "skipped", "skipped"]
    assert not (tmp_path / "deployed").exists() and not (tmp_path / "announced").exists()
    assert [e.data["reason"] for e in events if e.type == "stage_skipped"] == [
        "`when` is false", "`deploy` was skipped",
    ]


def test_on_failure_stop_cancels_running_stages_and_starts_no_new_ones(tmp_path: Path) -> None:
    stages = [
        stage("broken", tmp_path, run=["sh", "-c", "sleep 0.2; exit 3"]),
        stage("long", tmp_path, run=["sh", "-c", "echo $$ > long.pid; exec sleep 30"]),
        stage("after_broken", tmp_path, run=["touch", "x"], after=["broken"]),
        stage("after_long", tmp_path, run=["touch", "y"], after=["long"]),
    ]
    started = time.monotonic()
    result, _ = run_plan(plan(stages, [agent(concurrency=4)]), tmp_path / "state", max_concurrency=4)
    assert time.monotonic() - started < 5
    states = {n: s.state for n, s in result.stages.items()}
    assert states == {
        "broken": "failed", "long": "cancelled", "after_broken": "upstream_failed", "after_long": "cancelled",
    }
    assert result.stages["broken"].error == "exit status 3" and result.exit_status == 1
    assert not _alive(int((tmp_path / "long.pid").read_text()))


def test_on_failure_continue_lets_independent_branches_finish(tmp_path: Path) -> None:
    stages = [
        stage("broken", tmp_path, run=["false"], on_failure="continue"),
        stage("after_broken", tmp_path, run=["touch", "x"], after=["broken"]),
        stage("deep", tmp_path, run=["touch", "z"], after=["after_broken"]),
        stage("other", tmp_path, run=["sh", "-c", "sleep 0.2; touch y"]),
    ]
    result, events = run_plan(plan(stages, [agent(concurrency=4)]), tmp_path / "state", max_concurrency=4)
    states = {n: s.state for n, s in result.stages.items()}
    assert states == {"broken": "failed", "after_broken": "upstream_failed", "deep": "upstream_failed",
                      "other": "succeeded"}
    assert (tmp_path / "y").exists() and not (tmp_path / "x").exists()
    assert result.exit_status == 1
    assert events[-1].type == "run_failed" and events[-1].data["failed"] == ["broken"]


def test_outputs_inputs_and_environment_reach_the_stage(tmp_path: Path) -> None:
    produce = stage(
        "produce", tmp_path,
        run=["sh", "-c", 'printf "path=out.bin\\n\\nempty=\\n" > "$ALFRED_OUTPUTS"'],
    )
    consume = stage(
        "consume", tmp_path / "sub", after=["produce"], inputs={"n": 3, "names": ["a", "b"]},
        env={"STAGE_VAR": "s"},
        run=["sh", "-c", 'cat "$ALFRED_INPUTS" > seen.json; '
             'echo "$ALFRED_RUN_ID $ALFRED_STAGE $ALFRED_ATTEMPT $AGENT_VAR $STAGE_VAR $(pwd)" > seen.txt'],
    )
    (tmp_path / "sub").mkdir()
    worker = agent("worker", env={"AGENT_VAR": "a"})
    result, _ = run_plan(plan([produce, consume], [worker]), tmp_path / "state")
    assert result.ok
    assert result.stages["produce"].outputs == {"path": "out.bin", "empty": ""}
    assert (tmp_path / "sub" / "seen.json").read_text() == '{"n": 3, "names": ["a", "b"]}'
    run_id, name, attempt, agent_var, stage_var, cwd = (tmp_path / "sub" / "seen.txt").read_text().split()
    assert (run_id, name, attempt, agent_var, stage_var) == (result.run_id, "consume", "1", "a", "s")
    assert Path(cwd).resolve() == (tmp_path / "sub").resolve()


def test_resume_reruns_only_what_did_not_succeed_and_reuses_outputs(tmp_path: Path) -> None:
    count = 'echo x >> "runs.$ALFRED_STAGE"'
    stages = [
        stage("first", tmp_path, run=["sh", "-c", count + '; echo v=42 > "$ALFRED_OUTPUTS"']),
        stage("second", tmp_path, after=["first"], run=["sh", "-c", count + "; [ -f fixed ]"]),
        stage("third", tmp_path, after=["second"], run=["sh", "-c", count]),
    ]
    the_plan = plan(stages)
    result, _ = run_plan(the_plan, tmp_path / "state")
    assert result.state == "failed" and result.stages["third"].state == "upstream_failed"
    (tmp_path / "fixed").touch()
    resumed, events = run_plan(the_plan, tmp_path / "state", resume=result.run_id)
    assert resumed.run_id == result.run_id and resumed.state == "succeeded"
    assert events[0].type == "run_resumed" and events[0].data["reused"] == ["first"]
    assert resumed.stages["first"].reused and resumed.stages["first"].outputs == {"v": "42"}
    assert resumed.stages["second"].attempts == 2  # attempt numbers continue across executions
    lines = {n: len((tmp_path / f"runs.{n}").read_text().split()) for n in ("first", "second", "third")}
    assert lines == {"first": 1, "second": 2, "third": 1}
    with StateStore(tmp_path / "state") as store:
        record = store.run(result.run_id)
        assert record is not None and record.state == "succeeded"
        seqs = [e.seq for e in store.events(result.run_id)]
        assert seqs == list(range(1, len(seqs) + 1))


def test_stage_ready_reaches_subscribers_but_is_not_stored(tmp_path: Path) -> None:
    first = stage("first", tmp_path, run=["true"])
    second = stage("second", tmp_path, run=["true"], after=("first",))
    result, events = run_plan(plan([first, second]), tmp_path / "state")
    ready = [e for e in events if e.type == "stage_ready"]
    assert [e.stage for e in ready] == ["first", "second"] and all(e.seq == 0 for e in ready)
    assert events.index(ready[1]) > next(i for i, e in enumerate(events) if e.type == "stage_succeeded")
    with StateStore(tmp_path / "state") as store:
        stored = store.events(result.run_id)
    assert "stage_ready" not in {e.type for e in stored}
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    # Every stored event reached the bus with the same number.
    assert [e.seq for e in events if e.type != "stage_ready"] == [e.seq for e in stored]


def test_a_subscriber_can_leave_out_event_types_and_stage_ready_is_built_only_when_wanted(
    tmp_path: Path,
) -> None:
    import trio

    from alfred_dsl.runtime import EventBus, RunOptions, execute

    def run(bus: EventBus, state: str) -> None:
        store = StateStore(tmp_path / state)
        stages = [stage("a", tmp_path, run=["true"]), stage("b", tmp_path, run=["true"], after=("a",))]
        the_plan = plan(stages)
        try:
            trio.run(lambda: execute(the_plan, store=store, options=RunOptions(jitter=0.0), bus=bus))
        finally:
            store.close()

    everything: list[str] = []
    no_ready: list[str] = []
    bus = EventBus()
    bus.subscribe(lambda e: everything.append(e.type))
    bus.subscribe(lambda e: no_ready.append(e.type), ignore=("stage_ready",))
    assert bus.wants("stage_ready") and bus.wants("stage_started")
    run(bus, "one")
    assert everything.count("stage_ready") == 2
    assert no_ready == [t for t in everything if t != "stage_ready"]
    # Only subscribers that leave it out (the CLI's view): the run builds no stage_ready at all.
    built: list[str] = []
    quiet = EventBus()
    unsubscribe = quiet.subscribe(lambda e: built.append(e.type), ignore=("stage_ready",))
    assert not quiet.wants("stage_ready") and quiet.wants("stage_succeeded")
    run(quiet, "two")
    assert "stage_ready" not in built and built.count("stage_succeeded") == 2
    unsubscribe()
    assert not quiet.wanted and not quiet.wants("stage_succeeded")


def test_stop_also_stops_stages_dispatched_in_the_same_tick(tmp_path: Path) -> None:
    # An async callable that raises before its first checkpoint fails its stage in the very
    # step its task starts; the stages dispatched beside it have not begun yet and must
    # not start their commands after the stop.
    (tmp_path / "r2_fails_at_once.py").write_text("async def boom(inputs):\n    raise ValueError('boom')\n")
    others = [
        stage(f"s{i}", tmp_path, run=["sh", "-c", f"sleep 0.3; touch ran{i}"]) for i in range(8)
    ]
    broken = stage("broken", tmp_path, agents=["py"], kind="python", call="r2_fails_at_once:boom")
    stages = [*others[:4], broken, *others[4:]]
    agents = [agent(concurrency=9), agent("py", kind="python")]
    result, events = run_plan(plan(stages, agents), tmp_path / "state", max_concurrency=9)
    assert result.stages["broken"].state == "failed"
    assert {s.state for n, s in result.stages.items() if n != "broken"} == {"cancelled"}
    time.sleep(0.5)
    assert not list(tmp_path.glob("ran*"))
    failed_at = next(e.seq for e in events if e.type == "stage_failed")
    assert not [e.stage for e in events if e.type == "stage_started" and e.seq > failed_at]


def test_a_timed_out_stage_ends_when_its_group_is_dead_even_if_zombies_await_a_reaper(tmp_path: Path) -> None:
    # SIGTERM ends the shell and its child at once; the child, orphaned, stays a zombie in
    # the group until init reaps it (late, or never in a container without an init).
    slow = stage("slow", tmp_path, run=["sh", "-c", "sleep 30 & sleep 30 & wait"], timeout_s=0.3)
    started = time.monotonic()
    result, _ = run_plan(plan([slow]), tmp_path / "state", kill_grace_s=5.0)
    assert result.stages["slow"].error == "timed out after 0.3s"
    assert time.monotonic() - started < 1.0


def test_runs_sharing_agent_slots_keep_the_agent_concurrency_across_them(tmp_path: Path) -> None:
    import trio
    from _runtime_plans import agent

    from alfred_dsl.runtime import AgentSlots, EventBus, RunOptions, execute

    # Each stage appends "start end" (its own clock) to a file shared by both runs.
    script = 's=$(date +%s.%N); sleep 0.2; echo "$s $(date +%s.%N)" >> ../spans'
    (tmp_path / "w").mkdir()
    shared = plan(
        [stage(f"s{i}", tmp_path / "w", run=["sh", "-c", script]) for i in range(3)],
        [agent(concurrency=2, run=("true",))],
    )
    slots = AgentSlots()
    results = []

    async def both() -> None:
        async def one(state: str) -> None:
            with StateStore(tmp_path / state) as store:
                results.append(await execute(
                    shared, store=store, options=RunOptions(max_concurrency=8, jitter=0.0),
                    bus=EventBus(), agent_slots=slots,
                ))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, "a")
            nursery.start_soon(one, "b")

    trio.run(both)
    assert [r.state for r in results] == ["succeeded", "succeeded"]
    assert slots.total() == 0  # every slot given back
    moments = []
    for line in (tmp_path / "spans").read_text().splitlines():
        start, end = map(float, line.split())
        moments += [(start, 1), (end, -1)]
    running, most = 0, 0
    for _, change in sorted(moments, key=lambda m: (m[0], m[1])):  # an end before a start at a tie
        running += change
        most = max(most, running)
    assert most == 2, f"at most 2 stages of `worker` at once over both runs, saw {most}"


def test_resume_ignores_an_outputs_file_left_by_an_unrecorded_attempt(tmp_path: Path) -> None:
    # The first run's process may have died after attempt 2 of `b` wrote its outputs file
    # but before the attempt was recorded: the resumed attempt 2 must not read that file.
    b = stage("b", tmp_path, run=["sh", "-c", "test -e ok"])
    first, _ = run_plan(plan([b]), tmp_path / "state")
    assert first.stages["b"].state == "failed" and first.stages["b"].attempts == 1
    run_dir = tmp_path / "state" / "runs" / first.run_id
    (run_dir / "b.2.outputs").write_text("stale=yes\n")
    (tmp_path / "ok").touch()
    resumed, _ = run_plan(plan([b]), tmp_path / "state", resume=first.run_id)
    assert resumed.stages["b"].state == "succeeded" and resumed.stages["b"].attempts == 2
    assert dict(resumed.stages["b"].outputs) == {}


def test_a_fresh_run_reads_the_outputs_its_stage_wrote(tmp_path: Path) -> None:
    writer = stage("w", tmp_path, run=["sh", "-c", 'echo "n=1" >> "$ALFRED_OUTPUTS"'])
    result, _ = run_plan(plan([writer]), tmp_path / "state")
    assert dict(result.stages["w"].outputs) == {"n": "1"}
