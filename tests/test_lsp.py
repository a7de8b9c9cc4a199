"""`alfredc lsp` driven as an editor drives it: a subprocess speaking JSON-RPC over its stdio."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
TIMEOUT = 30


class Client:
    """A minimal LSP client: framed JSON-RPC over a child's pipes."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "alfred_dsl", "lsp"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.notifications: list[dict[str, Any]] = []
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.request("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {}})
        self.notify("initialized", {})

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = 0
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            self.messages.put(json.loads(stream.read(length)))

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def _next(self) -> dict[str, Any]:
        try:
            return self.messages.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError("the server did not answer in time") from None

    def request_raw(self, method: str, params: Any) -> dict[str, Any]:
        self.next_id += 1
        number = self.next_id
        self._send({"id": number, "method": method, "params": params})
        while True:
            message = self._next()
            if message.get("id") == number and "method" not in message:
                return message
            self.notifications.append(message)

    def request(self, method: str, params: Any) -> Any:
        answer = self.request_raw(method, params)
        assert "error" not in answer, answer
        return answer.get("result")

    def diagnostics(self, uri: str) -> list[dict[str, Any]]:
        """The next diagnostics published for ``uri``."""
        for index, message in enumerate(self.notifications):
            if message.get("method") == "textDocument/publishDiagnostics" and message["params"]["uri"] == uri:
                del self.notifications[index]
                return list(message["params"]["diagnostics"])
        while True:
            message = self._next()
            if message.get("method") == "textDocument/publishDiagnostics" and message["params"]["uri"] == uri:
                return list(message["params"]["diagnostics"])
            self.notifications.append(message)

    def open(self, path: Path, text: str | None = None) -> str:
        uri = path.as_uri()
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "alfred", "version": 1,
            "text": path.read_text() if text is None else text,
        }})
        return uri

    def change(self, uri: str, text: str, version: int) -> None:
        self.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}],
        })

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.proc.wait(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    for name in ("templates.alfred", "feature_development.alfred", "release.yaml"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def client(project: Path) -> Iterator[Client]:
    started = Client(project)
    try:
        yield started
    finally:
        started.close()


def where(text: str, needle: str, occurrence: int = 0, delta: int = 0) -> dict[str, int]:
    """The LSP position of the start of the Nth ``needle`` in ``text`` (plus ``delta`` characters)."""
    offset = -1
    for _ in range(occurrence + 1):
        offset = text.index(needle, offset + 1)
    offset += delta
    line = text.count("\n", 0, offset)
    return {"line": line, "character": offset - (text.rfind("\n", 0, offset) + 1)}


def at(uri: str, text: str, needle: str, occurrence: int = 0, delta: int = 0) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": where(text, needle, occurrence, delta)}


def test_diagnostics_follow_edits_that_break_and_fix_a_file(client: Client, project: Path) -> None:
    path = project / "templates.alfred"
    good = path.read_text()
    uri = client.open(path)
    assert client.diagnostics(uri) == []
    broken = good.replace("agent    = publisher", "agent    = publsher")
    client.change(uri, broken, 2)
    found = [d for d in client.diagnostics(uri) if d["code"] != "A501"]  # publisher is now unused
    assert [d["code"] for d in found] == ["A201"]
    assert found[0]["range"]["start"] == where(broken, "publsher")
    assert "did you mean `publisher`" in found[0]["message"]
    client.change(uri, good, 3)
    assert client.diagnostics(uri) == []
    # The file on disk was never touched: the server read the editor's text.
    assert path.read_text() == good


def test_quick_fixes_apply_the_compilers_fix(client: Client, project: Path) -> None:
    path = project / "templates.alfred"
    text = path.read_text().replace("agent    = publisher", "agent    = publsher")
    text = text.replace("estimate = 3m", "estimate 3m")
    uri = client.open(path, text)
    found = client.diagnostics(uri)
    assert {d["code"] for d in found} == {"A102"}  # a syntax error stops the check there
    full = {"start": {"line": 0, "character": 0}, "end": {"line": 10_000, "character": 0}}
    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": full, "context": {"diagnostics": []},
    })
    assert [a["title"] for a in actions] == ["insert `=`"]
    edit = actions[0]["edit"]["changes"][uri][0]
    assert edit["newText"] == " ="
    assert edit["range"]["start"] == where(text, "estimate 3m", delta=len("estimate"))
    fixed = text.replace("estimate 3m", "estimate = 3m")
    client.change(uri, fixed, 2)
    assert [d["code"] for d in client.diagnostics(uri)] == ["A501", "A201"]
    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": full, "context": {"diagnostics": []},
    })
    assert [a["title"] for a in actions] == ["replace with `publisher`"]
    assert actions[0]["edit"]["changes"][uri][0]["range"]["start"] == where(fixed, "publsher")


def test_hover_shows_declarations_and_the_planned_timing_of_a_stage(client: Client, project: Path) -> None:
    path = project / "templates.alfred"
    text = path.read_text()
    uri = client.open(path)
    stage = client.request("textDocument/hover", at(uri, text, "stage test", delta=len("stage ")))
    value = stage["contents"]["value"]
    # build (5m) then test (8m): test starts at 5m and ends at 13m, on the critical path.
    assert "**stage** `test` in workflow `service_pipeline`" in value
    assert "planned start 5m, finish 13m, slack 0s (on the critical path)" in value
    param = client.request("textDocument/hover", at(uri, text, "params.test_timeout", delta=len("params.")))
    assert "**param** `test_timeout`: `duration`" in param["contents"]["value"]
    assert "= `10m`" in param["contents"]["value"]
    agent = client.request("textDocument/hover", at(uri, text, "= publisher", delta=2))
    assert "**agent** `publisher` (command)" in agent["contents"]["value"]
    attribute = client.request("textDocument/hover", at(uri, text, "estimate = 5m", delta=1))
    assert "critical-path" in attribute["contents"]["value"]
    template = client.request("textDocument/hover", at(uri, text, "use service_pipeline", delta=5))
    assert "**workflow** `service_pipeline`" in template["contents"]["value"]


def test_definition_references_and_rename(client: Client, project: Path) -> None:
    path = project / "templates.alfred"
    text = path.read_text()
    uri = client.open(path)
    target = client.request("textDocument/definition", at(uri, text, "params.service", delta=len("params.")))
    assert target["uri"] == uri
    assert target["range"]["start"] == where(text, "param service", delta=len("param "))
    refs = client.request("textDocument/references", {
        **at(uri, text, "param service", delta=len("param ")), "context": {"includeDeclaration": True},
    })
    # the declaration, two ${params.service} and the two `use ... (service = ...)` bindings
    assert len(refs) == 5
    edit = client.request("textDocument/rename", {
        **at(uri, text, "stage build", delta=len("stage ")), "newName": "compile",
    })
    edits = edit["changes"][uri]
    assert sorted((e["range"]["start"]["line"], e["newText"]) for e in edits) == [
        (where(text, "stage build")["line"], "compile"), (where(text, "after build")["line"], "compile"),
    ]
    bad = client.request_raw("textDocument/rename", {
        **at(uri, text, "stage build", delta=len("stage ")), "newName": "two words",
    })
    assert "not a valid name" in bad["error"]["message"]


def test_definition_and_rename_across_imports(client: Client, project: Path) -> None:
    (project / "agents.alfred").write_text('agent runner {\n  kind = command\n  run = "true"\n}\n')
    main = project / "main.alfred"
    text = 'import "agents.alfred"\n\nworkflow w {\n  stage a {\n    agent = runner\n  }\n}\n'
    main.write_text(text)
    uri = client.open(main)
    assert client.diagnostics(uri) == []
    agent = client.request("textDocument/definition", at(uri, text, "= runner", delta=2))
    assert agent["uri"] == (project / "agents.alfred").as_uri()
    assert agent["range"]["start"] == {"line": 0, "character": len("agent ")}
    imported = client.request("textDocument/definition", at(uri, text, "agents.alfred", delta=2))
    assert imported["uri"] == (project / "agents.alfred").as_uri()
    edit = client.request("textDocument/rename", {**at(uri, text, "= runner", delta=2), "newName": "worker"})
    assert set(edit["changes"]) == {uri, (project / "agents.alfred").as_uri()}


def test_completion_offers_what_fits_where_the_cursor_is(client: Client, project: Path) -> None:
    path = project / "templates.alfred"
    text = path.read_text()
    uri = client.open(path)
    client.diagnostics(uri)

    def labels(new_text: str, marker: str) -> set[str]:
        client.change(uri, new_text.replace(marker, ""), client.next_id + 10)
        answer = client.request("textDocument/completion", at(uri, new_text, marker))
        return {item["label"] for item in answer["items"]}

    in_ref = text.replace('"make -C services/${params.service} test"', '"${params.@}"')
    assert labels(in_ref, "@") == {"service", "test_timeout"}
    in_each = text.replace('"make -C services/${params.service} test"', '"${each.@}"')
    assert labels(in_each, "@") == {"item", "index"}
    agent = text.replace("agent    = publisher", "agent    = @")
    assert labels(agent, "@") == {"builder", "tester", "publisher"}
    in_stage = text.replace("    retries  = 3\n", "    retries  = 3\n    @\n")
    offered = labels(in_stage, "@")
    assert {"timeout", "requires", "when"} <= offered and "kind" not in offered
    in_agent = text.replace("  concurrency  = 4\n", "  concurrency  = 4\n  @\n")
    offered = labels(in_agent, "@")
    assert {"capabilities", "kind"} <= offered and "after" not in offered
    kind = text.replace("  concurrency  = 4\n", "  concurrency  = 4\n  kind = @\n")
    assert labels(kind, "@") == {"command", "python", "http", "mcp"}
    requires = text.replace("agent    = publisher", "requires = [\"@\"]")
    assert labels(requires, "@") >= {"build", "testing", "release"}
    top = text + "\n@"
    assert labels(top, "@") == {"agent", "workflow", "import"}


def test_formatting_symbols_and_semantic_tokens(client: Client, project: Path) -> None:
    path = project / "templates.alfred"
    text = path.read_text()
    uri = client.open(path, text.replace("  concurrency  = 2", "concurrency=2"))
    edits = client.request("textDocument/formatting", {
        "textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": True},
    })
    assert len(edits) == 1 and "  concurrency  = 2" in edits[0]["newText"]
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    assert [s["name"] for s in symbols] == [
        "builder", "tester", "publisher", "service_pipeline", "release_train",
    ]
    pipeline = symbols[3]
    assert [c["name"] for c in pipeline["children"]] == ["service", "test_timeout", "build", "test"]
    tokens = client.request("textDocument/semanticTokens/full", {"textDocument": {"uri": uri}})["data"]
    decoded = []
    line = character = 0
    for index in range(0, len(tokens), 5):
        delta_line, delta_char, length, kind, _ = tokens[index : index + 5]
        line += delta_line
        character = character + delta_char if delta_line == 0 else delta_char
        decoded.append((line, character, length, kind))
    lines = text.replace("  concurrency  = 2", "concurrency=2").splitlines()
    words = {(lines[row][col : col + size], kind) for row, col, size, kind in decoded}
    # types: 0 namespace(workflow) 1 class(agent) 2 function(stage) 3 parameter 4 property 5 keyword
    assert {("workflow", 5), ("builder", 1), ("service_pipeline", 0), ("build", 2), ("estimate", 4),
            ("service", 3)} <= words


def test_yaml_files_get_diagnostics_and_navigation(client: Client, project: Path) -> None:
    path = project / "release.yaml"
    text = path.read_text()
    uri = client.open(path)
    assert client.diagnostics(uri) == []
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    assert symbols
    client.change(uri, text + "\nbogus: 1\n", 2)
    assert [d["code"] for d in client.diagnostics(uri)] == ["A214"]


def test_a_failing_request_does_not_stop_the_server(client: Client, project: Path) -> None:
    path = project / "templates.alfred"
    text = path.read_text()
    uri = client.open(path)
    # A file that was never opened and does not exist: the handler fails, the server answers.
    unknown = client.request_raw("textDocument/references", {
        **at("file:///nowhere/x.alfred", "x", "x"), "context": {"includeDeclaration": True},
    })
    assert "error" in unknown or not unknown.get("result")
    assert client.request("textDocument/hover", at(uri, text, "stage test", delta=6)) is not None
