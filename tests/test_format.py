"""`alfredc fmt`: canonical layout, idempotence, comments kept, same document, CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from test_lower import programs
from test_syntax import SPEC_EXAMPLE

from alfred_dsl._source import SourceFile
from alfred_dsl.compiler._format import format_source
from alfred_dsl.compiler._lower import parse_document

ROOT = Path(__file__).resolve().parent.parent


def _parses(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return False
    return parse_document(SourceFile(path.name, text))[0] is not None


# Every example that parses (the broken ones that fail to parse are checked elsewhere).
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*.alfred") if _parses(p))

MESSY = """# header comment

import "a.alfred"
import "b.alfred"
agent spec-builder {   # trailing on header
  kind = command # what kind
  # own line comment
  run = ["python",
     "tools/spec.py", # the tool
     "--feature", "${inputs.feature}"]
  capabilities=["requirements","specification"]


  env = {LOG_LEVEL="info"
    OTHER = 2}
}
workflow w {
  description = "x"
  param p: int = 3
  defaults { retries = 2; backoff = 2s }
  stage a after b,c { when = not (params.x==1 or params.y) and params.z
    timeout = 1h30m }
  stage e {}
  use t(x = 1, y = "z") as al after a
  on failure { run = "echo" }
  # last words in workflow
}
# end comment
"""

EXPECTED = """# header comment

import "a.alfred"
import "b.alfred"

agent spec-builder {  # trailing on header
  kind         = command  # what kind
  # own line comment
  run          = [
    "python",
    "tools/spec.py",  # the tool
    "--feature",
    "${inputs.feature}",
  ]
  capabilities = ["requirements", "specification"]

  env = { LOG_LEVEL = "info", OTHER = 2 }
}

workflow w {
  description = "x"
  param p: int = 3
  defaults {
    retries = 2
    backoff = 2s
  }
  stage a after b, c {
    when    = not (params.x == 1 or params.y) and params.z
    timeout = 1h30m
  }
  stage e {}
  use t(x = 1, y = "z") as al after a
  on failure {
    run = "echo"
  }
  # last words in workflow
}
# end comment
"""


def fmt(text: str) -> str:
    out, diags = format_source(text, "test.alfred")
    assert out is not None, diags
    return out


def document(text: str) -> dict:  # type: ignore[type-arg]
    doc, diags = parse_document(SourceFile("x.alfred", text))
    assert doc is not None, diags
    return doc.data


def comments(text: str) -> list[str]:
    return [line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line and '"' not in line]


def test_canonical_layout() -> None:
    assert fmt(MESSY) == EXPECTED


def test_idempotent_and_same_document() -> None:
    for text in (MESSY, SPEC_EXAMPLE):
        once = fmt(text)
        assert fmt(once) == once
        assert document(once) == document(text)
        assert comments(once) == comments(text)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_keep_their_document(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    once = fmt(text)
    assert fmt(once) == once
    assert document(once) == document(text)


def _doc_blocks() -> list[tuple[str, str]]:
    """Every ```alfred code block of the docs and README: what users copy.

    All of them, parsed or not: a block that stops parsing must fail here, not drop out of the
    parametrisation unnoticed.
    """
    blocks = []
    for page in sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]):
        text = page.read_text(encoding="utf-8")
        for index, match in enumerate(re.finditer(r"```alfred\n(.*?)```", text, re.S)):
            blocks.append((f"{page.name}#{index}", match.group(1)))
    return blocks


@pytest.mark.parametrize("name,text", _doc_blocks(), ids=lambda value: value if "#" in value else "")
def test_doc_code_blocks_format_idempotently(name: str, text: str) -> None:
    parsed, diagnostics = parse_document(SourceFile(name, text))
    assert parsed is not None, [f"{d.code} {d.message}" for d in diagnostics]
    once = fmt(text)
    assert fmt(once) == once, name
    assert document(once) == document(text), name


@settings(max_examples=60, deadline=None)
@given(programs())
def test_generated_programs_format_idempotently(program: tuple[str, list[str], list[str]]) -> None:
    text = program[0].replace("  stage", "stage ").replace(" = ", "=")  # un-canonical spacing
    once = fmt(text)
    assert fmt(once) == once
    assert document(once) == document(text)


def test_long_lists_break_and_short_ones_stay_inline() -> None:
    items = ", ".join(f'"argument-number-{i}"' for i in range(10))
    out = fmt(f"agent a {{\n  run = [{items}]\n  caps = [\"a\",\n  \"b\"]\n}}\n")
    assert '  run  = [\n    "argument-number-0",\n' in out
    assert '    "argument-number-9",\n  ]\n' in out
    assert '  caps = ["a", "b"]\n' in out


def test_comments_everywhere_are_kept_in_order() -> None:
    text = """workflow w { # c1
  # c2
  param l: list = [1, # c3
    2]
  use t(a = 1, # c4
     b = [1, 2] # c5
  ) as x after y # c6
  stage s {
    inputs = { a = 1, # c7
      b = { c = 2 } } # c8
    # c9
  } # c10
  # c11
} # c12
"""
    once = fmt(text)
    assert [w for w in once.split() if w[:1] == "c" and w[1:].isdigit()] == [f"c{i}" for i in range(1, 13)]
    assert fmt(once) == once
    assert document(once) == document(text)


def test_syntax_errors_are_not_formatted() -> None:
    out, diags = format_source("agent a {\n  kind command\n}\n", "x.alfred")
    assert out is None and [d.code for d in diags] == ["A102"]


def alfredc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alfred_dsl", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_cli_check_diff_and_write(tmp_path: Path) -> None:
    messy = tmp_path / "messy.alfred"
    clean = tmp_path / "clean.alfred"
    messy.write_text(MESSY, encoding="utf-8")
    clean.write_text(EXPECTED, encoding="utf-8")

    result = alfredc("fmt", "--check", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == f"would reformat {messy}\n"

    result = alfredc("fmt", "--diff", "messy.alfred", "clean.alfred", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("--- a/messy.alfred\n+++ b/messy.alfred\n")
    assert "-  kind = command # what kind\n" in result.stdout
    assert messy.read_text(encoding="utf-8") == MESSY  # --diff writes nothing

    result = alfredc("fmt", "messy.alfred", "clean.alfred", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "reformatted messy.alfred" in result.stderr
    assert messy.read_text(encoding="utf-8") == EXPECTED
    assert alfredc("fmt", "--check", "messy.alfred", cwd=tmp_path).returncode == 0


def test_cli_reports_syntax_errors_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.alfred"
    broken.write_text("agent a {\n  kind command\n}\n", encoding="utf-8")
    result = alfredc("fmt", "broken.alfred", cwd=tmp_path)
    assert result.returncode == 1
    assert "broken.alfred:2:8: error[A102]: expected `=` after `kind`" in result.stderr
    assert broken.read_text(encoding="utf-8") == "agent a {\n  kind command\n}\n"
    assert "Traceback" not in result.stderr
    assert alfredc("fmt", "missing.alfred", cwd=tmp_path).returncode == 2


def test_fmt_refuses_yaml_and_json_documents(tmp_path: Path) -> None:
    document = tmp_path / "release.yaml"
    document.write_text("agents: {}\n", encoding="utf-8")
    result = alfredc("fmt", "release.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "only .alfred files are formatted" in result.stderr
    assert document.read_text(encoding="utf-8") == "agents: {}\n"
