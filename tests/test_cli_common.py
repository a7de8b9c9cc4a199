"""Options shared by several commands (alfred_dsl/cli/_common.py)."""

from __future__ import annotations

import click
import pytest

from alfred_dsl.cli._common import duration_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5", 5.0), ("0.5", 0.5), ("2s", 2.0), ("500ms", 0.5), ("1m30s", 90.0), ("0", 0.0)],
)
def test_grace_accepts_durations_and_plain_seconds(text: str, seconds: float) -> None:
    assert duration_seconds(None, None, text) == seconds


@pytest.mark.parametrize("text", ["1x", "-1", "", "nan", "inf", "1s30m"])
def test_grace_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(click.BadParameter, match="expected a duration"):
        duration_seconds(None, None, text)


WORKFLOW = """\
agent a {
  kind = command
  run  = "true"
}
workflow w {
  stage s {
    agent = a
  }
}
"""


def test_run_reports_a_bad_grace_as_a_usage_error(alfredc, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "w.alfred").write_text(WORKFLOW, encoding="utf-8")
    result = alfredc("run", "w.alfred", "--grace", "1x", cwd=tmp_path)
    assert result.status == 2
    assert "expected a duration" in result.stderr
    assert not (tmp_path / ".alfred").exists()
