"""Reading files, YAML/JSON with positions, imports and the merged workspace (alfred_dsl.compiler.load)."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from alfred_dsl._diagnostics import Diagnostic
from alfred_dsl._source import SourceFile, Span
from alfred_dsl.compiler.load import (
    MAX_FILE_SIZE,
    find_root,
    load,
    load_document,
    parse_json,
    parse_yaml,
    read_source,
)

DATA = Path(__file__).parent / "data" / "loader"


def codes(diags: list[Diagnostic]) -> list[str]:
    return [d.code for d in diags]


def where(d: Diagnostic) -> tuple[int, int]:
    assert d.primary is not None, d
    return d.primary.span.line, d.primary.span.column


def text_of(span: Span) -> str:
    return span.source.text[span.start : span.end]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root (holds alfred.toml) inside tmp_path, so that tmp_path is outside it."""
    root = tmp_path / "proj"
    write(root / "alfred.toml", "")
    return root


# -- read_source ---------------------------------------------------------------------------


def test_read_source_reads_utf8_and_drops_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "w.alfred"
    path.write_bytes(b"\xef\xbb\xbfagent \xc3\xa9 {}\n")
    source, diags = read_source(path)
    assert diags == []
    assert source is not None and source.text == "agent é {}\n"
    assert source.name == str(path)


def test_missing_file_is_a001_with_a_suggestion(tmp_path: Path) -> None:
    write(tmp_path / "release.alfred", "")
    source, diags = read_source(tmp_path / "relase.alfred")
    assert source is None and codes(diags) == ["A001"]
    assert "no such file" in diags[0].message
    assert diags[0].help is not None and "release.alfred" in diags[0].help
    assert diags[0].filename == str(tmp_path / "relase.alfred")


def test_directory_is_a001(tmp_path: Path) -> None:
    source, diags = read_source(tmp_path)
    assert source is None and codes(diags) == ["A001"]
    assert "directory" in diags[0].message


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_is_a001(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.yaml", "agents: {}\n")
    path.chmod(0)
    try:
        source, diags = read_source(path)
    finally:
        path.chmod(0o644)
    assert source is None and codes(diags) == ["A001"]
    assert "permission denied" in diags[0].message.lower()


def test_symlink_loop_is_a001_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    source, diags = read_source(tmp_path / "a.yaml")
    assert source is None and codes(diags) == ["A001"]
    ws, diags = load(tmp_path / "a.yaml")
    assert ws is None and codes(diags) == ["A001"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_is_a001_instead_of_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    source, diags = read_source(tmp_path / "pipe.yaml")
    assert source is None and codes(diags) == ["A001"] and "not a regular file" in diags[0].message


def test_not_utf8_is_a002_at_the_first_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("a: 1\nname: é ok\n".encode() + b"bad: caf\xe9\n")
    source, diags = read_source(path)
    assert source is None and codes(diags) == ["A002"]
    assert where(diags[0]) == (3, 9)
    assert "line 3, column 9" in diags[0].message


def test_file_over_50_mb_is_a003_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:  # sparse: costs no disk and no time
        handle.truncate(MAX_FILE_SIZE + 1)
    started = time.process_time()
    source, diags = read_source(path)
    assert source is None and codes(diags) == ["A003"]
    assert "50 MB" in diags[0].message
    assert time.process_time() - started < 0.5


# -- YAML -----------------------------------------------------------------------------------


def yaml_doc(text: str, name: str = "w.yaml") -> tuple[Any, Any, list[Diagnostic]]:
    return parse_yaml(SourceFile(name, text))


def test_yaml_spans_point_at_keys_and_values_counting_characters() -> None:
    text = "agents:\n  wörker: {kind: command, run: [\"tr€e\", x]}\n"
    value, spans, diags = yaml_doc(text)
    assert diags == []
    assert value == {"agents": {"wörker": {"kind": "command", "run": ["tr€e", "x"]}}}
    key = spans.key(("agents", "wörker"))
    assert text_of(key) == "wörker" and (key.line, key.column) == (2, 3)
    kind = spans.value(("agents", "wörker", "kind"))
    assert text_of(kind) == "command" and (kind.line, kind.column) == (2, 18)
    item = spans.value(("agents", "wörker", "run", 1))
    assert text_of(item) == "x" and item.column == 41
    assert text_of(spans.value(("agents", "wörker", "run", 0))) == '"tr€e"'
    assert text_of(spans.key(("agents", "wörker", "run"))) == "run"


def test_yaml_uses_the_core_schema_only_true_and_false_are_booleans() -> None:
    value, _, diags = yaml_doc(
        "on: yes\nn: no\nt: true\nf: False\nnull_: ~\ni: 010\no: 0o17\nh: 0x1F\n"
        "fl: 1.5e3\nd: 2024-01-02\nq: '42'\ntime: 1:30\n"
    )
    assert diags == []
    assert value == {
        "on": "yes", "n": "no", "t": True, "f": False, "null_": None, "i": 10, "o": 15, "h": 31,
        "fl": 1500.0, "d": "2024-01-02", "q": "42", "time": "1:30",
    }


def test_yaml_duplicate_key_is_a208_pointing_at_both() -> None:
    text = "agents:\n  a: {kind: command}\n  a: {kind: python}\n"
    value, _, diags = yaml_doc(text)
    assert codes(diags) == ["A208"]
    assert where(diags[0]) == (3, 3)
    assert diags[0].secondary[0].span.line == 2
    assert value["agents"]["a"] == {"kind": "command"}  # the first one is kept


def test_yaml_syntax_error_is_a109_at_the_position_pyyaml_reports() -> None:
    value, _, diags = yaml_doc("agents:\n  a: {kind: command\nworkflows: {}\n")
    assert value is None and codes(diags) == ["A109"]
    assert diags[0].primary is not None and diags[0].primary.span.line == 3
    value, _, diags = yaml_doc("a: 1\n  b: 2\n")
    assert value is None and codes(diags) == ["A109"] and where(diags[0]) == (2, 4)


def test_yaml_deep_nesting_is_a003_not_a_crash() -> None:
    started = time.process_time()
    value, _, diags = yaml_doc("[" * 200_000 + "]" * 200_000)
    assert value is None and codes(diags) == ["A003"]
    value, _, diags = yaml_doc("a:\n" + "".join("  " * i + "- \n" for i in range(1, 150)))
    assert codes(diags) == ["A003"]
    assert time.process_time() - started < 2
    value, _, diags = yaml_doc("[" * 100 + "]" * 100)  # at the limit: fine
    assert diags == []


def test_yaml_alias_bomb_is_a003() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    started = time.process_time()
    value, _, diags = yaml_doc("\n".join(lines) + "\n")
    assert value is None and codes(diags) == ["A003"]
    assert time.process_time() - started < 2


def test_yaml_anchors_aliases_and_merge_keys() -> None:
    text = (
        "base: &base {retries: 2, timeout: 5m}\n"
        "stages:\n"
        "  a: {<<: *base, timeout: 1m}\n"
        "  b: {agent: x, <<: *base}\n"
        "list: [*base]\n"
    )
    value, spans, diags = yaml_doc(text)
    assert diags == []
    assert value["stages"]["a"] == {"retries": 2, "timeout": "1m"}
    assert list(value["stages"]["b"]) == ["agent", "retries", "timeout"]
    assert value["list"] == [{"retries": 2, "timeout": "5m"}]
    value["list"][0]["retries"] = 9  # copies, not shared objects
    assert value["base"]["retries"] == 2
    assert text_of(spans.value(("stages", "a", "retries"))) == "*base"


def test_yaml_unsupported_tags_and_second_documents_are_a109() -> None:
    _, _, diags = yaml_doc("a: !!python/object:os.system x\n")
    assert codes(diags) == ["A109"] and "unsupported YAML tag" in diags[0].message
    _, _, diags = yaml_doc("a: !!int nope\n")
    assert codes(diags) == ["A109"]
    value, _, diags = yaml_doc("a: !!str 12\nb: !!float 3\n")
    assert diags == [] and value == {"a": "12", "b": 3.0}
    value, _, diags = yaml_doc("a: 1\n---\nb: 2\n")
    assert value is None and codes(diags) == ["A109"] and where(diags[0])[0] == 2


def test_yaml_non_string_keys_are_a109() -> None:
    _, _, diags = yaml_doc("? [a, b]\n: 1\n")
    assert codes(diags) == ["A109"]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8),
                      inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(JSON_VALUES, st.sampled_from([None, 2, "\t"]))
def test_json_text_reads_the_same_as_json_loads_in_both_readers(value: Any, indent: int | str | None) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    parsed, _, diags = parse_json(SourceFile("v.json", text))
    assert diags == [] and parsed == value
    if indent != "\t":  # YAML does not allow tabs as indentation; flow JSON is YAML
        flow = json.dumps(value, ensure_ascii=False)
        parsed, _, diags = parse_yaml(SourceFile("v.yaml", flow))
        expected = {} if value is None else value
        assert diags == [] and (parsed if parsed is not None else {}) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='{}[]":, \n\t0123456789-.eEtruefalsn\\ab', max_size=30))
def test_json_errors_agree_with_json_loads(text: str) -> None:
    try:
        expected: Any = json.loads(text)
        error_pos = None
    except json.JSONDecodeError as exc:
        error_pos = exc.pos
    except RecursionError:  # pragma: no cover - too short to recurse
        return
    parsed, _, diags = parse_json(SourceFile("v.json", text))
    if error_pos is None:
        duplicates = [d for d in diags if d.code == "A208"]
        assert diags == duplicates
        if not duplicates:
            assert parsed == expected or (isinstance(expected, float) and math.isnan(expected))
    else:
        assert parsed is None and codes(diags) == ["A109"]
        assert diags[0].primary is not None and diags[0].primary.span.start == error_pos


def test_json_spans_duplicates_and_errors() -> None:
    text = '{\n\t"agents": {"a": {"kind": "command"}, "a": {}},\n\t"x": [1, 2.5e1, null]\n}'
    value, spans, diags = parse_json(SourceFile("w.json", text))
    assert codes(diags) == ["A208"] and where(diags[0]) == (2, 39)
    assert value["agents"]["a"] == {"kind": "command"}
    assert value["x"] == [1, 25.0, None]
    span = spans.value(("agents", "a", "kind"))
    assert text_of(span) == '"command"' and (span.line, span.column) == (2, 27)
    assert text_of(spans.value(("x", 1))) == "2.5e1"
    assert text_of(spans.key(("x",))) == '"x"'
    _, _, diags = parse_json(SourceFile("w.json", '{"a": [1, 2,]}'))
    assert codes(diags) == ["A109"] and where(diags[0]) == (1, 13)


def test_json_deep_nesting_is_a003() -> None:
    _, _, diags = parse_json(SourceFile("w.json", "[" * 100_000 + "]" * 100_000))
    assert codes(diags) == ["A003"]


# -- one document -----------------------------------------------------------------------------


def test_yaml_and_json_fixtures_load_to_the_same_document() -> None:
    yaml_source, _ = read_source(DATA / "release.yaml")
    json_source, _ = read_source(DATA / "release.json")
    assert yaml_source is not None and json_source is not None
    from_yaml, diags_yaml = load_document(yaml_source)
    from_json, diags_json = load_document(json_source)
    assert diags_yaml == [] and diags_json == []
    assert from_yaml is not None and from_json is not None
    data = dict(from_json.data)
    data.pop("$schema")
    assert from_yaml.data == data
    assert list(from_yaml.data["workflows"]["release"]["stages"]) == ["build", "publish"]


def test_top_level_must_be_a_mapping_and_empty_files_are_empty(tmp_path: Path) -> None:
    document, diags = load_document(SourceFile("w.yaml", "- a\n- b\n"))
    assert codes(diags) == ["A301"] and document is not None and document.data == {}
    document, diags = load_document(SourceFile("w.yaml", "# nothing yet\n"))
    assert diags == [] and document is not None and document.data == {}


def test_unknown_extension_is_a001() -> None:
    document, diags = load_document(SourceFile("w.toml", "x = 1"))
    assert document is None and codes(diags) == ["A001"]
    assert diags[0].help is not None and ".yaml" in diags[0].help


# -- load: imports and merging ---------------------------------------------------------------


def test_find_root(tmp_path: Path) -> None:
    write(tmp_path / "a" / "alfred.toml", "")
    deep = write(tmp_path / "a" / "b" / "c" / "w.yaml", "")
    assert find_root(deep) == tmp_path / "a"
    lonely = write(tmp_path / "x" / "w.yaml", "")
    assert find_root(lonely) == tmp_path / "x"


def test_load_merges_imports_relative_to_the_importing_file(project: Path) -> None:
    agents = project / "agents"
    write(agents / "common.yaml", "imports: [more/tools.json]\nagents:\n  shared: {kind: command}\n")
    write(agents / "more" / "tools.json", '{"agents": {"tool": {"kind": "python", "call": "m:f"}}}')
    entry = write(
        project / "flows" / "main.yaml",
        "imports: [../agents/common.yaml]\nagents:\n  local: {kind: command}\n"
        "workflows:\n  ci:\n    stages: {build: {agent: shared}}\n",
    )
    ws, diags = load(entry)
    assert diags == [] and ws is not None
    assert ws.root == project
    assert [Path(d.source.name).name for d in ws.documents] == ["main.yaml", "common.yaml", "tools.json"]
    assert list(ws.data["agents"]) == ["local", "shared", "tool"]
    assert list(ws.data["workflows"]) == ["ci"]
    assert ws.base_dirs["agents/tool"] == project / "agents" / "more"
    assert ws.base_dirs["workflows/ci"] == project / "flows"
    span = ws.spans.key(("agents", "tool"))
    assert span.file.endswith(os.path.join("agents", "more", "tools.json")) and text_of(span) == '"tool"'
    assert ws.spans.value(("workflows", "ci", "stages", "build", "agent")).file == str(entry)
    assert ws.entry is ws.documents[0]


def test_import_names_are_shown_relative_to_the_entry_as_given(project: Path, monkeypatch: Any) -> None:
    write(project / "lib.yaml", "agents: {a: {kind: command}}\n")
    write(project / "main.yaml", "imports: [lib.yaml]\n")
    monkeypatch.chdir(project.parent)
    ws, diags = load("proj/main.yaml")
    assert diags == [] and ws is not None
    assert [d.source.name for d in ws.documents] == ["proj/main.yaml", "proj/lib.yaml"]


def test_missing_import_is_a206_with_a_suggestion(project: Path) -> None:
    write(project / "agents" / "common.yaml", "agents: {}\n")
    entry = write(project / "main.yaml", "imports: [agents/comon.yaml]\n")
    ws, diags = load(entry)
    assert ws is not None and codes(diags) == ["A206"]
    assert where(diags[0]) == (1, 11)
    assert diags[0].help == "did you mean `agents/common.yaml`?"


def test_import_outside_the_root_is_a211_symlinks_included(project: Path, tmp_path: Path) -> None:
    write(tmp_path / "outside.yaml", "agents: {evil: {kind: command}}\n")
    (project / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    entry = write(project / "main.yaml", "imports: [../outside.yaml, link.yaml]\n")
    ws, diags = load(entry)
    assert ws is not None and codes(diags) == ["A211", "A211"]
    assert "evil" not in ws.data["agents"]
    assert [where(d) for d in diags] == [(1, 11), (1, 28)]
    # Paths are shown relative (to the importing file, to the root): short and the same anywhere.
    assert [d.message for d in diags] == [
        "import `../outside.yaml` leaves the project root",
        "import `link.yaml` leaves the project root",
    ]
    assert diags[0].notes == (
        "the project root is this file's folder",
        "the import resolves to `../outside.yaml`, relative to the project root",
    )
    assert diags[1].notes[1] == (
        "the import resolves (through a symbolic link) to `../outside.yaml`, relative to the project root"
    )
    assert not any(str(tmp_path) in text for d in diags for text in (d.message, *d.notes))


def test_a211_from_a_subfolder_names_the_root_relative_to_the_importer(project: Path) -> None:
    flows = project / "flows"
    write(flows / "main.yaml", "imports: [../../secret.yaml]\n")
    _, diags = load(flows / "main.yaml")
    assert codes(diags) == ["A211"]
    assert diags[0].notes == (
        "the project root is `..`, relative to this file",
        "the import resolves to `../secret.yaml`, relative to the project root",
    )


def test_import_cycle_is_a212_naming_the_chain(project: Path) -> None:
    write(project / "a.yaml", "imports: [b.yaml]\nagents: {a: {kind: command}}\n")
    write(project / "b.yaml", "imports: [c.yaml]\n")
    write(project / "c.yaml", "imports: [a.yaml]\n")
    entry = write(project / "main.yaml", "imports: [a.yaml]\n")
    ws, diags = load(entry)
    assert ws is not None and codes(diags) == ["A212"]
    message = diags[0].message
    assert message.index("a.yaml") < message.index("b.yaml") < message.index("c.yaml")
    assert message.count("a.yaml") == 2
    assert diags[0].primary is not None and diags[0].primary.span.file.endswith("c.yaml")
    assert list(ws.data["agents"]) == ["a"]


def test_self_import_is_a212(project: Path) -> None:
    entry = write(project / "main.yaml", "imports: [./main.yaml]\n")
    _, diags = load(entry)
    assert codes(diags) == ["A212"]


def test_a_file_imported_twice_is_loaded_once(project: Path) -> None:
    write(project / "common.yaml", "agents: {shared: {kind: command}}\n")
    write(project / "left.yaml", "imports: [common.yaml]\n")
    write(project / "right.yaml", "imports: [./common.yaml]\n")
    entry = write(project / "main.yaml", "imports: [left.yaml, right.yaml, common.yaml]\n")
    ws, diags = load(entry)
    assert diags == [] and ws is not None
    assert len(ws.documents) == 4
    assert list(ws.data["agents"]) == ["shared"]


def test_name_declared_in_two_files_is_a208_with_both_places(project: Path) -> None:
    write(project / "lib.yaml", "agents:\n  builder: {kind: python}\n")
    entry = write(project / "main.yaml", "imports: [lib.yaml]\nagents:\n  builder: {kind: command}\n")
    ws, diags = load(entry)
    assert ws is not None and codes(diags) == ["A208"]
    assert diags[0].primary is not None and diags[0].primary.span.file.endswith("lib.yaml")
    assert diags[0].secondary[0].span.file == str(entry)
    assert ws.data["agents"]["builder"] == {"kind": "command"}  # the entry file's wins


def test_unreadable_import_is_reported_at_the_import(project: Path) -> None:
    (project / "folder").mkdir()
    (project / "bad.yaml").write_bytes(b"a: \xff\n")
    write(project / "notes.txt", "hello")
    entry = write(project / "main.yaml", "imports: [folder, bad.yaml, notes.txt]\n")
    _, diags = load(entry)
    assert codes(diags) == ["A206", "A002", "A206"]
    assert diags[0].primary is not None and diags[0].primary.span.file == str(entry)
    assert diags[0].message == "`folder` is a directory; import a `.alfred`, `.yaml`, `.yml` or `.json` file"
    assert where(diags[2]) == (1, 29)
    assert diags[2].message == (
        "`notes.txt` is a `.txt` file; import a `.alfred`, `.yaml`, `.yml` or `.json` file"
    )


def test_imported_directory_or_other_file_type_is_a206_with_a_suggestion(project: Path) -> None:
    write(project / "one" / "agents.alfred", "")
    write(project / "many" / "a.yaml", "agents: {}\n")
    write(project / "many" / "b.json", "{}")
    write(project / "many" / "readme.md", "")
    (project / "empty").mkdir()
    write(project / "notes.txt", "")
    write(project / "notes.yaml", "agents: {}\n")
    write(project / "Makefile", "")
    entry = write(project / "main.yaml", "imports: [one/, many, empty, notes.txt, Makefile]\n")
    ws, diags = load(entry)
    assert ws is not None and codes(diags) == ["A206"] * 5
    assert [d.message.split(";")[0] for d in diags] == [
        "`one/` is a directory",
        "`many` is a directory",
        "`empty` is a directory",
        "`notes.txt` is a `.txt` file",
        "`Makefile` has no file extension",
    ]
    assert [d.help for d in diags] == [
        "did you mean `one/agents.alfred`?",
        "it holds `many/a.yaml`, `many/b.json`",
        None,
        "did you mean `notes.yaml`?",
        None,
    ]


def test_entry_problems_return_no_workspace(tmp_path: Path) -> None:
    ws, diags = load(tmp_path / "missing.yaml")
    assert ws is None and codes(diags) == ["A001"]
    ws, diags = load(write(tmp_path / "broken.json", '{"agents": '))
    assert ws is None and codes(diags) == ["A109"]


def test_schema_problems_are_reported_per_file_and_left_out_of_the_data(project: Path) -> None:
    write(project / "lib.yaml", "agents:\n  tool: {kind: python, call: m:f, concurency: 2}\n")
    entry = write(
        project / "main.yaml",
        "imports: [lib.yaml]\n"
        "workflows:\n  ci:\n    params: {n: {type: integer}}\n"
        "    stages:\n      build: {agent: tool, retrys: 3, timeout: 5m}\n",
    )
    ws, diags = load(entry)
    assert ws is not None
    assert sorted(codes(diags)) == ["A214", "A214", "A301"]
    assert ws.data["agents"]["tool"] == {"kind": "python", "call": "m:f"}
    assert ws.data["workflows"]["ci"]["stages"]["build"] == {"agent": "tool", "timeout": "5m"}
    assert ws.data["workflows"]["ci"]["params"] == {}  # a param without a valid type is dropped
    assert ws.documents[0].data["workflows"]["ci"]["params"] == {"n": {"type": "integer"}}  # untouched
    from alfred_dsl.compiler import _schema
    from alfred_dsl.compiler._document import Document

    assert _schema.validate(Document(ws.entry.source, ws.data, ws.spans)) == []


def test_dsl_imports(project: Path) -> None:
    pytest.importorskip("alfred_dsl.compiler._lower")
    write(project / "agents" / "common.alfred", 'agent shared {\n  kind = command\n  run = "true"\n}\n')
    entry = write(
        project / "main.alfred",
        'import "agents/common.alfred"\nimport "agents/missing.alfred"\n'
        "workflow ci {\n  stage build {\n    agent = shared\n  }\n}\n",
    )
    ws, diags = load(entry)
    assert ws is not None and codes(diags) == ["A206"]
    assert where(diags[0]) == (2, 8)
    assert list(ws.data["agents"]) == ["shared"]
    assert ws.spans.key(("agents", "shared")).file.endswith("common.alfred")


YAML_CHARACTERS = list("ab:- {}[],&*!<>|'\"\n\t#?%@`~0.1\x00\x85\ufeffé")
YAMLISH = st.text(alphabet=st.sampled_from(YAML_CHARACTERS), max_size=60)


@settings(max_examples=400, deadline=None)
@given(YAMLISH | st.text(max_size=60))
def test_any_text_gives_data_or_diagnostics_never_an_exception(text: str) -> None:
    for name in ("w.yaml", "w.json"):
        document, diags = load_document(SourceFile(name, text))
        assert document is not None or any(d.is_error for d in diags)
        for d in diags:
            assert d.primary is not None and 0 <= d.primary.span.start <= d.primary.span.end <= len(text)
        if document is not None:
            assert isinstance(document.data, dict)


def test_import_cycle_names_the_entry_file_alike_at_both_ends(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Checked from its own folder, the file that closes the cycle is the entry file itself:
    # the message names it the same way at its start and at its end.
    write(project / "main.yaml", "imports: [sub/x.yaml]\n")
    write(project / "sub" / "x.yaml", "imports: [../main.yaml]\n")
    monkeypatch.chdir(project / "sub")
    _, diags = load("x.yaml")
    assert codes(diags) == ["A212"]
    names = diags[0].message.removeprefix("import cycle: ").split(" -> ")
    assert len(names) == 3 and names[0] == names[-1]
