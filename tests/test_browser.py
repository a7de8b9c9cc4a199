"""The HTML report and docs in a real headless Chromium: no console errors, one bar per attempt.

Chromium comes from Debian. The tests never install it themselves: ``.ci/run`` does, as an
announced set-up step, when ``CI`` or ``ALFRED_INSTALL_BROWSER`` is set. Without it the tests
are skipped with a message saying so, except in CI where a missing browser is a failure.
Screenshots are written to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest
from _report_plans import feature_plan
from _report_runs import gated_spending_run_report, real_run_report, write_run

from alfred_dsl.cli._report import load_report
from alfred_dsl.render._docs import doc_from_plan, write_html
from alfred_dsl.render._report import report_to_html

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

# Installed first in <head>: records script errors and failed resource loads.
_WATCH = (
    "<script>window.__errors=[];addEventListener('error',function(e){"
    "__errors.push(String(e.message||(e.target&&(e.target.src||e.target.href))||'error'))},true);</script>"
)
# Run last in <body>: writes what the test checks into the DOM for --dump-dom.
_PROBE = """<script>(function(){
var bars=document.querySelectorAll('.bar'), drawn=0;
bars.forEach(function(b){var r=b.getBoundingClientRect(); if(r.width>0&&r.height>0){drawn++;}});
function seen(sel){return Array.prototype.filter.call(document.querySelectorAll(sel),function(e){
  var r=e.getBoundingClientRect(); return r.width>0&&r.height>0;}).length;}
var out=document.createElement('pre'); out.id='probe-result'; out.style.display='none';
out.textContent=JSON.stringify({bars:bars.length, drawn:drawn, errors:window.__errors,
  resources:performance.getEntriesByType('resource').length,
  svgs:document.querySelectorAll('svg g.stage').length,
  approvals:seen('table.approvals tbody tr'), spend:seen('table.spend tbody tr'),
  stop:seen('#budget-stop'), pwned:!!window.__pwned,
  decided:Array.prototype.map.call(document.querySelectorAll('table.approvals td'),function(e){
    return e.textContent.trim();})});
document.body.appendChild(out);})();</script>"""


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromium() -> str:
    found = _find_chromium()
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("headless Chromium is required in CI: .ci/run installs it when CI is set")
    pytest.skip("headless Chromium is not installed: run `ALFRED_INSTALL_BROWSER=1 .ci/run`, "
                "or `apt-get install chromium` yourself")


def _run_chromium(
    page: Path, tmp_path: Path, *extra: str, size: str = "1400,900"
) -> subprocess.CompletedProcess[str]:
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
        "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={size}", *extra, page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def _probe(
    html: str, tmp_path: Path, *, screenshot: str | None = None, size: str = "1400,900"
) -> tuple[dict[str, object], str]:
    """Load ``html`` once: what the probe measured, Chromium's stderr, and (with ``screenshot``)
    a PNG of the page in test-artifacts/ (one browser start for both: it is the slow part)."""
    probed = html.replace("<head>", "<head>" + _WATCH, 1).replace("</body>", _PROBE + "</body>", 1)
    page = tmp_path / "probe.html"
    page.write_text(probed, encoding="utf-8")
    extra = ["--virtual-time-budget=3000", "--dump-dom"]
    if screenshot is not None:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / screenshot).unlink(missing_ok=True)
        extra.append(f"--screenshot={ARTIFACTS / screenshot}")
    done = _run_chromium(page, tmp_path, *extra, size=size)
    match = re.search(r'<pre id="probe-result"[^>]*>(.*?)</pre>', done.stdout, re.S)
    assert match, f"the probe did not run:\n{done.stderr[-2000:]}"
    result: dict[str, object] = json.loads(unescape(match.group(1)))  # --dump-dom escapes the <pre>
    return result, done.stderr


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("rror" in line or "ERROR" in line)]


def _screenshot_of(name: str) -> Path:
    target = ARTIFACTS / name
    assert target.is_file() and target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no screenshot {name}"
    return target


def test_run_report_in_chromium(tmp_path: Path) -> None:
    write_run(tmp_path / ".alfred", hostile=True)
    loaded, problem = load_report(tmp_path / ".alfred", "last")
    assert loaded is not None, problem
    html = report_to_html(loaded)
    result, stderr = _probe(html, tmp_path, screenshot="run-report.png", size="1300,1200")
    assert result["errors"] == [] and _console_errors(stderr) == []
    assert result["resources"] == 0                       # self-contained: nothing fetched
    assert result["bars"] == len(loaded.attempts) == 6    # one bar per attempt
    assert result["drawn"] == 6                           # and each one is visible
    assert _screenshot_of("run-report.png").stat().st_size > 10_000


def test_docs_site_in_chromium(tmp_path: Path) -> None:
    write_html([doc_from_plan(feature_plan())], tmp_path / "site")
    html = (tmp_path / "site" / "feature_development.html").read_text(encoding="utf-8")
    result, stderr = _probe(html, tmp_path, screenshot="docs-page.png", size="1300,1500")
    assert result["errors"] == [] and _console_errors(stderr) == []
    assert result["resources"] == 0
    assert result["svgs"] == 7                            # the graph is drawn without any script
    assert _screenshot_of("docs-page.png").stat().st_size > 10_000


def test_report_of_a_real_run_with_a_retry_in_chromium(tmp_path: Path) -> None:
    _chromium()                                           # skip before running anything without a browser
    page, attempts = real_run_report(tmp_path)
    assert [n for stage, n, _ in attempts if stage == "flaky"] == [1, 2]
    result, stderr = _probe(page.read_text(encoding="utf-8"), tmp_path)
    assert result["errors"] == [] and _console_errors(stderr) == []
    assert result["resources"] == 0
    assert result["bars"] == result["drawn"] == len(attempts) == 3   # one visible bar per real attempt


def test_report_of_a_run_with_an_approval_and_a_budget_stop_in_chromium(tmp_path: Path) -> None:
    _chromium()
    comment = "fine <script>window.__pwned=1</script><img src=x onerror=window.__pwned=1>"
    page = gated_spending_run_report(tmp_path, comment)
    result, stderr = _probe(page.read_text(encoding="utf-8"), tmp_path, screenshot="run-report-gates.png",
                            size="1300,1600")
    assert result["errors"] == [] and _console_errors(stderr) == []
    assert result["resources"] == 0                        # the <img> in the comment is text, not fetched
    assert result["pwned"] is False                        # and no script of the comment ran
    assert result["approvals"] == 1 and result["stop"] == 1
    assert result["spend"] == 4                            # draft, edit, the total and the budget
    cells = result["decided"]
    assert isinstance(cells, list) and cells[1:3] == ["approved", "alice"] and cells[-1] == comment
    assert _screenshot_of("run-report-gates.png").stat().st_size > 10_000
