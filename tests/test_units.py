"""The one module for human-readable durations: both notations, pinned."""

from __future__ import annotations

import pytest

from alfred_dsl._values import format_duration, format_elapsed, format_seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (0, "0s"), (0.5, "500ms"), (5400, "1h30m"), (172800, "2d"), (-90, "-1m30s")],
)
def test_format_duration_writes_the_dsl_notation(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("seconds", "text"), [(None, "—"), (1.234, "1.23s"), (75.2, "1m15s")])
def test_format_seconds_keeps_decimals_under_a_minute(seconds: float | None, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (-3, "0.0s"), (0.44, "0.4s"), (12.34, "12.3s"), (125, "2m05s"), (3720, "1h02m")],
)
def test_format_elapsed_reads_like_a_clock(seconds: float | None, text: str) -> None:
    assert format_elapsed(seconds) == text
