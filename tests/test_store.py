"""The SQLite state store: schema, WAL, batching, resume claims, several processes at once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alfred_dsl.runtime import Event, StateStore, StoreError


def _new_run(store: StateStore, workflow: str = "wf", stages: tuple[str, ...] = ("a", "b")) -> str:
    run_id = store.new_run_id()
    store.create_run(
        run_id=run_id, workflow=workflow, source="/x/flow.alfred", entry="flow.alfred",
        params={"n": 1}, cli_params={"n": "1"}, plan={"workflow": workflow}, stages=stages,
        started=time.time(),
    )
    return run_id


def test_the_database_is_sqlite_in_wal_mode_with_the_documented_tables(tmp_path: Path) -> None:
    with StateStore(tmp_path / ".alfred") as store:
        _new_run(store)
    db = sqlite3.connect(tmp_path / ".alfred" / "state.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "stages", "attempts", "events"} <= tables
    columns = {r[1] for r in db.execute("PRAGMA table_info(attempts)")}
    assert {"run", "stage", "n", "started", "finished", "exit_code", "error", "log_path"} <= columns


def test_queued_writes_are_invisible_until_flushed_then_all_committed(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    run_id = _new_run(store)
    store.queue_stage(run_id, "a", state="succeeded", outputs={"k": "v"}, attempts=1)
    for i in range(3):
        store.add_event(Event(type="stage_ready", run_id=run_id, time=float(i), stage="a"))
    other = sqlite3.connect(tmp_path / "state.db")
    assert other.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
    store.flush()
    assert other.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 3
    assert [(s.name, s.state, dict(s.outputs)) for s in store.stages(run_id)] == [
        ("a", "succeeded", {"k": "v"}), ("b", "pending", {}),
    ]
    assert [e.seq for e in store.events(run_id, after=1)] == [2, 3]
    store.close()


def test_several_versions_of_a_row_in_one_flush_keep_the_last(tmp_path: Path) -> None:
    with StateStore(tmp_path) as store:
        run_id = _new_run(store)
        store.queue_stage(run_id, "b", state="running", attempts=1, agent="x")
        store.queue_attempt(run_id, "b", 1, started=1.0, agent="x")
        store.queue_attempt(run_id, "b", 1, started=1.0, pid=4242, log_path="b.1.log", agent="x")
        store.queue_stage(run_id, "a", state="running", attempts=1)
        store.queue_stage(run_id, "b", state="succeeded", attempts=1, agent="x", outputs={"k": 1})
        store.queue_attempt(run_id, "b", 1, started=1.0, finished=2.0, exit_code=0, agent="x")
        store.flush()
        assert [(s.name, s.state, s.agent, dict(s.outputs)) for s in store.stages(run_id)] == [
            ("a", "running", None, {}), ("b", "succeeded", "x", {"k": 1}),
        ]
        assert [(a.n, a.finished, a.exit_code, a.agent) for a in store.attempts(run_id)] == [(1, 2.0, 0, "x")]


def test_runs_are_found_by_last_id_or_unique_prefix(tmp_path: Path) -> None:
    with StateStore(tmp_path) as store:
        first = _new_run(store)
        time.sleep(0.01)
        second = _new_run(store, workflow="other")
        assert store.resolve_run_id("last") == second
        assert store.resolve_run_id(first) == first
        assert store.resolve_run_id(first[:-2]) in (first, None)  # unique prefixes resolve
        assert store.resolve_run_id("nope") is None
        assert [r.id for r in store.runs()] == [second, first]
        assert [r.id for r in store.runs(workflow="wf")] == [first]
        record = store.run(first)
        assert record is not None and record.cli_params == {"n": "1"} and record.entry == "flow.alfred"


def test_a_run_owned_by_a_live_process_cannot_be_claimed_but_a_dead_ones_can(tmp_path: Path) -> None:
    with StateStore(tmp_path) as store:
        run_id = _new_run(store)
        sleeper = subprocess.Popen(["sleep", "30"])
        try:
            store._db.execute("UPDATE runs SET pid = ? WHERE id = ?", (sleeper.pid, run_id))
            with pytest.raises(StoreError, match="is still running"):
                store.claim_run(run_id)
        finally:
            sleeper.kill()
            sleeper.wait()
        record = store.claim_run(run_id)  # its owner is gone (like after kill -9)
        assert record.id == run_id
        assert store.run(run_id).pid == os.getpid()  # type: ignore[union-attr]
        with pytest.raises(StoreError, match="no run"):
            store.claim_run("missing")


def test_a_paused_run_of_a_live_worker_cannot_be_claimed_but_a_dead_workers_can(tmp_path: Path) -> None:
    with StateStore(tmp_path) as store:
        run_id = _new_run(store)
        sleeper = subprocess.Popen(["sleep", "30"])
        try:
            store._db.execute("UPDATE runs SET pid = ?, state = 'paused' WHERE id = ?", (sleeper.pid, run_id))
            with pytest.raises(StoreError, match=f"run `{run_id}` is still paused"):
                store.claim_run(run_id)
            assert store.run(run_id).state == "paused"  # type: ignore[union-attr]
        finally:
            sleeper.kill()
            sleeper.wait()
        record = store.claim_run(run_id)
        assert record.state == "paused"
        assert store.run(run_id).state == "running"  # type: ignore[union-attr]


def test_read_only_store_never_creates_the_state_directory_and_refuses_writes(tmp_path: Path) -> None:
    assert StateStore.open_readonly(tmp_path / ".alfred") is None
    assert not (tmp_path / ".alfred").exists()
    with StateStore(tmp_path / ".alfred") as store:
        run_id = _new_run(store)
    before = sorted(p.name for p in (tmp_path / ".alfred").iterdir())
    reader = StateStore.open_readonly(tmp_path / ".alfred")
    assert reader is not None
    with reader:
        assert [r.id for r in reader.runs()] == [run_id]
        assert [s.name for s in reader.stages(run_id)] == ["a", "b"]
        with pytest.raises(StoreError):
            _new_run(reader)
    after = {p.name for p in (tmp_path / ".alfred").iterdir()}
    assert after - set(before) <= {"state.db-wal", "state.db-shm"}  # SQLite's own shared-memory files
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "state.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        StateStore.open_readonly(tmp_path / "bad")


OLD_ATTEMPTS = """
CREATE TABLE attempts (
    run TEXT NOT NULL, stage TEXT NOT NULL, n INTEGER NOT NULL, started REAL NOT NULL, finished REAL,
    exit_code INTEGER, error TEXT, log_path TEXT, pid INTEGER, PRIMARY KEY (run, stage, n)
)
"""


def test_a_database_from_before_attempt_agents_is_read_and_then_upgraded(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute(OLD_ATTEMPTS)
    db.execute("INSERT INTO attempts (run, stage, n, started) VALUES ('r', 'a', 1, 1.0)")
    db.commit()
    db.close()
    with StateStore(tmp_path) as store:  # creates the other tables, adds the column
        assert [(a.stage, a.agent) for a in store.attempts("r")] == [("a", None)]
        store.queue_attempt("r", "a", 2, started=2.0, agent="builder")
    reader = StateStore.open_readonly(tmp_path)
    assert reader is not None
    with reader:
        assert [(a.n, a.agent) for a in reader.attempts("r")] == [(1, None), (2, "builder")]


def test_an_unusable_state_directory_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError, match="cannot use state directory"):
        StateStore(tmp_path / "file")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "state.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        StateStore(tmp_path / "bad")


WRITER = """
import sys, time
from alfred_dsl.runtime import Event, StateStore
store = StateStore(sys.argv[1])
for r in range(20):
    run_id = store.new_run_id() + sys.argv[2]
    store.create_run(run_id=run_id, workflow="wf", source="s", entry=None, params={}, cli_params={},
                     plan={}, stages=[f"s{i}" for i in range(50)], started=time.time())
    for i in range(50):
        store.queue_stage(run_id, f"s{i}", state="succeeded", attempts=1)
        store.add_event(Event(type="stage_succeeded", run_id=run_id, time=time.time(), stage=f"s{i}"))
    store.flush()
store.close()
"""


def test_several_processes_writing_one_state_directory_do_not_corrupt_it(tmp_path: Path) -> None:
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), f"-{n}"], stderr=subprocess.PIPE, text=True
        )
        for n in range(4)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 80
    assert db.execute("SELECT COUNT(*) FROM stages WHERE state = 'succeeded'").fetchone()[0] == 4000
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 4000
