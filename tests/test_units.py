"""The one values module: durations (both notations and the one parser) pinned."""

from __future__ import annotations

import json

import pytest

from alfred_dsl._resources import schema_path
from alfred_dsl._values import DURATION_SHAPE, format_duration, format_elapsed, format_seconds, parse_duration
from alfred_dsl.compiler.syntax import classify_number


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



def test_the_schema_checks_durations_with_the_parser_s_own_shape() -> None:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    forms = schema["$defs"]["duration"]["anyOf"]
    text_form = next(option for option in forms if option.get("type") == "string")
    assert text_form["pattern"] == f"^{DURATION_SHAPE}$"
    assert parse_duration("1d2h3m4s5ms") == 93784.005 and parse_duration("1m30") is None


@pytest.mark.parametrize("text", ["9ms", "1s13ms", "2h59ms", "1h30m"])
def test_a_duration_has_the_same_value_in_the_dsl_and_in_yaml(text: str) -> None:
    # 9ms read as 9 * 0.001 used to be 0.009000000000000001 in an .alfred file, 0.009 in YAML
    assert classify_number(text) == ("duration", parse_duration(text), None)
    assert classify_number("9ms")[1] == 0.009
