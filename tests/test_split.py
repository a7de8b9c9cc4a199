"""A large file read in two processes (compiler/_split.py) gives the one-process result.

Real forks: each test reads a generated file both ways and compares the documents (data, every
span of both tables, in order, and the item arrays) and the diagnostics. The threshold is
crossed by calling the split directly, or by lowering ``_lower.SPLIT_FROM`` for a test.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from alfred_dsl import _fork
from alfred_dsl._source import SourceFile
from alfred_dsl.compiler import _lower, _split
from alfred_dsl.compiler._document import Document


def big_file(
    stages: int,
    *,
    seed: int = 0,
    crlf: bool = False,
    duplicates: bool = True,
    template_errors: bool = False,
    comments: bool = True,
) -> str:
    """A workflow file with every kind of member spread over its length (so on both sides of
    any split point): stages with `after`, lists, maps, strings with escapes, expressions,
    `;`-separated members, comments, `use`, params, hooks, `defaults` and attributes among
    the stages, a small workflow before the big one and another after it."""
    rng = random.Random(seed)
    lines = [
        "# generated for tests/test_split.py",
        'agent worker {\n  kind = command\n  run = ["true"]\n  capabilities = ["build"]\n'
        "  concurrency = 4\n}",
        'agent helper {\n  kind = command\n  run = "echo ${inputs.level}"\n  capabilities = ["help"]\n}',
        "workflow small {",
        '  description = "a template"',
        "  param service: string = \"svc\"",
        "  stage build { agent = worker }",
        "  stage test after build { agent = worker; estimate = 2m }",
        "}",
        "",
        "workflow big {",
        '  description = "big one"',
        "  param level: int = 3",
        "  defaults {\n    retries = 1\n  }",
    ]
    for index in range(stages):
        name = f"s-{index}"
        if duplicates and index and index % 97 == 0:
            # A208: a name declared before, maybe on the other side of the split.
            lines.append(f"  stage s-{rng.randrange(index)} after s-{index - 1} {{ agent = worker }}")
        head = f"  stage {name}"
        if index:
            # Mostly recent stages (a graph as cheap to analyse as real ones), now and then any.
            low = 0 if index % 50 == 0 else max(0, index - 20)
            targets = sorted({f"s-{rng.randrange(low, index)}" for _ in range(rng.randint(1, 3))})
            head += " after " + ", ".join(targets)
        kind = index % 7
        if kind == 0:
            body = ["agent = helper", f"estimate = {rng.randint(1, 90)}m"]
        elif kind == 1:
            body = ["agent = worker", f'run = "echo \\"{index}\\" \\\\ done"', "priority = high"]
        elif kind == 2:
            body = ["agent = helper", 'inputs = { level = params.level, note = "n${params.level}" }']
        elif kind == 3:
            body = ["agent = worker", f'run = ["make", "-j", "{index % 5}"]', "when = params.level > 2"]
        elif kind == 4:
            body = ["agent = worker", "timeout = 1h30m", "retries = 2"]
        elif kind == 5:
            body = ["agent = helper",
                    "inputs = {\n      level = 1\n      deep = { x = [1, 2.5, true] }\n    }"]
        else:
            body = ["agent = worker", "estimate = 3m", "estimate = 4m"]  # A208 inside the stage
        if template_errors and index % 211 == 5:
            body.append('run = "echo ${"')  # A108 in the lowering
        if index % 13 == 0:
            lines.append(f"{head} {{ {'; '.join(body)} }}")  # one line, `;` between attributes
        else:
            lines.append(f"{head} {{")
            lines.extend(f"    {line}" for line in body)
            lines.append("  }")
        if comments and index % 17 == 0:
            lines.append(f"  # a comment after stage {index}")
        if index % 101 == 50:
            lines.append(f"  use small(service = \"x{index}\") as u-{index} after s-{index}")
        if index % 151 == 75:
            lines.append(f"  param extra_{index}: string = \"v{index}\"")
        if index % 503 == 100:
            lines.append(f"  on success {{ run = \"echo {index}\" }}")
        if index % 307 == 200:
            lines.append(f"  description = \"again {index}\"")  # an attribute twice: A208
        if index % 401 == 300:
            lines.append("  stage x-semi { agent = worker }; stage y-semi after x-semi { agent = helper }")
            lines[-1] = lines[-1].replace("x-semi", f"x-{index}").replace("y-semi", f"y-{index}")
        if index % 601 == 400:
            lines.append("  defaults { retries = 3 }")  # a second defaults block: A208
    lines.append("}")
    lines.append("")
    lines.append("workflow tail {\n  stage one { agent = worker }\n"
                 "  stage two after one { agent = helper }\n}")
    lines.append("agent late {\n  kind = command\n  run = [\"true\"]\n}")
    text = "\n".join(lines) + "\n"
    return text.replace("\n", "\r\n") if crlf else text


def snapshot(result: tuple[Document | None, list[Any]]) -> tuple[Any, ...]:
    """Everything of a parse_document result, spans in their tables' order."""
    document, diagnostics = result
    shown = [(repr(d), d.primary.span.start if d.primary else None) for d in diagnostics]
    if document is None:
        return None, shown
    tables = []
    for table in (document.spans.values, document.spans.keys):
        tables.append(list(table.packed_dict().items()))
        tables.append([(path, items.tolist()) for path, items in table.item_arrays().items()])
    imports = [(path, span.start, span.end) for path, span in document.imports]
    return document.data, tables, imports, shown


def one_process(text: str) -> tuple[Any, ...]:
    """parse_document as it reads a file below the threshold (the threshold raised for it)."""
    saved = _lower.SPLIT_FROM
    _lower.SPLIT_FROM = sys.maxsize
    try:
        return snapshot(_lower.parse_document(SourceFile("big.alfred", text)))
    finally:
        _lower.SPLIT_FROM = saved


def two_processes(text: str, share: float = _split.CHILD_SHARE) -> tuple[Any, ...] | None:
    result = _split.parse_document_split(SourceFile("big.alfred", text), share)
    return None if result is None else snapshot(result)


@pytest.fixture(autouse=True)
def _forking_possible(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_fork.DISABLE_VARIABLE, raising=False)
    if request.function is test_in_a_process_without_threads:
        return
    if threading.active_count() != 1:  # another test left a thread: this module runs in its own process
        pytest.skip("threads alive in the test process: see test_in_a_process_without_threads")
    assert _fork.can_fork(), "this machine cannot run the split (one CPU?)"


def test_in_a_process_without_threads() -> None:
    """In a whole test run an earlier test may leave a thread behind, and alfred does not fork
    then (nor do the tests above): they run again here in a process of their own."""
    if threading.active_count() == 1:
        return  # the tests above ran in this process
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
         "-k", "not test_in_a_process_without_threads"],
        cwd=Path(__file__).parent.parent, capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-1000:]


@pytest.mark.parametrize(
    "options",
    [{}, {"crlf": True}, {"template_errors": True}, {"duplicates": False, "comments": False}],
    ids=["features", "crlf", "template-errors", "plain"],
)
def test_two_processes_give_the_one_process_document(options: dict[str, bool]) -> None:
    text = big_file(3000, **options)
    expected = one_process(text)
    assert expected[-1] or options.get("duplicates") is False  # the file has diagnostics to compare
    for share in (0.2, 0.47, 0.8):
        assert two_processes(text, share) == expected


def test_duplicates_and_template_errors_on_both_sides_are_reported_in_order() -> None:
    text = big_file(3000, template_errors=True, seed=3)
    expected = one_process(text)
    codes = [shown.split("'")[1] for shown, _ in expected[-1]]
    assert "A208" in codes and "A108" in codes
    p = _split.split_point(text)
    assert p is not None
    starts = [start for _, start in expected[-1] if start is not None]
    assert min(starts) < p < max(starts)  # reported on both sides of the split
    assert two_processes(text) == expected


def test_several_workflows_split_inside_the_second_one() -> None:
    text = big_file(2000, seed=5)
    p = _split.split_point(text)
    assert p is not None and text.index("workflow big") < p < text.index("workflow tail")
    document = _split.parse_document_split(SourceFile("big.alfred", text))
    assert document is not None and document[0] is not None
    assert list(document[0].data["workflows"]) == ["small", "big", "tail"]
    assert list(document[0].data["agents"]) == ["worker", "helper", "late"]
    assert two_processes(text) == one_process(text)


def test_a_split_in_the_first_workflow_lowers_the_later_ones_in_the_child() -> None:
    text = big_file(2000, seed=6) + big_file(500, seed=7).replace("workflow big", "workflow big2").replace(
        "workflow small", "workflow small2").replace("workflow tail", "workflow tail2")
    assert two_processes(text, 0.8) == one_process(text)


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_syntax_error_on_either_side_gives_the_one_process_diagnostics(where: str) -> None:
    text = big_file(3000, seed=11)
    p = _split.split_point(text)
    assert p is not None
    at = text.index("\n  stage", p // 2 if where == "before" else p + 1000)
    broken = text[:at] + "\n  stage oops { agent = = }" + text[at:]
    assert two_processes(broken) is None  # not split: the whole file is read in one process
    expected = one_process(broken)
    assert expected[0] is None and "A10" in expected[-1][0][0]
    source = SourceFile("big.alfred", broken)
    saved = _lower.SPLIT_FROM
    _lower.SPLIT_FROM = 1000
    try:
        assert snapshot(_lower.parse_document(source)) == expected
    finally:
        _lower.SPLIT_FROM = saved


def test_parse_document_uses_the_split_above_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    text = big_file(3000, template_errors=True, seed=13)
    expected = one_process(text)
    monkeypatch.setattr(_lower, "SPLIT_FROM", 1000)
    assert snapshot(_lower.parse_document(SourceFile("big.alfred", text))) == expected


def test_alfred_parallel_0_keeps_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    text = big_file(500)
    monkeypatch.setenv(_fork.DISABLE_VARIABLE, "0")
    assert not _fork.can_fork()
    assert _fork.start(lambda: b"never") is None
    assert _split.parse_document_split(SourceFile("big.alfred", text)) is None
    monkeypatch.setattr(_lower, "SPLIT_FROM", 1000)
    assert snapshot(_lower.parse_document(SourceFile("big.alfred", text))) == one_process(text)


def test_a_failing_child_gives_no_result_and_is_reaped() -> None:
    def fail() -> bytes:
        raise ValueError("in the child")

    child = _fork.start(fail)
    assert child is not None
    assert child.result() is None
    child.close()
    ok = _fork.start(lambda: b"x" * 3_000_000)  # more than a pipe holds
    assert ok is not None
    assert ok.result() == b"x" * 3_000_000
    ok.close()
    slow = _fork.start(lambda: __import__("time").sleep(60) or b"")
    assert slow is not None and not slow.failed()
    slow.close()  # killed and reaped at once, not after 60 s


def test_no_split_point_means_one_process() -> None:
    assert _split.split_point("workflow w {\n  x = 1\n}\n") is None
    assert _split.split_point("workflow w { stage a {}; stage b {} }\n") is None  # no line starts a stage
    assert two_processes("agent a {\n  kind = command\n}\n" * 50) is None


_NAMES = st.sampled_from(["a", "b", "c", "d", "e"])


@st.composite
def small_files(draw: st.DrawFn) -> str:
    """A workflow of a few stages (names may repeat) with other members among them."""
    members = []
    for index in range(draw(st.integers(2, 12))):
        kind = draw(st.sampled_from(["stage", "stage", "stage", "use", "param", "hook", "attr", "bad"]))
        name = draw(_NAMES)
        if kind == "stage":
            after = f" after {draw(_NAMES)}" if index else ""
            members.append(f"  stage {name}{after} {{\n    agent = w\n    x = [{index}, \"{name}\"]\n  }}")
        elif kind == "use":
            members.append(f"  use t(p = {index}) as {name}")
        elif kind == "param":
            members.append(f"  param {name}: int = {index}")
        elif kind == "hook":
            members.append("  on success { run = \"true\" }")
        elif kind == "attr":
            members.append(f"  description = \"d{index}\"")
        else:
            members.append(f"  stage {name} {{ run = \"${{\" }}")
    tail = draw(st.sampled_from(
        ["", "workflow t {\n  stage z { agent = w }\n}\n", "agent q {\n  kind = command\n}\n"]
    ))
    return "agent w {\n  kind = command\n}\nworkflow main {\n" + "\n".join(members) + "\n}\n" + tail


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=small_files(), share=st.floats(0.05, 0.95))
def test_any_split_point_gives_the_one_process_result(text: str, share: float) -> None:
    result = two_processes(text, share)
    if _split.split_point(text, share) is not None:
        assert result is not None
    if result is not None:
        assert result == snapshot(_lower.parse_document(SourceFile("big.alfred", text)))


def test_alfredc_check_prints_the_same_in_two_processes(tmp_path: Path, alfredc: Any) -> None:
    text = big_file(5000, template_errors=True, seed=21)
    assert len(text) >= _lower.SPLIT_FROM
    path = tmp_path / "big.alfred"
    path.write_bytes(text.encode())
    forks: list[int] = []
    os.register_at_fork(after_in_parent=lambda: forks.append(1))  # counts real forks from here on
    one = alfredc("check", str(path), env={_fork.DISABLE_VARIABLE: "0"})
    assert forks == []
    two = alfredc("check", str(path))
    assert forks == [1]
    assert one.status == 1 and "A208" in one.stdout + one.stderr
    assert (two.status, two.stdout, two.stderr) == (one.status, one.stdout, one.stderr)
