"""The queue on real SQLite: claim order, atomic claims across processes, leases, cron ticks, the CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from _service_setup import alfredc, flow, status, write
from conftest import run_alfredc
from hypothesis import given, settings, strategies as st

from alfred_dsl._values import parse_at, parse_priority
from alfred_dsl.service import RunQueue, Schedule
from alfred_dsl.service._queue import latest_tick

T0 = 1_800_000_000.0  # a fixed moment: claims and ticks are checked with explicit clocks


def test_claim_takes_highest_priority_then_oldest_and_nothing_before_its_time(tmp_path: Path) -> None:
    with RunQueue(tmp_path / "state") as queue:
        low = queue.submit(entry="f.alfred", workflow="w", priority=0, now=T0).id
        old = queue.submit(entry="f.alfred", workflow="w", priority=1, now=T0 + 1).id
        timed = queue.submit(entry="f.alfred", workflow="w", priority=3, at=T0 + 100, now=T0 + 2).id
        new = queue.submit(entry="f.alfred", workflow="w", priority=1, now=T0 + 3).id
        urgent = queue.submit(entry="f.alfred", workflow="w", priority=3, now=T0 + 4).id
        order = []
        while (entry := queue.claim("w1", lease_s=600, now=T0 + 10)) is not None:
            order.append(entry.id)
        assert order == [urgent, old, new, low]
        assert queue.claim("w1", lease_s=60, now=T0 + 99) is None
        claimed = queue.claim("w1", lease_s=60, now=T0 + 100)
        assert claimed is not None and claimed.id == timed
        assert claimed.wait_s == 0  # it could not start before its --at time


def test_an_expired_lease_is_claimed_again_and_a_held_one_is_not(tmp_path: Path) -> None:
    with RunQueue(tmp_path / "state") as queue:
        run_id = queue.submit(entry="f.alfred", workflow="w", now=T0).id
        first = queue.claim("dead", lease_s=5, now=T0)
        assert first is not None and first.id == run_id
        assert queue.claim("other", lease_s=5, now=T0 + 4) is None
        again = queue.claim("other", lease_s=5, now=T0 + 6)
        assert again is not None and again.id == run_id and again.claims == 2 and again.worker == "other"
        # The worker that lost it learns so at its next heartbeat.
        assert queue.renew("dead", [run_id], lease_s=5) == {run_id}
        assert queue.renew("other", [run_id], lease_s=5) == set()


_CLAIMER = """
import sys, time
from alfred_dsl.service import RunQueue
queue = RunQueue(sys.argv[1])
got = []
while (entry := queue.claim(sys.argv[2], lease_s=600)) is not None:
    got.append(entry.id)
print(" ".join(got))
"""


def test_processes_racing_for_the_queue_never_claim_the_same_run(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with RunQueue(state) as queue:
        ids = {queue.submit(entry="f.alfred", workflow="w").id for _ in range(60)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, str(state), f"w{i}"], stdout=subprocess.PIPE, text=True
        )
        for i in range(4)
    ]
    claimed = [run_id for proc in procs for run_id in proc.communicate(timeout=60)[0].split()]
    assert sorted(claimed) == sorted(ids)  # every run once: no duplicate, none lost


_TICKER = """
import sys
from alfred_dsl.service import RunQueue, Schedule
queue = RunQueue(sys.argv[1])
schedule = Schedule(entry=sys.argv[2], workflow="nightly", cron="*/5 * * * *")
print(len(queue.enqueue_due([schedule], since=float(sys.argv[3]) - 600, now=float(sys.argv[3]))))
"""


def test_a_cron_tick_is_enqueued_once_however_many_workers_see_it(tmp_path: Path) -> None:
    state, entry = tmp_path / "state", tmp_path / "f.alfred"
    RunQueue(state).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", _TICKER, str(state), str(entry), str(T0 + 30)],
                         stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    added = [int(proc.communicate(timeout=60)[0]) for proc in procs]
    assert sorted(added) == [0, 0, 0, 1]
    schedule = Schedule(entry=str(entry), workflow="nightly", cron="*/5 * * * *")
    with RunQueue(state) as queue:
        assert queue.enqueue_due([schedule], since=T0, now=T0 + 200) == []  # still the same tick
        [later] = queue.enqueue_due([schedule], since=T0 + 200, now=T0 + 300)
        assert later.tick == T0 + 300 and later.not_before == T0 + 300
        assert [e.tick for e in queue.entries(states=("queued",))] == [T0, T0 + 300]


def test_latest_tick_follows_local_cron_time() -> None:
    friday_10 = datetime(2026, 11, 27, 10, 17, 5).timestamp()  # a Friday
    assert latest_tick("0 9 * * 1-5", friday_10) == datetime(2026, 11, 27, 9, 0).timestamp()
    sunday = datetime(2026, 11, 29, 12, 0).timestamp()
    assert latest_tick("0 9 * * 1-5", sunday) == datetime(2026, 11, 27, 9, 0).timestamp()
    exact = datetime(2026, 11, 27, 9, 0).timestamp()
    assert latest_tick("0 9 * * *", exact) == exact  # the tick itself is due


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=1e9, max_value=4e9), st.sampled_from(["*/5 * * * *", "0 9 * * 1-5", "30 */2 * * *"])
)
def test_latest_tick_is_a_tick_at_or_before_now(now: float, cron: str) -> None:
    from croniter import croniter

    tick = latest_tick(cron, now)
    assert tick <= now and now - tick < 8 * 86400
    assert croniter.match(cron, datetime.fromtimestamp(tick))


def test_parse_at_and_priority() -> None:
    now = datetime(2026, 11, 27, 10, 0).timestamp()
    assert parse_at("+90s", now=now) == now + 90
    assert parse_at("+1h30m", now=now) == now + 5400
    assert parse_at("11:30", now=now) == now + 5400
    assert parse_at("09:00", now=now) == now + 23 * 3600  # already passed today: tomorrow
    assert parse_at("2026-11-28T10:00", now=now) == now + 86400
    for bad in ("soon", "+", "+5x", "25:00", "2026-13-01"):
        assert parse_at(bad, now=now) is None
    assert [parse_priority(p) for p in ("low", "Medium", "high", "critical", "7")] == [0, 1, 2, 3, 7]
    with pytest.raises(ValueError, match="unknown priority"):
        parse_priority("urgent")


def test_an_invalid_cron_schedule_is_a_check_error_at_its_position(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([("only", "true", [])], extra='  schedule = "0 25 * * 1-5"\n'))
    result = alfredc("check", "flow.alfred", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1
    [diag] = json.loads(result.stdout)["diagnostics"]
    assert diag["code"] == "A310"
    line = (tmp_path / "flow.alfred").read_text().splitlines()[diag["line"] - 1]
    assert line[diag["column"] - 1 : diag["end_column"] - 1] == "25"


def test_submit_checks_the_file_and_queues_nothing_when_it_has_errors(tmp_path: Path) -> None:
    write(tmp_path / "bad.alfred", flow([("only", "true", ["missing"])]))
    result = alfredc("submit", "bad.alfred", cwd=tmp_path)
    assert result.returncode == 1 and "error[" in result.stderr
    assert "Traceback" not in result.stderr
    listing = alfredc("status", "--format", "json", cwd=tmp_path, check=True)
    assert json.loads(listing.stdout)["runs"] == []


def test_submit_status_and_cancel_of_a_queued_run(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([("only", "true", [])]))
    result = alfredc("submit", "flow.alfred", "--priority", "high", "--at", "+1h", "--format", "json",
                     cwd=tmp_path, check=True)
    submitted = json.loads(result.stdout)
    assert submitted["workflow"] == "flow" and submitted["priority"] == 2
    assert submitted["not_before"] > time.time() + 3500
    data = status(tmp_path, "last")
    assert data["id"] == submitted["id"] and data["state"] == "scheduled" and data["priority"] == "high"
    assert alfredc("pause", submitted["id"], cwd=tmp_path).returncode == 0
    assert status(tmp_path, submitted["id"])["state"] == "paused"
    text = alfredc("status", cwd=tmp_path, check=True).stdout
    assert submitted["id"] in text and "paused" in text
    assert alfredc("cancel", submitted["id"][:18], cwd=tmp_path).returncode == 0  # a unique prefix works
    assert status(tmp_path, submitted["id"])["state"] == "cancelled"
    bad = alfredc("submit", "flow.alfred", "--priority", "urgent", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown priority" in bad.stderr
    bad = alfredc("submit", "flow.alfred", "--at", "someday", cwd=tmp_path)
    assert bad.returncode == 2 and "--at" in bad.stderr


_LOOKING = [
    ["status"], ["status", "--format", "json"], ["status", "last"], ["cancel", "x"], ["pause", "x"],
    ["resume", "x"], ["metrics"], ["report", "last"], ["report"],
]


def test_looking_at_a_directory_without_state_creates_nothing(tmp_path: Path) -> None:
    outcomes = {" ".join(args): run_alfredc(*args, cwd=tmp_path) for args in _LOOKING}
    assert list(tmp_path.iterdir()) == [], "a reading command created the state directory"
    assert outcomes["status"].status == 0 and "queue: empty" in outcomes["status"].stdout
    empty = {"workers": [], "runs": [], "queue_length": 0}
    assert json.loads(outcomes["status --format json"].stdout) == empty
    for command in ("status last", "cancel x", "pause x", "resume x", "report last"):
        assert outcomes[command].status == 2 and "no run" in outcomes[command].stderr, command
    assert outcomes["metrics"].status == 0 and outcomes["report"].status == 0


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as conn:
        return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master")}


def test_status_of_a_run_made_by_alfredc_run_reads_without_adding_the_queue(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([("a", "true", []), ("b", "true", ["a"])]))
    assert run_alfredc("run", "flow.alfred", cwd=tmp_path).status == 0
    db = tmp_path / ".alfred" / "state.db"
    before = _tables(db)
    assert "queue" not in before
    with RunQueue(tmp_path / ".alfred", read_only=True) as queue:
        (run_id,) = queue.all_ids()
        assert queue.entries() == [] and queue.resolve(run_id[:10]) == run_id
    result = run_alfredc("status", run_id, "--format", "json", cwd=tmp_path)
    assert result.status == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["state"] == "succeeded" and [s["name"] for s in data["stages"]] == ["a", "b"]
    latest = json.loads(run_alfredc("status", "last", "--format", "json", cwd=tmp_path).stdout)
    assert latest["id"] == run_id                # `last` includes runs started by `alfredc run`
    assert run_alfredc("status", cwd=tmp_path).status == 0
    assert _tables(db) == before
