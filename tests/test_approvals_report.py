"""Where approvals and spend appear, with real processes and the real state database: the
live view of a run waiting for a decision, `show`, the events file, the HTML report, the
metrics (text, JSON, Prometheus)."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _terminal import run_on_terminal
from test_approvals import BUDGETED, PY, _alfredc, _start, _wait_until_waiting, _write

from alfred_dsl.service._prometheus import serve_prometheus

HOSTILE = "ship it <script>window.__pwned=1</script>"


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _approved_run(tmp_path: Path, comment: str = HOSTILE) -> str:
    """A real run whose gate alice approves, with ``comment``, from another process; its id."""
    _write(tmp_path)
    proc = _start(tmp_path, "--events", "events.jsonl")
    try:
        waiting = _wait_until_waiting(tmp_path, proc)
        decided = _alfredc(tmp_path, "approve", "last", "gate", "--as", "alice", "-m", comment)
        assert decided.returncode == 0, decided.stderr
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    return str(waiting["id"])


def test_report_show_and_events_say_who_approved_when_and_why(tmp_path: Path) -> None:
    run_id = _approved_run(tmp_path)
    written = _alfredc(tmp_path, "report", "last", "-o", "report.html")
    assert written.returncode == 0, written.stderr
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<h2 id="approvals">'):html.index("<h2", html.index('<h2 id="approvals">') + 5)]
    row = re.search(r'<tr data-stage="gate">(.*?)</tr>', section, re.S)
    assert row is not None, section
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    assert 'class="state s-approved">approved<' in cells[1]
    assert cells[2] == "alice"                                   # who decided (--as)
    assert cells[3].startswith("lead") and "alice, bob" in cells[3]   # who could
    assert re.fullmatch(r"\d+\.\ds", cells[6])                   # how long the run waited
    # The comment is text, never markup: the <script> is escaped everywhere in the page.
    assert cells[7] == "ship it &lt;script&gt;window.__pwned=1&lt;/script&gt;"
    assert "<script>window.__pwned" not in html
    # The approval's wait is its own lane of the timeline.
    assert "(approval)" in html

    shown = _alfredc(tmp_path, "show", "last").stdout
    assert re.search(r"\ngate +succeeded .* \(approval\)\n", shown), shown   # no agent: a person
    approved = r"gate: approved by alice at \S+ \S+ after \d+\.\ds: "
    assert re.search(approved + re.escape(HOSTILE), shown), shown
    data = json.loads(_alfredc(tmp_path, "show", "last", "--format", "json").stdout)
    gate = data["approvals"]["gate"]
    assert gate["decided_by"] == "alice" and gate["comment"] == HOSTILE
    assert gate["waited_s"] == pytest.approx(gate["decided_at"] - gate["requested"], abs=0.01)

    events = _events(tmp_path / "events.jsonl")
    requested = next(e for e in events if e["type"] == "approval_requested")
    assert requested["data"]["command"] == f"alfredc approve {run_id} gate"
    assert requested["data"]["deadline"] == pytest.approx(requested["time"] + 3600, abs=5)
    decided = next(e for e in events if e["type"] == "approval_decided")
    assert decided["data"]["by"] == "alice" and decided["data"]["comment"] == HOSTILE
    assert decided["data"]["decision"] == "approved" and decided["data"]["timed_out"] is False
    assert decided["data"]["waited_s"] == pytest.approx(gate["waited_s"], abs=0.01)


def test_report_and_metrics_of_a_run_still_waiting(tmp_path: Path) -> None:
    _write(tmp_path)
    proc = _start(tmp_path)
    server = serve_prometheus(tmp_path / ".alfred", 0)
    try:
        waiting = _wait_until_waiting(tmp_path, proc)
        page = _alfredc(tmp_path, "report", "last", "-o", "-").stdout
        row = re.search(r'<tr data-stage="gate">(.*?)</tr>', page, re.S)
        assert row is not None
        assert 's-waiting">waiting<' in row.group(1)
        assert re.search(r"\d+m\d\ds left", row.group(1))       # the time left before on_timeout
        assert f"alfredc approve {waiting['id']} gate" in row.group(1)
        shown = _alfredc(tmp_path, "show", "last").stdout
        assert re.search(
            r"gate: waiting for approval by lead \(alice, bob\), 59m\d\ds left \(then rejected\):"
            rf" alfredc approve {waiting['id']} gate", shown,
        ), shown

        metrics = _alfredc(tmp_path, "metrics").stdout
        assert "approvals: 1 waiting now (release 1); 0 decided" in metrics
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10) as answer:
            body = answer.read().decode()
        assert 'alfred_approvals_waiting{workflow="release"} 1.0' in body
        assert _alfredc(tmp_path, "reject", "last", "gate", "--as", "bob").returncode == 0
        proc.communicate(timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10) as answer:
            body = answer.read().decode()
        assert 'alfred_approvals_waiting{workflow="release"}' not in body   # decided: no longer waiting
        assert 'alfred_approval_wait_seconds{stat="count"} 1.0' in body
    finally:
        server.shutdown()
        proc.kill()
    data = json.loads(_alfredc(tmp_path, "metrics", "--format", "json").stdout)
    assert data["approvals"]["waiting"] == 0 and data["approvals"]["rejected"] == 1
    # The period's report (Markdown) has the decisions too.
    period = _alfredc(tmp_path, "report", "--since", "1h").stdout
    assert "## Approvals" in period and "| rejected | 1 |" in period and "| approved | 0 |" in period


def test_live_view_shows_a_stage_waiting_for_approval(tmp_path: Path) -> None:
    _write(tmp_path)
    found: dict[str, Any] = {}

    def approve_once_drawn() -> None:
        found.update(_wait_until_waiting(tmp_path))
        time.sleep(1.0)  # the live view redraws 8 times a second
        found["approved"] = _alfredc(tmp_path, "approve", "last", "gate", "--as", "alice").returncode

    approver = threading.Thread(target=approve_once_drawn, daemon=True)
    approver.start()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
    status, output = run_on_terminal(
        [sys.executable, "-m", "alfred_dsl", "run", "release.alfred"], env, cwd=tmp_path, timeout=60
    )
    approver.join(timeout=30)
    text = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", output.decode("utf-8", errors="replace"))
    assert status == 0 and found.get("approved") == 0, text
    assert "1 waiting for approval" in text                              # the header counts it
    assert re.search(r"⏸ +gate +waiting for approval by lead, 59m\d\ds left", text), text
    assert f"approve: alfredc approve {found['id']} gate" in text        # and says how
    assert "approval_decided" not in text and "gate approved by alice" in text  # the decision's line


def test_spend_in_show_events_report_and_metrics_with_a_budget_stop(tmp_path: Path) -> None:
    spend = "'cost_usd=2.10\\\\ntokens=500\\\\n'"
    (tmp_path / "release.alfred").write_text(BUDGETED.format(py=PY, spend=spend), encoding="utf-8")
    result = _alfredc(tmp_path, "run", "release.alfred", "--events", "events.jsonl")
    assert result.returncode == 1, result.stdout + result.stderr
    # The plain view's last event line names the spend against the budget.
    last_event = r"run_failed costly \(.*budget exceeded: usd 6\.70 > 5, spent usd 4\.20 of 5, tokens 1000\)"
    assert re.search(last_event, result.stdout), result.stdout

    shown = _alfredc(tmp_path, "show", "last").stdout
    per_stage = "\n  one: usd 2.10, tokens 500\n  two: usd 2.10, tokens 500"
    assert "spend: usd 4.20 of 5, tokens 1000" + per_stage in shown
    data = json.loads(_alfredc(tmp_path, "show", "last", "--format", "json").stdout)
    assert data["spend"]["stages"] == {"one": {"usd": 2.1, "tokens": 500}, "two": {"usd": 2.1, "tokens": 500}}

    final = _events(tmp_path / "events.jsonl")[-1]
    assert final["type"] == "run_failed"
    assert final["data"]["spend"]["spent"] == {"usd": pytest.approx(4.2), "tokens": 1000}
    assert final["data"]["spend"]["budget"] == {"usd": 5}

    html = _alfredc(tmp_path, "report", "last", "-o", "-").stdout
    section = html[html.index('<h2 id="spend">'):html.index("<h2>Stages</h2>")]
    rows = {
        m.group(1): re.findall(r'<td class="num">([^<]*)', m.group(2))
        for m in re.finditer(r'<tr data-stage="([^"]+)"><td>[^<]*</td>(.*?)</tr>', section, re.S)
    }
    assert rows == {"one": ["2.10", "500"], "two": ["2.10", "500"]}      # three never ran: no spend
    total = re.search(r'<tr class="total">(.*?)</tr>', section, re.S)
    assert total is not None and re.findall(r'<td class="num">([^<]*)', total.group(1)) == ["4.20", "1000"]
    assert re.search(r'<tr class="budget"><td>budget</td><td class="num">5\.00 ', section)
    stop = re.search(r'<p class="reason" id="budget-stop">(.*?)</p>', section, re.S)
    assert stop is not None and "budget exceeded: usd 6.70 &gt; 5" in stop.group(1)
    assert "Spent (usd)</span><b>4.20 of 5.00</b>" in html

    metrics = _alfredc(tmp_path, "metrics").stdout
    assert "spend: usd 4.20, tokens 1000; budget stops: 1" in metrics
    assert "  costly: usd 4.20, tokens 1000 over 1 run, budget stops: 1" in metrics
    figures = json.loads(_alfredc(tmp_path, "metrics", "--format", "json").stdout)["spend"]
    assert figures["workflows"] == [
        {"workflow": "costly", "usd": pytest.approx(4.2), "tokens": 1000, "runs": 1, "budget_stops": 1}
    ]
    period = _alfredc(tmp_path, "report", "--since", "1h", "--format", "html").stdout
    assert "<h2>Spend</h2>" in period
    assert "<td>costly</td><td>4.20</td><td>1000</td><td>1</td><td>1</td>" in period  # runs, stops
    server = serve_prometheus(tmp_path / ".alfred", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10) as answer:
            body = answer.read().decode()
    finally:
        server.shutdown()
    usd = re.search(r'alfred_spend_usd\{workflow="costly"\} (\S+)', body)
    assert usd is not None and float(usd.group(1)) == pytest.approx(4.2)
    assert 'alfred_spend_tokens{workflow="costly"} 1000.0' in body
    assert 'alfred_budget_stops{workflow="costly"} 1.0' in body
