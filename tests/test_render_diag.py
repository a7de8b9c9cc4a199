"""The diagnostics printer: text as in spec section 4, JSON, SARIF 2.1.0."""

from __future__ import annotations

import json
import time
import unicodedata

from hypothesis import given, settings, strategies as st

from alfred_dsl._diagnostics import Diagnostic, Edit, Label, Severity, error, warning
from alfred_dsl._render_diag import exit_status, render_json, render_sarif, render_text
from alfred_dsl._source import SourceFile

SPEC_SOURCE = "\n" * 11 + "  agent = implementor\n"


def spec_diagnostic() -> Diagnostic:
    source = SourceFile("examples/broken.alfred", SPEC_SOURCE)
    start = SPEC_SOURCE.index("implementor")
    return error(
        "A201",
        "unknown agent `implementor`",
        source.span(start, start + len("implementor")),
        help="did you mean `implementer`?",
    )


def caret_line(text: str) -> str:
    return next(line for line in text.splitlines() if "^" in line)


def source_line(text: str, number: int) -> str:
    return next(line for line in text.splitlines() if line.lstrip().startswith(f"{number} |"))


def display_width(text: str) -> int:
    return sum(
        2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in text
    )


def test_text_matches_the_spec_example() -> None:
    out = render_text([spec_diagnostic()], colour=False)
    assert out.startswith(
        "examples/broken.alfred:12:11: error[A201]: unknown agent `implementor`\n"
        "   |\n"
        "12 |   agent = implementor\n"
        "   |           ^^^^^^^^^^^ did you mean `implementer`?\n"
    )
    assert "error: 1 error, 0 warnings" in out
    assert out.rstrip().endswith("run 'alfredc explain A201' for more")


def test_json_matches_the_spec_example() -> None:
    doc = json.loads(render_json([spec_diagnostic()]))
    (diag,) = doc["diagnostics"]
    expected = {
        "code": "A201",
        "severity": "error",
        "message": "unknown agent `implementor`",
        "file": "examples/broken.alfred",
        "line": 12,
        "column": 11,
        "end_line": 12,
        "end_column": 22,
        "notes": ["did you mean `implementer`?"],
    }
    assert {k: diag[k] for k in expected} == expected
    assert doc["summary"] == {"errors": 1, "warnings": 0}


def test_nothing_to_report_prints_nothing_but_json_still_has_a_document() -> None:
    assert render_text([], colour=True) == ""
    assert json.loads(render_json([])) == {
        "format_version": 1,
        "diagnostics": [],
        "summary": {"errors": 0, "warnings": 0},
    }
    sarif = json.loads(render_sarif([]))
    assert sarif["runs"][0]["results"] == []


def test_colour_only_when_asked() -> None:
    assert "\x1b[" not in render_text([spec_diagnostic()], colour=False)
    coloured = render_text([spec_diagnostic()], colour=True)
    assert "\x1b[" in coloured
    assert "error[A201]" in coloured


def test_tabs_do_not_misplace_carets() -> None:
    text = "\t\tagent = x\n"
    source = SourceFile("t.alfred", text)
    start = text.index("x")
    out = render_text([error("A201", "unknown agent `x`", source.span(start, start + 1))], colour=False)
    shown = source_line(out, 1)
    carets = caret_line(out)
    assert "\t" not in out
    assert shown.index("x") == carets.index("^")


def test_wide_and_combining_characters_do_not_misplace_carets() -> None:
    text = 'x = "日本語e\u0301"; agent = bad\n'
    source = SourceFile("w.alfred", text)
    start = text.index("bad")
    out = render_text([error("A201", "unknown agent `bad`", source.span(start, start + 3))], colour=False)
    shown = source_line(out, 1)
    carets = caret_line(out)
    # The caret sits at the display column of "bad", counting wide chars as 2 and accents as 0.
    assert display_width(shown[: shown.index("bad")]) == carets.index("^")
    assert carets.count("^") == 3


def test_carets_under_a_wide_span_are_as_wide_as_it() -> None:
    text = "name = 日本\n"
    source = SourceFile("w.alfred", text)
    start = text.index("日")
    out = render_text([error("A101", "odd", source.span(start, start + 2))], colour=False)
    assert caret_line(out).count("^") == 4


def test_span_over_several_lines_shows_its_first_line_and_a_note() -> None:
    text = "stage a {\n  agent = x\n}\n"
    source = SourceFile("m.alfred", text)
    out = render_text([error("A306", "no agent", source.span(0, len(text) - 1))], colour=False)
    assert "1 | stage a {" in out
    assert caret_line(out).count("^") == len("stage a {")
    assert "= note: the span continues to line 3" in out
    assert "2 |" not in out


def test_secondary_labels_use_dashes_on_their_own_lines() -> None:
    text = "stage a after b {}\nstage b after a {}\n"
    source = SourceFile("c.alfred", text)
    a_after = text.index("b {}")
    b_after = text.index("a {}", a_after)
    diag = error(
        "A401",
        "dependency cycle: a -> b -> a",
        source.span(a_after, a_after + 1),
        "a waits for b",
        secondary=[Label(source.span(b_after, b_after + 1), "b waits for a")],
        notes=["remove one of the edges"],
    )
    lines = render_text([diag], colour=False).splitlines()
    assert any(line.endswith("^ a waits for b") for line in lines)
    assert any(line.rstrip().endswith("- b waits for a") and "^" not in line for line in lines)
    assert any(line.strip() == "= note: remove one of the edges" for line in lines)


def test_label_and_help_both_shown() -> None:
    text = "agent = implementor\n"
    source = SourceFile("h.alfred", text)
    diag = error(
        "A201", "unknown agent", source.span(8, 19), "not declared", help="did you mean `implementer`?"
    )
    out = render_text([diag], colour=False)
    assert caret_line(out).endswith("^ not declared")
    assert " = help: did you mean `implementer`?" in out


def test_summary_counts_and_plurals() -> None:
    text = "a\nb\n"
    source = SourceFile("s.alfred", text)
    diags = [
        error("A101", "one", source.span(0, 1)),
        error("A101", "two", source.span(2, 3)),
        warning("A501", "three", source.span(0, 1)),
    ]
    assert "error: 2 errors, 1 warning\n" in render_text(diags, colour=False)
    only_warning = render_text([diags[2]], colour=False)
    assert "warning: 1 warning\n" in only_warning
    assert "alfredc explain A501" in only_warning


def test_diagnostic_without_span_names_its_file() -> None:
    diag = Diagnostic(
        code="A001", severity=Severity.ERROR, message="cannot read `nope.alfred`", file="nope.alfred"
    )
    out = render_text([diag], colour=False)
    assert out.startswith("nope.alfred: error[A001]: cannot read `nope.alfred`\n")
    item = json.loads(render_json([diag]))["diagnostics"][0]
    assert item["file"] == "nope.alfred" and item["line"] is None
    result = json.loads(render_sarif([diag]))["runs"][0]["results"][0]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "nope.alfred"
    assert exit_status([diag]) == 2


def test_control_characters_from_the_input_never_reach_the_terminal() -> None:
    text = "agent = \x1b[31mred\x07\n"
    source = SourceFile("ctl\x1b.alfred", text)
    out = render_text([error("A101", "unexpected character `\x1b`", source.span(8, 9))], colour=False)
    assert "\x1b" not in out and "\x07" not in out
    assert caret_line(out).index("^") == source_line(out, 1).index("\ufffd")


def test_a_ten_megabyte_line_is_cut_around_the_span_quickly() -> None:
    text = "x" * 10_000_000 + "@" + "y" * 100 + "\n"
    source = SourceFile("big.alfred", text)
    start = time.process_time()
    out = render_text(
        [error("A101", "unexpected character `@`", source.span(10_000_000, 10_000_001))], colour=False
    )
    assert time.process_time() - start < 2
    assert len(out) < 2000
    shown = source_line(out, 1)
    assert shown.index("@") == caret_line(out).index("^")


def test_empty_span_at_end_of_file_gets_one_caret() -> None:
    text = "workflow w {\n"
    source = SourceFile("e.alfred", text)
    out = render_text([error("A103", "unclosed block", source.span(len(text), len(text)))], colour=False)
    assert caret_line(out).count("^") == 1


def test_json_related_and_fix_fields() -> None:
    text = "agent = implementor\n"
    source = SourceFile("f.alfred", text)
    span = source.span(8, 19)
    diag = error(
        "A201",
        "unknown agent",
        span,
        secondary=[Label(source.span(0, 5), "declared here")],
        fix=[Edit(span, "implementer")],
    )
    item = json.loads(render_json([diag]))["diagnostics"][0]
    assert item["name"] == "unknown-agent"
    assert item["related"] == [
        {
            "file": "f.alfred",
            "line": 1,
            "column": 1,
            "end_line": 1,
            "end_column": 6,
            "message": "declared here",
        }
    ]
    assert item["fix"][0]["replacement"] == "implementer"


def test_sarif_shape() -> None:
    text = "agent = implementor\nx\n"
    source = SourceFile("dir/my file.alfred", text)
    diags = [
        error("A201", "unknown agent", source.span(8, 19), help="did you mean `implementer`?"),
        warning("A501", "unused agent", source.span(20, 21)),
    ]
    doc = json.loads(render_sarif(diags))
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("sarif-2.1.0.json")
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "alfredc"
    assert driver["version"] and driver["informationUri"].startswith("https://")
    assert [rule["id"] for rule in driver["rules"]] == ["A201", "A501"]
    assert all(rule["shortDescription"]["text"] for rule in driver["rules"])
    assert run["columnKind"] == "unicodeCodePoints"
    first, second = run["results"]
    assert first["ruleId"] == "A201" and first["level"] == "error"
    assert driver["rules"][first["ruleIndex"]]["id"] == "A201"
    assert "did you mean `implementer`?" in first["message"]["text"]
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "dir/my%20file.alfred"
    assert location["region"] == {"startLine": 1, "startColumn": 9, "endLine": 1, "endColumn": 20}
    assert second["level"] == "warning"


def test_exit_status() -> None:
    source = SourceFile("x.alfred", "a\n")
    err = error("A101", "e", source.span(0, 1))
    warn = warning("A501", "w", source.span(0, 1))
    assert exit_status([]) == 0
    assert exit_status([warn]) == 0
    assert exit_status([warn], strict=True) == 1
    assert exit_status([err, warn]) == 1


line_chars = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
)


@settings(max_examples=150, deadline=None)
@given(text=st.text(line_chars, min_size=1, max_size=60), data=st.data())
def test_any_line_renders_without_control_characters(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start, len(text)))
    source = SourceFile("p.alfred", text + "\n")
    out = render_text([error("A101", "problem", source.span(start, end), "here")], colour=False)
    assert out.count("^") >= 1
    assert all(ch == "\n" or unicodedata.category(ch) != "Cc" for ch in out)
    for fmt in (render_json, render_sarif):
        json.loads(fmt([error("A101", text, source.span(start, end))]))


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="^"), max_size=40
    ),
    word=st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="^"),
        min_size=1,
        max_size=10,
    ),
)
def test_ascii_carets_sit_exactly_under_the_span(prefix: str, word: str) -> None:
    text = prefix + word + " tail\n"
    source = SourceFile("p.alfred", text)
    out = render_text(
        [error("A101", "problem", source.span(len(prefix), len(prefix) + len(word)))], colour=False
    )
    shown = source_line(out, 1)
    carets = caret_line(out)
    column = carets.index("^")
    assert shown[column : column + len(word)] == word
    assert carets[column:].split(" ")[0] == "^" * len(word)


def test_an_unreadable_import_is_an_error_of_the_importing_file() -> None:
    source = SourceFile("main.alfred", 'import "sub"\n')
    import_error = error("A001", "cannot import `sub`", source.span(7, 12))
    assert exit_status([import_error]) == 1
    unreadable = Diagnostic(code="A001", severity=Severity.ERROR, message="cannot read", file="x.alfred")
    assert exit_status([import_error, unreadable]) == 2


def test_a_message_quoting_a_huge_token_is_cut_in_every_format() -> None:
    token = "x" * 1_000_000
    source = SourceFile("big.alfred", token + "\n")
    diag = error("A102", f"unexpected `{token}`", source.span(0, len(token)), f"found `{token}`", help=token)
    for output in (render_text([diag]), render_json([diag]), render_sarif([diag])):
        assert len(output) < 20_000
        assert "more characters)" in output
