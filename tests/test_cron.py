"""One cron meaning: what `alfredc check` accepts as a `schedule` is what the worker can tick."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from _service_setup import alfredc, flow, write

from alfred_dsl._cron import cron_problem
from alfred_dsl.service._queue import QueueError, latest_tick

#: Expressions a first user may write, valid and not, in several of croniter's corners.
EXPRESSIONS = [
    "0 9 * * 1-5", "*/5 * * * *", "@daily", "@hourly", "0 0 * * 5L", "0 0 * * L5", "0 0 L * *",
    "0 0 * * fri#2", "0 0 * * fri#6", "0 22-2 * * *", "* * * 5-2 *", "0 0 30 2 *", "0 0 29 2 *",
    "0 0 1 * MON#2", "*/0 * * * *", "60 * * * *", "0 0 15W * *", "0 0 LW * *", "H * * * *",
    "0 0 * * 7", "0 0 ? * *", "@reboot",
]


def _worker_ticks(expression: str) -> bool:
    """Whether the worker computes a tick for ``expression`` (croniter, which it runs on)."""
    from croniter import croniter

    try:
        croniter(expression, datetime(2026, 1, 1).astimezone()).get_prev(datetime)
    except (ValueError, KeyError):
        return False
    return True


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_check_accepts_exactly_what_the_worker_can_tick(expression: str) -> None:
    assert (cron_problem(expression) is None) == _worker_ticks(expression)
    if cron_problem(expression) is None:
        assert latest_tick(expression, datetime(2026, 11, 27, 10, 0).timestamp()) > 0
    else:
        with pytest.raises(QueueError):
            latest_tick(expression, datetime(2026, 11, 27, 10, 0).timestamp())


def test_five_fields_only_even_where_croniter_takes_six() -> None:
    assert _worker_ticks("* * * * * 30")  # croniter reads a seconds field; the language does not
    problem = cron_problem("* * * * * 30")
    assert problem is not None and problem[0].startswith("a cron expression has 5 fields")


def test_last_weekday_of_the_month_points_at_the_item_and_says_how_to_write_it(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([("only", "true", [])], extra='  schedule = "0 0 * * 5L"\n'))
    result = alfredc("check", "flow.alfred", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    [diag] = json.loads(result.stdout)["diagnostics"]
    assert diag["code"] == "A310"
    assert diag["message"] == (
        "invalid cron schedule `0 0 * * 5L`: `5L` is not a valid day of week (0-7 or sun-sat);"
        " the last one of the month is written `L5`"
    )
    line = (tmp_path / "flow.alfred").read_text().splitlines()[diag["line"] - 1]
    assert line[diag["column"] - 1 : diag["end_column"] - 1] == "5L"


def test_a_schedule_that_never_fires_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([("only", "true", [])], extra='  schedule = "0 0 30 2 *"\n'))
    result = alfredc("check", "flow.alfred", cwd=tmp_path)
    assert result.returncode == 1
    assert "error[A310]: invalid cron schedule `0 0 30 2 *`: the schedule never fires" in result.stdout


def test_the_worker_reports_a_refused_schedule_and_keeps_working(tmp_path: Path) -> None:
    write(tmp_path / "flow.alfred", flow([("only", "true", [])], extra='  schedule = "0 0 * * 5L"\n'))
    result = alfredc("worker", "flow.alfred", "--until-empty", "--poll", "50ms", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert "schedule file has errors: " in result.stderr
    where = f"{tmp_path / 'flow.alfred'}:7:23"
    assert f"{where}: error[A310]: invalid cron schedule `0 0 * * 5L`: `5L` is not a valid" in result.stderr
