"""The HTML run report, read from a real SQLite state store."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path

import pytest
from _report_runs import SCRIPT, real_run_report, write_run
from click.testing import CliRunner

from alfred_dsl.cli._report import load_report, report
from alfred_dsl.compiler._graph import measured_critical_path
from alfred_dsl.render._report import mask, report_to_html


class _Collector(HTMLParser):
    """Counts tags by class and collects the text of script tags and the external references."""

    def __init__(self) -> None:
        super().__init__()
        self.classes: list[list[str]] = []
        self.scripts = 0
        self.external: list[str] = []
        self.bars: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        self.classes.append(classes)
        if tag == "script":
            self.scripts += 1
        if "bar" in classes:
            self.bars.append(values)
        for key in ("src", "href"):
            value = values.get(key) or ""
            if re.match(r"(https?:)?//", value):
                self.external.append(value)


def _parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / ".alfred"


def test_report_has_one_bar_per_attempt_with_retries_visible(state: Path) -> None:
    write_run(state)
    loaded, problem = load_report(state, "last")
    assert problem is None and loaded is not None
    page = _parse(report_to_html(loaded))
    assert page.scripts == 0 and page.external == []
    bars = [(b["data-stage"], b["data-attempt"], b["class"]) for b in page.bars]
    assert len(bars) == 6
    assert [b for b in bars if b[0] == "build"] == [
        ("build", "1", "bar failed on-path"),
        ("build", "2", "bar failed on-path"),
        ("build", "3", "bar succeeded on-path"),
    ]
    assert ("lint", "1", "bar succeeded") in bars


def test_lanes_are_per_agent_and_overlapping_attempts_do_not_share_a_row(state: Path) -> None:
    write_run(state)
    loaded, _ = load_report(state, "last")
    assert loaded is not None
    lanes = {lane.agent: lane for lane in loaded.lanes}
    assert list(lanes) == ["net", "worker", "linter"]
    assert [[a.stage for a in row] for row in lanes["worker"].rows] == [["build", "build", "build", "test"]]
    for lane in loaded.lanes:
        for row in lane.rows:
            for first, second in pairwise(row):
                assert first.end_s <= second.start_s


def test_planned_and_measured_critical_paths(state: Path) -> None:
    write_run(state)
    loaded, _ = load_report(state, "last")
    assert loaded is not None
    assert [name for name, _ in loaded.planned_path] == ["fetch", "build", "test"]
    assert loaded.planned_duration_s == 10
    assert [name for name, _ in loaded.measured_path] == ["fetch", "build", "test"]
    assert loaded.measured_duration_s == pytest.approx(12.0)
    build = next(s for s in loaded.stages if s.name == "build")
    assert (build.exit_code, len(build.attempts)) == (0, 3)
    assert build.duration_s == pytest.approx(6.9)


def test_measured_path_follows_the_dependency_that_finished_last() -> None:
    finished = {"a": 1.0, "b": 5.0, "c": 3.0, "d": 6.0}
    after = {"b": ["a"], "c": ["a"], "d": ["c", "b"]}
    assert measured_critical_path(finished, after) == ["a", "b", "d"]
    assert measured_critical_path({}, {}) == []


def test_log_tail_is_the_last_lines_and_secrets_are_masked(state: Path) -> None:
    write_run(state, secret="hunter2-token")
    loaded, _ = load_report(state, "last", secrets=["hunter2-token"])
    assert loaded is not None
    html = report_to_html(loaded)
    assert "hunter2" not in html
    build = next(s for s in loaded.stages if s.name == "build")
    assert build.log_tail.splitlines() == [f"line {i}" for i in range(60, 100)]
    assert mask("a hunter2-token b", ["hunter2-token", "hunter2"]) == "a *** b"


def test_secret_named_by_the_plan_is_masked(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import sqlite3

    write_run(state, secret="s3cr3t-value")
    db = sqlite3.connect(state / "state.db")
    plan = json.loads(db.execute("SELECT plan FROM runs").fetchone()[0])
    plan["secrets"] = ["DEPLOY_TOKEN"]
    db.execute("UPDATE runs SET plan = ?", (json.dumps(plan),))
    db.commit()
    db.close()
    monkeypatch.setenv("DEPLOY_TOKEN", "s3cr3t-value")
    loaded, _ = load_report(state, "last")
    assert loaded is not None
    assert "s3cr3t" not in report_to_html(loaded)


def test_script_in_stage_names_and_outputs_is_escaped(state: Path) -> None:
    write_run(state, hostile=True)
    loaded, _ = load_report(state, "last")
    assert loaded is not None
    html = report_to_html(loaded)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = _parse(html)
    assert page.scripts == 0
    assert sum(1 for b in page.bars if b["data-stage"] == f"x{SCRIPT}") == 1


def test_cli_writes_the_file_and_refuses_unknown_runs(state: Path, tmp_path: Path) -> None:
    run_id = write_run(state)
    out = tmp_path / "report.html"
    runner = CliRunner()
    result = runner.invoke(report, [run_id[:10], "--state", str(state), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "<title>Run 20260101-000000-abcdef · release</title>" in out.read_text(encoding="utf-8")
    unknown = runner.invoke(report, ["nope", "--state", str(state), "-o", str(out)])
    assert unknown.exit_code == 1 and "no run `nope`" in unknown.output
    missing = runner.invoke(report, ["last", "--state", str(tmp_path / "absent")])
    assert missing.exit_code == 1 and "no run state" in missing.output
    assert not (tmp_path / "absent").exists()     # reading never creates a state directory


def test_report_of_a_real_run_with_a_retry_has_one_bar_per_attempt(tmp_path: Path) -> None:
    page_path, attempts = real_run_report(tmp_path)
    assert attempts == [("flaky", 1, 3), ("flaky", 2, 0), ("report", 1, 0)]
    html = page_path.read_text(encoding="utf-8")
    page = _parse(html)
    assert page.scripts == 0 and page.external == []
    bars = [(b["data-stage"], int(b["data-attempt"] or 0), (b["class"] or "").split()[1]) for b in page.bars]
    assert sorted(bars) == sorted(
        (stage, n, "succeeded" if code == 0 else "failed") for stage, n, code in attempts
    )
    first = next(b for b in page.bars if b["data-stage"] == "flaky" and b["data-attempt"] == "1")
    assert "exit 3" in (first["title"] or "")        # the hover says why the attempt failed
    assert "<title>Run " in html and " · retry</title>" in html


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of ``directory`` with its bytes and modification time, but SQLite's WAL
    sidecars (a reader of a WAL database may need to create its shared-memory index)."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def test_report_and_status_read_the_state_directory_without_changing_it(tmp_path: Path) -> None:
    state_dir = tmp_path / ".alfred"
    run_id = write_run(state_dir)
    before = _snapshot(state_dir)
    from alfred_dsl.cli._service import status

    runner = CliRunner()
    written = runner.invoke(report, [run_id, "--state", str(state_dir), "-o", str(tmp_path / "r.html")])
    assert written.exit_code == 0, written.output
    looked = runner.invoke(status, [run_id, "--state", str(state_dir), "--format", "json"])
    assert looked.exit_code == 0, looked.output
    assert '"state"' in looked.output
    assert _snapshot(state_dir) == before
    absent = tmp_path / "absent"
    assert runner.invoke(status, ["--state", str(absent)]).exit_code == 0
    assert runner.invoke(report, ["last", "--state", str(absent)]).exit_code == 1
    assert not absent.exists()                    # looking never creates a state directory
