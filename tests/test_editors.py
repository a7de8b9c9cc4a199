"""The editor files in editors/, the YAML form's schema, and the language server's layering."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from alfred_dsl.compiler.syntax import KEYWORDS

REPO = Path(__file__).resolve().parent.parent
EDITORS = REPO / "editors"


def _alternation_words(pattern: str) -> set[str]:
    group = re.search(r"\\b\(([a-z|]+)\)\\b", pattern)
    assert group is not None, pattern
    return set(group.group(1).split("|"))


def test_textmate_grammar_highlights_exactly_the_grammars_keywords() -> None:
    grammar = json.loads((EDITORS / "vscode/syntaxes/alfred.tmLanguage.json").read_text())
    repository = grammar["repository"]
    words = _alternation_words(repository["keyword"]["match"])
    words |= _alternation_words(repository["constant"]["patterns"][0]["match"])
    assert words == set(KEYWORDS)


def test_vim_syntax_highlights_exactly_the_grammars_keywords() -> None:
    text = (EDITORS / "vim/syntax/alfred.vim").read_text()
    words = {word for line in text.splitlines() if line.startswith("syn keyword ")
             for word in line.split()[3:]}
    assert words == set(KEYWORDS)
    assert "setfiletype alfred" in (EDITORS / "vim/ftdetect/alfred.vim").read_text()


def test_vscode_extension_files_point_at_each_other() -> None:
    package = json.loads((EDITORS / "vscode/package.json").read_text())
    contributes = package["contributes"]
    assert contributes["languages"][0]["extensions"] == [".alfred"]
    for relative in (contributes["languages"][0]["configuration"], contributes["grammars"][0]["path"]):
        json.loads((EDITORS / "vscode" / relative).read_text())
    assert contributes["grammars"][0]["scopeName"] == "source.alfred"


def _schema() -> dict[str, object]:
    shown = subprocess.run([sys.executable, "-m", "alfred_dsl", "schema"], capture_output=True, text=True,
                           check=True)
    return dict(json.loads(shown.stdout))


def _document(path: Path) -> object:
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


GOOD = sorted([*REPO.glob("examples/*.yaml"), *REPO.glob("examples/*.json")])
# In examples/broken/ the .json files are golden outputs; the inputs are .yaml (and .alfred).
BROKEN = sorted(p for p in REPO.glob("examples/broken/*.yaml") if not p.name.startswith("A109"))


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_alfredc_schema_accepts_every_bundled_yaml_and_json_example(path: Path) -> None:
    jsonschema.validate(_document(path), _schema())


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.name)
def test_alfredc_schema_rejects_the_broken_yaml_examples(path: Path) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_document(path), _schema())


def test_there_are_examples_of_both_kinds() -> None:
    assert len(GOOD) >= 2 and BROKEN


_BACK_ENDS = ("runtime", "render", "service", "cli")


def test_the_language_server_depends_on_the_compiler_only() -> None:
    for module in (REPO / "alfred_dsl/lsp").glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.replace("alfred_dsl.", "").split(".")
                assert parts[0] not in _BACK_ENDS, f"{module.name} imports {name}"


def test_pygls_is_imported_only_by_the_lsp_command() -> None:
    probe = "import sys, alfred_dsl.cli._check, alfred_dsl.cli._lsp; print('pygls' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"
